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
