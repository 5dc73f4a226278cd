//! Resource sampling of one run: a small task that samples the tree (CPU %, RSS; in cgroup
//! mode the CPU time is the cgroup's and its `memory.current` comes along) every
//! `[warden] sample_interval` while someone needs the figures: a `status` or `/metrics`
//! read in the last minute (or 3 intervals if longer), or, always, a `memory_max`. When the
//! RSS stays above `memory_max` for two samples in a row it reports the limit, and the
//! service task restarts the run gracefully (counted like a crash).
//!
//! Without a `memory_max` the task runs only while the figures are asked for: it ends when
//! they have not been for that long, and the service task starts it again at the next ask
//! ([`Sampler`], from `probe::next`). An idle service so holds no task, channel or timer
//! for its figures (2.7 KB of heap each, most of an idle service's).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::Usage;
use super::probe::ProbeResult;
use crate::health::Prober;

/// What every task needs to probe and sample (part of the engine's `Ctx`).
#[derive(Clone)]
pub struct Sensing {
    /// Runs the probes and samples (the OS, or a fake in the engine's unit tests).
    pub prober: Arc<dyn Prober>,
    /// `[warden] sample_interval`.
    pub sample_interval: Duration,
    /// When the figures were last asked for (`status`, `/metrics`).
    pub demand: watch::Receiver<Option<Instant>>,
    /// The durations of every service's probes (`/metrics`).
    pub probe_times: Arc<crate::engine::metrics::ProbeTimes>,
}

/// `530MiB`.
/// The first sample of a run comes this long after its start (or one interval, if shorter).
const FIRST_SAMPLE: Duration = Duration::from_secs(1);

pub(super) fn mib(bytes: u64) -> String {
    format!("{}MiB", bytes >> 20)
}

/// Where in `interval` the sampler of `pid` takes its first sample after a quiet spell: a
/// fixed place per pid (a multiplicative hash, so that consecutive pids land far apart).
fn spread(pid: u32, interval: Duration) -> Duration {
    let place = u64::from(pid.wrapping_mul(2_654_435_761));
    let nanos = interval.as_nanos().min(u128::from(u64::MAX)) as u64;
    Duration::from_nanos(((u128::from(nanos) * u128::from(place)) >> 32) as u64)
}

/// How long after an ask the figures are still wanted: a minute, or 3 intervals if longer.
fn window(interval: Duration) -> Duration {
    Duration::from_secs(60).max(interval.saturating_mul(3))
}

/// Were the figures asked for within the window?
fn asked(demand: &watch::Receiver<Option<Instant>>, interval: Duration) -> bool {
    (*demand.borrow()).is_some_and(|t| t.elapsed() < window(interval))
}

/// The sampler of one run: its task while it runs, and what starts it again.
pub(super) struct Sampler {
    sensing: Sensing,
    memory_max: Option<u64>,
    /// The run's start: no sample in the first second (see [`FIRST_SAMPLE`]).
    started: Instant,
    /// The pid whose tree is sampled: the launcher's, then a followed daemon's.
    pid: std::sync::atomic::AtomicU32,
    running: Option<(tokio::task::JoinHandle<()>, watch::Sender<u32>)>,
}

impl Sampler {
    pub(super) fn new(
        sensing: Sensing,
        memory_max: Option<u64>,
        pid: u32,
        started: Instant,
    ) -> Sampler {
        Sampler {
            sensing,
            memory_max,
            started,
            pid: std::sync::atomic::AtomicU32::new(pid),
            running: None,
        }
    }

    /// Start the task if it is not running and is needed now (a `memory_max`, or the figures
    /// were asked for lately), its results on `chan` (made if there is none).
    pub(super) fn start_if_needed(
        &mut self,
        chan: &mut Option<(
            super::probe::ResultTx,
            tokio::sync::mpsc::Receiver<Box<ProbeResult>>,
        )>,
    ) {
        let interval = self.sensing.sample_interval;
        self.sensing.demand.borrow_and_update();
        if !self.dormant() || (self.memory_max.is_none() && !asked(&self.sensing.demand, interval))
        {
            return;
        }
        let pid = self.pid.load(std::sync::atomic::Ordering::Relaxed);
        // Not at the spawn itself: a process that has just started (or not yet exec'd) shows
        // a fraction of its memory, and that figure would stand for a whole interval. And an
        // ask after a quiet spell wakes every service at the same instant: their first
        // samples are spread over one interval, so that 1,000 services do not all read /proc
        // at once, in front of the very answer that woke them.
        let first =
            (self.started + FIRST_SAMPLE.min(interval)).max(Instant::now() + spread(pid, interval));
        let (pid_tx, pid_rx) = watch::channel(pid);
        let tx = super::probe::result_chan(chan).0.clone();
        let task = tokio::spawn(sampler(
            pid_rx,
            self.sensing.clone(),
            self.memory_max,
            tx,
            first,
        ));
        self.running = Some((task, pid_tx));
    }

