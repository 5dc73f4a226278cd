//! Golden files of warden's user-visible output: the CLI's stdout, stderr and exit code, the
//! foreground event log, and the HTTP API's answers over the unix socket (and TCP, for the
//! token check).
//!
//! Each test runs one session against the real `warden` binary, writes a transcript of it,
//! normalises what legitimately varies from run to run, and compares the result with
//! `tests/golden/NAME.txt` byte for byte.
//!
//! To rewrite the golden files from the current code (then read the diff before committing):
//!
//! ```sh
//! WARDEN_BLESS=1 cargo test -p warden --test golden
//! ```
//!
//! Normalisation, deliberately narrow so that a change of wording or layout still fails:
//! - the test's temp dir (as given and canonicalised) becomes `<DIR>`;
//! - a number equal to a pid this test learned (warden's and every service's, read from
//!   `status --json`, and the pids the services wrote themselves), standing alone (the `300`
//!   of `300ms` stays), becomes `<PID>`;
//! - an RFC 3339 UTC time with milliseconds (`2026-12-01T08:19:35.369Z`) becomes `<TS>`;
//! - durations only where they are measured: the UPTIME cell and the `(…)` of the LAST EXIT
//!   cell of the status table (and the `next start in …` of its REASON), the values of `uptime_ms`, `ran_ms` and `next_start_in_ms` in
//!   JSON, and a duration right after `after ` or `ran ` in the event log become `<T>`; a
//!   configured duration (`within 1h00m`, `restarting in 0ms`) is kept;
//! - the status table is checked to be left-aligned with exactly two spaces between columns
//!   and tight column widths, then laid out again the same way after its cells were normalised
//!   (a pid or an uptime changes the widths); the `tracking: …` line under it becomes
//!   `tracking: <MODE>`, as `"tracking"` does in JSON (cgroups as root, process groups else);
//! - in an HTTP answer, `content-length` is checked against the body and becomes `<LEN>`, and
//!   the value of `date` becomes `<DATE>`;
//! - in the event log, the `started` lines before `[warden] supervising` are sorted: the
//!   services start concurrently, in no defined order.
//!
//! Kept as they are: warden's version, exit codes, JSON key order and whitespace, every
//! message. Output that depends on a race is not recorded (e.g. the state a `start` answers
//! for a program that exits at once).
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Env, WAIT, show, tc, wait_for, warden_bin};

// ---------------------------------------------------------------------------------------
// Golden files

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"))
}

fn blessing() -> bool {
    std::env::var_os("WARDEN_BLESS").is_some_and(|v| v == "1")
}

/// Compare `actual` with the golden file `name`, or rewrite it under `WARDEN_BLESS=1`.
fn assert_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let Ok(expected) = std::fs::read_to_string(&path) else {
        panic!(
            "no golden file {}; create it with WARDEN_BLESS=1\nactual:\n{actual}",
            path.display()
        );
    };
    if expected == actual {
        return;
    }
    let exp: Vec<&str> = expected.lines().collect();
    let act: Vec<&str> = actual.lines().collect();
    let first = exp
        .iter()
        .zip(&act)
        .position(|(e, a)| e != a)
        .unwrap_or(exp.len().min(act.len()));
    let mut diff = String::new();
    for i in first.saturating_sub(3)..(first + 6).min(exp.len().max(act.len())) {
        match (exp.get(i), act.get(i)) {
            (Some(e), Some(a)) if e == a => {
                let _ = writeln!(diff, "  {e}");
            }
            (e, a) => {
                if let Some(e) = e {
                    let _ = writeln!(diff, "- {e}");
                }
                if let Some(a) = a {
                    let _ = writeln!(diff, "+ {a}");
                }
            }
        }
    }
    panic!(
        "output differs from {} at line {} (- golden, + actual):\n{diff}\n\
         the whole actual output:\n{actual}\n\
         if the change is intended: WARDEN_BLESS=1 cargo test -p warden --test golden",
        path.display(),
        first + 1
    );
}

// ---------------------------------------------------------------------------------------
// Normalisation

/// Does `s` look like `util::fmt_duration`'s output (`250ms`, `1.2s`, `5m12s`, `2h03m`,
/// `3d04h`)?
fn is_duration(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let rest = &s.as_bytes()[digits..];
    let two =
        |b: &[u8], unit: u8| b.len() == 3 && b[..2].iter().all(u8::is_ascii_digit) && b[2] == unit;
    match rest {
        b"ms" => true,
        [b'.', d, b's'] => d.is_ascii_digit(),
        [b'm', tail @ ..] => two(tail, b's'),
        [b'h', tail @ ..] => two(tail, b'm'),
        [b'd', tail @ ..] => two(tail, b'h'),
        _ => false,
    }
}

