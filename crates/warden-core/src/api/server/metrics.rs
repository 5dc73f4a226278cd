//! `GET /health` and `GET /metrics`: warden's verdict for monitors (pure, from a
//! [`MetricsReport`]) and the Prometheus text exposition format, version 0.0.4.
//!
//! A service counts for `/health` unless it has `optional = true`, is `stopped` (by hand, or
//! never started with `autostart = false`), or is a one-shot that `exited` with one of its
//! `success_codes`. A counted service makes warden unhealthy (503) when it is `failed`,
//! `backoff`, `exited` otherwise, `starting` past its `start_timeout`, or its health check
//! says `unhealthy`.

use std::fmt::Write as _;

use crate::engine::metrics::{MetricsReport, PROBE_BUCKETS, ServiceMetrics};
use crate::process::OwnSample;
use crate::proto::{Health, HealthReport, ServiceHealth, ServiceStatus, State, Verdict};

/// The `Content-Type` of `/metrics`.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every state, in the order `warden_service_state` lists them.
const STATES: [State; 8] = [
    State::Pending,
    State::Starting,
    State::Running,
    State::Stopping,
    State::Stopped,
    State::Backoff,
    State::Exited,
    State::Failed,
];

/// Does `/health` count this service?
fn counted(st: &ServiceStatus, m: &ServiceMetrics) -> bool {
    let optional = m.rules.as_ref().is_some_and(|r| r.optional);
    let completed = st.completed(m.rules.as_ref().map_or(&[0][..], |r| &r.success_codes));
    !optional && st.state != State::Stopped && !completed
}

/// Does this counted service make warden unhealthy?
fn bad(st: &ServiceStatus, m: &ServiceMetrics) -> bool {
    matches!(st.state, State::Failed | State::Backoff | State::Exited)
        || m.start_overdue
        || st.health == Some(Health::Unhealthy)
}

/// The body of `GET /health`.
pub(super) fn health(report: &MetricsReport) -> HealthReport {
    let mut healthy = true;
    let mut services = std::collections::BTreeMap::new();
    for (st, m) in report.status.services.iter().zip(&report.services) {
        let counted = counted(st, m);
        if counted && bad(st, m) {
            healthy = false;
        }
        services.insert(
            st.name.clone(),
            ServiceHealth {
                state: st.state,
                health: st.health,
                counted,
            },
        );
    }
    HealthReport {
        status: if healthy {
            Verdict::Healthy
        } else {
            Verdict::Unhealthy
        },
        uptime_ms: report.status.warden.uptime_ms,
        services,
    }
}

