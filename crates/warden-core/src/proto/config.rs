//! `GET /v1/services/{name}/config`: a service's settings as the config file writes them,
//! for people (`warden ui`'s detail pop-up). No secret: the command is shown before `${VAR}`
//! expansion, and of the environment only the variable names, never a value.

use serde::{Deserialize, Serialize};

/// The JSON of `GET /v1/services/{name}/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfigView {
    pub name: String,
    /// As written, before expansion, in TOML syntax: `"prog arg"` or `["prog", "arg"]`.
    pub command: String,
    pub shell: bool,
    /// Absolute.
    pub cwd: String,
    /// The names of the variables `env` and `env_file` set (values are never shown).
    pub env_names: Vec<String>,
    pub env_file: Option<String>,
    pub inherit_env: bool,
    pub autostart: bool,
    /// `always`, `on-failure` or `never`.
    pub restart: String,
    pub success_codes: Vec<i32>,
    pub backoff: BackoffView,
    pub start_limit: Option<StartLimitView>,
    pub stop_signal: String,
    pub stop_timeout_ms: u64,
    /// A `stop_command` is set (it is not shown: it is expanded).
    pub stop_command: bool,
    pub log: LogView,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackoffView {
    pub initial_ms: u64,
    pub max_ms: u64,
    pub factor: f64,
    pub jitter: f64,
    pub reset_after_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartLimitView {
    pub count: u32,
    pub window_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogView {
    /// Absolute.
    pub stdout: String,
    /// Absolute, or `"stdout"` when stderr joins the stdout file.
    pub stderr: String,
    pub max_size: u64,
    pub keep: u32,
    pub compress: bool,
    pub timestamps: bool,
}
