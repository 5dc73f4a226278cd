//! `GET /v1/status` and `GET /v1/services/{name}`: the status of warden and its services.

use serde::{Deserialize, Serialize};

/// The state of a service, as `warden status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not started yet (warden is starting, or it waits for something).
    Pending,
    /// Being started.
    Starting,
    Running,
    /// Being stopped.
    Stopping,
    /// Stopped by hand, or not started because `autostart = false`.
    Stopped,
    /// Waiting before a restart.
    Backoff,
    /// Ended and its restart policy does not restart it.
    Exited,
    /// Given up: the start limit was hit, or it could not be started and is not retried.
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Backoff => "backoff",
            State::Exited => "exited",
            State::Failed => "failed",
        }
    }
}

/// What a service's health check says (`null` in JSON when it has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Its check passed (`success_threshold` times in a row).
    Healthy,
    /// Its check failed `retries` times in a row.
    Unhealthy,
    /// No result yet in this run.
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Unknown => "unknown",
        }
    }
}

/// How the last run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// RFC 3339 UTC with milliseconds.
    pub at: String,
    /// How long that run lasted.
    #[serde(default)]
    pub ran_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: State,
    pub pid: Option<u32>,
    pub uptime_ms: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    pub next_start_in_ms: Option<u64>,
    pub reason: Option<String>,
    /// `null` without a health check.
    #[serde(default)]
    pub health: Option<Health>,
    /// The whole tree's CPU use over the last sample period, in percent of one core (in
    /// cgroup mode from the cgroup's `cpu.stat`); `null` while nothing runs or before the
    /// first two samples.
    #[serde(default)]
    pub cpu_percent: Option<f64>,
    /// The whole tree's resident memory, summed over its processes; `null` while nothing
    /// runs or before the first sample.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// The service cgroup's `memory.current` (page cache included), beside the summed RSS;
    /// `null` outside cgroup mode, without the memory controller, or before a sample.
    #[serde(default)]
    pub memory_cgroup_bytes: Option<u64>,
    /// The last `STATUS=` a `notify = true` service sent in its current run; `null` without
    /// one (and while nothing runs).
    #[serde(default)]
    pub status_text: Option<String>,
    /// Only in the answer of a start (`POST /v1/services/{name}/start`): what it started
    /// first because the service needs it (`depends_on`), deepest first. Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub started_first: Vec<String>,
}

// `cpu_percent` is always finite (warden computes it from counters), so equality is total.
impl Eq for ServiceStatus {}

impl ServiceStatus {
    /// A service in `state` with nothing else known yet (no pid, run, exit, reason or
    /// sample): the start of a status that callers fill in.
    pub fn new(name: impl Into<String>, state: State) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            state,
            pid: None,
            uptime_ms: None,
            restarts: 0,
            last_exit: None,
            next_start_in_ms: None,
            reason: None,
            health: None,
            cpu_percent: None,
            memory_bytes: None,
            memory_cgroup_bytes: None,
            status_text: None,
            started_first: Vec::new(),
        }
    }

    /// A one-shot that completed: it exited (not by a signal) with one of `success_codes`,
    /// the service's `success_codes`. What `/health` leaves uncounted and `up -d --wait`
    /// counts as done (`depends_on`'s `completed`, read from the engine's own snapshot).
    pub fn completed(&self, success_codes: &[i32]) -> bool {
        self.state == State::Exited
            && self.last_exit.as_ref().is_some_and(|e| {
                e.signal.is_none() && e.code.is_some_and(|c| success_codes.contains(&c))
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WardenInfo {
    pub version: String,
    pub pid: u32,
    pub config: String,
    pub uptime_ms: u64,
    /// How the processes of the services are tracked and confined.
    #[serde(default)]
    pub tracking: Tracking,
}

/// How warden tracks the processes of its services (`warden.tracking` in the status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tracking {
    /// Linux, cgroup v2: each service in its own cgroup; exact tracking, whole-tree stop,
    /// `memory_limit` and `cpu_max` as hard limits where the controllers exist.
    Cgroup,
    /// Windows: each service in its own Job Object; `memory_limit` is the job's limit.
    Job,
    /// Unix without a cgroup warden may manage: process groups, `/proc` ancestry and the
    /// environment marker; `memory_limit` and `cpu_max` are not enforced.
    #[default]
    ProcessGroup,
}

impl Tracking {
    pub fn as_str(self) -> &'static str {
        match self {
            Tracking::Cgroup => "cgroup",
            Tracking::Job => "job",
            Tracking::ProcessGroup => "process-group",
        }
    }
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub warden: WardenInfo,
    pub services: Vec<ServiceStatus>,
}
