//! `warden.toml`: parsed with spans, validated and expanded into a typed [`Config`] in which
//! every path is absolute and every duration and size is a number.
//!
//! Errors are collected, never returned one at a time: [`load`] reports every problem of a
//! file at once, each with its file, line and column ([`ConfigErrors`]). A valid config may
//! still carry warnings ([`Config::warnings`]): problems that do not stop warden from running
//! it, such as a program that is not there (yet).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::logs::{LogConfig, StderrTarget};
pub use crate::model::{ExitAction, ExitActions, RestartPolicy, Signal, StopMethod, WhenAllEnded};

mod daemonize;
mod depends;
mod diag;
mod dotenv;
mod expand;
mod files;
mod health;
#[cfg(test)]
mod health_tests;
mod limits;
mod parse;
mod privileges;
mod programs;
mod reader;
mod service;
#[cfg(test)]
mod tests;
mod units;
mod warden_log;
pub use daemonize::{DEFAULT_START_TIMEOUT, Daemonize};
pub use depends::{Condition, Dependency, start_levels};
pub use health::{Check, HealthConfig, HttpProbe, OnUnhealthy, Probe, WardenHealth};
pub use parse::{load, load_str};
pub use privileges::Privileges;
pub use warden_log::WardenLog;

/// The environment that `${VAR}` expansion reads from. Tests pass their own.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A whole, valid config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The config file, absolute.
    pub path: PathBuf,
    /// Its directory: the base of every relative path.
    pub dir: PathBuf,
    pub warden: WardenSettings,
    /// Services in the order the file lists them.
    pub services: Vec<ServiceConfig>,
    /// What is wrong but does not make the config invalid, in file order: a `command` or
    /// `stop_command` whose program is not found where the child will look for it. `check`
    /// prints them (`--strict` makes them errors); `up` and `reload` print them and go on.
    pub warnings: Vec<ConfigWarning>,
}

impl Config {
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// `[warden]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WardenSettings {
    /// Default `<dir>/logs`.
    pub log_dir: PathBuf,
    /// Default `<dir>/.warden`.
    pub state_dir: PathBuf,
    /// `socket = "PATH"`: the control socket (Unix); default `<state_dir>/warden.sock`. An
    /// installed instance keeps it in the runtime dir (`/run/warden/NAME/`), which a reboot
    /// clears, and its state in `state_dir`, which survives one.
    pub socket: Option<PathBuf>,
    /// Default 60 s.
    pub shutdown_timeout: Duration,
    /// `api = "127.0.0.1:9100"`: an optional TCP listener for the control API.
    pub api: Option<SocketAddr>,
    /// The bearer token for `api`: from `api_token`, or read (trimmed) from `api_token_file`.
    pub api_token: Option<Secret>,
    /// Default `keep`.
    pub when_all_ended: WhenAllEnded,
    /// `log = { max_size, keep }`: the rotation of `warden.log`; default 10 MiB, 5 kept.
    pub log: WardenLog,
    /// `sample_interval`, `http`, `metrics_public` (`health.rs`).
    pub health: WardenHealth,
}

/// A secret string that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `[services.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub name: String,
    /// The program and its arguments. With `shell = true` this is already
    /// `["sh", "-c", STRING]` (`["cmd", "/C", STRING]` on Windows).
    pub command: Vec<String>,
    /// `command` as written, before `${VAR}` expansion (so it holds no secret from the
    /// environment), in TOML syntax: `"prog arg"` or `["prog", "arg"]`.
    pub raw_command: String,
    pub shell: bool,
    /// Absolute; default the config's directory.
    pub cwd: PathBuf,
    /// `env_file` (read at load time, so a change of the file is a change of the config)
    /// merged with `env` (which wins), plus `WARDEN_SERVICE=NAME`.
    pub env: BTreeMap<String, String>,
    /// The `env_file` path as given, absolute, if any.
    pub env_file: Option<PathBuf>,
    pub inherit_env: bool,
    pub autostart: bool,
    pub restart: RestartPolicy,
    /// Default `[0]`.
    pub success_codes: Vec<i32>,
    /// Per exit code, overriding `restart` and `success_codes`; default none.
    pub exit_actions: ExitActions,
    pub backoff: Backoff,
    pub start_limit: Option<StartLimit>,
    /// Default TERM.
    pub stop_signal: Signal,
    /// Default 10 s.
    pub stop_timeout: Duration,
    /// Default 1 s: a start counts as done (the service is *up*, state `running`) once its
    /// main process ran this long; until then it is `starting`. `0s`: up at once.
    pub min_uptime: Duration,
    pub stop_command: Option<Vec<String>>,
    /// Windows: `stop_method`, default `["ctrl-c", "wm-close", "terminate"]`.
    pub stop_method: Vec<StopMethod>,
    pub log: LogConfig,
    /// `user`, `group`, `umask`, `nice`, `oom_score_adjust`, `no_new_privileges`, `limits`,
    /// `memory_limit`, `cpu_max` (see `privileges.rs`); default: none of them.
    pub privileges: Privileges,
    /// `ready`, `health`, `notify`, `watchdog`, `memory_max`, ... (`health.rs`).
    pub health: HealthConfig,
    /// `depends_on` (`depends.rs`), in the order written.
    pub depends_on: Vec<Dependency>,
    /// `pid_file`, `daemon`, `start_timeout` (see `daemonize.rs`).
    pub daemonize: Daemonize,
}

impl ServiceConfig {
    /// The environment the child gets, over (or instead of, with `inherit_env = false`)
    /// warden's own.
    pub fn child_env(&self) -> Vec<(OsString, OsString)> {
        self.env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }
}

/// `backoff = { initial, max, factor, jitter, reset_after }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Default 100 ms.
    pub initial: Duration,
    /// Default 30 s.
    pub max: Duration,
    /// Default 2.0.
    pub factor: f64,
    /// Default 0.1: each delay is multiplied by a random factor in `[1 - jitter, 1 + jitter]`.
    pub jitter: f64,
    /// Default 30 s: a run that lasted this long resets the count of consecutive restarts.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.1,
            reset_after: Duration::from_secs(30),
        }
    }
}

/// `start_limit = { count, window }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartLimit {
    pub count: u32,
    pub window: Duration,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no place in the file (the file cannot be read).
    pub line: usize,
    /// 1-based.
    pub col: usize,
    pub message: String,
    /// `did you mean "command"?`, `write ${PORT:-default} to give a default`, ...
    pub hint: Option<String>,
}

impl ConfigError {
    /// `FILE:LINE:COL: ` (or `FILE: ` without a place), then `label`, the message and the
    /// hint in parentheses.
    fn write(&self, f: &mut std::fmt::Formatter<'_>, label: &str) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file.display())?;
        } else {
            write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        }
        write!(f, "{label}{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write(f, "")
    }
}

/// A problem that leaves the config valid, with its place like an error. It prints as
/// `FILE:LINE:COL: warning: MESSAGE (HINT)`; `.0` is the same problem as an error (for
/// `check --strict`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning(pub ConfigError);

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.write(f, "warning: ")
    }
}

/// Every problem found in a config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error(s) in {}", .errors.len(), .file.display())]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

/// Parse a duration: `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"1h30m"`, `"1.5s"`, `"0"`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    units::parse_duration(s)
}

/// Parse a size: `"10MiB"`, `"500KB"`, `"1GiB"`, `"4096"` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    units::parse_size(s)
}

/// The config file to use: `-c FILE`, else `WARDEN_CONFIG`, else `./warden.toml`.
pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("WARDEN_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("warden.toml"),
    }
}
