//! The services stopped by hand, and their file (`stopped.json`), saved off the engine's
//! loop: a saver task writes the newest set, so a burst of stops (`stop --all` of 1,000
//! services is 1,000 requests) costs a few writes, not one read, rewrite and fsync each.

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Ctx;
use super::events::Level;

pub(super) struct HandStopped {
    names: BTreeSet<String>,
    /// Started with the first save (the engine's runtime exists by then).
    saver: Option<(watch::Sender<Vec<String>>, JoinHandle<()>)>,
}

impl HandStopped {
    pub(super) fn new(names: impl IntoIterator<Item = String>) -> HandStopped {
        HandStopped {
            names: names.into_iter().collect(),
            saver: None,
        }
    }

    /// Have the set as it is now written (soon; [`HandStopped::flush`] waits for it).
    pub(super) fn save(&mut self, ctx: &Arc<Ctx>) {
        let names: Vec<String> = self.names.iter().cloned().collect();
        if let Some((tx, _)) = &self.saver {
            tx.send_replace(names);
        } else {
            let (tx, rx) = watch::channel(names);
            let task = tokio::spawn(saver(rx, ctx.clone()));
            self.saver = Some((tx, task));
        }
    }

    /// Wait until the last set saved is written.
    pub(super) async fn flush(&mut self) {
        if let Some((tx, task)) = self.saver.take() {
            drop(tx);
            let _ = task.await;
        }
    }
}

/// Write each newest set; the first at once. Ends once the engine dropped its sender and
/// the last set is written.
async fn saver(mut rx: watch::Receiver<Vec<String>>, ctx: Arc<Ctx>) {
    rx.mark_changed();
    while rx.changed().await.is_ok() {
        let names = rx.borrow_and_update().clone();
        let state = ctx.state.clone();
        let saved = tokio::task::spawn_blocking(move || state.save_hand_stopped(&names)).await;
        let error = match saved {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        ctx.events.emit(
            "warden",
            Level::Warn,
            &format!("cannot save the services stopped by hand: {error}"),
        );
    }
}

impl Deref for HandStopped {
    type Target = BTreeSet<String>;

    fn deref(&self) -> &BTreeSet<String> {
        &self.names
    }
}

impl DerefMut for HandStopped {
    fn deref_mut(&mut self) -> &mut BTreeSet<String> {
        &mut self.names
    }
}
