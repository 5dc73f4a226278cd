//! End-to-end tests of a service's output (issue 9, section 3): `stderr = "stdout"` through
//! one pipe, the fairness of two pipes, `warden logs` without a name (every service, merged
//! by time, `-f` across services) and `--timestamps`.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use common::{Daemon, Env, WAIT, show, tc, wait_for};

impl Daemon<'_> {
    /// `warden logs ARGS` (exit 0), its stdout.
    fn logs(&self, args: &[&str]) -> String {
        let mut all = vec!["logs"];
        all.extend_from_slice(args);
        let o = self.env.run(&all);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// Wait until `warden logs ARGS` prints at least `n` lines; returns them.
    fn wait_logs(&self, args: &[&str], n: usize) -> Vec<String> {
        wait_for(&format!("{n} lines of `logs {args:?}`"), WAIT, || {
            let text = self.logs(args);
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            (lines.len() >= n).then_some(lines)
        })
    }

    /// `GET target` on the control socket: the body of the answer.
    fn get(&self, target: &str) -> String {
        let mut s = UnixStream::connect(self.env.path(".warden/warden.sock")).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: warden\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
        body.to_owned()
    }
}

/// The issue's program: `echo out-1; echo err-1 >&2; …`, `n` times, then it sleeps.
fn alternating_sh(n: u32) -> String {
    format!(
        r#"["sh", "-c", "i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo out-$i; echo err-$i >&2; done; exec sleep 3600"]"#
    )
}

/// `out-1`, `err-1`, …, `out-n`, `err-n`.
fn alternating_lines(n: u32) -> Vec<String> {
    (1..=n)
        .flat_map(|i| [format!("out-{i}"), format!("err-{i}")])
        .collect()
}