/// A label value, escaped per the text format: `\` as `\\`, `"` as `\"`, a newline as `\n`.
pub(super) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The text of `GET /metrics`.
pub(super) fn exposition(report: &MetricsReport, own: Option<OwnSample>) -> String {
    let mut out = String::new();
    let rows: Vec<(String, &ServiceStatus, &ServiceMetrics)> = report
        .status
        .services
        .iter()
        .zip(&report.services)
        .map(|(st, m)| (escape(&st.name), st, m))
        .collect();
    let mut family = |name: &str, kind: &str, help: &str, each: &dyn Fn(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        each(&mut out);
    };
    family(
        "warden_service_up",
        "gauge",
        "1 while the service is running (up), else 0.",
        &|o| {
            for (n, st, _) in &rows {
                let up = u8::from(st.state == State::Running);
                let _ = writeln!(o, "warden_service_up{{service=\"{n}\"}} {up}");
            }
        },
    );
    family(
        "warden_service_state",
        "gauge",
        "1 for the state the service is in, 0 for the others.",
        &|o| {
            for (n, st, _) in &rows {
                for s in STATES {
                    let v = u8::from(st.state == s);
                    let s = s.as_str();
                    let _ = writeln!(
                        o,
                        "warden_service_state{{service=\"{n}\",state=\"{s}\"}} {v}"
                    );
                }
            }
        },
    );
    family(
        "warden_service_restarts_total",
        "counter",
        "Restarts by the restart policy (the restarts of status).",
        &|o| {
            for (n, st, _) in &rows {
                let r = st.restarts;
                let _ = writeln!(o, "warden_service_restarts_total{{service=\"{n}\"}} {r}");
            }
        },
    );
    family(
        "warden_service_health",
        "gauge",
        "The health check: 1 healthy, 0 unhealthy, -1 no result yet; absent without a check.",
        &|o| {
            for (n, st, _) in &rows {
                let v = match st.health {
                    Some(Health::Healthy) => 1,
                    Some(Health::Unhealthy) => 0,
                    Some(Health::Unknown) => -1,
                    None => continue,
                };
                let _ = writeln!(o, "warden_service_health{{service=\"{n}\"}} {v}");
            }
        },
    );
    family(
        "warden_service_cpu_seconds_total",
        "counter",
        "CPU time of the service's process tree in its current run (last sample).",
        &|o| {
            for (n, _, m) in &rows {
                if let Some(c) = m.cpu_seconds {
                    let _ = writeln!(o, "warden_service_cpu_seconds_total{{service=\"{n}\"}} {c}");
                }
            }
        },
    );
    family(
        "warden_service_memory_bytes",
        "gauge",
        "Resident memory of the service's process tree, summed (last sample).",
        &|o| {
            for (n, st, _) in &rows {
                if let Some(b) = st.memory_bytes {
                    let _ = writeln!(o, "warden_service_memory_bytes{{service=\"{n}\"}} {b}");
                }
            }
        },
    );
    family(
        "warden_service_probe_duration_seconds",
        "histogram",
        "How long the service's ready and health probes took.",
        &|o| {
            for (n, _, m) in &rows {
                let h = &m.probe;
                let mut below = 0;
                for (bound, count) in PROBE_BUCKETS.iter().zip(h.buckets) {
                    below += count;
                    let _ = writeln!(
                        o,
                        "warden_service_probe_duration_seconds_bucket{{service=\"{n}\",le=\"{bound}\"}} {below}"
                    );
                }
                let (count, sum) = (h.count, h.sum_seconds);
                let _ = writeln!(
                    o,
                    "warden_service_probe_duration_seconds_bucket{{service=\"{n}\",le=\"+Inf\"}} {count}\n\
                     warden_service_probe_duration_seconds_sum{{service=\"{n}\"}} {sum}\n\
                     warden_service_probe_duration_seconds_count{{service=\"{n}\"}} {count}"
                );
            }
        },
    );
    family(
        "warden_log_bytes_total",
        "counter",
        "Bytes the service wrote to stdout (stream=\"out\") and stderr (stream=\"err\").",
        &|o| {
            for (n, _, m) in &rows {
                for (stream, v) in [("out", m.log_bytes_stdout), ("err", m.log_bytes_stderr)] {
                    let _ = writeln!(
                        o,
                        "warden_log_bytes_total{{service=\"{n}\",stream=\"{stream}\"}} {v}"
                    );
                }
            }
        },
    );
    family(
        "warden_log_dropped_bytes_total",
        "counter",
        "Bytes of output dropped because a log file could not be written.",
        &|o| {
            for (n, _, m) in &rows {
                let v = m.log_dropped_bytes;
                let _ = writeln!(o, "warden_log_dropped_bytes_total{{service=\"{n}\"}} {v}");
            }
        },
    );
    let start = report
        .started_at
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if let Some(own) = own {
        let _ = writeln!(
            out,
            "# HELP process_cpu_seconds_total CPU time of warden's own process.\n\
             # TYPE process_cpu_seconds_total counter\n\
             process_cpu_seconds_total {}\n\
             # HELP process_resident_memory_bytes Resident memory of warden's own process.\n\
             # TYPE process_resident_memory_bytes gauge\n\
             process_resident_memory_bytes {}\n\
             # HELP process_open_fds Open file descriptors of warden's own process.\n\
             # TYPE process_open_fds gauge\n\
             process_open_fds {}",
            own.cpu_seconds, own.rss_bytes, own.open_fds
        );
    }
    let _ = writeln!(
        out,
        "# HELP process_start_time_seconds When warden started, in seconds since the Unix epoch.\n\
         # TYPE process_start_time_seconds gauge\n\
         process_start_time_seconds {start}"
    );
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::engine::metrics::{Histogram, Rules};
    use crate::proto::{LastExit, StatusReport, WardenInfo};

    fn service(name: &str, state: State) -> ServiceStatus {
        ServiceStatus::new(name, state)
    }

    fn figures(optional: bool) -> ServiceMetrics {
        ServiceMetrics {
            rules: Some(Rules {
                optional,
                start_timeout: Duration::from_secs(30),
                success_codes: vec![0, 3],
            }),
            start_overdue: false,
            cpu_seconds: None,
            log_bytes_stdout: 0,
            log_bytes_stderr: 0,
            log_dropped_bytes: 0,
            probe: Histogram::default(),
        }
    }

    fn report(services: Vec<(ServiceStatus, ServiceMetrics)>) -> MetricsReport {
        let (status, figures) = services.into_iter().unzip();
        MetricsReport {
            status: StatusReport {
                warden: WardenInfo {
                    version: "0".into(),
                    pid: 1,
                    config: "c".into(),
                    uptime_ms: 1234,
                    tracking: crate::proto::Tracking::ProcessGroup,
                },
                services: status,
            },
            services: figures,
            started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(100),
        }
    }

    fn exited(code: Option<i32>, signal: Option<i32>) -> ServiceStatus {
        let mut s = service("job", State::Exited);
        s.last_exit = Some(LastExit {
            code,
            signal,
            at: String::new(),
            ran_ms: 0,
        });
        s
    }

    fn verdict(services: Vec<(ServiceStatus, ServiceMetrics)>) -> Verdict {
        health(&report(services)).status
    }

    #[test]
    fn each_bad_state_of_a_counted_service_is_unhealthy() {
        let ok = (service("a", State::Running), figures(false));
        assert_eq!(verdict(vec![ok.clone()]), Verdict::Healthy);
        for bad in [State::Failed, State::Backoff] {
            let v = verdict(vec![ok.clone(), (service("b", bad), figures(false))]);
            assert_eq!(v, Verdict::Unhealthy, "{bad:?}");
        }
        let mut sick = service("b", State::Running);
        sick.health = Some(Health::Unhealthy);
        assert_eq!(verdict(vec![(sick, figures(false))]), Verdict::Unhealthy);
        let mut late = figures(false);
        late.start_overdue = true;
        let starting = service("b", State::Starting);
        assert_eq!(
            verdict(vec![(starting.clone(), figures(false))]),
            Verdict::Healthy
        );
        assert_eq!(verdict(vec![(starting, late)]), Verdict::Unhealthy);
        let failed_job = exited(Some(1), None);
        assert_eq!(
            verdict(vec![(failed_job, figures(false))]),
            Verdict::Unhealthy
        );
        let killed_job = exited(None, Some(9));
        assert_eq!(
            verdict(vec![(killed_job, figures(false))]),
            Verdict::Unhealthy
        );
    }

    #[test]
    fn optional_stopped_and_completed_services_are_not_counted() {
        let failed = (service("f", State::Failed), figures(true));
        let stopped = (service("s", State::Stopped), figures(false));
        let done = (exited(Some(3), None), figures(false));
        let h = health(&report(vec![failed, stopped, done]));
        assert_eq!(h.status, Verdict::Healthy);
        assert_eq!(h.uptime_ms, 1234);
        assert!(h.services.values().all(|s| !s.counted));
        assert_eq!(h.services["f"].state, State::Failed);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let text = exposition(
            &report(vec![(service("we\"b", State::Running), figures(false))]),
            None,
        );
        assert!(
            text.contains("warden_service_up{service=\"we\\\"b\"} 1"),
            "{text}"
        );
        assert!(text.contains("process_start_time_seconds 100\n"), "{text}");
    }

    #[test]
    fn the_histogram_buckets_are_cumulative() {
        let mut m = figures(false);
        m.probe.observe(Duration::from_millis(3));
        m.probe.observe(Duration::from_millis(30));
        m.probe.observe(Duration::from_secs(5));
        let text = exposition(&report(vec![(service("a", State::Running), m)]), None);
        for (le, n) in [
            ("0.001", 0),
            ("0.005", 1),
            ("0.05", 2),
            ("2.5", 2),
            ("+Inf", 3),
        ] {
            let line = format!(
                "warden_service_probe_duration_seconds_bucket{{service=\"a\",le=\"{le}\"}} {n}\n"
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains("warden_service_probe_duration_seconds_count{service=\"a\"} 3\n"));
    }
}
