//! Every file of a state dir, named once. Both crates use these names; nothing spells them
//! out again.

use std::path::{Path, PathBuf};

/// The single-instance lock, holding warden's pid.
pub const LOCK: &str = "warden.lock";
/// The control socket (Unix).
pub const SOCKET: &str = "warden.sock";
/// warden's own log with `up -d` and as a Windows service.
pub const LOG: &str = "warden.log";
/// The generated token of the TCP API.
pub const API_TOKEN: &str = "api.token";
/// The services stopped by hand.
pub const HAND_STOPPED: &str = "stopped.json";
/// The folder of the records of running process groups, one file per service.
pub const RUN_DIR: &str = "run";
/// In [`RUN_DIR`]: the previous warden stopped every process it started.
pub const CLEAN_EXIT: &str = "clean-exit";
/// The folder of the notify sockets (`notify = true`), one per service.
pub const NOTIFY_DIR: &str = "notify";

/// The paths of one state dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn lock(&self) -> PathBuf {
        self.dir.join(LOCK)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join(SOCKET)
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join(LOG)
    }

    pub fn api_token(&self) -> PathBuf {
        self.dir.join(API_TOKEN)
    }

    pub fn hand_stopped(&self) -> PathBuf {
        self.dir.join(HAND_STOPPED)
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.join(RUN_DIR)
    }

    /// The notify socket of `service` (`NOTIFY_SOCKET`).
    pub fn notify_socket(&self, service: &str) -> PathBuf {
        self.dir.join(NOTIFY_DIR).join(format!("{service}.sock"))
    }

    /// The record of `service`'s running process group.
    pub fn clean_exit(&self) -> PathBuf {
        self.run_dir().join(CLEAN_EXIT)
    }

    pub fn group_record(&self, service: &str) -> PathBuf {
        self.run_dir().join(format!("svc-{service}.json"))
    }
}

/// The control pipe of an installed Windows service instance (`-n NAME`), without the
/// `\\.\pipe\warden-` prefix.
pub fn instance_pipe_id(name: &str) -> String {
    format!("svc-{name}")
}
