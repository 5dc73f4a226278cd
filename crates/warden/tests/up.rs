//! End-to-end tests of `warden up` with real processes, signals and files.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Env, WAIT, alive, tc, wait_for, wait_gone};

/// Start times (ms) recorded by `test-child --touch FILE`.
fn start_times(env: &Env, rel: &str) -> Vec<u64> {
    env.lines(rel)
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

/// The number of a `test-child --lines` line (`line 000000042 xxx`).
fn line_number(line: &str) -> u64 {
    let n = line.split_whitespace().nth(1);
    n.and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered line: {line:?}"))
}

#[test]
fn restart_always_restarts_and_counts() {
    let env = Env::new(&format!(
        r#"
[services.flaky]
command = [{tc}, "--touch", "starts", "--exit", "1"]
backoff = {{ initial = "10ms", max = "10ms", jitter = 0.0 }}
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    env.wait_lines("starts", 4);
    let err = w.wait_stderr("restarting in");
    assert!(err.contains("[flaky] exited with code 1"), "{err}");
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(WAIT), Some(0));
}

#[test]
fn on_failure_respects_success_codes_and_never_does_not_restart() {
    let env = Env::new(&format!(
        r#"
[services.ok3]
command = [{tc}, "--touch", "ok3", "--exit", "3"]
restart = "on-failure"
success_codes = [0, 3]

[services.fails]
command = [{tc}, "--touch", "fails", "--exit", "4"]
restart = "on-failure"
backoff = {{ initial = "10ms", jitter = 0.0 }}

[services.once]
command = [{tc}, "--touch", "once", "--exit", "5"]
restart = "never"
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    w.wait_stderr("[ok3] exited with code 3");
    w.wait_stderr("[once] exited with code 5");
    env.wait_lines("fails", 3);
    // The ones not restarted said so; by then they had exactly one start.
    let err = w.wait_stderr("not restarted (restart = never)");
    assert!(
        err.contains("[ok3] exited with code 3")
            && err.contains("not restarted (restart = on-failure)"),
        "{err}"
    );
    assert_eq!(env.lines("ok3").len(), 1);
    assert_eq!(env.lines("once").len(), 1);
    w.signal(libc::SIGINT);
    assert_eq!(w.wait_exit(WAIT), Some(0));
}

/// A warden started with `SIGCHLD` ignored (a parent's `trap '' CHLD` survives `exec`) would
/// have its children reaped by the kernel, their exits never seen: it sets the default first.
#[cfg(target_os = "linux")]
#[test]
fn an_inherited_ignored_sigchld_does_not_hide_exits() {
    use std::os::unix::process::CommandExt;
    let env = Env::new(&format!(
        r#"
[services.once]
command = [{tc}, "--touch", "once", "--exit", "5"]
restart = "never"
"#,
        tc = tc()
    ));
    let mut w = env.up_with(&[], |cmd| {
        // SAFETY: signal() is async-signal-safe; this runs in the child before exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGCHLD, libc::SIG_IGN);
                Ok(())
            });
        }
    });
    w.wait_stderr("[once] exited with code 5");
    w.signal(libc::SIGINT);
    assert_eq!(w.wait_exit(WAIT), Some(0));
}

#[test]
fn backoff_grows_within_jitter_and_resets_after_a_long_run() {
    let env = Env::new(&format!(
        r#"
[services.grow]
command = [{tc}, "--touch", "grow", "--exit", "1"]
backoff = {{ initial = "100ms", max = "2s", factor = 2.0, jitter = 0.1 }}

[services.reset]
command = [{tc}, "--touch", "reset", "--sleep", "300ms", "--exit", "1"]
backoff = {{ initial = "100ms", max = "2s", factor = 2.0, jitter = 0.0, reset_after = "250ms" }}
"#,
        tc = tc()
    ));
    let _w = env.up(&[]);
    env.wait_lines("grow", 5);
    let t = start_times(&env, "grow");
    for (i, pair) in t.windows(2).take(4).enumerate() {
        let gap = pair[1] - pair[0];
        let expected = 100.0 * 2f64.powi(i as i32);
        // Within the jitter below; above, jitter plus the time to start a process on a
        // loaded machine (the exact delays are unit-tested under paused time in the engine).
        assert!(
            gap as f64 >= expected * 0.9 && (gap as f64) <= expected * 1.1 + 600.0,
            "restart {} came after {gap} ms, expected {expected} ms ± 10%: {t:?}",
            i + 1
        );
    }
    // Each run of `reset` lasts 300 ms ≥ reset_after: the delay stays at `initial`. Without
    // the reset the fourth gap would be 300 + 800 ms, above the bound.
    env.wait_lines("reset", 5);
    let t = start_times(&env, "reset");
    for pair in t.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            (390..=1000).contains(&gap),
            "gap {gap} ms: 300 ms run + 100 ms delay expected: {t:?}"
        );
    }
}

