//! When a service is *up*: the one place that decides it. `depends_on = "ready"`, the replies
//! of `warden start`/`restart` (`Until::Up`) and `up -d --wait` all follow from the moment
//! `starting` turns into `running`, which is decided here.
//!
//! Today a service is up once its main process ran `min_uptime` without exiting; for a
//! `pid_file` service the main process is the pid file's, so it cannot be up before that
//! process is followed. A start that is not up within `start_timeout` has failed.
//! A service with a `ready` check or `notify = true` is up when the check passes (or READY=1
//! arrives): [`up_at`] is `None` for it, and the probes' event makes it `running`.
//! [`ServiceTask::next_timed`] waits on these deadlines (and the pid file) for the task.

use tokio::time::Instant;

use super::{Event, Phase, Run, ServiceTask, daemonize, deadline_after_from, probe};
use crate::config::ServiceConfig;

/// When the run will be up if its main process keeps running; `None` while it cannot be up
/// yet (a `pid_file` service whose pid file's process is not followed yet, or one that waits
/// for its ready check or READY=1).
pub(super) fn up_at(cfg: &ServiceConfig, run: &Run) -> Option<Instant> {
    if cfg.health.gated() {
        return None;
    }
    if cfg.daemonize.pid_file.is_some() && !run.followed {
        return None;
    }
    Some(deadline_after_from(run.main_since, cfg.min_uptime))
}

/// Is the run up right now?
pub(super) fn is_up(cfg: &ServiceConfig, run: &Run) -> bool {
    up_at(cfg, run).is_some_and(|at| at <= Instant::now())
}

/// When a start that is not up yet has failed: `start_timeout` after the spawn.
pub(super) fn start_deadline(cfg: &ServiceConfig, run: &Run) -> Instant {
    deadline_after_from(run.started, cfg.daemonize.start_timeout)
}

impl ServiceTask {
    /// The next event of a starting service (its timers, its pid file) or of one in backoff.
    pub(super) async fn next_timed(&mut self) -> Event {
        match &mut self.phase {
            Phase::Starting(run) => {
                // health: with `ready` or `notify`, `up::up_at` is `None`: the check says when.
                let give_up = start_deadline(&self.cfg, run);
                let up_at = up_at(&self.cfg, run);
                let pid_file = self.cfg.daemonize.pid_file.as_deref();
                if let (Some(wait), Some(path)) = (&mut run.awaiting, pid_file) {
                    tokio::select! {
                        pid = daemonize::next_pid(path, wait) => Event::PidFile(pid),
                        () = tokio::time::sleep_until(give_up) => Event::StartTimeout,
                        req = self.rx.recv() => Event::Request(req),
                        r = probe::next(&mut self.probes) => Event::Probe(r),
                    }
                } else {
                    tokio::select! {
                        status = run.child.wait() => Event::Exited(status),
                        () = sleep_until_some(up_at) => Event::Up,
                        () = tokio::time::sleep_until(give_up) => Event::StartTimeout,
                        req = self.rx.recv() => Event::Request(req),
                        r = probe::next(&mut self.probes) => Event::Probe(r),
                    }
                }
            }
            Phase::Backoff { until, .. } => {
                let until = *until;
                tokio::select! {
                    () = tokio::time::sleep_until(until) => Event::BackoffOver,
                    req = self.rx.recv() => Event::Request(req),
                }
            }
            _ => Event::Request(self.rx.recv().await),
        }
    }
}

/// Sleep until `at`, or forever for `None`.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
