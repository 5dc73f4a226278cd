//! `warden logs [NAME] [-n N] [-f] [--stream out|err] [--timestamps] [--no-color]`.
//!
//! With a name: that service's last lines (both streams in the order warden read them), as
//! they are. Without one: every service's, merged by the time each line was read (the API's
//! `at`), each prefixed `NAME |` with the names padded to one width and, on a terminal
//! (unless `--no-color` or `NO_COLOR`), coloured per service, as `docker compose logs` does.
//!
//! `-f` without a name opens one follow stream per service *before* it reads the tails, and
//! then skips in each stream the lines that the tail already showed (by their sequence
//! number): nothing is lost or shown twice between the tail and the live lines. Live lines
//! are printed as they come, whichever service they are from. A service added by a reload
//! while following is not followed.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use tokio::sync::mpsc;
use warden_core::api::client::ClientError;
use warden_core::logs::Stream;
use warden_core::proto::{FollowItem, LogLineJson, RotateOutcome};

use super::ctl::{block_on, client_failure, connect};
use crate::Failure;
use crate::cli::{StreamArg, Target};

/// What `warden logs` was asked for.
#[derive(Debug, Clone)]
pub struct LogsArgs {
    /// One service, or `None` for all of them.
    pub name: Option<String>,
    pub lines: usize,
    pub follow: bool,
    pub stream: Option<StreamArg>,
    pub timestamps: bool,
    /// `--no-color`.
    pub no_color: bool,
}

/// The colours of the `NAME |` prefixes, one per service in turn (ANSI SGR codes: cyan,
/// yellow, green, magenta, blue, then their bright variants), as `docker compose` cycles.
const COLOURS: &[u8] = &[36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/// Follow items buffered between the per-service readers and the printer.
const FOLLOW_QUEUE: usize = 256;

/// How lines are printed: the prefixes (every service's mode), the time, the colour.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Printer {
    /// The `NAME |` prefix of each service (empty with a name given), padded and coloured.
    prefixes: Vec<String>,
    timestamps: bool,
}

impl Printer {
    /// The prefixes for `names`: each padded to the longest, coloured when `colour`.
    fn prefixed(names: &[String], colour: bool, timestamps: bool) -> Printer {
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        let prefixes = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let plain = format!("{name:<width$} |");
                if colour {
                    let c = COLOURS[i % COLOURS.len()];
                    format!("\x1b[{c}m{plain}\x1b[0m ")
                } else {
                    plain + " "
                }
            })
            .collect();
        Printer {
            prefixes,
            timestamps,
        }
    }

    /// One service's lines, as they are.
    fn plain(timestamps: bool) -> Printer {
        Printer {
            prefixes: vec![String::new()],
            timestamps,
        }
    }

    fn line(&self, out: &mut String, service: usize, l: &LogLineJson) {
        out.push_str(self.prefix(service));
        if self.timestamps {
            out.push_str(&l.at);
            out.push(' ');
        }
        out.push_str(&l.line);
        out.push('\n');
    }

    fn dropped(&self, out: &mut String, service: usize, dropped: u64) {
        out.push_str(self.prefix(service));
        let _ = writeln!(
            out,
            "[warden] {dropped} line(s) skipped: this reader fell behind"
        );
    }

    fn prefix(&self, service: usize) -> &str {
        self.prefixes.get(service).map_or("", String::as_str)
    }
}