#[test]
fn start_limit_puts_the_service_in_failed() {
    let env = Env::new(&format!(
        r#"
[services.crashy]
command = [{tc}, "--touch", "starts", "--exit", "1"]
backoff = {{ initial = "5ms", max = "5ms", jitter = 0.0 }}
start_limit = {{ count = 3, window = "60s" }}
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    let err = w.wait_stderr("[crashy] failed: start limit reached");
    assert!(err.contains("more than 3 starts within"), "{err}");
    assert_eq!(
        env.lines("starts").len(),
        3,
        "exactly the allowed starts happened"
    );
    assert!(
        w.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "warden keeps running"
    );
}

#[test]
fn spawn_errors_are_reported_and_do_not_stop_others() {
    let env = Env::new(&format!(
        r#"
[services.missing]
command = ["/nonexistent/dir/program", "--flag"]
restart = "never"

[services.noperm]
command = ["./not-executable"]
restart = "on-failure"
backoff = {{ initial = "20ms", jitter = 0.0 }}
start_limit = {{ count = 2, window = "1m" }}

[services.fine]
command = [{tc}, "--ready-file", "fine.pid", "--sleep", "forever"]
"#,
        tc = tc()
    ));
    std::fs::write(env.path("not-executable"), "#!/bin/sh\n").unwrap();
    let mut w = env.up(&[]);
    let err = w.wait_stderr("[missing] cannot start");
    assert!(
        err.contains("/nonexistent/dir/program"),
        "names the program: {err}"
    );
    let err = w.wait_stderr("[noperm] failed: start limit reached");
    assert!(err.contains("permission denied"), "says why: {err}");
    let pid = env.wait_pid("fine.pid");
    assert!(alive(pid));
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(WAIT), Some(0));
    wait_gone(pid);
}

#[test]
fn graceful_stop_sends_the_stop_signal_to_the_group() {
    let env = Env::new(&format!(
        r#"
[services.polite]
command = [{tc}, "--ready-file", "polite.pid", "--on-term-write", "polite.term", "--sleep", "forever"]
stop_signal = "TERM"

[services.hup]
command = [{tc}, "--ready-file", "hup.pid", "--sleep", "forever"]
stop_signal = "HUP"
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    let p1 = env.wait_pid("polite.pid");
    let p2 = env.wait_pid("hup.pid");
    w.signal(libc::SIGINT);
    assert_eq!(w.wait_exit(WAIT), Some(0));
    assert_eq!(env.read("polite.term").trim(), "term");
    assert!(!alive(p1) && !alive(p2));
    let err = w.stderr();
    assert!(
        err.contains("[hup] stopped") && err.contains("signal 1"),
        "{err}"
    );
}

#[test]
fn stop_command_runs_instead_of_the_signal() {
    let env = Env::new(&format!(
        r#"
[services.web]
command = [{tc}, "--ready-file", "web.pid", "--ignore-term", "--sleep", "forever"]
stop_command = ["sh", "-c", "echo asked > stopcmd.ran; kill -KILL $WARDEN_PID"]
stop_timeout = "20s"
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    let pid = env.wait_pid("web.pid");
    let t = Instant::now();
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(WAIT), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stop_command ended it, not the timeout"
    );
    assert_eq!(env.read("stopcmd.ran").trim(), "asked");
    assert!(!alive(pid));
}

#[test]
fn a_child_ignoring_term_is_killed_after_stop_timeout_with_its_grandchild() {
    let env = Env::new(&format!(
        r#"
[services.stubborn]
command = [{tc}, "--ready-file", "s.pid", "--ignore-term", "--spawn-grandchild", "gc.pid", "--sleep", "forever"]
stop_timeout = "700ms"
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    let pid = env.wait_pid("s.pid");
    let gc = env.wait_pid("gc.pid");
    // The exact timing (stop_timeout, then the kill) is unit-tested in the engine under
    // paused time; here: the real tree is gone, and the kill is reported.
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(WAIT), Some(0));
    assert!(!alive(pid) && !alive(gc), "child and grandchild are gone");
    assert!(
        w.stderr().contains("did not stop within 700ms; killing"),
        "{}",
        w.stderr()
    );
}

#[test]
fn a_double_forked_daemon_does_not_outlive_warden() {
    let env = Env::new(&format!(
        r#"
[services.daemon]
command = [{tc}, "--double-fork", "daemon.pid", "--exit", "0"]
restart = "never"
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    let daemon = env.wait_pid("daemon.pid");
    // The launcher exited 0 and left it: it is adopted as the main process.
    w.wait_stderr(&format!("[daemon] daemonized: following pid {daemon}"));
    w.signal(libc::SIGINT);
    assert_eq!(w.wait_exit(WAIT), Some(0));
    assert!(!alive(daemon), "the daemonized grandchild was ended");
}

#[cfg(target_os = "linux")]
#[test]
fn restarts_leave_no_zombies() {
    let env = Env::new(&format!(
        r#"
[services.blinker]
command = [{tc}, "--touch", "starts", "--spawn-grandchild", "gc.pid", "--exit", "0"]
backoff = {{ initial = "10ms", max = "10ms", jitter = 0.0 }}
daemon = false
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    env.wait_lines("starts", 5);
    let pid = w.pid();
    // Every exited child and every orphaned grandchild is reaped by warden.
    wait_for("no zombie children of warden", WAIT, || {
        common::zombie_children(pid).is_empty().then_some(())
    });
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(WAIT), Some(0));
}

#[test]
fn a_second_warden_on_the_same_config_refuses() {
    let env = Env::new(&format!(
        "[services.s]\ncommand = [{tc}, \"--ready-file\", \"s.pid\", \"--sleep\", \"forever\"]\n",
        tc = tc()
    ));
    let w = env.up(&[]);
    env.wait_pid("s.pid");
    let out = env.run(&["up"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("already running (pid {})", w.pid())),
        "{err}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn after_sigkill_children_die_and_the_next_warden_ends_the_rest() {
    let env = Env::new(&format!(
        r#"
[services.s]
command = [{tc}, "--ready-file", "s.pid", "--spawn-grandchild", "gc.pid", "--sleep", "forever"]
restart = "never"
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    let child = env.wait_pid("s.pid");
    let gc = env.wait_pid("gc.pid");
    // A tree in a cgroup of its own is not recorded: the next warden finds it through the
    // instance's cgroups. Without one, the group record is what it goes by.
    let in_cgroup = std::fs::read_to_string(format!("/proc/{child}/cgroup"))
        .unwrap_or_default()
        .contains("/s.service");
    assert_eq!(
        env.path(".warden/run/svc-s.json").exists(),
        !in_cgroup,
        "the record, with a cgroup: {in_cgroup}"
    );
    w.signal(libc::SIGKILL);
    w.wait_exit(WAIT);
    // The direct child dies at once with its parent (parent-death signal).
    wait_gone(child);
    // The next warden ends the leftovers of the group before starting anything.
    std::fs::remove_file(env.path("s.pid")).unwrap();
    let mut w2 = env.up(&[]);
    let err = w2.wait_stderr("[s] started");
    wait_gone(gc);
    assert!(err.contains("left behind by a previous warden"), "{err}");
}

/// A warden that stopped and reaped everything says so in its state dir; the next one takes
/// the mark and, finding it, does not read every process's environment for leftovers. A
/// killed warden leaves no mark.
#[cfg(target_os = "linux")]
#[test]
fn a_clean_stop_leaves_a_mark_that_the_next_warden_takes() {
    let env = Env::new(&format!(
        r#"
[services.s]
command = [{tc}, "--sleep", "forever"]
"#,
        tc = tc()
    ));
    let mark = env.path(".warden/run/clean-exit");
    let mut w = env.up(&[]);
    w.wait_stderr("[s] started");
    assert!(!mark.exists(), "no mark while warden runs");
    w.signal(libc::SIGTERM);
    w.wait_exit(WAIT);
    assert!(mark.exists(), "a clean stop leaves the mark");
    let mut w2 = env.up(&[]);
    w2.wait_stderr("[s] started");
    assert!(!mark.exists(), "the next warden takes it");
    w2.signal(libc::SIGKILL);
    w2.wait_exit(WAIT);
    assert!(!mark.exists(), "a killed warden leaves none");
}

#[test]
fn output_reaches_the_files_whole() {
    let env = Env::new(&format!(
        r#"
[services.talk]
command = [{tc}, "--lines", "3", "--invalid-utf8", "--no-newline", "tail-without-newline", "--exit", "0"]
restart = "never"

[services.err]
command = [{tc}, "--stderr", "--lines", "2", "--exit", "0"]
restart = "never"
"#,
        tc = tc()
    ));
    let mut w = env.up(&["--attach"]);
    w.wait_stderr("[talk] exited");
    w.wait_stderr("[err] exited");
    let out = wait_for("talk's log", WAIT, || {
        let b = std::fs::read(env.path("logs/talk.out.log")).ok()?;
        b.ends_with(b"tail-without-newline\n").then_some(b)
    });
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        out.windows(3).any(|w| w == [0xff, 0xfe, b'\n']),
        "invalid UTF-8 passes unchanged"
    );
    assert_eq!(env.lines("logs/err.err.log").len(), 2);
    wait_for("attached output", WAIT, || {
        w.stdout()
            .contains("talk | tail-without-newline")
            .then_some(())
    });
}

#[test]
fn a_flood_of_a_million_lines_loses_nothing() {
    let env = Env::new(&format!(
        r#"
[services.flood]
command = [{tc}, "--flood", "1000000", "--exit", "0"]
restart = "never"
[services.flood.log]
max_size = "20MiB"
keep = 100
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    w.wait_stderr("[flood] exited with code 0");
    // Read back every file, oldest first, and check the numbering.
    let mut files: Vec<_> = std::fs::read_dir(env.path("logs"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("flood.out.log")
        })
        .collect();
    let rank = |p: &std::path::PathBuf| -> u32 {
        p.extension()
            .and_then(|e| e.to_str())
            .and_then(|e| e.parse().ok())
            .unwrap_or(0)
    };
    files.sort_by_key(|p| std::cmp::Reverse(rank(p)));
    assert!(files.len() > 3, "rotation happened: {files:?}");
    let mut expected = 1u64;
    for f in &files {
        let data = std::fs::read(f).unwrap();
        for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let text = std::str::from_utf8(line).unwrap();
            let n: u64 = text
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse()
                .unwrap_or_else(|_| panic!("bad line {text:?}"));
            assert_eq!(
                n,
                expected,
                "line {expected} lost, duplicated or split (in {})",
                f.display()
            );
            expected += 1;
        }
    }
    assert_eq!(expected - 1, 1_000_000);
}

#[test]
fn the_child_gets_its_env_and_cwd() {
    let env = Env::new(&format!(
        r#"
[services.envy]
command = [{tc}, "--env", "WARDEN_SERVICE", "--env", "GREETING", "--env", "FROM_FILE", "--cwd", "--exit", "0"]
restart = "never"
cwd = "sub"
env = {{ GREETING = "${{WARDEN_TEST_GREETING:-hello}}" }}
env_file = "vars.env"
"#,
        tc = tc()
    ));
    std::fs::create_dir(env.path("sub")).unwrap();
    std::fs::write(env.path("vars.env"), "# comment\nFROM_FILE=filed\n").unwrap();
    let mut w = env.up(&[]);
    w.wait_stderr("[envy] exited");
    let out = wait_for("envy's output", WAIT, || {
        let s = env.read("logs/envy.out.log");
        (s.lines().count() >= 4).then_some(s)
    });
    assert!(out.contains("WARDEN_SERVICE=envy"), "{out}");
    assert!(out.contains("GREETING=hello"), "{out}");
    assert!(out.contains("FROM_FILE=filed"), "{out}");
    assert!(
        out.contains(&env.path("sub").display().to_string()),
        "{out}"
    );
}

#[test]
fn utf16_output_is_transcoded_to_utf8() {
    let env = Env::new(
        r#"
[services.wide]
command = ["sh", "-c", "printf 'h\\000\\351\\000\\n\\000=\\330\\000\\336\\n\\000'"]
restart = "never"
[services.wide.log]
encoding = "utf-16le"
"#,
    );
    let mut w = env.up(&[]);
    w.wait_stderr("[wide] exited with code 0");
    let text = wait_for("wide's log", WAIT, || {
        let s = env.read("logs/wide.out.log");
        (s.lines().count() >= 2).then_some(s)
    });
    assert_eq!(text, "hé\n😀\n");
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let env = Env::new(&format!(
        r#"
[services.stubborn]
command = [{tc}, "--ready-file", "s.pid", "--ignore-term", "--sleep", "forever"]
stop_timeout = "60s"
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    let pid = env.wait_pid("s.pid");
    let t = Instant::now();
    w.signal(libc::SIGINT);
    w.wait_stderr("stopping every service");
    w.signal(libc::SIGINT);
    assert_eq!(w.wait_exit(WAIT), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "did not wait for the 60 s stop_timeout"
    );
    assert!(!alive(pid));
    assert!(
        w.stderr().contains("killing every service now"),
        "{}",
        w.stderr()
    );
}

#[test]
fn shutdown_timeout_bounds_the_whole_shutdown_then_kills_what_is_left() {
    let env = Env::new(&format!(
        r#"
[warden]
shutdown_timeout = "1s"

[services.stubborn]
command = [{tc}, "--ready-file", "s.pid", "--ignore-term", "--spawn-grandchild", "gc.pid", "--sleep", "forever"]
stop_timeout = "60s"
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    let pid = env.wait_pid("s.pid");
    let gc = env.wait_pid("gc.pid");
    let t = Instant::now();
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(WAIT), Some(0));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "waited shutdown_timeout first ({took:?})"
    );
    assert!(
        took < Duration::from_secs(10),
        "did not wait for the 60 s stop_timeout ({took:?})"
    );
    assert!(!alive(pid) && !alive(gc), "child and grandchild are gone");
    assert!(
        w.stderr()
            .contains("shutdown_timeout passed; killing every service now"),
        "{}",
        w.stderr()
    );
}

#[test]
fn stderr_stdout_joins_both_streams_in_one_file() {
    let env = Env::new(&format!(
        r#"
[services.both]
command = [{tc}, "--lines", "2", "--stderr", "--lines", "3", "--exit", "0"]
restart = "never"

[services.both.log]
stderr = "stdout"
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    w.wait_stderr("[both] exited");
    let lines = env.wait_lines("logs/both.out.log", 5);
    // Two pipes: their relative order is not defined; each line arrives once.
    let mut numbers: Vec<u64> = lines.iter().map(|l| line_number(l)).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 1, 2, 2, 3], "{lines:?}");
    assert!(
        !env.path("logs/both.err.log").exists(),
        "no separate stderr file"
    );
}

#[test]
fn compress_true_gzips_rotated_files_and_loses_no_line() {
    use std::io::Read;
    let env = Env::new(&format!(
        r#"
[services.big]
command = [{tc}, "--lines", "300", "--exit", "0"]
restart = "never"

[services.big.log]
max_size = "1KiB"
keep = 2
compress = true
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    w.wait_stderr("[big] exited");
    let gunzip = |rel: &str| -> Option<String> {
        let f = std::fs::File::open(env.path(rel)).ok()?;
        let mut s = String::new();
        flate2::read::GzDecoder::new(f)
            .read_to_string(&mut s)
            .ok()?;
        Some(s)
    };
    // Compression happens off the hot path: a rotated file waits as `big.out.log.rotating-N`
    // until it is compressed (and the `.gz` files are shifted). Wait until none is left.
    let rotated = wait_for("the rotated files to be compressed", WAIT, || {
        let pending = std::fs::read_dir(env.path("logs"))
            .ok()?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".rotating-"));
        let plain = (1..=3).any(|i| env.path(&format!("logs/big.out.log.{i}")).exists());
        if pending || plain {
            return None;
        }
        Some((
            gunzip("logs/big.out.log.2.gz")?,
            gunzip("logs/big.out.log.1.gz")?,
        ))
    });
    assert!(!env.path("logs/big.out.log.3.gz").exists(), "keep = 2");
    // The two rotated files and the current one hold the newest lines, in order, ending
    // with the last one.
    let all = format!("{}{}{}", rotated.0, rotated.1, env.read("logs/big.out.log"));
    let numbers: Vec<u64> = all.lines().map(line_number).collect();
    assert_eq!(numbers.last(), Some(&300), "{all}");
    assert!(
        numbers.windows(2).all(|p| p[1] == p[0] + 1),
        "consecutive lines across the compressed files: {numbers:?}"
    );
}

// Issue 9: `exit_actions = { N = "stop-warden" }` ends warden with a failure code.
#[test]
fn an_exit_action_stop_warden_ends_warden_with_a_failure() {
    let env = Env::new(&format!(
        r#"
[services.tool]
command = [{tc}, "--sleep", "200ms", "--exit", "2"]
exit_actions = {{ 2 = "stop-warden" }}

[services.other]
command = [{tc}, "--ready-file", "other.pid", "--sleep", "forever"]
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    let other = env.wait_pid("other.pid");
    assert_eq!(w.wait_exit(WAIT), Some(1), "{}", w.stderr());
    let err = w.stderr();
    assert!(
        err.contains("exit_actions: stop-warden: stopping warden"),
        "{err}"
    );
    assert!(
        err.contains("warden: tool exited with code 2; its exit_actions stop warden"),
        "{err}"
    );
    assert!(!alive(other), "the other service was stopped too");
}

// Issue 9: `when_all_ended = "stop"` ends warden once no service will run again.
#[test]
fn when_all_ended_stop_exits_0_after_one_shot_jobs_succeed_and_1_if_one_failed() {
    for (code, want) in [(0, 0), (3, 1)] {
        let env = Env::new(&format!(
            r#"
[warden]
when_all_ended = "stop"

[services.job]
command = [{tc}, "--sleep", "100ms", "--exit", "{code}"]
restart = "never"

[services.job2]
command = [{tc}, "--exit", "0"]
restart = "never"
"#,
            tc = tc()
        ));
        let mut w = env.up(&[]);
        assert_eq!(w.wait_exit(WAIT), Some(want), "code {code}: {}", w.stderr());
        assert!(
            w.stderr()
                .contains("every service ended (when_all_ended = \"stop\")"),
            "{}",
            w.stderr()
        );
    }
}

// Issue 11: `warden.log` (warden's own log with `up -d`) rotates like a service log.
#[test]
fn warden_log_rotates_at_its_max_size_and_keeps_keep_files() {
    let env = Env::new(&format!(
        r#"
[warden]
log = {{ max_size = "1KiB", keep = 2 }}

[services.loop]
command = [{tc}, "--exit", "1"]
backoff = {{ initial = "5ms", max = "5ms" }}
"#,
        tc = tc()
    ));
    let d = common::Daemon::up(&env);
    let log = env.path(".warden/warden.log");
    let numbered = |n: u32| env.path(&format!(".warden/warden.log.{n}"));
    // Each crash writes a few event lines: two rotations take well under a second.
    wait_for("warden.log.2", WAIT, || numbered(2).exists().then_some(()));
    // Then one more rotation, so that the oldest was shifted out at least once.
    let oldest = std::fs::read(numbered(2)).unwrap();
    wait_for("another rotation", WAIT, || {
        (std::fs::read(numbered(2)).unwrap_or_default() != oldest).then_some(())
    });
    drop(d);
    assert!(!numbered(3).exists(), "keep = 2: no warden.log.3");
    for path in [log.clone(), numbered(1), numbered(2)] {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.len() <= 1024,
            "{} is {} bytes",
            path.display(),
            text.len()
        );
        assert!(text.ends_with('\n'), "{}: whole lines only", path.display());
        for line in text.lines() {
            // `2026-01-01T00:00:00.000Z [loop] ...`: every line an event with its time.
            assert!(line.len() > 25 && line.as_bytes()[23] == b'Z', "{line:?}");
            assert!(line[25..].starts_with('['), "{line:?}");
        }
    }
    let rotated = std::fs::read_to_string(numbered(1)).unwrap();
    assert!(rotated.contains("[loop] exited with code 1"), "{rotated}");
    let now = std::fs::read_to_string(&log).unwrap();
    assert!(now.contains("[warden] all services stopped"), "{now}");
}

// Issue 11: `warden up --log-format json`: every line one JSON object, output and events.
#[test]
fn log_format_json_prints_one_object_per_line_for_output_and_events() {
    let env = Env::new(&format!(
        r#"
[services.talk]
command = [{tc}, "--lines", "2", "--stderr", "--lines", "1", "--stdout", "--ready-file", "talk.pid", "--sleep", "forever"]
"#,
        tc = tc()
    ));
    let mut w = env.up(&["--log-format", "json"]);
    env.wait_pid("talk.pid");
    wait_for("the err line", WAIT, || {
        w.stdout().contains("\"stream\":\"err\"").then_some(())
    });
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(WAIT), Some(0), "{}", w.stderr());
    let out = w.stdout();
    let mut outputs = Vec::new();
    let mut events = Vec::new();
    for line in out.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}\n{out}"));
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let time = obj["time"].as_str().unwrap();
        assert!(time.len() == 24 && time.ends_with('Z'), "{line}");
        if keys == ["line", "service", "stream", "time"] {
            outputs.push(v.clone());
        } else {
            assert_eq!(keys, ["event", "level", "service", "time"], "{line}");
            assert!(
                ["info", "warn", "error"].contains(&obj["level"].as_str().unwrap()),
                "{line}"
            );
            events.push(v.clone());
        }
    }
    let lines: Vec<(&str, &str)> = outputs
        .iter()
        .map(|v| (v["stream"].as_str().unwrap(), v["line"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines
            .iter()
            .filter(|(s, l)| *s == "err" && l.starts_with("line "))
            .count(),
        1,
        "{out}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|(s, l)| *s == "out" && l.starts_with("line "))
            .count(),
        2,
        "{out}"
    );
    assert!(outputs.iter().all(|v| v["service"] == "talk"), "{out}");
    let said = |service: &str, text: &str| {
        events
            .iter()
            .any(|v| v["service"] == service && v["event"].as_str().unwrap().contains(text))
    };
    assert!(said("talk", "started"), "{out}");
    assert!(said("warden", "supervising 1 service(s)"), "{out}");
    assert!(said("warden", "all services stopped"), "{out}");
    assert!(w.stderr().is_empty(), "nothing on stderr: {}", w.stderr());
}

// Issue 9: `up -d --wait` returns once every autostart service is up (`running`, after
// `min_uptime`), and exits 1 naming those that are not.
#[test]
fn up_d_wait_returns_once_every_service_is_up() {
    let env = Env::new(&format!(
        r#"
[services.web]
command = [{tc}, "--sleep", "forever"]
min_uptime = "700ms"

[services.api]
command = [{tc}, "--sleep", "forever"]
min_uptime = "300ms"

[services.manual]
command = [{tc}, "--sleep", "forever"]
autostart = false
"#,
        tc = tc()
    ));
    let o = env.run(&["up", "-d", "--wait"]);
    let d = common::Daemon { env: &env };
    assert_eq!(o.status.code(), Some(0), "{}", common::show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("warden is running (pid "), "{out}");
    assert!(out.contains("2 service(s) up"), "{out}");
    // Up already, not merely spawned: without --wait they would still be `starting`.
    assert_eq!(d.service("web")["state"], "running");
    assert_eq!(d.service("api")["state"], "running");
    assert_eq!(d.service("manual")["state"], "stopped");
}

#[test]
fn up_d_wait_exits_1_with_the_reason_of_each_service_not_up() {
    let env = Env::new(&format!(
        r#"
[services.ok]
command = [{tc}, "--sleep", "forever"]
min_uptime = "100ms"

[services.crash]
command = [{tc}, "--exit", "3"]
backoff = {{ initial = "1h", max = "1h" }}

[services.slow]
command = [{tc}, "--sleep", "forever"]
min_uptime = "1h"
start_timeout = "2h"
"#,
        tc = tc()
    ));
    let started = Instant::now();
    let o = env.run(&["up", "-d", "--wait", "--wait-timeout", "1500ms"]);
    let _down = common::Daemon { env: &env };
    let err = common::assert_fails(&o, 1, "2 service(s) not up:");
    assert!(
        err.contains("  crash: backoff: exited with code 3"),
        "{}",
        common::show(&o)
    );
    assert!(
        err.contains("  slow: still starting after 1.5s"),
        "{}",
        common::show(&o)
    );
    assert!(!err.contains("ok:"), "{err}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "bounded by --wait-timeout: {took:?}"
    );
    // `up -d` without --wait is unchanged: it returns at once, and exits 0.
    let o = env.run(&["down"]);
    assert_eq!(o.status.code(), Some(0), "{}", common::show(&o));
    let o = env.run(&["up", "-d"]);
    assert_eq!(o.status.code(), Some(0), "{}", common::show(&o));
    let o = env.run(&["up", "-d", "--wait-timeout", "1s"]);
    assert_eq!(o.status.code(), Some(2), "--wait-timeout needs --wait");
}

// Issue 9: a service stopped by hand stays stopped across down/up, `up` says so, and
// `up --reset` forgets it.
#[test]
fn up_says_which_services_stay_stopped_by_hand_and_reset_forgets_them() {
    let env = Env::new(&format!(
        r#"
[services.api]
command = [{tc}, "--sleep", "forever"]
min_uptime = "0s"

[services.web]
command = [{tc}, "--sleep", "forever"]
min_uptime = "0s"
"#,
        tc = tc()
    ));
    {
        let d = common::Daemon::up(&env);
        d.until_state("api", "running");
        let o = env.run(&["stop", "api"]);
        assert_eq!(o.status.code(), Some(0), "{}", common::show(&o));
    }
    let log = ".warden/warden.log";
    let said = |text: &str| env.read(log).lines().filter(|l| l.contains(text)).count();
    {
        let d = common::Daemon::up(&env);
        assert_eq!(d.service("api")["state"], "stopped");
        let line = env
            .read(log)
            .lines()
            .find(|l| l.contains("[api] stopped by hand on "))
            .map_or_else(
                || panic!("no hand-stopped line:\n{}", env.read(log)),
                str::to_owned,
            );
        // `[api] stopped by hand on 2026-…Z; warden start api starts it`
        let rest = line.split_once("[api] stopped by hand on ").unwrap().1;
        let (at, hint) = rest.split_once("; ").unwrap();
        assert!(at.len() == 24 && at.ends_with('Z'), "{line}");
        assert_eq!(hint, "warden start api starts it");
        assert_eq!(said("[web] stopped by hand"), 0);
    }
    {
        let o = env.run(&["up", "-d", "--reset"]);
        assert_eq!(o.status.code(), Some(0), "{}", common::show(&o));
        let d = common::Daemon { env: &env };
        d.until_state("api", "running");
        assert_eq!(said("forgot the services stopped by hand: api"), 1);
    }
    // Forgotten for good: the next `up` starts it and says nothing of it.
    let d = common::Daemon::up(&env);
    d.until_state("api", "running");
    assert_eq!(
        said("[api] stopped by hand on "),
        1,
        "only the first up said so"
    );
}

// Issue 11: a launchd job's stderr is `<state_dir>/warden.log` itself (`StandardErrorPath`):
// a foreground `warden up` that finds it so rotates it too.
#[test]
fn a_foreground_up_whose_stderr_is_warden_log_rotates_it() {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let env = Env::new(&format!(
        r#"
[warden]
log = {{ max_size = "1KiB", keep = 1 }}

[services.loop]
command = [{tc}, "--exit", "1"]
backoff = {{ initial = "5ms", max = "5ms" }}
"#,
        tc = tc()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(env.path(".warden"))
        .unwrap();
    let log = env.path(".warden/warden.log");
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)
        .unwrap();
    let mut child = std::process::Command::new(common::warden_bin())
        .args(["up", "-c"])
        .arg(env.config())
        .current_dir(env.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let rotated = env.path(".warden/warden.log.1");
    let found = wait_for("warden.log.1", WAIT, || {
        if rotated.exists() {
            return Some(true);
        }
        child.try_wait().unwrap().map(|_| false)
    });
    // SAFETY: plain kill(2) of our child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = wait_for("warden to exit", WAIT, || child.try_wait().unwrap());
    assert!(found, "warden exited first: {status}");
    assert_eq!(status.code(), Some(0));
    for path in [&log, &rotated] {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            text.len() <= 1024,
            "{}: {} bytes",
            path.display(),
            text.len()
        );
    }
    assert!(!env.path(".warden/warden.log.2").exists(), "keep = 1");
}
