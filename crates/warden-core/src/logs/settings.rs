//! The settings of a service's logs, as the config gives them (`[services.NAME.log]`).

use std::path::{Path, PathBuf};

/// Where stderr goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StderrTarget {
    /// Its own file.
    File(PathBuf),
    /// `stderr = "stdout"`: into the stdout file.
    Stdout,
}

/// `[services.NAME.log]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Default `<log_dir>/NAME.out.log`; absolute.
    pub stdout: PathBuf,
    /// Default `<log_dir>/NAME.err.log`.
    pub stderr: StderrTarget,
    /// Default 10 MiB.
    pub max_size: u64,
    /// Default 5, at least 1.
    pub keep: u32,
    pub compress: bool,
    pub timestamps: bool,
    /// `encoding = "utf-16le"`, `"latin1"`, `"cp1252"` (or on Windows any code page name):
    /// output is transcoded to UTF-8. `None` (or `"utf-8"`) passes bytes unchanged.
    pub encoding: Option<String>,
}

impl LogConfig {
    /// The defaults for service `name` with logs in `log_dir`: `NAME.out.log` and
    /// `NAME.err.log`, 10 MiB, 5 kept, no compression, no timestamps, bytes unchanged.
    pub fn defaults(log_dir: &Path, name: &str) -> LogConfig {
        LogConfig {
            stdout: log_dir.join(format!("{name}.out.log")),
            stderr: StderrTarget::File(log_dir.join(format!("{name}.err.log"))),
            max_size: 10 * 1024 * 1024,
            keep: 5,
            compress: false,
            timestamps: false,
            encoding: None,
        }
    }

    /// stderr goes into the stdout file (`stderr = "stdout"`, or the same path): the child
    /// then gets one pipe for both streams, so that the file has the program's own order
    /// (its lines are all labelled `out`).
    pub fn joined(&self) -> bool {
        match &self.stderr {
            StderrTarget::Stdout => true,
            StderrTarget::File(p) => *p == self.stdout,
        }
    }
}