/// `warden rotate [NAME]`: rotate the log files of one service, or of every service, now.
/// Each file's outcome on stdout (`web: rotated PATH to PATH.1`, `web: PATH is empty, left
/// as it is`); a file that could not be rotated on stderr, and exit 1.
pub fn rotate(target: &Target, name: Option<&str>) -> Result<(), Failure> {
    block_on(async {
        let (mut client, _) = connect(target).await?;
        let report = client.rotate(name).await.map_err(|e| client_failure(&e))?;
        let mut text = String::new();
        for f in &report.files {
            match (f.outcome, &f.to) {
                (RotateOutcome::Rotated, Some(to)) => {
                    let _ = writeln!(text, "{}: rotated {} to {to}", f.service, f.path);
                }
                (RotateOutcome::Rotated, None) => {
                    let _ = writeln!(text, "{}: rotated {}", f.service, f.path);
                }
                (RotateOutcome::Empty, _) => {
                    let _ = writeln!(text, "{}: {} is empty, left as it is", f.service, f.path);
                }
                (RotateOutcome::Failed, _) => {}
            }
        }
        super::say(&text)?;
        let failed: Vec<_> = report.failed().collect();
        for f in &failed {
            let why = f.error.as_deref().unwrap_or("unknown error");
            super::warn(&format!(
                "warden: {}: cannot rotate {}: {why}",
                f.service, f.path
            ));
        }
        match failed.len() {
            0 => Ok(()),
            n => Err(Failure::failed(format!(
                "{n} of {} log file(s) could not be rotated",
                report.files.len()
            ))),
        }
    })
}

/// `warden logs`.
pub fn run(target: &Target, args: &LogsArgs) -> Result<(), Failure> {
    let stream = args.stream.map(|s| match s {
        StreamArg::Out => Stream::Out,
        StreamArg::Err => Stream::Err,
    });
    block_on(async {
        match &args.name {
            Some(name) => one(target, name, args, stream).await,
            None => all(target, args, stream).await,
        }
    })
}

/// One service: its tail, then (with `-f`) its live lines.
async fn one(
    target: &Target,
    name: &str,
    args: &LogsArgs,
    stream: Option<Stream>,
) -> Result<(), Failure> {
    let printer = Printer::plain(args.timestamps);
    let (mut client, _) = connect(target).await?;
    if !args.follow {
        let got = client
            .logs(name, args.lines, stream)
            .await
            .map_err(|e| client_failure(&e))?;
        let mut text = String::new();
        for l in &got {
            printer.line(&mut text, 0, l);
        }
        return super::say(&text);
    }
    let mut follower = client
        .follow_logs(name, args.lines, stream)
        .await
        .map_err(|e| follow_failure(&e))?;
    loop {
        let item = tokio::select! {
            item = follower.next() => item.map_err(|e| follow_failure(&e))?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let mut text = String::new();
        match item {
            None => return Ok(()),
            Some(FollowItem::Line(l)) => printer.line(&mut text, 0, &l),
            Some(FollowItem::Dropped { dropped }) => printer.dropped(&mut text, 0, dropped),
        }
        super::say(&text)?;
    }
}

/// Every service: the tails merged by time, then (with `-f`) every live line as it comes.
async fn all(target: &Target, args: &LogsArgs, stream: Option<Stream>) -> Result<(), Failure> {
    let (mut client, _) = connect(target).await?;
    let names: Vec<String> = client
        .status(&[])
        .await
        .map_err(|e| client_failure(&e))?
        .services
        .into_iter()
        .map(|s| s.name)
        .collect();
    let printer = Printer::prefixed(
        &names,
        crate::render::use_color(args.no_color, std::io::stdout().is_terminal()),
        args.timestamps,
    );

    // Subscribed before the tails are read: every line after a tail is in its stream.
    let mut followers = Vec::new();
    if args.follow {
        for name in &names {
            let f = client
                .follow_logs(name, 0, stream)
                .await
                .map_err(|e| follow_failure(&e))?;
            followers.push(f);
        }
    }
    let mut tails = Vec::with_capacity(names.len());
    for name in &names {
        let tail = client
            .logs(name, args.lines, stream)
            .await
            .map_err(|e| client_failure(&e))?;
        tails.push(tail);
    }
    // The last sequence number each tail held: a follow stream skips up to it.
    let seen: Vec<Option<u64>> = tails.iter().map(|t| t.last().map(|l| l.seq)).collect();
    let merged = merge_by_time(tails);
    let skip = merged.len().saturating_sub(args.lines);
    let mut text = String::new();
    for (service, l) in &merged[skip..] {
        printer.line(&mut text, *service, l);
    }
    super::say(&text)?;
    if !args.follow {
        return Ok(());
    }

    let (tx, mut rx) = mpsc::channel::<(usize, Result<FollowItem, ClientError>)>(FOLLOW_QUEUE);
    for (service, mut follower) in followers.into_iter().enumerate() {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let item = match follower.next().await {
                    Ok(Some(item)) => Ok(item),
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if tx.send((service, item)).await.is_err() || failed {
                    return;
                }
            }
        });
    }
    drop(tx);
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        // Every stream ended: warden stopped.
        let Some((service, item)) = msg else {
            return Ok(());
        };
        let mut text = String::new();
        match item.map_err(|e| follow_failure(&e))? {
            FollowItem::Line(l) => {
                if seen[service].is_some_and(|s| l.seq <= s) {
                    continue;
                }
                printer.line(&mut text, service, &l);
            }
            FollowItem::Dropped { dropped } => printer.dropped(&mut text, service, dropped),
        }
        super::say(&text)?;
    }
}

