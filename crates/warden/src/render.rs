//! Turning API answers into text for people.

use std::fmt::Write as _;
use std::time::Duration;

use warden_core::proto::{ServiceStatus, State, StatusReport};
use warden_core::util::fmt_duration;

/// Whether to colour: not with `--no-color`, not when `NO_COLOR` is set (and not empty), and
/// only on a terminal.
pub fn use_color(no_color_flag: bool, tty: bool) -> bool {
    tty && !no_color_flag && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `code 1 (0.2s)`, `signal 9 (1.2s)`, `-`.
pub fn last_exit(s: &ServiceStatus) -> String {
    let Some(e) = &s.last_exit else {
        return "-".into();
    };
    let what = match (e.code, e.signal) {
        (Some(c), _) => format!("code {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => "?".into(),
    };
    format!("{what} ({})", fmt_duration(Duration::from_millis(e.ran_ms)))
}

/// `12.3MiB`, `1.25GiB`.
pub fn fmt_mem(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    let mib = bytes as f64 / MIB;
    if mib >= 1024.0 {
        format!("{:.2}GiB", mib / 1024.0)
    } else {
        format!("{mib:.1}MiB")
    }
}

fn state_color(state: State) -> &'static str {
    match state {
        State::Running => "32",
        State::Backoff | State::Starting | State::Stopping | State::Pending => "33",
        State::Failed => "31",
        State::Stopped | State::Exited => "2",
    }
}

/// The `warden status` table.
pub fn status_table(report: &StatusReport, color: bool) -> String {
    let header = [
        "NAME",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "LAST EXIT",
        "CPU",
        "MEM",
        "HEALTH",
    ];
    let rows: Vec<[String; 9]> = report
        .services
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.state.as_str().to_owned(),
                s.pid.map_or_else(|| "-".into(), |p| p.to_string()),
                s.uptime_ms
                    .map_or_else(|| "-".into(), |u| fmt_duration(Duration::from_millis(u))),
                s.restarts.to_string(),
                last_exit(s),
                s.cpu_percent
                    .map_or_else(|| "-".into(), |c| format!("{c:.1}%")),
                s.memory_bytes.map_or_else(|| "-".into(), fmt_mem),
                s.health
                    .map_or_else(|| "-".into(), |h| h.as_str().to_owned()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String, state: Option<State>| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let last = i == cells.len() - 1;
            let padded = if last {
                cell.clone()
            } else {
                format!("{cell:w$}  ")
            };
            match state {
                Some(st) if color && i == 1 => {
                    let _ = write!(out, "\x1b[{}m{padded}\x1b[0m", state_color(st));
                }
                _ => out.push_str(&padded),
            }
        }
        out.push('\n');
    };
    line(&header.map(str::to_owned), &mut out, None);
    for (row, s) in rows.iter().zip(&report.services) {
        line(row, &mut out, Some(s.state));
    }
    // Why services are failed, stopped or pending, below the table.
    for s in &report.services {
        if (matches!(s.state, State::Failed | State::Pending)
            || (s.state == State::Stopped && s.reason.is_some()))
            && let Some(r) = &s.reason
        {
            let _ = writeln!(out, "  {}: {r}", s.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::proto::{LastExit, WardenInfo};

    fn svc(name: &str, state: State) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            state,
            pid: None,
            uptime_ms: None,
            restarts: 0,
            last_exit: None,
            next_start_in_ms: None,
            reason: None,
            health: None,
            cpu_percent: None,
            memory_bytes: None,
        }
    }

    #[test]
    fn the_table_lines_up_and_explains_failures() {
        let mut api = svc("api", State::Running);
        api.pid = Some(4312);
        api.uptime_ms = Some(7_380_000);
        api.cpu_percent = Some(12.5);
        api.memory_bytes = Some(40 << 20);
        api.health = Some(warden_core::proto::Health::Healthy);
        let mut worker = svc("worker", State::Backoff);
        worker.restarts = 7;
        worker.last_exit = Some(LastExit {
            code: Some(1),
            signal: None,
            at: String::new(),
            ran_ms: 200,
        });
        let mut db = svc("db", State::Failed);
        db.reason = Some("start limit reached".into());
        let report = StatusReport {
            warden: WardenInfo {
                version: "0.1.0".into(),
                pid: 1,
                config: "/x".into(),
                uptime_ms: 1,
            },
            services: vec![api, worker, db],
        };
        let table = status_table(&report, false);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "NAME    STATE    PID   UPTIME  RESTARTS  LAST EXIT       CPU    MEM      HEALTH"
        );
        assert_eq!(
            lines[1],
            "api     running  4312  2h03m   0         -               12.5%  40.0MiB  healthy"
        );
        assert_eq!(
            lines[2],
            "worker  backoff  -     -       7         code 1 (200ms)  -      -        -"
        );
        assert_eq!(lines[4], "  db: start limit reached");
    }
}
