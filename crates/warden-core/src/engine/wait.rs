//! Waiting until the services are *up*, for `warden up -d --wait` (`GET
//! /v1/status?until=up`): the same moment at which `start` and `restart` answer (its main
//! process ran `min_uptime`), read from the snapshots each task publishes, so the wait is
//! woken by every change and never polls.

use tokio::sync::watch;

use super::service::{Snapshot, View};
use super::{Handle, read};

impl Handle {
    /// Resolves once no service is on its way up any more: each is up (`running`), or its
    /// start ended otherwise (it exited, backs off, failed, or was stopped). A service whose
    /// run ended and that is starting again counts as settled: that start did not come up.
    /// Never resolves on its own while a service stays `starting`; the caller bounds it.
    pub async fn settled(&self) {
        let receivers: Vec<watch::Receiver<Snapshot>> = read(&self.board)
            .services
            .iter()
            .map(|(_, rx, _)| rx.clone())
            .collect();
        // Every service's first look is taken now, before waiting on any of them.
        let firsts: Vec<Snapshot> = receivers.iter().map(|rx| rx.borrow().clone()).collect();
        for (mut rx, first) in receivers.into_iter().zip(firsts) {
            // An error: the task ended (warden is shutting down); nothing to wait for.
            let _ = rx.wait_for(|now| is_settled(&first, now)).await;
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
