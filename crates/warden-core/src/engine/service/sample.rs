//! Resource sampling of one run: a small task that samples the tree (CPU %, RSS; in cgroup
//! mode the CPU time is the cgroup's and its `memory.current` comes along) every
//! `[warden] sample_interval` while someone needs the figures: a `status` or `/metrics`
//! read in the last minute (or 3 intervals if longer), or, always, a `memory_max`. When the
//! RSS stays above `memory_max` for two samples in a row it reports the limit, and the
//! service task restarts the run gracefully (counted like a crash).

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

/// Sample the tree of `pid` while needed; stop after reporting the memory limit.
pub(super) async fn sampler(
    mut pid: tokio::sync::watch::Receiver<u32>,
    sensing: Sensing,
    memory_max: Option<u64>,
    tx: super::probe::ResultTx,
) {
    let interval = sensing.sample_interval;
    let window = Duration::from_secs(60).max(interval * 3);
    let mut demand = sensing.demand;
    let mut prev: Option<(Instant, f64)> = None;
    let mut above = 0u32;
    // Not at the spawn itself: a process that has just started (or not yet exec'd) shows a
    // fraction of its memory, and that figure would stand for a whole interval.
    tokio::time::sleep(FIRST_SAMPLE.min(interval)).await;
    loop {
        let asked = (*demand.borrow_and_update()).is_some_and(|t| t.elapsed() < window);
        if memory_max.is_none() && !asked {
            prev = None;
            if demand.changed().await.is_err() {
                return;
            }
            // A read after a quiet spell wakes every service's sampler at the same instant:
            // their first samples are spread over one interval, so that 1,000 services do not
            // all read /proc at once, in front of the very answer that woke them.
            let wait = spread(*pid.borrow(), interval);
            tokio::time::sleep(wait).await;
            continue;
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
