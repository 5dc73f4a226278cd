//! Turning API answers into text for people.

use std::fmt::Write as _;
use std::time::Duration;

use warden_core::proto::{ServiceStatus, State, StatusReport, Tracking};
use warden_core::util::fmt_duration;

use crate::ui::printable;

/// Whether to colour: not with `--no-color`, not when `NO_COLOR` is set (and not empty), and
/// only on a terminal. `status`, `logs` and `ui` all decide here.
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

/// The REASON cell of `warden status` and `warden ui`: why a service is not up (empty for one
/// that is up and well), in backoff the countdown first. `age`: how old the answer is (the
/// UI counts down between two answers). Without a reason of its own, a `notify` service's
/// last `STATUS=` text. Control characters are made visible.
pub fn reason(s: &ServiceStatus, age: Duration) -> String {
    let why = s
        .reason
        .as_deref()
        .or(s.status_text.as_deref())
        .map(printable)
        .unwrap_or_default();
    match (s.state, s.next_start_in_ms) {
        (State::Backoff, Some(ms)) => {
            let left = Duration::from_millis(ms).saturating_sub(age);
            let next = if left.is_zero() {
                "next start now".to_owned()
            } else {
                format!("next start in {}", fmt_duration(left))
            };
            if why.is_empty() {
                next
            } else {
                format!("{next}; {why}")
            }
        }
        _ => why,
    }
}

