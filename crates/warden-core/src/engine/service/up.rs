//! When a service is *up*: the one place that decides it. `depends_on = "ready"`, the replies
//! of `warden start`/`restart` (`Until::Up`) and `up -d --wait` all follow from the moment
//! `starting` turns into `running`, which is decided here.
//!
//! Today a service is up once its main process ran `min_uptime` without exiting; for a
//! `pid_file` service the main process is the pid file's, so it cannot be up before that
//! process is followed. A start that is not up within `start_timeout` has failed.
//! A service with a `ready` check or `notify = true` is up when the check passes (or READY=1
//! arrives): [`up_at`] is `None` for it, and the probes' event makes it `running`.

use tokio::time::Instant;

use super::{Run, deadline_after_from};
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