#[test]
fn stderr_into_stdout_is_one_pipe_in_the_programs_order_labelled_out() {
    let env = Env::new(&format!(
        "[services.joined]\ncommand = {}\n[services.joined.log]\nstderr = \"stdout\"\n",
        alternating_sh(200)
    ));
    let d = Daemon::up(&env);
    let expected = alternating_lines(200);
    let lines = env.wait_lines("logs/joined.out.log", expected.len());
    assert_eq!(lines, expected, "the file has the program's own order");
    assert!(!env.path("logs/joined.err.log").exists());

    // The tail has the same order, and every line came from the one (stdout) pipe.
    let tail = d.wait_logs(&["joined", "-n", "400"], 400);
    assert_eq!(tail, expected);
    assert_eq!(d.logs(&["joined", "--stream", "err"]), "");
    let out: Vec<String> = d
        .logs(&["joined", "--stream", "out", "-n", "400"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(out, expected);
    let body = d.get("/v1/services/joined/logs?n=400");
    assert_eq!(body.matches(r#""stream":"out""#).count(), 400, "{body}");
    assert!(!body.contains(r#""stream":"err""#), "{body}");
}

/// The longest run of lines of one stream allowed in the tail of a program that alternates
/// stdout and stderr line by line (`test-child --alternate`), through two pipes.
///
/// Why runs stay short: a round of the pump reads the pipe that woke it and at once (two
/// system calls apart, before any work on the data) what the other pipe holds, and gives the
/// lines of the round one of each stream in turn. A run longer than one line needs the
/// program to write more lines to one pipe than to the other between those two reads.
/// Measured on 2 CPUs at load average 2 to 7, about 180 runs of this program and of the
/// issue's `echo out-i; echo err-i >&2` loop, debug and release builds: longest runs of 1 or
/// 2 lines mostly, 3 to 4 now and then, 7 once. The reads before this change (one task per
/// pipe, each reading what the kernel held) gave runs of 224 to 400 lines of 800, the whole
/// of one stream. Bound: 16, twice the worst measured, for a loaded CI machine that preempts
/// warden between the two reads, and still far below what unfair reads give.
const FAIR_RUN_BOUND: usize = 16;

#[test]
fn alternating_streams_stay_interleaved_in_the_tail() {
    const N: u32 = 400;
    let env = Env::new(&format!(
        "[services.alt]\ncommand = [{tc}, \"--alternate\", \"{N}\", \"--sleep\", \"forever\"]\n",
        tc = tc()
    ));
    let d = Daemon::up(&env);
    let total = 2 * N as usize;
    let tail = d.wait_logs(&["alt", "-n", &total.to_string()], total);
    assert_eq!(tail.len(), total);

    // Nothing lost or reordered within a stream.
    let of = |prefix: &str| -> Vec<String> {
        tail.iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect()
    };
    let outs: Vec<String> = (1..=N).map(|i| format!("out-{i}")).collect();
    let errs: Vec<String> = (1..=N).map(|i| format!("err-{i}")).collect();
    assert_eq!(of("out-"), outs);
    assert_eq!(of("err-"), errs);

    // The longest run of one stream.
    let mut longest = 0;
    let mut run = 0;
    let mut last = "";
    for l in &tail {
        let stream = &l[..3];
        run = if stream == last { run + 1 } else { 1 };
        last = stream;
        longest = longest.max(run);
    }
    eprintln!("longest run of one stream: {longest} line(s) of {total}");
    assert!(
        longest <= FAIR_RUN_BOUND,
        "a run of {longest} lines of one stream (bound {FAIR_RUN_BOUND}):\n{}",
        tail.join("\n")
    );
}

#[test]
fn logs_without_a_name_merge_every_service_by_time_with_prefixes() {
    // A chain of handshakes through files: a says one, bb two, a three, bb four. Each waits a
    // little after its cue, so that no two lines share a millisecond.
    let env = Env::new(
        r#"
[services.a]
command = ["sh", "-c", "echo one; until [ -f b2 ]; do sleep 0.01; done; sleep 0.05; echo three; touch a3; exec sleep 3600"]
[services.bb]
command = ["sh", "-c", "until [ -f logs/a.out.log ] && grep -q one logs/a.out.log; do sleep 0.01; done; sleep 0.05; echo two >&2; touch b2; until [ -f a3 ]; do sleep 0.01; done; sleep 0.05; echo four; exec sleep 3600"]
[services.quiet]
command = ["sleep", "3600"]
"#,
    );
    let d = Daemon::up(&env);
    let lines = d.wait_logs(&[], 4);
    assert_eq!(
        lines,
        [
            "a     | one",
            "bb    | two",
            "a     | three",
            "bb    | four"
        ],
        "names padded to the longest (quiet), lines in the order they were read"
    );
    // -n N: the last N lines of all; --stream filters.
    assert_eq!(d.logs(&["-n", "2"]), "a     | three\nbb    | four\n");
    assert_eq!(d.logs(&["--stream", "err"]), "bb    | two\n");
    // No colour when stdout is not a terminal (and NO_COLOR is set here anyway).
    assert!(!d.logs(&[]).contains('\x1b'));
}

#[test]
fn logs_follow_without_a_name_follows_every_service() {
    let env = Env::new(
        r#"
[services.a]
command = ["sh", "-c", "echo a-ready; until [ -f go ]; do sleep 0.01; done; echo a-live; exec sleep 3600"]
[services.bb]
command = ["sh", "-c", "until grep -q a-ready logs/a.out.log 2>/dev/null; do sleep 0.01; done; sleep 0.05; echo bb-ready >&2; until [ -f go ]; do sleep 0.01; done; echo bb-live >&2; exec sleep 3600"]
"#,
    );
    let d = Daemon::up(&env);
    d.wait_logs(&[], 2);
    let mut follower = Command::new(common::warden_bin())
        .args(["logs", "-f", "-c"])
        .arg(env.config())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(follower.stdout.take().unwrap());
    // The reads below block: a watchdog ends the follower if the test has not finished in
    // time (dropping `done` without a send, as a panic does, lets it be).
    let (done, watch) = std::sync::mpsc::channel::<()>();
    let follower_pid = follower.id() as i32;
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(WAIT * 3) {
            unsafe { libc::kill(follower_pid, libc::SIGKILL) };
        }
    });
    let mut next = || {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "follower ended");
        line.trim_end().to_owned()
    };
    // The tails first (the follow streams are open before they are read), in time order.
    let first = [next(), next()];
    assert_eq!(first, ["a  | a-ready", "bb | bb-ready"]);
    std::fs::write(env.path("go"), "").unwrap();
    let mut live = [next(), next()];
    live.sort();
    assert_eq!(live, ["a  | a-live", "bb | bb-live"]);
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = done.send(());
    drop(d);
}

#[test]
fn timestamps_show_when_each_line_was_read_whatever_the_file_says() {
    let env = Env::new(
        r#"
[services.t]
command = ["sh", "-c", "echo hello; echo oops >&2; exec sleep 3600"]
"#,
    );
    let d = Daemon::up(&env);
    d.wait_logs(&["t"], 2);
    let is_rfc3339_ms = |s: &str| {
        let b = s.as_bytes();
        s.len() == 24
            && b[4] == b'-'
            && b[10] == b'T'
            && b[19] == b'.'
            && b[23] == b'Z'
            && b.iter()
                .enumerate()
                .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit())
    };
    let text = d.logs(&["t", "--timestamps"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, want) in lines.iter().zip(["hello", "oops"]) {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert!(is_rfc3339_ms(ts), "{line}");
        assert_eq!(rest, want);
    }
    // The same time as the API's `at`.
    let body = d.get("/v1/services/t/logs?n=1");
    assert!(
        body.contains(&format!(
            r#""at":"{}""#,
            lines[1].split_once(' ').unwrap().0
        )),
        "{body}\n{text}"
    );
    // Without a name: after the prefix.
    let all = d.logs(&["--timestamps", "--stream", "out"]);
    let (prefix, rest) = all.trim_end().split_once(" | ").unwrap();
    assert_eq!(prefix, "t");
    let (ts, line) = rest.split_once(' ').unwrap();
    assert!(is_rfc3339_ms(ts), "{all}");
    assert_eq!(line, "hello");
    // The file itself has none (log.timestamps is off).
    assert_eq!(env.read("logs/t.out.log"), "hello\n");
    // Without the flag, none.
    assert_eq!(d.logs(&["t"]), "hello\noops\n");
}

// ---------------------------------------------------------------------------------------
// warden rotate

/// `line 000000001 xxx…` as test-child's `--lines` writes it (newline included).
fn numbered(i: u64, len: usize) -> Vec<u8> {
    let mut line = format!("line {i:09} ").into_bytes();
    line.resize(len - 1, b'x');
    line.push(b'\n');
    line
}

/// `warden rotate ARGS`: its exit code and stdout.
fn rotate(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["rotate"];
    all.extend_from_slice(args);
    let o = env.run(&all);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// Rotations while a service writes as fast as it can: every file is whole lines, and the
/// rotated files and the live one, oldest first, hold every line once, in order.
#[test]
fn rotate_cuts_between_lines_and_loses_nothing_while_a_service_writes() {
    const LINES: u64 = 200_000;
    const LEN: usize = 64;
    let env = Env::new(&format!(
        r#"[services.flood]
command = [{tc}, "--line-len", "{LEN}", "--lines", "{LINES}", "--sleep", "forever"]
[services.flood.log]
keep = 50
max_size = "1GiB"
"#,
        tc = tc()
    ));
    let d = Daemon::up(&env);
    let log = env.path("logs/flood.out.log");
    // The first rotation has something to move.
    wait_for("the first line", WAIT, || {
        (std::fs::metadata(&log).ok()?.len() > 0).then_some(())
    });
    let all_written = LINES * LEN as u64;
    // What the files hold so far, after `rotated` rotations.
    let in_files = |rotated: u32| -> u64 {
        let size = |rel: &str| std::fs::metadata(env.path(rel)).map_or(0, |m| m.len());
        (1..=rotated)
            .map(|n| size(&format!("logs/flood.out.log.{n}")))
            .sum::<u64>()
            + size("logs/flood.out.log")
    };
    // Rotate as often as we can while the lines come (at most 20 times: keep = 50).
    let mut rotated = 0;
    let mut during = 0;
    while rotated < 20 && in_files(rotated) < all_written {
        let (code, out) = rotate(&env, &["flood"]);
        assert_eq!(code, Some(0), "{out}");
        if out.contains("flood: rotated ") {
            rotated += 1;
            during += u32::from(in_files(rotated) < all_written);
        } else {
            assert!(out.contains("is empty, left as it is"), "{out}");
        }
    }
    assert!(rotated >= 1, "nothing was rotated");
    eprintln!("{rotated} rotation(s), {during} of them while the service was writing");
    // Every line arrives; then the files are read oldest first.
    wait_for("every line in the files", WAIT, || {
        (in_files(rotated) >= all_written).then_some(())
    });
    let mut next = 1;
    let mut files: Vec<String> = (1..=rotated)
        .rev()
        .map(|n| format!("logs/flood.out.log.{n}"))
        .collect();
    files.push("logs/flood.out.log".into());
    for f in &files {
        let bytes = std::fs::read(env.path(f)).unwrap();
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "{f} ends inside a line"
        );
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            assert_eq!(
                line,
                numbered(next, LEN).as_slice(),
                "{f}: line {next} is missing, split or out of order"
            );
            next += 1;
        }
    }
    assert_eq!(next - 1, LINES, "every line once");
    assert!(
        !env.path(&format!("logs/flood.out.log.{}", rotated + 1))
            .exists()
    );
    drop(d);
}

/// `warden rotate` without a name rotates every service's files (stderr's too); an empty
/// file is left as it is; `compress = true` ends in `FILE.1.gz`; a file that cannot be
/// written is reported and makes the exit code 1, as does an unknown name.
#[test]
fn rotate_every_service_compressed_empty_and_broken_files() {
    let env = Env::new(&format!(
        r#"[services.a]
command = [{tc}, "--lines", "3", "--stderr", "--lines", "2", "--sleep", "forever"]
[services.a.log]
compress = true
[services.quiet]
command = [{tc}, "--sleep", "forever"]
[services.broken]
command = [{tc}, "--sleep", "forever"]
[services.broken.log]
stdout = "notadir/x.log"
stderr = "stdout"
"#,
        tc = tc()
    ));
    std::fs::write(env.path("notadir"), "a file, not a directory").unwrap();
    let d = Daemon::up(&env);
    d.until_state("quiet", "running");
    d.until_state("broken", "running");
    d.wait_logs(&["a"], 5);
    let o = env.run(&["rotate"]);
    let err = common::assert_fails(&o, 1, "1 of 5 log file(s) could not be rotated");
    let root = env.path("").display().to_string();
    assert!(
        err.contains(&format!(
            "warden: broken: cannot rotate {root}notadir/x.log: cannot open {root}notadir/x.log: "
        )),
        "{err}"
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let dir = env.path("logs").display().to_string();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            format!("a: rotated {dir}/a.out.log to {dir}/a.out.log.1.gz"),
            format!("a: rotated {dir}/a.err.log to {dir}/a.err.log.1.gz"),
            format!("quiet: {dir}/quiet.out.log is empty, left as it is"),
            format!("quiet: {dir}/quiet.err.log is empty, left as it is"),
        ],
        "{out}"
    );
    // Compressed in the background: wait for the file, then read it back.
    let gz = env.path("logs/a.out.log.1.gz");
    let text = wait_for("a.out.log.1.gz", WAIT, || {
        let bytes = std::fs::read(&gz).ok()?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    });
    let want: String = (1..=3)
        .map(|i| String::from_utf8(numbered(i, 100)).unwrap())
        .collect();
    assert_eq!(text, want);
    assert_eq!(std::fs::read(env.path("logs/a.out.log")).unwrap(), b"");
    assert!(!env.path("logs/quiet.out.log.1").exists());
    // The logs in memory are untouched.
    assert_eq!(d.logs(&["a"]).lines().count(), 5);

    let o = env.run(&["rotate", "nosuch"]);
    common::assert_fails(
        &o,
        1,
        "no service named \"nosuch\" (known: a, quiet, broken)",
    );
}