/// Merge the services' tails (each in its own order) by the time each line was read,
/// keeping each service's own order; a tie goes to the service listed first. `at` is RFC
/// 3339 UTC with milliseconds, always as long: it sorts as text.
fn merge_by_time(tails: Vec<Vec<LogLineJson>>) -> Vec<(usize, LogLineJson)> {
    let total = tails.iter().map(Vec::len).sum();
    let mut iters: Vec<_> = tails
        .into_iter()
        .map(|t| t.into_iter().peekable())
        .collect();
    let mut out = Vec::with_capacity(total);
    loop {
        let mut best: Option<(usize, &str)> = None;
        for (i, it) in iters.iter_mut().enumerate() {
            if let Some(l) = it.peek()
                && best.is_none_or(|(_, at)| l.at.as_str() < at)
            {
                best = Some((i, l.at.as_str()));
            }
        }
        let Some((i, _)) = best else {
            return out;
        };
        if let Some(l) = iters[i].next() {
            out.push((i, l));
        }
    }
}

/// A follow stream that breaks off: the connection ending mid-stream means warden went away
/// (`warden down`), which is said plainly (exit 3) instead of as an HTTP error.
fn follow_failure(e: &ClientError) -> Failure {
    match e {
        ClientError::Http(_) => Failure::new(
            crate::exit::NOT_RUNNING,
            "warden stopped; nothing more to follow",
        ),
        other => client_failure(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, at: &str, text: &str) -> LogLineJson {
        LogLineJson {
            seq,
            stream: Stream::Out,
            at: at.into(),
            line: text.into(),
        }
    }

    #[test]
    fn tails_merge_by_time_keeping_each_services_order() {
        let a = vec![
            line(0, "2026-12-01T08:00:00.001Z", "a1"),
            line(1, "2026-12-01T08:00:00.005Z", "a2"),
            line(2, "2026-12-01T08:00:00.005Z", "a3"),
        ];
        let b = vec![
            line(7, "2026-12-01T08:00:00.002Z", "b1"),
            line(8, "2026-12-01T08:00:00.005Z", "b2"),
            line(9, "2026-12-01T08:00:01.000Z", "b3"),
        ];
        let got: Vec<String> = merge_by_time(vec![a, b])
            .into_iter()
            .map(|(i, l)| format!("{i}:{}", l.line))
            .collect();
        assert_eq!(got, ["0:a1", "1:b1", "0:a2", "0:a3", "1:b2", "1:b3"]);
    }

    #[test]
    fn prefixes_are_padded_and_coloured_on_request() {
        let names = vec!["a".to_owned(), "web".to_owned()];
        let l = line(0, "2026-12-01T08:00:00.001Z", "hi");
        let mut text = String::new();
        let p = Printer::prefixed(&names, false, false);
        p.line(&mut text, 0, &l);
        p.line(&mut text, 1, &l);
        assert_eq!(text, "a   | hi\nweb | hi\n");
        let mut text = String::new();
        Printer::prefixed(&names, true, true).line(&mut text, 1, &l);
        assert_eq!(text, "\x1b[33mweb |\x1b[0m 2026-12-01T08:00:00.001Z hi\n");
        let mut text = String::new();
        Printer::plain(true).dropped(&mut text, 0, 3);
        assert_eq!(
            text,
            "[warden] 3 line(s) skipped: this reader fell behind\n"
        );
    }
}