/// The MEM cell: the summed RSS, and in cgroup mode the cgroup's `memory.current` beside it
/// (`40.0MiB (cg 52.1MiB)`; page cache included), where the memory controller gives one.
pub fn mem(s: &ServiceStatus) -> String {
    match (s.memory_bytes, s.memory_cgroup_bytes) {
        (None, _) => "-".into(),
        (Some(rss), None) => fmt_mem(rss),
        (Some(rss), Some(cg)) => format!("{} (cg {})", fmt_mem(rss), fmt_mem(cg)),
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

/// One column of the status table: its title and how a service fills it.
struct Column {
    title: &'static str,
    cell: fn(&ServiceStatus) -> String,
    /// The cell is coloured by the service's state.
    coloured: bool,
}

const fn col(title: &'static str, cell: fn(&ServiceStatus) -> String) -> Column {
    Column {
        title,
        cell,
        coloured: false,
    }
}

/// The columns of `warden status`, in order. A new column (CPU, MEM) is one more line here;
/// REASON stays last, since it is the one cut to the terminal's width.
const COLUMNS: &[Column] = &[
    col("NAME", |s| printable(&s.name)),
    Column {
        coloured: true,
        ..col("STATE", |s| s.state.as_str().to_owned())
    },
    col("PID", |s| {
        s.pid.map_or_else(|| "-".into(), |p| p.to_string())
    }),
    col("UPTIME", |s| {
        s.uptime_ms
            .map_or_else(|| "-".into(), |u| fmt_duration(Duration::from_millis(u)))
    }),
    col("RESTARTS", |s| s.restarts.to_string()),
    col("LAST EXIT", last_exit),
    col("CPU", |s| {
        s.cpu_percent
            .map_or_else(|| "-".into(), |c| format!("{c:.1}%"))
    }),
    col("MEM", mem),
    col("HEALTH", |s| {
        s.health
            .map_or_else(|| "-".into(), |h| h.as_str().to_owned())
    }),
    col("REASON", |s| reason(s, Duration::ZERO)),
];

/// REASON keeps at least this many characters however narrow the terminal.
const MIN_REASON: usize = 10;

/// The `warden status` table. `width`: the terminal's, to which each line is cut (by cutting
/// its REASON with `…`; `None`, as when stdout is not a terminal: nothing is cut). Cells are
/// left-aligned, two spaces apart; no line ends in spaces.
pub fn status_table(report: &StatusReport, color: bool, width: Option<usize>) -> String {
    let rows: Vec<Vec<String>> = report
        .services
        .iter()
        .map(|s| COLUMNS.iter().map(|c| (c.cell)(s)).collect())
        .collect();
    let mut widths: Vec<usize> = COLUMNS.iter().map(|c| c.title.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Where the last column starts; what is left of the width is its room.
    let last = COLUMNS.len() - 1;
    let before: usize = widths[..last].iter().map(|w| w + 2).sum();
    let room = width.map(|w| w.saturating_sub(before).max(MIN_REASON));
    let mut out = String::new();
    let mut line = |cells: &[String], state: Option<State>| {
        let mut text = String::new();
        for (i, (cell, col)) in cells.iter().zip(COLUMNS).enumerate() {
            if i == last {
                text.push_str(&room.map_or_else(|| cell.clone(), |r| cut(cell, r)));
                break;
            }
            let pad = widths[i] - cell.chars().count() + 2;
            match state {
                Some(st) if color && col.coloured => {
                    let _ = write!(text, "\x1b[{}m{cell}\x1b[0m", state_color(st));
                }
                _ => text.push_str(cell),
            }
            text.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    let header: Vec<String> = COLUMNS.iter().map(|c| c.title.to_owned()).collect();
    line(&header, None);
    for (row, s) in rows.iter().zip(&report.services) {
        line(row, Some(s.state));
    }
    out
}

/// The line under the status table that says which tracking mode is in force (after a
/// blank line): `tracking: cgroup (...)`, the same word as `warden.tracking` in the JSON.
pub fn tracking_line(tracking: Tracking) -> String {
    let what = match tracking {
        Tracking::Cgroup => "exact: each service in its own cgroup",
        Tracking::Job => "each service in its own Job Object",
        Tracking::ProcessGroup => "no cgroups: memory_limit and cpu_max not enforced",
    };
    format!("tracking: {} ({what})", tracking.as_str())
}

/// `s` in at most `width` characters, cut with `…`.
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The width of the terminal on stdout, if stdout is one.
pub fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    crossterm::terminal::size()
        .ok()
        .map(|(w, _)| usize::from(w))
        .filter(|w| *w > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::proto::{LastExit, WardenInfo};

    fn svc(name: &str, state: State) -> ServiceStatus {
        ServiceStatus::new(name, state)
    }

    fn report(services: Vec<ServiceStatus>) -> StatusReport {
        StatusReport {
            warden: WardenInfo {
                version: "0.1.0".into(),
                pid: 1,
                config: "/x".into(),
                uptime_ms: 1,
                tracking: warden_core::proto::Tracking::default(),
            },
            services,
        }
    }

    fn example() -> StatusReport {
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
        worker.next_start_in_ms = Some(1_500);
        worker.reason = Some("exited with code 1".into());
        let mut db = svc("db", State::Failed);
        db.reason = Some("start limit reached: more than 5 starts within 1m00s".into());
        let mut held = svc("held", State::Stopped);
        held.reason = Some("stopped by hand".into());
        report(vec![api, worker, db, held])
    }

    #[test]
    fn the_table_lines_up_and_gives_the_reason_last() {
        let table = status_table(&example(), false, None);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "NAME    STATE    PID   UPTIME  RESTARTS  LAST EXIT       CPU    MEM      HEALTH   REASON",
                "api     running  4312  2h03m   0         -               12.5%  40.0MiB  healthy",
                "worker  backoff  -     -       7         code 1 (200ms)  -      -        -        next start in 1.5s; exited with code 1",
                "db      failed   -     -       0         -               -      -        -        start limit reached: more than 5 starts within 1m00s",
                "held    stopped  -     -       0         -               -      -        -        stopped by hand",
            ]
        );
    }

    #[test]
    fn on_a_terminal_the_reason_is_cut_to_its_width() {
        let table = status_table(&example(), false, Some(100));
        for l in table.lines() {
            assert!(l.chars().count() <= 100, "{l:?} is wider than 100");
        }
        let db = table.lines().nth(3).expect("db's row");
        assert_eq!(
            db,
            "db      failed   -     -       0         -               -      -        -        start limit reach…"
        );
        // Too narrow for the other columns: REASON still shows its first characters.
        let narrow = status_table(&example(), false, Some(40));
        let db = narrow.lines().nth(3).expect("db's row");
        assert!(db.ends_with("-        start lim…"), "{db}");
        // A short reason is never cut.
        assert!(
            table
                .lines()
                .nth(4)
                .expect("held")
                .ends_with("stopped by hand"),
            "{table}"
        );
    }

    #[test]
    fn the_tracking_line_names_the_mode_as_the_json_does() {
        assert_eq!(
            tracking_line(Tracking::Cgroup),
            "tracking: cgroup (exact: each service in its own cgroup)"
        );
        assert_eq!(
            tracking_line(Tracking::ProcessGroup),
            "tracking: process-group (no cgroups: memory_limit and cpu_max not enforced)"
        );
        assert_eq!(
            tracking_line(Tracking::Job),
            "tracking: job (each service in its own Job Object)"
        );
    }

    #[test]
    fn mem_shows_the_cgroups_memory_beside_the_rss() {
        let mut s = svc("api", State::Running);
        assert_eq!(mem(&s), "-");
        s.memory_bytes = Some(40 << 20);
        assert_eq!(mem(&s), "40.0MiB");
        s.memory_cgroup_bytes = Some(3 << 30);
        assert_eq!(mem(&s), "40.0MiB (cg 3.00GiB)");
    }

    #[test]
    fn a_reason_with_control_characters_cannot_drive_the_terminal() {
        let mut s = svc("web", State::Failed);
        s.reason = Some("cannot start: program not found: /x\x1b[2J".into());
        let table = status_table(&report(vec![s]), false, None);
        assert!(!table.contains('\x1b'), "{table:?}");
    }

    #[test]
    fn a_notify_status_text_shows_as_the_reason_when_there_is_none() {
        let mut s = svc("worker", State::Running);
        s.status_text = Some("serving 3 clients\x1b[2J".into());
        let shown = reason(&s, Duration::ZERO);
        assert!(
            shown.starts_with("serving 3 clients") && !shown.contains('\x1b'),
            "{shown:?}"
        );
        s.reason = Some("log: cannot open /x: denied".into());
        assert_eq!(
            reason(&s, Duration::ZERO),
            "log: cannot open /x: denied",
            "warden's own reason comes first"
        );
    }

    #[test]
    fn colour_only_paints_the_state() {
        let table = status_table(&example(), true, None);
        let api = table.lines().nth(1).expect("api");
        assert_eq!(
            api,
            "api     \x1b[32mrunning\x1b[0m  4312  2h03m   0         -               12.5%  40.0MiB  healthy"
        );
    }
}
