//! What `GET /health` and `GET /metrics` read beyond the status: per service, the rules
//! that decide whether it is counted (`optional`, `start_timeout`, `success_codes`), the
//! byte counters of its logs, its CPU time and the durations of its probes. Read from the
//! engine's board like the status (and, like it, it asks the samplers for figures).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{Handle, View, read};
use crate::config::ServiceConfig;
use crate::proto::StatusReport;

/// The upper bounds (seconds) of the buckets of `warden_service_probe_duration_seconds`.
pub const PROBE_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// The durations of one service's probes (ready and health checks), as a histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Per bucket of [`PROBE_BUCKETS`] (not cumulative); probes longer than the last bound
    /// are in `count` only.
    pub buckets: [u64; PROBE_BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(i) = PROBE_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_seconds += secs;
    }
}

/// The probe histograms of every service, by name; shared by the probe loops (which
/// record) and the board (which reads). Bounded: one entry per configured service.
#[derive(Debug, Default)]
pub struct ProbeTimes(Mutex<BTreeMap<String, Histogram>>);

impl ProbeTimes {
    pub fn observe(&self, service: &str, took: Duration) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(h) = map.get_mut(service) {
            h.observe(took);
        } else {
            let mut h = Histogram::default();
            h.observe(took);
            map.insert(service.to_owned(), h);
        }
    }

    fn get(&self, service: &str) -> Histogram {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(service).cloned().unwrap_or_default()
    }

    /// Forget the services no longer configured (after a reload).
    fn retain(&self, names: &BTreeMap<String, Rules>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|k, _| names.contains_key(k));
    }
}

/// What decides whether `GET /health` counts a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub optional: bool,
    pub start_timeout: Duration,
    pub success_codes: Vec<i32>,
}

/// The board's part for metrics (see [`Handle::metrics`]).
#[derive(Debug, Default)]
pub(super) struct Extra {
    pub(super) rules: BTreeMap<String, Rules>,
    pub(super) probe_times: Arc<ProbeTimes>,
}

impl Extra {
    /// Take the rules of the services now configured.
    pub(super) fn publish<'a>(&mut self, services: impl Iterator<Item = &'a ServiceConfig>) {
        self.rules = services
            .map(|s| {
                let rules = Rules {
                    optional: s.health.optional,
                    start_timeout: s.daemonize.start_timeout,
                    success_codes: s.success_codes.clone(),
                };
                (s.name.clone(), rules)
            })
            .collect();
        self.probe_times.retain(&self.rules);
    }
}

/// One service's figures beyond its status (same order as the status's services).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceMetrics {
    pub rules: Option<Rules>,
    /// `starting` for longer than its `start_timeout`.
    pub start_overdue: bool,
    /// CPU seconds of the tree of the current run (from the last sample).
    pub cpu_seconds: Option<f64>,
    /// Bytes read from the service's stdout and stderr since warden opened its logs.
    pub log_bytes_stdout: u64,
    pub log_bytes_stderr: u64,
    /// Bytes of output dropped because its log files could not be written.
    pub log_dropped_bytes: u64,
    pub probe: Histogram,
}

/// What `GET /metrics` and `GET /health` answer from.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsReport {
    pub status: StatusReport,
    /// One per service of `status.services`, in the same order.
    pub services: Vec<ServiceMetrics>,
    /// When warden started (wall clock).
    pub started_at: SystemTime,
}

impl Handle {
    /// The status plus the figures of [`ServiceMetrics`]; `None` once the engine ended. A
    /// read starts (or keeps) the resource samplers, as a status read does.
    #[allow(clippy::unused_async)] // async like the other calls of the handle
    pub async fn metrics(&self) -> Option<MetricsReport> {
        let board = read(&self.board);
        let status = board.report()?;
        let now = Instant::now();
        let services = board
            .services
            .iter()
            .map(|(name, snap, logs)| {
                let snap = snap.borrow();
                let rules = board.extra.rules.get(name).cloned();
                let start_overdue = match (&snap.view, &rules) {
                    (View::Starting { since, .. }, Some(r)) => {
                        now.saturating_duration_since(*since) > r.start_timeout
                    }
                    _ => false,
                };
                let counts = logs.counts();
                ServiceMetrics {
                    rules,
                    start_overdue,
                    cpu_seconds: snap.usage.and_then(|u| u.cpu_seconds),
                    log_bytes_stdout: counts.stdout,
                    log_bytes_stderr: counts.stderr,
                    log_dropped_bytes: counts.dropped,
                    probe: board.extra.probe_times.get(name),
                }
            })
            .collect();
        let uptime = Duration::from_millis(status.warden.uptime_ms);
        Some(MetricsReport {
            started_at: SystemTime::now()
                .checked_sub(uptime)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            status,
            services,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_lands_in_the_first_bucket_that_holds_it() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(10));
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[4], 1, "30 ms is in the 50 ms bucket");
        assert_eq!(
            h.buckets.iter().sum::<u64>(),
            2,
            "10 s is above every bucket"
        );
        assert_eq!(h.count, 3);
        assert!((h.sum_seconds - 10.0305).abs() < 1e-9);
    }
}