    /// The task is not running (it was not needed, or ended once the asks stopped).
    pub(super) fn dormant(&self) -> bool {
        self.running
            .as_ref()
            .is_none_or(|(task, _)| task.is_finished())
    }

    /// Resolves at the next ask for the figures (never once warden shuts down).
    pub(super) async fn asked(&mut self) {
        if self.sensing.demand.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves when the running task ends (at once if none runs).
    pub(super) async fn ended(&mut self) {
        if let Some((task, _)) = &mut self.running
            && !task.is_finished()
        {
            let _ = task.await;
        }
    }

    /// The main process is `pid` now.
    pub(super) fn set_pid(&self, pid: u32) {
        self.pid.store(pid, std::sync::atomic::Ordering::Relaxed);
        if let Some((_, tx)) = &self.running {
            tx.send_replace(pid);
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Some((task, _)) = &self.running {
            task.abort();
        }
    }
}

/// Sample the tree of `pid` from `first` on, while needed; end after reporting the memory
/// limit, or, without a `memory_max`, once the figures have not been asked for within the
/// window.
async fn sampler(
    mut pid: tokio::sync::watch::Receiver<u32>,
    sensing: Sensing,
    memory_max: Option<u64>,
    tx: super::probe::ResultTx,
    first: Instant,
) {
    let interval = sensing.sample_interval;
    let demand = sensing.demand;
    let mut prev: Option<(Instant, f64)> = None;
    let mut above = 0u32;
    tokio::time::sleep_until(first).await;
    loop {
        if memory_max.is_none() && !asked(&demand, interval) {
            return;
        }
        let now = Instant::now();
        if pid.has_changed().unwrap_or(false) {
            prev = None; // another tree: no CPU rate across the two
            above = 0;
        }
        let main = *pid.borrow_and_update();
        if let Some(s) = sensing.prober.sample(main) {
            let cpu_percent = prev.and_then(|(t, c)| {
                let secs = now.duration_since(t).as_secs_f64();
                (secs > 0.0).then(|| ((s.cpu_seconds - c).max(0.0) / secs * 100.0).min(1e6))
            });
            prev = Some((now, s.cpu_seconds));
            let mut over = None;
            if let Some(max) = memory_max {
                if s.rss_bytes > max {
                    above += 1;
                    if above >= 2 {
                        over = Some(format!("memory limit: {} > {}", mib(s.rss_bytes), mib(max)));
                    }
                } else {
                    above = 0;
                }
            }
            let done = over.is_some();
            let usage = Usage {
                cpu_percent,
                memory_bytes: s.rss_bytes,
                cpu_seconds: Some(s.cpu_seconds),
                memory_cgroup_bytes: s.cgroup_memory_bytes,
            };
            if tx
                .send(Box::new(ProbeResult::Usage(usage, over)))
                .await
                .is_err()
                || done
            {
                return;
            }
        }
        tokio::time::sleep_until(now + interval).await;
    }
}

impl crate::engine::Engine {
    /// Run every probe through `prober` instead of the network (the engine's unit tests).
    #[must_use]
    pub fn with_prober(mut self, prober: Arc<dyn crate::health::Prober>) -> crate::engine::Engine {
        let ctx = &self.ctx;
        self.ctx = Arc::new(crate::engine::Ctx {
            events: ctx.events,
            state: ctx.state.clone(),
            marker: ctx.marker.clone(),
            kill_now: ctx.kill_now.clone(),
            spawner: ctx.spawner.clone(),
            notices: ctx.notices.clone(),
            sensing: Sensing {
                prober,
                ..ctx.sensing.clone()
            },
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_samples_after_a_quiet_spell_are_spread_over_the_interval() {
        let interval = Duration::from_secs(2);
        let places: Vec<Duration> = (1000..1100).map(|pid| spread(pid, interval)).collect();
        assert!(places.iter().all(|d| *d < interval), "{places:?}");
        // 100 consecutive pids: every tenth of the interval gets some of them.
        for tenth in 0..10 {
            let (lo, hi) = (interval * tenth / 10, interval * (tenth + 1) / 10);
            assert!(
                places.iter().any(|d| *d >= lo && *d < hi),
                "none in {lo:?}..{hi:?}: {places:?}"
            );
        }
        assert_eq!(spread(7, Duration::ZERO), Duration::ZERO);
    }
}