/// Replace every duration token that directly follows `prefix` with `<T>`.
fn durations_after(s: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        let (head, tail) = rest.split_at(i + prefix.len());
        out.push_str(head);
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or(tail.len());
        // A trailing `.` ends a sentence, it is not part of the duration.
        let len = if tail[..len].ends_with('.') {
            len - 1
        } else {
            len
        };
        if is_duration(&tail[..len]) {
            out.push_str("<T>");
            rest = &tail[len..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// Replace every RFC 3339 UTC time with milliseconds (`dddd-dd-ddTdd:dd:dd.dddZ`) with `<TS>`.
fn timestamps(s: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let b = s.as_bytes();
    let matches_at = |i: usize| {
        b.len() >= i + SHAPE.len()
            && SHAPE.iter().zip(&b[i..]).all(|(&p, &c)| {
                if p == b'd' {
                    c.is_ascii_digit()
                } else {
                    c == p
                }
            })
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if matches_at(i) {
            out.push_str(&s[copied..i]);
            out.push_str("<TS>");
            i += SHAPE.len();
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// Replace the number value of `"key":` (compact or pretty JSON) with `<T>`; `null` stays.
fn json_number_of(s: &str, key: &str) -> String {
    let needle = format!("\"{key}\":");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(&needle) {
        let (head, tail) = rest.split_at(i + needle.len());
        out.push_str(head);
        let spaces = tail.len() - tail.trim_start_matches(' ').len();
        out.push_str(&tail[..spaces]);
        let value = &tail[spaces..];
        let digits = value.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("<T>");
        }
        rest = &value[digits..];
    }
    out.push_str(rest);
    out
}

/// The value of every `"key":` that is a number or null, as `<N>`.
fn json_sample_of(s: &str, key: &str) -> String {
    let needle = format!("\"{key}\":");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(&needle) {
        let (head, tail) = rest.split_at(i + needle.len());
        out.push_str(head);
        let spaces = tail.len() - tail.trim_start_matches(' ').len();
        out.push_str(&tail[..spaces]);
        let value = &tail[spaces..];
        let len = if value.starts_with("null") {
            4
        } else {
            value
                .bytes()
                .take_while(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'e' | b'+'))
                .count()
        };
        if len > 0 {
            out.push_str("<N>");
        }
        rest = &value[len..];
    }
    out.push_str(rest);
    out
}

/// What varies in one test: its directory and the pids it has seen.
struct Norm {
    dirs: Vec<String>,
    pids: BTreeSet<String>,
}

impl Norm {
    fn new(dir: &Path) -> Norm {
        let mut dirs = vec![dir.display().to_string()];
        if let Ok(c) = dir.canonicalize() {
            dirs.push(c.display().to_string());
        }
        // The longest first, so that one that contains another is replaced whole.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
        dirs.dedup();
        Norm {
            dirs,
            pids: BTreeSet::new(),
        }
    }

    fn learn_pid(&mut self, pid: i64) {
        self.pids.insert(pid.to_string());
    }

    /// The temp dir and the known pids.
    fn text(&self, s: &str) -> String {
        let mut s = s.to_owned();
        for d in &self.dirs {
            s = s.replace(d.as_str(), "<DIR>");
        }
        self.pids_in(&s)
    }

    /// Every run of digits equal to a known pid, not glued to a letter, becomes `<PID>`.
    fn pids_in(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut chars = s.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if !c.is_ascii_digit() {
                out.push(c);
                continue;
            }
            let mut end = i + 1;
            while let Some(&(j, d)) = chars.peek() {
                if !d.is_ascii_digit() {
                    break;
                }
                end = j + 1;
                chars.next();
            }
            let run = &s[i..end];
            // `300ms` is a duration even if 300 is a pid: a pid stands alone.
            let glued = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
            let standalone = !glued(s[..i].chars().next_back()) && !glued(s[end..].chars().next());
            if standalone && self.pids.contains(run) {
                out.push_str("<PID>");
            } else {
                out.push_str(run);
            }
        }
        out
    }

    /// JSON (pretty or compact): measured durations, times, the temp dir and pids.
    fn json(&self, s: &str) -> String {
        let mut s = s.to_owned();
        for key in ["uptime_ms", "ran_ms", "next_start_in_ms"] {
            s = json_number_of(&s, key);
        }
        // The tracking mode depends on the machine (cgroups as root, process groups else).
        for mode in ["cgroup", "job", "process-group"] {
            for sep in [":", ": "] {
                s = s.replace(
                    &format!("\"tracking\"{sep}\"{mode}\""),
                    &format!("\"tracking\"{sep}\"<MODE>\""),
                );
            }
        }
        // Sampled on demand: a number, or null before the first sample.
        for key in ["cpu_percent", "memory_bytes", "memory_cgroup_bytes"] {
            s = json_sample_of(&s, key);
        }
        self.text(&timestamps(&s))
    }

    /// warden's event log: times, the measured durations, the temp dir and pids. The
    /// services start concurrently, so the lines before `[warden] supervising` are sorted.
    fn events(&self, s: &str) -> String {
        let s = durations_after(&timestamps(s), "after ");
        let s = self.text(&durations_after(&s, "ran "));
        let lines: Vec<&str> = s.lines().collect();
        let Some(ready) = lines
            .iter()
            .position(|l| l.contains("[warden] supervising"))
        else {
            return s;
        };
        let mut starts = lines[..ready].to_vec();
        starts.sort_unstable();
        let mut out = String::new();
        for l in starts.iter().chain(&lines[ready..]) {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// The status table: check its layout, normalise its cells, lay it out again.
    fn table(&self, s: &str) -> String {
        let mut lines = s.lines();
        let Some(header) = lines.next() else {
            return String::new();
        };
        let starts = column_starts(header);
        let names: Vec<&str> = split_row(header, &starts, header);
        let mut rows: Vec<Vec<String>> = vec![names.iter().map(|c| (*c).to_owned()).collect()];
        let mut below = Vec::new();
        for line in lines {
            // Below the rows: a blank line, then the tracking mode, which depends on the
            // machine (cgroups as root, process groups else).
            if !below.is_empty() || line.is_empty() || line.starts_with(' ') {
                below.push(if line.starts_with("tracking: ") {
                    "tracking: <MODE>".to_owned()
                } else {
                    self.text(line)
                });
                continue;
            }
            rows.push(
                split_row(line, &starts, s)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            );
        }
        // Tight widths: each column is as wide as its widest cell, plus two spaces.
        for (i, w) in starts.windows(2).map(|p| p[1] - p[0]).enumerate() {
            let widest = rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
            assert_eq!(w, widest + 2, "column {:?} is not tight:\n{s}", names[i]);
        }
        for row in rows.iter_mut().skip(1) {
            for (cell, name) in row.iter_mut().zip(&names) {
                *cell = match *name {
                    "UPTIME" if is_duration(cell) => "<T>".to_owned(),
                    "REASON" => self.text(&durations_after(cell, "next start in ")),
                    // Sampled on demand: a figure, or "-" before the first sample.
                    "CPU" => "<CPU>".to_owned(),
                    "MEM" => "<MEM>".to_owned(),
                    "LAST EXIT" => match cell.strip_suffix(')').and_then(|c| c.rsplit_once(" (")) {
                        Some((what, d)) if is_duration(d) => format!("{what} (<T>)"),
                        _ => cell.clone(),
                    },
                    _ => self.text(cell),
                };
            }
        }
        let mut widths = vec![0; names.len()];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = String::new();
        for row in &rows {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:w$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for line in below {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

/// Where the header's columns start: 0 and after every run of two or more spaces.
fn column_starts(header: &str) -> Vec<usize> {
    let b = header.as_bytes();
    let mut starts = vec![0];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' && b.get(i + 1) == Some(&b' ') {
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            starts.push(i);
        } else {
            i += 1;
        }
    }
    starts
}

/// The cells of one table line cut at `starts`: each left-aligned, followed by at least two
/// spaces, the last one without trailing spaces.
fn split_row<'a>(line: &'a str, starts: &[usize], table: &str) -> Vec<&'a str> {
    let mut cells = Vec::new();
    // The last cell (REASON) may be empty: the line then ends after the cell before it.
    let last = starts.len().saturating_sub(1);
    if starts.len() > 1 && line.len() <= starts[last] && line.len() > starts[last - 1] {
        let mut first = split_row(line, &starts[..last], table);
        first.push("");
        return first;
    }
    for (i, &from) in starts.iter().enumerate() {
        let slice = match starts.get(i + 1) {
            Some(&to) => line.get(from..to),
            None => line.get(from..),
        };
        let Some(slice) = slice else {
            panic!("line {line:?} does not reach column {i}:\n{table}");
        };
        let cell = slice.trim_end();
        let ok = !cell.is_empty()
            && !cell.starts_with(' ')
            && (starts.get(i + 1).is_none() || slice.len() >= cell.len() + 2)
            && (starts.get(i + 1).is_some() || cell.len() == slice.len());
        assert!(
            ok,
            "cell {i} of {line:?} is not laid out as expected:\n{table}"
        );
        cells.push(cell);
    }
    cells
}

// ---------------------------------------------------------------------------------------
// Sessions

/// How to normalise a command's stdout.
#[derive(Clone, Copy)]
enum Out {
    Text,
    Table,
    Json,
}

/// One test's session: its directory, what it learned, and the transcript so far.
struct Session {
    env: Env,
    norm: Norm,
    transcript: String,
    /// Bring warden down when the test ends.
    daemon: bool,
}

impl Session {
    fn new(config: &str) -> Session {
        let env = Env::new(config);
        let norm = Norm::new(env.dir.path());
        Session {
            env,
            norm,
            transcript: String::new(),
            daemon: false,
        }
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(self.transcript, "# {text}");
    }

    /// Run `warden ARGS -c <DIR>/warden.toml`, learn the pids, record the result.
    fn run(&mut self, args: &[&str], out: Out) -> Output {
        let o = self.env.run(args);
        self.learn();
        self.record(
            &format!("warden {} -c <DIR>/warden.toml", args.join(" ")),
            &o,
            out,
        );
        o
    }

    /// Run `warden ARGS` without `-c`, in the test's directory.
    fn run_here(&mut self, args: &[&str], out: Out) -> Output {
        let o = Command::new(warden_bin())
            .args(args)
            .current_dir(self.env.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("WARDEN_CONFIG")
            .output()
            .unwrap();
        self.record(&format!("(cd <DIR>) warden {}", args.join(" ")), &o, out);
        o
    }

    fn record(&mut self, what: &str, o: &Output, out: Out) {
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let stdout = match out {
            Out::Text => self.norm.text(&stdout),
            Out::Table => self.norm.table(&stdout),
            Out::Json => self.norm.json(&stdout),
        };
        let stderr = self.norm.text(&stderr);
        let code = o
            .status
            .code()
            .map_or_else(|| format!("{}", o.status), |c| c.to_string());
        let _ = writeln!(self.transcript, "$ {what}\n[exit {code}]");
        self.section("stdout", &stdout);
        self.section("stderr", &stderr);
        self.transcript.push('\n');
    }

    fn section(&mut self, name: &str, text: &str) {
        if text.is_empty() {
            return;
        }
        let _ = writeln!(self.transcript, "[{name}]");
        self.transcript.push_str(text);
        if !text.ends_with('\n') {
            self.transcript.push_str("\n[no newline at the end]\n");
        }
    }

    /// `status --json`, if warden answers.
    fn status(&self) -> Option<serde_json::Value> {
        let o = self.env.run(&["status", "--json"]);
        if o.status.code() != Some(0) {
            return None;
        }
        Some(serde_json::from_slice(&o.stdout).unwrap())
    }

    /// Learn warden's pid and every running service's pid.
    fn learn(&mut self) {
        let Some(s) = self.status() else { return };
        if let Some(p) = s["warden"]["pid"].as_i64() {
            self.norm.learn_pid(p);
        }
        for svc in s["services"].as_array().unwrap() {
            if let Some(p) = svc["pid"].as_i64() {
                self.norm.learn_pid(p);
            }
        }
    }

    /// Wait until every `(service, state)` holds at once.
    fn wait_states(&mut self, want: &[(&str, &str)]) {
        let what = format!("states {want:?}");
        wait_for(&what, WAIT, || {
            let s = self.status()?;
            let services = s["services"].as_array()?;
            want.iter()
                .all(|(name, state)| {
                    services
                        .iter()
                        .any(|x| x["name"] == *name && x["state"] == *state)
                })
                .then_some(())
        });
        self.learn();
    }

    /// `up -d`, recorded; warden is brought down when the test ends.
    fn up_detached(&mut self) {
        let o = self.env.run(&["up", "-d"]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        self.daemon = true;
        self.learn();
        self.record("warden up -d -c <DIR>/warden.toml", &o, Out::Text);
    }

    /// Wait until `logs NAME` shows `n` lines.
    fn wait_log_lines(&self, name: &str, n: usize) {
        wait_for(&format!("{n} lines of {name}"), WAIT, || {
            let o = self.env.run(&["logs", name]);
            (String::from_utf8_lossy(&o.stdout).lines().count() >= n).then_some(())
        });
    }

    /// One raw HTTP/1.1 request over the control socket; records the normalised answer.
    fn http(&mut self, method: &str, target: &str) {
        let sock = self.env.path(".warden/warden.sock");
        let s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        self.exchange(s, method, target, "", &format!("> {method} {target}"));
    }

    /// The same over the TCP API on `port`, with this bearer token (if any).
    fn http_tcp(&mut self, port: u16, method: &str, target: &str, token: Option<&str>) {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
        let label = format!(
            "> {method} {target} over TCP{}",
            token.map_or_else(
                || " without a token".to_owned(),
                |t| format!(", token {t:?}")
            )
        );
        self.exchange(s, method, target, &auth, &label);
    }

    fn exchange(
        &mut self,
        mut s: impl Read + Write,
        method: &str,
        target: &str,
        headers: &str,
        label: &str,
    ) {
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nHost: warden\r\n{headers}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        self.learn();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut text = String::new();
        for (i, line) in head.split("\r\n").enumerate() {
            if i == 0 {
                text.push_str(line);
            } else {
                let (name, value) = line.split_once(": ").unwrap();
                let value = match name {
                    "content-length" => {
                        assert_eq!(value.parse::<usize>().ok(), Some(body.len()), "{raw}");
                        "<LEN>"
                    }
                    "date" => {
                        assert!(value.ends_with(" GMT"), "{raw}");
                        "<DATE>"
                    }
                    _ => value,
                };
                let _ = write!(text, "{name}: {value}");
            }
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.norm.json(body));
        let _ = writeln!(self.transcript, "{label}");
        self.transcript.push_str(&text);
        if !text.ends_with('\n') {
            self.transcript.push_str("\n[no newline at the end]\n");
        }
        self.transcript.push('\n');
    }

    fn finish(mut self, name: &str) {
        let transcript = std::mem::take(&mut self.transcript);
        drop(self);
        assert_golden(name, &transcript);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.daemon {
            let _ = self.env.run(&["down"]);
        }
    }
}

fn sleeper(name: &str) -> String {
    format!(
        "[services.{name}]\ncommand = [{tc}, \"--sleep\", \"forever\"]\n",
        tc = tc()
    )
}

// ---------------------------------------------------------------------------------------
// The goldens

#[test]
fn check_ok_summaries() {
    let mut s = Session::new(
        "[services.api]\ncommand = [\"sleep\", \"1\"]\n[services.worker]\ncommand = \"sleep 2\"\n",
    );
    s.run(&["check"], Out::Text);
    s.note("the path as given: relative, without -c");
    s.run_here(&["check"], Out::Text);
    s.env.write_config("[services.one]\ncommand = \"true\"\n");
    s.run(&["check"], Out::Text);
    s.env.write_config("");
    s.run(&["check"], Out::Text);
    s.finish("check_ok");
}

/// A program that is not there: a warning at its key, an error with `--strict`.
#[test]
fn check_warnings() {
    let mut s = Session::new(concat!(
        "[services.api]\n",
        "command = [\"warden-golden-surely-missing\", \"--port\", \"80\"]\n",
        "stop_command = \"./stop.sh now\"\n",
        "[services.job]\n",
        "cwd = \"jobs\"\n",
        "command = \"./run\"\n",
        "[services.ok]\n",
        "command = \"true\"\n",
    ));
    std::fs::create_dir(s.env.path("jobs")).unwrap();
    std::fs::write(s.env.path("jobs/run"), "#!/bin/sh\n").unwrap();
    s.run(&["check"], Out::Text);
    s.run(&["check", "--strict"], Out::Text);
    s.finish("check_warnings");
}

#[test]
fn check_errors() {
    let mut s = Session::new(concat!(
        "[warden]\n",
        "shutdown_timeout = \"soon\"\n",
        "[services.api]\n",
        "comand = [\"x\"]\n",
        "command = [\"./api\", \"--port\", \"${WARDEN_GOLDEN_SURELY_UNSET_PORT}\"]\n",
        "[services.web]\n",
        "command = 42\n",
        "stop_timeout = \"10 parsecs\"\n",
        "stop_signal = \"TERMINATE\"\n",
        "restart = \"sometimes\"\n",
        "autostart = \"yes\"\n",
        "[services.db]\n",
        "command = []\n",
        "env = { HOME = \"${WARDEN_GOLDEN_SURELY_UNSET_HOME:?set it to the db home}\" }\n",
        "backoff = { initial = \"1h\" }\n",
        "[services.db.log]\n",
        "encoding = \"klingon\"\n",
        "max_size = \"lots\"\n",
    ));
    s.run(&["check"], Out::Text);
    s.note("relative path, without -c");
    s.run_here(&["check"], Out::Text);
    s.note("a TOML syntax error");
    s.env.write_config("[services.api\ncommand = \"x\"\n");
    s.run(&["check"], Out::Text);
    s.note("no config file");
    std::fs::remove_file(s.env.config()).unwrap();
    s.run(&["check"], Out::Text);
    s.note("up -d with a broken config");
    s.env.write_config("[services.api]\ncomand = [\"x\"]\n");
    s.run(&["up", "-d"], Out::Text);
    s.finish("check_errors");
}

/// A config with one service in every state the table shows.
fn every_state() -> String {
    format!(
        r#"[services.api]
command = [{tc}, "--sleep", "forever"]
[services.held]
command = [{tc}, "--sleep", "forever"]
[services.crash]
command = [{tc}, "--exit", "1"]
backoff = {{ initial = "1h", max = "2h" }}
[services.flap]
command = [{tc}, "--exit", "1"]
backoff = {{ initial = "0ms", max = "0ms" }}
start_limit = {{ count = 2, window = "1h" }}
[services.done]
command = [{tc}, "--exit", "0"]
restart = "never"
[services.lazy]
command = [{tc}, "--sleep", "forever"]
autostart = false
"#,
        tc = tc()
    )
}

#[test]
fn status_table_and_json() {
    let mut s = Session::new(&every_state());
    s.up_detached();
    s.wait_states(&[("held", "running")]);
    let o = s.env.run(&["stop", "held"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    s.wait_states(&[
        ("api", "running"),
        ("held", "stopped"),
        ("crash", "backoff"),
        ("flap", "failed"),
        ("done", "exited"),
        ("lazy", "stopped"),
    ]);
    s.run(&["status"], Out::Table);
    s.run(&["status", "--json"], Out::Json);
    s.run(&["status", "api", "held"], Out::Table);
    s.run(&["status", "flap", "--json"], Out::Json);
    s.run(&["status", "nope"], Out::Text);
    s.run(&["status", "api", "nope", "--json"], Out::Text);
    s.finish("status");
}

#[test]
fn start_stop_restart_messages() {
    let mut s = Session::new(&format!(
        "{}{}{}autostart = false\n[services.ghost]\ncommand = [\"/nonexistent/ghost\"]\nautostart = false\nrestart = \"never\"\n",
        sleeper("api"),
        sleeper("worker"),
        sleeper("lazy"),
    ));
    s.up_detached();
    s.wait_states(&[("api", "running"), ("worker", "running")]);
    s.run(&["start", "lazy"], Out::Text);
    s.note("already running");
    s.run(&["start", "api"], Out::Text);
    s.run(&["restart", "api"], Out::Text);
    s.run(&["stop", "api", "lazy"], Out::Text);
    s.note("already stopped");
    s.run(&["stop", "api"], Out::Text);
    s.run(&["start", "api", "lazy"], Out::Text);
    s.run(&["stop", "nope"], Out::Text);
    s.run(&["start", "nope"], Out::Text);
    s.run(&["restart", "nope"], Out::Text);
    s.note("an unknown name: every name is checked first, nothing is done");
    s.run(&["stop", "worker", "nope"], Out::Text);
    s.run(&["start", "ghost"], Out::Text);
    s.note("usage errors");
    s.run(&["stop"], Out::Text);
    s.run(&["start", "--all", "api"], Out::Text);
    s.run(&["restart", "-n", "svc", "api"], Out::Text);
    s.note("--no-wait answers with the state before");
    s.run(&["stop", "worker", "--no-wait"], Out::Text);
    s.wait_states(&[("worker", "stopped")]);
    s.note("restart --all restarts what runs; what is at rest is left as it is");
    s.run(&["restart", "--all"], Out::Text);
    s.finish("actions");
}

#[test]
fn logs_output() {
    let mut s = Session::new(&format!(
        r#"[services.talk]
command = [{tc}, "--line-len", "24", "--lines", "4", "--sleep", "forever"]
[services.errs]
command = [{tc}, "--line-len", "24", "--stderr", "--lines", "3", "--sleep", "forever"]
[services.quiet]
command = [{tc}, "--sleep", "forever"]
"#,
        tc = tc()
    ));
    s.up_detached();
    s.wait_log_lines("talk", 4);
    s.wait_log_lines("errs", 3);
    s.run(&["logs", "talk"], Out::Text);
    s.run(&["logs", "talk", "-n", "2"], Out::Text);
    s.run(&["logs", "talk", "-n", "0"], Out::Text);
    s.run(&["logs", "errs", "--stream", "err"], Out::Text);
    s.run(&["logs", "errs", "--stream", "out"], Out::Text);
    s.run(&["logs", "quiet"], Out::Text);
    s.run(&["logs", "nope"], Out::Text);
    s.run(&["logs", "nope", "-f"], Out::Text);
    s.note("every service (one stream here: the order across services is a race)");
    s.run(&["logs", "--stream", "err"], Out::Text);
    s.run(&["logs", "--stream", "err", "-n", "2"], Out::Text);
    s.note("usage errors");
    s.run(&["logs", "talk", "-n", "a", "-n", "b"], Out::Text);
    s.run(&["logs", "talk", "--stream", "both"], Out::Text);
    s.note("rotate: one service, then every service (an empty file is left as it is)");
    s.run(&["rotate", "talk"], Out::Text);
    s.run(&["rotate"], Out::Text);
    s.run(&["rotate", "nope"], Out::Text);
    s.finish("logs");
}

#[test]
fn reload_reports() {
    let three = format!("{}{}{}", sleeper("a"), sleeper("b"), sleeper("c"));
    let mut s = Session::new(&three);
    s.up_detached();
    s.wait_states(&[("a", "running"), ("b", "running"), ("c", "running")]);
    s.run(&["reload"], Out::Text);
    s.note("b changes, c goes, d comes");
    s.env.write_config(&format!(
        "{}{}env = {{ X = \"1\" }}\n{}",
        sleeper("a"),
        sleeper("b"),
        sleeper("d")
    ));
    s.run(&["reload"], Out::Text);
    s.wait_states(&[("d", "running")]);
    s.note("[warden] settings change; a service that cannot start comes");
    s.env.write_config(&format!(
        "[warden]\nshutdown_timeout = \"9s\"\napi = \"127.0.0.1:1\"\napi_token = \"x\"\n{}{}env = {{ X = \"1\" }}\n{}[services.ghost]\ncommand = [\"/nonexistent/ghost\"]\nrestart = \"never\"\n",
        sleeper("a"),
        sleeper("b"),
        sleeper("d")
    ));
    s.run(&["reload"], Out::Text);
    s.note("a broken config changes nothing");
    s.env
        .write_config("[services.a]\ncomand = 1\ncommand = 42\nstop_timeout = \"5 parsecs\"\n");
    s.run(&["reload"], Out::Text);
    s.run(&["status"], Out::Table);
    s.finish("reload");
}

#[test]
fn down_and_every_not_running_message() {
    let mut s = Session::new(&format!("{}{}", sleeper("a"), sleeper("b")));
    s.note("before warden runs");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["start", "a"],
        &["stop", "a"],
        &["restart", "--all"],
        &["logs", "a"],
        &["logs", "a", "-f"],
        &["reload"],
        &["down"],
    ] {
        s.run(args, Out::Text);
    }
    s.up_detached();
    s.wait_states(&[("a", "running"), ("b", "running")]);
    s.run(&["down"], Out::Text);
    s.daemon = false;
    s.note("after down");
    s.run(&["status"], Out::Text);
    s.run(&["down"], Out::Text);
    s.note("a config with errors: the default state dir is looked at");
    s.env.write_config("[services.a]\ncomand = 1\n");
    s.run(&["status"], Out::Text);
    s.note("no warden.toml at all (issue 7, bug 3: this one is meant to change)");
    std::fs::remove_file(s.env.config()).unwrap();
    s.run_here(&["status"], Out::Text);
    s.finish("not_running");
}

#[test]
fn up_messages() {
    let mut s = Session::new(&sleeper("a"));
    s.up_detached();
    s.wait_states(&[("a", "running")]);
    s.note("a second one refuses");
    s.run(&["up", "-d"], Out::Text);
    s.run(&["up"], Out::Text);
    s.finish("up");
}

/// `up -d --wait` (issue 9): its verdicts; `up` saying which services stay stopped by hand,
/// and `up --reset`. The event lines are those of `warden.log`.
#[test]
fn up_wait_and_reset_messages() {
    let mut s = Session::new(&format!(
        "{}min_uptime = \"200ms\"\n[services.crash]\ncommand = [{tc}, \"--exit\", \"3\"]\nbackoff = {{ initial = \"1h\", max = \"1h\" }}\n",
        sleeper("web"),
        tc = tc()
    ));
    s.daemon = true;
    s.run(&["up", "-d", "--wait", "--wait-timeout", "20s"], Out::Text);
    s.run(&["stop", "web"], Out::Text);
    s.run(&["down"], Out::Text);
    s.env
        .write_config(&format!("{}min_uptime = \"200ms\"\n", sleeper("web")));
    s.note("web stays stopped: nothing to wait for");
    s.run(&["up", "-d", "--wait"], Out::Text);
    s.run(&["down"], Out::Text);
    s.run(&["up", "-d", "--reset", "--wait"], Out::Text);
    s.note("what warden.log said of it");
    let log = s.env.read(".warden/warden.log");
    let mut said = String::new();
    for l in log
        .lines()
        .filter(|l| l.contains("stopped by hand") || l.contains("not up"))
    {
        said.push_str(l);
        said.push('\n');
    }
    let said = s.norm.events(&said);
    s.transcript.push_str(&said);
    s.transcript.push('\n');
    s.run(&["down"], Out::Text);
    s.note("one-shots that exited with a success code are completed, not down");
    s.env.write_config(&format!(
        "{}min_uptime = \"200ms\"\n[services.once]\ncommand = [{tc}, \"--exit\", \"0\"]\nrestart = \"never\"\n[services.seed]\ncommand = [{tc}, \"--exit\", \"2\"]\nrestart = \"never\"\nsuccess_codes = [0, 2]\n",
        sleeper("web"),
        tc = tc()
    ));
    s.run(&["up", "-d", "--reset", "--wait"], Out::Text);
    s.note("usage errors");
    s.run(&["up", "-d", "--wait", "--wait-timeout", "2h"], Out::Text);
    s.run(&["up", "--wait"], Out::Text);
    s.finish("up_wait");
}

/// `up --log-format json` (issue 11): every event and output line one JSON object.
#[test]
fn foreground_json_log_format() {
    let env = Env::new(&format!(
        "[services.talk]\ncommand = [\"sh\", \"-c\", \"while [ ! -e go ]; do sleep 0.01; done; exec {tc} --line-len 20 --lines 2 --ready-file ready --sleep forever\"]\n",
        tc = tc().trim_matches('"')
    ));
    let mut norm = Norm::new(env.dir.path());
    let mut w = env.up(&["--log-format", "json"]);
    norm.learn_pid(i64::from(w.pid()));
    wait_for("supervising", WAIT, || {
        w.stdout()
            .contains("supervising 1 service(s)")
            .then_some(())
    });
    std::fs::write(env.path("go"), "").unwrap();
    norm.learn_pid(i64::from(env.wait_pid("ready")));
    wait_for("talk's two lines", WAIT, || {
        (w.stdout().matches("\"stream\"").count() >= 2).then_some(())
    });
    w.signal(libc::SIGTERM);
    let code = w
        .wait_exit(WAIT)
        .map_or_else(|| "signal".to_owned(), |c| c.to_string());
    let stdout = w.stdout();
    for line in stdout.lines() {
        if let Some((_, rest)) = line.split_once("started (pid ") {
            norm.learn_pid(rest.split(')').next().unwrap().parse().unwrap());
        }
    }
    assert_eq!(w.stderr(), "", "nothing on stderr");
    let text = format!(
        "$ warden up --log-format json -c <DIR>/warden.toml; touch go; then SIGTERM\n[exit {code}]\n[stdout]\n{}",
        norm.events(&stdout)
    );
    assert_golden("json_log_format", &text);
}

/// The foreground event log of a service that ignores SIGTERM and must be killed.
#[test]
fn foreground_events_of_a_stop_that_kills() {
    let env = Env::new(&format!(
        "[services.stubborn]\ncommand = [{tc}, \"--ready-file\", \"ready\", \"--ignore-term\", \"--sleep\", \"forever\"]\nstop_timeout = \"300ms\"\n",
        tc = tc()
    ));
    let mut norm = Norm::new(env.dir.path());
    let mut w = env.up(&[]);
    norm.learn_pid(i64::from(w.pid()));
    w.wait_stderr("supervising 1 service(s)");
    norm.learn_pid(i64::from(env.wait_pid("ready")));
    w.signal(libc::SIGTERM);
    let code = w
        .wait_exit(WAIT)
        .map_or_else(|| "signal".to_owned(), |c| c.to_string());
    let text = format!(
        "$ warden up -c <DIR>/warden.toml, then SIGTERM\n[exit {code}]\n[stderr]\n{}",
        norm.events(&w.stderr())
    );
    assert_golden("events_kill", &text);
}

/// The foreground event log of a crash loop that ends in `failed`, then a stop.
#[test]
fn foreground_events_of_a_crash_loop() {
    // The service waits for the file `go` before it crashes: its exits come after warden
    // said it is supervising. Each start writes its pid to `starts`.
    let env = Env::new(&format!(
        r#"[services.flap]
command = ["sh", "-c", "while [ ! -e go ]; do sleep 0.01; done; exec {tc} --touch starts --exit 1"]
backoff = {{ initial = "0ms", max = "0ms" }}
start_limit = {{ count = 3, window = "1h" }}
[services.once]
command = ["sh", "-c", "while [ ! -e go2 ]; do sleep 0.01; done; exit 0"]
restart = "on-failure"
"#,
        tc = tc().trim_matches('"')
    ));
    let mut norm = Norm::new(env.dir.path());
    let mut w = env.up(&[]);
    norm.learn_pid(i64::from(w.pid()));
    w.wait_stderr("supervising 2 service(s)");
    std::fs::write(env.path("go"), "").unwrap();
    w.wait_stderr("[flap] failed");
    std::fs::write(env.path("go2"), "").unwrap();
    w.wait_stderr("[once] exited");
    let err = w.stderr();
    for line in env.lines("starts") {
        norm.learn_pid(line.split(' ').next().unwrap().parse().unwrap());
    }
    // The sh pids of the first starts: from the `started (pid N)` lines of each service.
    for line in err.lines() {
        if let Some((_, rest)) = line.split_once("started (pid ") {
            norm.learn_pid(rest.trim_end_matches(')').parse().unwrap());
        }
    }
    w.signal(libc::SIGTERM);
    let code = w
        .wait_exit(WAIT)
        .map_or_else(|| "signal".to_owned(), |c| c.to_string());
    let text = format!(
        "$ warden up -c <DIR>/warden.toml; touch go; touch go2; then SIGTERM\n[exit {code}]\n[stderr]\n{}",
        norm.events(&w.stderr())
    );
    assert_golden("events_crash_loop", &text);
}

/// `up --attach`: every output line as `NAME | line` on warden's stdout.
#[test]
fn foreground_attach_output() {
    // The service waits for the file `go`: its output and exit come after warden said it is
    // supervising.
    let env = Env::new(&format!(
        "[services.talk]\ncommand = [\"sh\", \"-c\", \"while [ ! -e go ]; do sleep 0.01; done; exec {tc} --line-len 20 --lines 2 --no-newline tail\"]\nrestart = \"never\"\n",
        tc = tc().trim_matches('"')
    ));
    let mut norm = Norm::new(env.dir.path());
    let mut w = env.up(&["--attach"]);
    norm.learn_pid(i64::from(w.pid()));
    w.wait_stderr("supervising 1 service(s)");
    std::fs::write(env.path("go"), "").unwrap();
    w.wait_stderr("[talk] exited");
    wait_for("talk's three lines on stdout", WAIT, || {
        (w.stdout().lines().count() >= 3).then_some(())
    });
    w.signal(libc::SIGTERM);
    let code = w
        .wait_exit(WAIT)
        .map_or_else(|| "signal".to_owned(), |c| c.to_string());
    let stderr = w.stderr();
    for line in stderr.lines() {
        if let Some((_, rest)) = line.split_once("started (pid ") {
            norm.learn_pid(rest.trim_end_matches(')').parse().unwrap());
        }
    }
    let text = format!(
        "$ warden up --attach -c <DIR>/warden.toml; touch go; then SIGTERM\n[exit {code}]\n[stdout]\n{}[stderr]\n{}",
        norm.text(&w.stdout()),
        norm.events(&stderr)
    );
    assert_golden("attach", &text);
}

#[test]
fn http_api_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = Session::new(&format!(
        r#"[warden]
api = "127.0.0.1:{port}"
api_token = "s3cret"
{}{}[services.talk]
command = [{tc}, "--line-len", "16", "--lines", "3", "--sleep", "forever"]
[services.crash]
command = [{tc}, "--exit", "1"]
backoff = {{ initial = "1h", max = "2h" }}
[services.ghost]
command = ["/nonexistent/ghost"]
autostart = false
restart = "never"
"#,
        sleeper("api"),
        sleeper("worker"),
        tc = tc()
    ));
    s.up_detached();
    s.wait_states(&[
        ("api", "running"),
        ("worker", "running"),
        ("talk", "running"),
        ("crash", "backoff"),
    ]);
    s.wait_log_lines("talk", 3);
    s.http("GET", "/v1/status");
    s.http("GET", "/v1/status?name=api&name=crash");
    s.http("GET", "/v1/status?name=nope");
    s.http("GET", "/v1/services/api");
    s.http("GET", "/v1/services/crash");
    s.http("GET", "/v1/services/nope");
    s.http("POST", "/v1/services/nope/start");
    s.http("POST", "/v1/services/api/stop");
    s.http("POST", "/v1/services/api/start");
    s.http("POST", "/v1/services/api/restart");
    s.http("POST", "/v1/services/worker/stop?wait=false");
    s.wait_states(&[("worker", "stopped")]);
    s.http("POST", "/v1/services/ghost/start");
    s.http("GET", "/v1/services/talk/logs");
    s.http("GET", "/v1/services/talk/logs?n=1&stream=out");
    s.http("GET", "/v1/services/talk/logs?stream=err");
    s.http("GET", "/v1/services/nope/logs");
    s.note("405");
    s.http("GET", "/v1/services/api/stop");
    s.http("POST", "/v1/status");
    s.http("DELETE", "/v1/reload");
    s.note("400: bad queries and a bad path; 404: no such path");
    s.http("GET", "/v1/status?bogus=1");
    s.http("GET", "/v1/services/talk/logs?n=abc");
    s.http("GET", "/v1/services/talk/logs?stream=both");
    s.http("POST", "/v1/services/api/stop?wait=maybe");
    s.http("GET", "/v1/services/api?x=1");
    s.http("GET", "/v1/status?name=a&name=%zz");
    s.http("GET", "/v1/services/%ff");
    s.http("GET", "/v1/nothing");
    s.note("reload: 200, then 422");
    s.note("the TCP API: 401 without the right token, the same answers with it");
    s.http_tcp(port, "GET", "/v1/status?name=api", None);
    s.http_tcp(port, "GET", "/v1/status?name=api", Some("wrong"));
    s.http_tcp(port, "GET", "/v1/services/api", Some("s3cret"));
    s.http("POST", "/v1/reload");
    s.note("worker was stopped by hand; talk and crash go; extra comes");
    s.env.write_config(&format!(
        "[warden]\napi = \"127.0.0.1:{port}\"\napi_token = \"s3cret\"\n{}{}env = {{ X = \"1\" }}\n[services.extra]\ncommand = [{tc}, \"--sleep\", \"forever\"]\n",
        sleeper("api"),
        sleeper("worker"),
        tc = tc()
    ));
    s.http("POST", "/v1/reload");
    s.env
        .write_config("[services.api]\ncomand = 1\ncommand = 42\nstop_timeout = \"5 parsecs\"\n");
    s.http("POST", "/v1/reload");
    s.http("GET", "/v1/services/worker");
    s.note("shutdown");
    let warden = s.status().unwrap()["warden"]["pid"].as_i64().unwrap();
    s.http("POST", "/v1/shutdown");
    common::wait_gone(warden as i32);
    s.daemon = false;
    s.finish("api");
}

// ---------------------------------------------------------------------------------------
// The normalisation itself: it hides only what it must.

#[test]
fn normalisation_hides_only_measured_values() {
    for d in ["0ms", "250ms", "1.2s", "5m12s", "2h03m", "3d04h"] {
        assert!(is_duration(d), "{d}");
    }
    for d in ["", "ms", "1.25s", "5m1s", "2h3m", "1s", "12", "1h00"] {
        assert!(!is_duration(d), "{d}");
    }
    assert_eq!(
        durations_after("exited after 7ms; restarting in 0ms (ran 1.2s)", "after "),
        "exited after <T>; restarting in 0ms (ran 1.2s)"
    );
    assert_eq!(
        timestamps("at 2026-12-01T08:19:35.369Z, not 2026-12-01T08:19:35Z"),
        "at <TS>, not 2026-12-01T08:19:35Z"
    );
    assert_eq!(
        json_number_of(
            "{\"uptime_ms\": 12, \"ran_ms\":null, \"restarts\": 3}",
            "uptime_ms"
        ),
        "{\"uptime_ms\": <T>, \"ran_ms\":null, \"restarts\": 3}"
    );
    let mut n = Norm::new(Path::new("/tmp/x"));
    n.learn_pid(4312);
    assert_eq!(
        n.text("/tmp/x/a (pid 4312) 43120 14312 4312ms"),
        "<DIR>/a (pid <PID>) 43120 14312 4312ms"
    );
}

#[test]
fn the_table_is_laid_out_again_after_normalising() {
    let mut n = Norm::new(Path::new("/tmp/x"));
    n.learn_pid(123_456);
    let table = "NAME    STATE    PID     UPTIME  RESTARTS  LAST EXIT       HEALTH  REASON\n\
                 api     running  123456  2h03m   0         -               -\n\
                 worker  backoff  -       -       7         code 1 (200ms)  -       next start in 1.5s; exited\n\
                 held    stopped  -       -       0         -               -       stopped by hand\n";
    assert_eq!(
        n.table(table),
        "NAME    STATE    PID    UPTIME  RESTARTS  LAST EXIT     HEALTH  REASON\n\
         api     running  <PID>  <T>     0         -             -\n\
         worker  backoff  -      -       7         code 1 (<T>)  -       next start in <T>; exited\n\
         held    stopped  -      -       0         -             -       stopped by hand\n"
    );
}

#[test]
#[should_panic(expected = "is not tight")]
fn a_table_with_a_wider_column_fails() {
    let n = Norm::new(Path::new("/tmp/x"));
    n.table("NAME    STATE\napi     running\n");
}

#[test]
#[should_panic(expected = "not laid out as expected")]
fn a_right_aligned_cell_fails() {
    let n = Norm::new(Path::new("/tmp/x"));
    n.table("NAME  RESTARTS  X\na        7     -\n");
}
