//! How many connections a listener holds, in two pools, so that clients who have not shown
//! who they are cannot crowd out those who have:
//!
//! - **waiting**: accepted, its request head not yet read (or, on TCP, its token not yet
//!   checked). At most [`MAX_WAITING`]; when full, the *oldest* waiting connection is
//!   evicted (answered 503 and closed) to make room, so a client that sends its request at
//!   once always gets in, however many idle or slow connections sit there. Each waits at
//!   most the head timeout anyway.
//! - **serving**: its request was read (and authorized); at most [`MAX_SERVING`]. One more
//!   is answered 503 (`Admission::admit` fails).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Connections of one listener waiting for their request head.
pub const MAX_WAITING: usize = 4096;
/// Connections of one listener serving a request (most are short; a log follow is long).
pub const MAX_SERVING: usize = 512;

/// The two pools of one listener.
#[derive(Clone, Default)]
pub struct Admission {
    inner: Arc<Mutex<Pools>>,
}

#[derive(Default)]
struct Pools {
    next: u64,
    /// By arrival: the first entry is the oldest.
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
    serving: usize,
}

fn lock(m: &Mutex<Pools>) -> MutexGuard<'_, Pools> {
    // The pools are valid after any panic (each change is one statement).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection in the waiting pool; leaves it when dropped or admitted.
pub struct Waiting {
    id: u64,
    evicted: oneshot::Receiver<()>,
    pools: Arc<Mutex<Pools>>,
}

/// A connection in the serving pool; leaves it when dropped.
pub struct Serving {
    pools: Arc<Mutex<Pools>>,
}

/// The serving pool is full.
#[derive(Debug)]
pub struct Full;

impl Admission {
    pub fn new() -> Admission {
        Admission::default()
    }

    /// A new connection: into the waiting pool, evicting the oldest one if it is full.
    pub fn arrive(&self) -> Waiting {
        let (tx, rx) = oneshot::channel();
        let mut pools = lock(&self.inner);
        if pools.waiting.len() >= MAX_WAITING
            && let Some((_, oldest)) = pools.waiting.pop_first()
        {
            // It may be gone already: nothing to tell then.
            let _ = oldest.send(());
        }
        let id = pools.next;
        pools.next += 1;
        pools.waiting.insert(id, tx);
        Waiting {
            id,
            evicted: rx,
            pools: self.inner.clone(),
        }
    }

    /// Evict the oldest waiting connection (to free its file descriptor when there are no
    /// more); `false` if none waits.
    pub fn evict_oldest(&self) -> bool {
        let oldest = lock(&self.inner).waiting.pop_first();
        oldest.is_some_and(|(_, tx)| {
            let _ = tx.send(());
            true
        })
    }

    /// How many connections wait and how many are served now.
    pub fn counts(&self) -> (usize, usize) {
        let pools = lock(&self.inner);
        (pools.waiting.len(), pools.serving)
    }
}

impl Waiting {
    /// Resolves when this connection was evicted to make room for a newer one.
    pub async fn evicted(&mut self) {
        // An error: the sender is gone without sending, which happens only when we left the
        // pool ourselves; never resolve then.
        if (&mut self.evicted).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The request arrived: move to the serving pool, or [`Full`].
    pub fn admit(self) -> Result<Serving, Full> {
        let mut pools = lock(&self.pools);
        if pools.serving >= MAX_SERVING {
            return Err(Full);
        }
        pools.serving += 1;
        drop(pools);
        Ok(Serving {
            pools: self.pools.clone(),
        })
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        lock(&self.pools).waiting.remove(&self.id);
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let mut pools = lock(&self.pools);
        pools.serving = pools.serving.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_waiting_connection_makes_room_for_a_new_one() {
        let adm = Admission::new();
        let mut first = adm.arrive();
        let rest: Vec<Waiting> = (1..MAX_WAITING).map(|_| adm.arrive()).collect();
        assert_eq!(adm.counts(), (MAX_WAITING, 0));
        let newest = adm.arrive();
        assert_eq!(adm.counts(), (MAX_WAITING, 0), "one in, one out");
        tokio::time::timeout(std::time::Duration::from_secs(5), first.evicted())
            .await
            .expect("the oldest is told");
        drop(first);
        let served = newest.admit().expect("room to serve");
        assert_eq!(adm.counts(), (MAX_WAITING - 1, 1));
        drop(served);
        drop(rest);
        assert_eq!(adm.counts(), (0, 0));
    }

    #[test]
    fn the_serving_pool_is_bounded() {
        let adm = Admission::new();
        let served: Vec<Serving> = (0..MAX_SERVING)
            .map(|_| adm.arrive().admit().expect("room"))
            .collect();
        assert!(adm.arrive().admit().is_err());
        assert_eq!(adm.counts(), (0, MAX_SERVING));
        drop(served);
        assert!(adm.arrive().admit().is_ok());
    }
}
