//! What a service task publishes about itself: a [`View`] derived from its phase (so that an
//! impossible combination, such as `running` without a pid, cannot be written), plus the
//! counters that outlive a run. The API's [`ServiceStatus`] is computed from it on demand.

use tokio::time::Instant;

use super::{Phase, Rest};
use crate::proto::{LastExit, ServiceStatus, State};

/// The state of a service with the data that belongs to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// Not started yet.
    Pending {
        reason: String,
    },
    /// Spawned, not yet up (it has not run `min_uptime`).
    Starting {
        pid: u32,
        since: Instant,
    },
    Running {
        pid: u32,
        since: Instant,
    },
    /// Being stopped (or, after the main process exited, what is left of its tree).
    Stopping {
        pid: u32,
        since: Instant,
    },
    /// Waiting before a restart.
    Backoff {
        until: Instant,
        reason: String,
    },
    Stopped {
        reason: String,
    },
    Exited {
        reason: String,
    },
    Failed {
        reason: String,
    },
}

impl View {
    pub fn state(&self) -> State {
        match self {
            View::Pending { .. } => State::Pending,
            View::Starting { .. } => State::Starting,
            View::Running { .. } => State::Running,
            View::Stopping { .. } => State::Stopping,
            View::Backoff { .. } => State::Backoff,
            View::Stopped { .. } => State::Stopped,
            View::Exited { .. } => State::Exited,
            View::Failed { .. } => State::Failed,
        }
    }

    /// The words of a resting or waiting state; `None` while a process runs.
    pub fn reason(&self) -> Option<&str> {
        match self {
            View::Pending { reason }
            | View::Backoff { reason, .. }
            | View::Stopped { reason }
            | View::Exited { reason }
            | View::Failed { reason } => Some(reason),
            View::Starting { .. } | View::Running { .. } | View::Stopping { .. } => None,
        }
    }
}

/// Everything `status` shows of one service, as its task last published it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub view: View,
    /// Starts by the restart policy since warden started the service.
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    /// `None` without a health check (health: `engine/service/probe.rs`).
    pub health: Option<crate::proto::Health>,
    /// The health check passed at least once in this run (`depends_on` condition `healthy`).
    pub was_healthy: bool,
    /// The tree's last resource sample while it runs.
    pub usage: Option<Usage>,
    /// The last `STATUS=` of a notify message in this run.
    pub status_text: Option<String>,
}

/// One resource sample of a service's tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub cpu_percent: Option<f64>,
    pub memory_bytes: u64,
    /// The tree's CPU time so far in this run (`/metrics`).
    pub cpu_seconds: Option<f64>,
    /// The service cgroup's `memory.current` (cgroup mode with the memory controller).
    pub memory_cgroup_bytes: Option<u64>,
}

impl Snapshot {
    pub fn new(view: View) -> Snapshot {
        Snapshot {
            view,
            restarts: 0,
            last_exit: None,
            health: None,
            was_healthy: false,
            usage: None,
            status_text: None,
        }
    }

    /// The API's status at `now`. `log_problem`: why its log files are not being written
    /// (shown as the reason of a running service, which has none of its own).
    pub fn status(&self, name: &str, now: Instant, log_problem: Option<String>) -> ServiceStatus {
        let (pid, since, until) = match &self.view {
            View::Starting { pid, since }
            | View::Running { pid, since }
            | View::Stopping { pid, since } => (Some(*pid), Some(*since), None),
            View::Backoff { until, .. } => (None, None, Some(*until)),
            _ => (None, None, None),
        };
        let reason = self
            .view
            .reason()
            .map(str::to_owned)
            .or_else(|| log_problem.map(|p| format!("log: {p}")));
        ServiceStatus {
            name: name.to_owned(),
            state: self.view.state(),
            pid,
            uptime_ms: since.map(|s| now.saturating_duration_since(s).as_millis() as u64),
            restarts: self.restarts,
            last_exit: self.last_exit.clone(),
            next_start_in_ms: until.map(|t| t.saturating_duration_since(now).as_millis() as u64),
            reason,
            // health: filled in from the service's probes and samples
            health: self.health,
            cpu_percent: self.usage.and_then(|u| u.cpu_percent),
            memory_bytes: self.usage.map(|u| u.memory_bytes),
            memory_cgroup_bytes: self.usage.and_then(|u| u.memory_cgroup_bytes),
            status_text: self.status_text.clone(),
            started_first: Vec::new(),
        }
    }
}

/// What a phase shows.
pub(super) fn view(phase: &Phase) -> View {
    match phase {
        Phase::Rest { rest, reason } => {
            let reason = reason.clone();
            match rest {
                Rest::Pending => View::Pending { reason },
                Rest::Stopped => View::Stopped { reason },
                Rest::Exited => View::Exited { reason },
                Rest::Failed => View::Failed { reason },
            }
        }
        Phase::Starting(run) => View::Starting {
            pid: run.child.pid(),
            since: run.main_since,
        },
        Phase::Running(run) => View::Running {
            pid: run.child.pid(),
            since: run.main_since,
        },
        Phase::Stopping { pid, since } => View::Stopping {
            pid: *pid,
            since: *since,
        },
        Phase::Backoff { until, reason } => View::Backoff {
            until: *until,
            reason: reason.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_running_service_has_a_pid_and_an_uptime_and_no_reason() {
        let t0 = Instant::now();
        let s = Snapshot::new(View::Running { pid: 42, since: t0 });
        let st = s.status("web", t0 + Duration::from_millis(1500), None);
        assert_eq!(
            (st.state, st.pid, st.uptime_ms, st.reason),
            (State::Running, Some(42), Some(1500), None)
        );
    }

    #[test]
    fn a_log_problem_is_the_reason_of_a_running_service_only() {
        let t0 = Instant::now();
        let running = Snapshot::new(View::Running { pid: 1, since: t0 });
        let st = running.status("a", t0, Some("cannot open /x: denied".into()));
        assert_eq!(st.reason.as_deref(), Some("log: cannot open /x: denied"));
        let stopped = Snapshot::new(View::Stopped {
            reason: "stopped by hand".into(),
        });
        let st = stopped.status("a", t0, Some("cannot open /x: denied".into()));
        assert_eq!(st.reason.as_deref(), Some("stopped by hand"));
    }

    #[test]
    fn backoff_counts_down_to_the_next_start() {
        let t0 = Instant::now();
        let s = Snapshot::new(View::Backoff {
            until: t0 + Duration::from_secs(2),
            reason: "exited with code 1".into(),
        });
        let st = s.status("a", t0 + Duration::from_millis(500), None);
        assert_eq!(
            (st.state, st.pid, st.next_start_in_ms),
            (State::Backoff, None, Some(1500))
        );
        let late = s.status("a", t0 + Duration::from_secs(3), None);
        assert_eq!(late.next_start_in_ms, Some(0), "never negative");
    }
}
