//! Waiting until the services are *up*, for `warden up -d --wait` (`GET
//! /v1/status?until=up`): the same moment at which `start` and `restart` answer (its main
//! process ran `min_uptime`), read from the snapshots each task publishes, so the wait is
//! woken by every change and never polls.

use std::collections::HashMap;

use tokio::sync::{mpsc, watch};

use super::service::{Snapshot, View};
use super::{Handle, deps, read};
use crate::config::ServiceConfig;

impl Handle {
    /// Resolves once no service is on its way up any more: each is up (`running`), or its
    /// start ended otherwise (it exited, backs off, failed, or was stopped). A service whose
    /// run ended and that is starting again counts as settled: that start did not come up.
    /// So does one `pending` on a dependency that rests (stopped, failed, or exited short of
    /// its condition), directly or through other pending ones: nothing will start it.
    /// Never resolves on its own while a service stays `starting`; the caller bounds it.
    pub async fn settled(&self) {
        let (receivers, in_force): (Vec<(String, watch::Receiver<Snapshot>)>, _) = {
            let board = read(&self.board);
            (
                board
                    .services
                    .iter()
                    .map(|(name, rx, _)| (name.clone(), rx.clone()))
                    .collect(),
                board.in_force.clone(),
            )
        };
        let configs: HashMap<&str, &ServiceConfig> =
            in_force.iter().map(|c| (c.name.as_str(), &**c)).collect();
        // Every service's first look is taken now, before waiting on any of them.
        let firsts: HashMap<String, Snapshot> = receivers
            .iter()
            .map(|(name, rx)| (name.clone(), rx.borrow().clone()))
            .collect();
        // One wake-up for a change of any service (an error: its task ended, warden is
        // shutting down; nothing to wait for).
        let (wake_tx, mut wake) = mpsc::channel::<()>(1);
        let watchers: Vec<_> = receivers
            .iter()
            .map(|(_, rx)| {
                let (mut rx, wake_tx) = (rx.clone(), wake_tx.clone());
                tokio::spawn(async move {
                    while rx.changed().await.is_ok() {
                        let _ = wake_tx.try_send(());
                    }
                })
            })
            .collect();
        drop(wake_tx);
        let _abort = deps::AbortAll(watchers);
        loop {
            let now: HashMap<String, Snapshot> = receivers
                .iter()
                .map(|(name, rx)| (name.clone(), rx.borrow().clone()))
                .collect();
            let all = now.iter().all(|(name, snap)| {
                firsts.get(name).is_none_or(|first| is_settled(first, snap))
                    || stuck(name, &now, &configs, 0)
            });
            if all || wake.recv().await.is_none() {
                return;
            }
        }
    }
}

/// Has a service whose snapshot was `first` when the wait began come to a point where it is
/// up or will not be (for that start)?
fn is_settled(first: &Snapshot, now: &Snapshot) -> bool {
    match now.view {
        View::Pending { .. } | View::Starting { .. } | View::Stopping { .. } => {
            // Still on its way, unless the run waited for already ended and another began.
            now.restarts != first.restarts || now.last_exit != first.last_exit
        }
        // Up, or that start ended (backoff, stopped, exited, failed).
        _ => true,
    }
}

/// Is `name` pending on a dependency that will not come by itself: one at rest (stopped,
/// failed, exited) whose condition does not hold, or one stuck in turn? `depth` bounds the
/// walk (the config has no cycles; this only guards).
fn stuck(
    name: &str,
    now: &HashMap<String, Snapshot>,
    configs: &HashMap<&str, &ServiceConfig>,
    depth: usize,
) -> bool {
    let (Some(snap), Some(config)) = (now.get(name), configs.get(name)) else {
        return false;
    };
    if !matches!(snap.view, View::Pending { .. }) || depth > configs.len() {
        return false;
    }
    config.depends_on.iter().any(|dep| {
        let (Some(d), Some(dc)) = (now.get(&dep.service), configs.get(dep.service.as_str())) else {
            return false;
        };
        let at_rest = matches!(
            d.view,
            View::Stopped { .. } | View::Failed { .. } | View::Exited { .. }
        );
        (at_rest && deps::unmet(dep.condition, d, &dc.success_codes).is_some())
            || stuck(&dep.service, now, configs, depth + 1)
    })
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;
    use crate::proto::LastExit;

    fn snap(view: View, restarts: u32, exit: Option<i32>) -> Snapshot {
        Snapshot {
            restarts,
            last_exit: exit.map(|code| LastExit {
                code: Some(code),
                signal: None,
                at: String::new(),
                ran_ms: 0,
            }),
            ..Snapshot::new(view)
        }
    }

    #[test]
    fn up_or_ended_is_settled_and_a_start_in_progress_is_not() {
        let t = Instant::now();
        let starting = snap(View::Starting { pid: 1, since: t }, 0, None);
        let running = snap(View::Running { pid: 1, since: t }, 0, None);
        let backoff = snap(
            View::Backoff {
                until: t,
                reason: "exited with code 1".into(),
            },
            0,
            Some(1),
        );
        assert!(!is_settled(&starting, &starting));
        assert!(is_settled(&starting, &running));
        assert!(is_settled(&starting, &backoff));
        // It crashed and started again before the waiter looked: that start failed.
        let again = snap(View::Starting { pid: 2, since: t }, 1, Some(1));
        assert!(is_settled(&starting, &again));
        let pending = snap(View::Pending { reason: "x".into() }, 0, None);
        assert!(!is_settled(&pending, &starting));
        let stopped = snap(View::Stopped { reason: "x".into() }, 0, None);
        assert!(is_settled(&starting, &stopped));
    }
}
