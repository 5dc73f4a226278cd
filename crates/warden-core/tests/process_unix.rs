//! The Unix process layer against real processes: the `test-child` binary, which these tests
//! build themselves once (`cargo build -p test-child`, run through `process::spawn` since the
//! global reaper owns `waitpid` in this process).
//!
//! Tests that act on the whole process (`kill_all_descendants`, `wait_no_children`) or need a
//! parent to die (the parent-death signal) re-run this test binary as a helper process: the
//! `helper_*` tests are ignored unless `WARDEN_TEST_HELPER` names them.
#![cfg(unix)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;
use tokio::time::{Instant, timeout};
use warden_core::model::StopMethod;
#[cfg(target_os = "linux")]
use warden_core::process::GroupRecord;
use warden_core::process::{
    self, Child, ExitStatus, Output, Signal, SpawnError, SpawnSpec, StepOutcome, StopStep,
};

const LONG: Duration = Duration::from_secs(20);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Build `test-child` once per test process and return its path.
async fn test_child() -> &'static Path {
    static BIN: OnceCell<PathBuf> = OnceCell::const_new();
    BIN.get_or_init(|| async {
        process::init_supervisor().expect("init_supervisor");
        let root = workspace_root();
        let spec = SpawnSpec {
            program: env!("CARGO").into(),
            args: ["build", "-p", "test-child", "--quiet"]
                .map(OsString::from)
                .into(),
            cwd: root.clone(),
            clear_env: false,
            env: Vec::new(),
            output: Output::Separate,
            credentials: warden_core::process::Credentials::default(),
            confinement: None,
        };
        let (status, out, err) = run_to_end(&spec).await;
        assert_eq!(
            status,
            ExitStatus::Code(0),
            "cargo build -p test-child failed:\n{out}\n{err}"
        );
        let bin =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        bin.join("debug").join("test-child")
    })
    .await
}

/// Spawn, read stdout and stderr to the end, wait.
async fn run_to_end(spec: &SpawnSpec) -> (ExitStatus, String, String) {
    let mut child = process::spawn(spec).expect("spawn");
    let (out, err) = read_both(&mut child).await;
    let status = timeout(LONG, child.wait()).await.expect("exit in time");
    (
        status,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

async fn read_both(child: &mut Child) -> (Vec<u8>, Vec<u8>) {
    let mut stdout = child.take_stdout().expect("stdout piped");
    let mut stderr = child.take_stderr().expect("stderr piped");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (a, b) = timeout(LONG, async {
        tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err))
    })
    .await
    .expect("output ends in time");
    a.expect("read stdout");
    b.expect("read stderr");
    (out, err)
}

/// A spec running `program` with `args` in `dir`, output not captured.
fn spec_for(program: &Path, dir: &Path, args: &[&str]) -> SpawnSpec {
    SpawnSpec {
        program: program.into(),
        args: args.iter().map(OsString::from).collect(),
        cwd: dir.to_owned(),
        clear_env: false,
        env: Vec::new(),
        output: Output::Null,
        credentials: warden_core::process::Credentials::default(),
        confinement: None,
    }
}

/// A spec running test-child with `args` in `dir`.
async fn spec(dir: &Path, args: &[&str]) -> SpawnSpec {
    spec_for(test_child().await, dir, args)
}

/// Spawn test-child with `args` in `dir`.
async fn start(dir: &Path, args: &[&str]) -> Child {
    process::spawn(&spec(dir, args).await).expect("spawn")
}

/// Spawn `spec` with `--ready-file DIR/ready_name --sleep forever` after its arguments, and
/// wait for the ready file.
async fn start_ready(mut spec: SpawnSpec, ready_name: &str) -> (Child, Cleanup) {
    let ready = spec.cwd.join(ready_name);
    spec.args.extend([
        "--ready-file".into(),
        ready.clone().into(),
        "--sleep".into(),
        "forever".into(),
    ]);
    let child = process::spawn(&spec).expect("spawn");
    let cleanup = Cleanup(vec![child.pid()]);
    read_pid_file(&ready).await;
    (child, cleanup)
}

/// Spawn `spec` with `FLAG DIR/pid_name` after its arguments, where `FLAG`
/// (`--spawn-grandchild`, `--double-fork`) starts a descendant that writes its pid there, then
/// `--ready-file --sleep forever`: the ready file says the flag is done (for `--double-fork`:
/// the intermediate is reaped, so only the main process and the daemon are left). Returns the
/// descendant's pid; the cleanup covers both.
async fn start_with_descendant(
    mut spec: SpawnSpec,
    flag: &str,
    pid_name: &str,
) -> (Child, Cleanup, u32) {
    let pid_file = spec.cwd.join(pid_name);
    spec.args.extend([flag.into(), pid_file.clone().into()]);
    let (child, mut cleanup) = start_ready(spec, &format!("{pid_name}.ready")).await;
    let pid = read_pid_file(&pid_file).await;
    cleanup.0.push(pid);
    (child, cleanup, pid)
}

#[cfg(target_os = "linux")]
/// A spec whose environment carries the tags the engine sets (unique per test).
async fn tagged_spec(dir: &Path, service: &str, args: &[&str]) -> SpawnSpec {
    let mut s = spec(dir, args).await;
    s.env
        .push(("WARDEN_INSTANCE".into(), instance_marker(dir).into()));
    s.env.push(("WARDEN_SERVICE".into(), service.into()));
    s
}

#[cfg(target_os = "linux")]
fn instance_marker(dir: &Path) -> String {
    format!(
        "test-{}",
        dir.file_name().expect("temp dir name").to_string_lossy()
    )
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("warden-proc-")
        .tempdir()
        .expect("temp dir")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Deadline polling for what another process does (a file it writes, its own end), which
/// warden has no event for: `check` until it gives a value, panicking with `failure()` after
/// [`LONG`].
async fn poll_for<T>(mut check: impl FnMut() -> Option<T>, failure: impl Fn() -> String) -> T {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{}", failure());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The pid in a pid file written by a test child, once it is there.
async fn read_pid_file(path: &Path) -> u32 {
    poll_for(
        || std::fs::read_to_string(path).ok()?.trim().parse().ok(),
        || format!("no pid in {} in time", path.display()),
    )
    .await
}

/// Is `pid` gone for good (reaped: no zombie left)?
fn gone(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        !Path::new(&format!("/proc/{pid}")).exists()
    } else {
        // SAFETY: signal 0 only checks existence.
        unsafe { libc::kill(pid as libc::pid_t, 0) != 0 }
    }
}

async fn assert_gone(pid: u32, what: &str) {
    poll_for(
        || gone(pid).then_some(()),
        || format!("{what} (pid {pid}) still there: {}", proc_state(pid)),
    )
    .await;
}

fn proc_state(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|_| "?".into())
}

#[cfg(target_os = "linux")]
fn stat_field(pid: u32, field: usize) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(field - 3)?.parse().ok()
}

/// Kills a child's tree if a test fails half-way.
struct Cleanup(Vec<u32>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in &self.0 {
            // SAFETY: plain syscalls on pids this test started.
            unsafe {
                libc::kill(-(*pid as libc::pid_t), libc::SIGKILL);
                libc::kill(*pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_is_reported_and_wait_repeats() {
    let dir = temp_dir();
    let mut child = start(dir.path(), &["--exit", "3"]).await;
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Code(3)
    );
    assert_eq!(
        timeout(Duration::from_millis(100), child.wait())
            .await
            .expect("at once"),
        ExitStatus::Code(3)
    );
    assert_eq!(child.exit_status(), Some(ExitStatus::Code(3)));
    assert!(
        timeout(LONG, child.wait_tree_gone(LONG))
            .await
            .expect("in time")
    );
    // Signalling a finished child is not an error.
    child.signal(Signal::Term).expect("signal after exit");
    child.kill_tree().expect("kill_tree after exit");
    assert_gone(child.pid(), "main").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_statuses_and_term_handlers() {
    let dir = temp_dir();
    let (mut child, _cleanup) = start_ready(spec(dir.path(), &[]).await, "ready").await;
    assert_eq!(child.exit_status(), None);
    child.signal(Signal::Term).expect("signal");
    let status = timeout(LONG, child.wait()).await.expect("exits");
    assert_eq!(status, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(
        status.to_string(),
        format!("signal {} (SIGTERM)", libc::SIGTERM)
    );

    let args = ["--on-term-exit", "7"];
    let (mut child, _cleanup2) = start_ready(spec(dir.path(), &args).await, "ready2").await;
    child.signal(Signal::Term).expect("signal");
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Code(7)
    );

    let note = dir.path().join("note");
    let args = ["--on-term-write", path_str(&note)];
    let (mut child, _cleanup3) = start_ready(spec(dir.path(), &args).await, "ready3").await;
    child.signal(Signal::Term).expect("signal");
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Code(0)
    );
    assert_eq!(
        std::fs::read_to_string(&note).expect("note written"),
        "term"
    );

    let (mut child, _cleanup4) = start_ready(spec(dir.path(), &[]).await, "ready4").await;
    child.signal(Signal::Usr1).expect("signal");
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Signal(libc::SIGUSR1)
    );
}

/// The portable stop on Unix: the steps are the stop signal alone, whatever `stop_method`
/// says; the Windows steps do not apply and send nothing (a SIGINT would have ended the child
/// before the SIGTERM reached its handler); the signal reaches the tree, and counts as applied
/// once the tree is gone too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_steps_send_the_stop_signal_and_windows_steps_do_not_apply() {
    let dir = temp_dir();
    let args = ["--on-term-exit", "7"];
    let (mut child, _cleanup) = start_ready(spec(dir.path(), &args).await, "ready").await;
    for step in [StopStep::CtrlC, StopStep::WmClose] {
        let outcome = timeout(LONG, child.apply_stop_step(step))
            .await
            .expect("at once");
        assert_eq!(
            outcome.expect("no error"),
            StepOutcome::NotApplicable,
            "{step}"
        );
    }
    let steps = process::stop_steps(
        Signal::Term,
        &[
            StopMethod::CtrlC,
            StopMethod::WmClose,
            StopMethod::Terminate,
        ],
    );
    assert_eq!(steps, [StopStep::Signal(Signal::Term)]);
    for step in steps {
        let outcome = timeout(LONG, child.apply_stop_step(step))
            .await
            .expect("at once");
        assert_eq!(outcome.expect("sent"), StepOutcome::Applied);
    }
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Code(7)
    );
    assert!(child.wait_tree_gone(LONG).await);
    let again = child.apply_stop_step(StopStep::Signal(Signal::Term)).await;
    assert_eq!(
        again.expect("a gone group is no error"),
        StepOutcome::Applied
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_errors_name_the_cause() {
    let dir = temp_dir();
    let base = spec(dir.path(), &[]).await;

    let missing = SpawnSpec {
        program: "/nonexistent/warden-no-such-program".into(),
        ..base.clone()
    };
    let err = process::spawn(&missing).expect_err("missing program");
    assert!(matches!(err, SpawnError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/nonexistent/warden-no-such-program"),
        "{err}"
    );

    let missing_on_path = SpawnSpec {
        program: "warden-no-such-program-on-path".into(),
        ..base.clone()
    };
    let err = process::spawn(&missing_on_path).expect_err("missing program");
    assert!(matches!(err, SpawnError::NotFound { .. }), "{err:?}");

    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("write script");
    let denied = SpawnSpec {
        program: script.clone().into(),
        ..base.clone()
    };
    let err = process::spawn(&denied).expect_err("not executable");
    assert!(
        matches!(err, SpawnError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("not-executable.sh"), "{err}");

    let bad_cwd = SpawnSpec {
        cwd: dir.path().join("no-such-dir"),
        ..base.clone()
    };
    let err = process::spawn(&bad_cwd).expect_err("bad cwd");
    assert!(matches!(err, SpawnError::BadCwd { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-dir"), "{err}");

    let file_cwd = SpawnSpec {
        cwd: script,
        ..base
    };
    let err = process::spawn(&file_cwd).expect_err("cwd is a file");
    assert!(matches!(err, SpawnError::BadCwd { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_reaches_a_grandchild_and_nothing_is_left() {
    let dir = temp_dir();
    let (mut child, _cleanup, gpid) = start_with_descendant(
        spec(dir.path(), &[]).await,
        "--spawn-grandchild",
        "grandchild.pid",
    )
    .await;
    child.signal(Signal::Term).expect("signal");
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Signal(libc::SIGTERM)
    );
    assert!(child.wait_tree_gone(LONG).await, "tree gone");
    assert_gone(child.pid(), "main").await;
    assert_gone(gpid, "grandchild").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_tree_kills_a_grandchild_that_ignores_term() {
    let dir = temp_dir();
    let (mut child, _cleanup, gpid) = start_with_descendant(
        spec(dir.path(), &["--ignore-term"]).await,
        "--spawn-grandchild",
        "grandchild.pid",
    )
    .await;
    child.signal(Signal::Term).expect("signal");
    assert!(
        !child.wait_tree_gone(Duration::from_millis(200)).await,
        "TERM is ignored"
    );
    assert_eq!(child.exit_status(), None);
    child.kill_tree().expect("kill_tree");
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Signal(libc::SIGKILL)
    );
    assert!(child.wait_tree_gone(LONG).await, "tree gone");
    assert_gone(gpid, "grandchild").await;
}

/// The grandchild outlives the main process (re-parented to warden, still in the group).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_tree_gone_waits_for_the_group_after_the_main_exits() {
    let dir = temp_dir();
    let gpid_file = dir.path().join("grandchild.pid");
    let args = ["--spawn-grandchild", path_str(&gpid_file), "--exit", "0"];
    let mut child = start(dir.path(), &args).await;
    let _cleanup = Cleanup(vec![child.pid()]);
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Code(0)
    );
    let gpid = read_pid_file(&gpid_file).await;
    assert!(
        !child.wait_tree_gone(Duration::from_millis(100)).await,
        "grandchild still runs"
    );
    child
        .signal(Signal::Term)
        .expect("signal the group after the main exited");
    assert!(child.wait_tree_gone(LONG).await, "tree gone");
    assert_gone(gpid, "grandchild").await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_forked_setsid_daemon_is_signalled_and_killed() {
    let dir = temp_dir();
    let me = std::process::id();

    // Honours TERM: a group signal plus the adopted-orphan match end it.
    let (mut child, _cleanup, dpid) = start_with_descendant(
        tagged_spec(dir.path(), "web", &[]).await,
        "--double-fork",
        "daemon.pid",
    )
    .await;
    wait_adopted(dpid, me).await;
    assert_ne!(
        stat_field(dpid, 5),
        Some(u64::from(child.pid())),
        "the daemon left the group"
    );

    // Another service's daemon, which must be left alone.
    let (mut other, _cleanup2, other_dpid) = start_with_descendant(
        tagged_spec(dir.path(), "db", &[]).await,
        "--double-fork",
        "other.pid",
    )
    .await;
    wait_adopted(other_dpid, me).await;

    child.signal(Signal::Term).expect("signal");
    assert!(child.wait_tree_gone(LONG).await, "tree gone");
    assert_gone(dpid, "daemon").await;
    assert!(!gone(other_dpid), "the other service's daemon survives");
    assert_eq!(other.exit_status(), None);

    // Ignores TERM: only kill_tree ends it.
    let (mut child, _cleanup3, dpid) = start_with_descendant(
        tagged_spec(dir.path(), "worker", &["--ignore-term"]).await,
        "--double-fork",
        "daemon2.pid",
    )
    .await;
    wait_adopted(dpid, me).await;
    child.signal(Signal::Term).expect("signal");
    assert!(
        !child.wait_tree_gone(Duration::from_millis(200)).await,
        "TERM is ignored"
    );
    child.kill_tree().expect("kill_tree");
    assert!(child.wait_tree_gone(LONG).await, "tree gone");
    assert_gone(dpid, "daemon").await;

    other.kill_tree().expect("kill_tree");
    assert!(other.wait_tree_gone(LONG).await, "other tree gone");
    assert_gone(other_dpid, "other daemon").await;
}

/// The daemon's intermediate parent exited: wait until warden (a subreaper) adopted it.
#[cfg(target_os = "linux")]
async fn wait_adopted(pid: u32, me: u32) {
    poll_for(
        || (stat_field(pid, 4) == Some(u64::from(me))).then_some(()),
        || format!("pid {pid} not adopted: {}", proc_state(pid)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_is_cancel_safe() {
    let dir = temp_dir();
    let (mut child, _cleanup) = start_ready(spec(dir.path(), &[]).await, "ready").await;
    for _ in 0..5 {
        assert!(
            timeout(Duration::from_millis(10), child.wait())
                .await
                .is_err(),
            "still running"
        );
    }
    tokio::select! {
        biased;
        () = std::future::ready(()) => {}
        _ = child.wait() => panic!("must not exit"),
    }
    child.signal(Signal::Kill).expect("signal");
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Signal(libc::SIGKILL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_spawns_get_their_own_status() {
    let dir = temp_dir();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let spec = spec(dir.path(), &[]).await;
        tasks.push(tokio::spawn(async move {
            let code = i % 50;
            let args = if i % 2 == 0 {
                vec!["--exit".to_owned(), code.to_string()]
            } else {
                vec![
                    "--sleep".into(),
                    "20ms".into(),
                    "--exit".into(),
                    code.to_string(),
                ]
            };
            let spec = SpawnSpec {
                args: args.into_iter().map(OsString::from).collect(),
                output: if i % 3 == 0 {
                    Output::Separate
                } else {
                    Output::Null
                },
                ..spec
            };
            let mut child = process::spawn(&spec).expect("spawn");
            let status = timeout(LONG, child.wait()).await.expect("exits");
            (code, status)
        }));
    }
    for t in tasks {
        let (code, status) = t.await.expect("task");
        assert_eq!(status, ExitStatus::Code(code));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_pipes_are_readable() {
    let dir = temp_dir();
    let mut s = spec(
        dir.path(),
        &[
            "--lines",
            "1000",
            "--stderr",
            "--line-len",
            "20",
            "--lines",
            "3",
            "--invalid-utf8",
            "--no-newline",
            "end",
        ],
    )
    .await;
    s.output = Output::Separate;
    let mut child = process::spawn(&s).expect("spawn");
    let (out, err) = read_both(&mut child).await;
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Code(0)
    );
    assert_eq!(out.len(), 100_000);
    for (i, line) in out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        assert_eq!(line.len(), 99);
        assert!(line.starts_with(format!("line {:09} x", i + 1).as_bytes()));
    }
    let mut expected = Vec::new();
    for i in 1..=3 {
        expected.extend_from_slice(format!("line {i:09} xxxx\n").as_bytes());
    }
    expected.extend_from_slice(b"\xff\xfe\nend");
    assert_eq!(err, expected);

    // Throughput: a flood of 20 MB is drained completely.
    let mut s = spec(dir.path(), &["--flood", "200000"]).await;
    s.output = Output::Separate;
    let mut child = process::spawn(&s).expect("spawn");
    let (out, err) = read_both(&mut child).await;
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Code(0)
    );
    assert_eq!(out.len(), 20_000_000);
    let lines: Vec<&[u8]> = out.split_inclusive(|b| *b == b'\n').collect();
    assert_eq!(lines.len(), 200_000);
    assert!(lines.iter().all(|l| l.len() == 100 && l.ends_with(b"\n")));
    let last = format!("line {:09} {}\n", 200_000, "x".repeat(84));
    assert_eq!(last.len(), 100);
    assert!(
        out.ends_with(last.as_bytes()),
        "last line: {:?}",
        String::from_utf8_lossy(&out[out.len() - 100..])
    );
    assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_and_cwd_are_applied() {
    let dir = temp_dir();
    let mut s = spec(dir.path(), &["--env", "FOO", "--env", "HOME", "--cwd"]).await;
    s.clear_env = true;
    s.env.push(("FOO".into(), "bar".into()));
    s.output = Output::Separate;
    let (status, out, err) = run_to_end(&s).await;
    assert_eq!(status, ExitStatus::Code(0), "{err}");
    let cwd = dir.path().canonicalize().expect("canonical");
    assert_eq!(out, format!("FOO=bar\nHOME unset\n{}\n", cwd.display()));

    // Without clear_env, warden's environment is inherited and overridden.
    let mut s = spec(dir.path(), &["--env", "PATH", "--env", "FOO"]).await;
    s.env.push(("FOO".into(), "baz".into()));
    s.output = Output::Separate;
    let (status, out, err) = run_to_end(&s).await;
    assert_eq!(status, ExitStatus::Code(0), "{err}");
    assert!(out.starts_with("PATH="), "{out}");
    assert!(out.ends_with("FOO=baz\n"), "{out}");
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_time_matches_proc_and_group_is_own_session() {
    let dir = temp_dir();
    let (mut child, _cleanup) = start_ready(spec(dir.path(), &[]).await, "ready").await;
    let pid = child.pid();
    assert_ne!(child.start_time(), 0);
    assert_eq!(stat_field(pid, 22), Some(child.start_time()));
    assert_eq!(stat_field(pid, 5), Some(u64::from(pid)), "pgid = pid");
    assert_eq!(stat_field(pid, 6), Some(u64::from(pid)), "sid = pid");
    let record = child.group_record("svc");
    assert_eq!(
        record,
        GroupRecord {
            service: "svc".into(),
            pgid: pid,
            start_time: child.start_time(),
            main: None,
        }
    );
    child.kill_tree().expect("kill");
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Signal(libc::SIGKILL)
    );
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_leftovers_checks_start_times_and_markers() {
    let dir = temp_dir();
    let (mut child, _cleanup, gpid) = start_with_descendant(
        spec(dir.path(), &[]).await,
        "--spawn-grandchild",
        "grandchild.pid",
    )
    .await;
    let good = child.group_record("a");

    // The leader lives with another start time: a reused pid, not ours.
    let reused = GroupRecord {
        start_time: good.start_time + 1,
        ..good.clone()
    };
    assert_eq!(process::kill_leftovers(&[reused], "", true), 0);
    // A group that does not exist.
    let absent = GroupRecord {
        service: "x".into(),
        pgid: u32::MAX / 2,
        start_time: 1,
        main: None,
    };
    assert_eq!(process::kill_leftovers(&[absent], "", true), 0);
    assert_eq!(child.exit_status(), None);
    assert!(!gone(gpid));

    assert_eq!(process::kill_leftovers(&[good], "", true), 2);
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Signal(libc::SIGKILL)
    );
    assert!(child.wait_tree_gone(LONG).await);
    assert_gone(gpid, "grandchild").await;

    // The marker finds a setsid daemon outside any recorded group.
    let (mut child, _cleanup2, dpid) = start_with_descendant(
        tagged_spec(dir.path(), "b", &[]).await,
        "--double-fork",
        "daemon.pid",
    )
    .await;
    assert_eq!(process::kill_leftovers(&[], "some-other-marker", true), 0);
    // After a clean exit the environments are not read: nothing is found that way.
    assert_eq!(
        process::kill_leftovers(&[], &instance_marker(dir.path()), false),
        0
    );
    assert!(
        std::path::Path::new(&format!("/proc/{dpid}")).exists(),
        "spared without the scan"
    );
    assert_eq!(
        process::kill_leftovers(&[], &instance_marker(dir.path()), true),
        2
    );
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Signal(libc::SIGKILL)
    );
    assert_gone(dpid, "daemon").await;
}

// ---------------------------------------------------------------------------------------------
// Tests run in a helper process (this binary again).

/// A spec running the ignored test `name` of this binary (which plays warden) in `dir`, told
/// where test-child is.
#[cfg(unix)]
async fn helper_spec(name: &str, dir: &Path) -> SpawnSpec {
    let exe = std::env::current_exe().expect("current exe");
    let args = [
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ];
    let mut s = spec_for(&exe, dir, &args);
    s.env.push(("WARDEN_TEST_HELPER".into(), name.into()));
    s.env
        .push(("WARDEN_TEST_CHILD".into(), test_child().await.into()));
    s
}

/// Run the ignored test `name` of this binary in a child process; return its output.
#[cfg(unix)]
async fn run_helper(name: &str) -> (ExitStatus, String) {
    let dir = temp_dir();
    let mut s = helper_spec(name, dir.path()).await;
    s.output = Output::Separate;
    let (status, out, err) = run_to_end(&s).await;
    (status, format!("{out}\n{err}"))
}

#[cfg(unix)]
fn helper_enabled(name: &str) -> bool {
    std::env::var("WARDEN_TEST_HELPER").is_ok_and(|v| v == name)
}

/// In a helper: the test-child binary the parent test built.
#[cfg(unix)]
fn helper_test_child() -> PathBuf {
    PathBuf::from(std::env::var_os("WARDEN_TEST_CHILD").expect("WARDEN_TEST_CHILD"))
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_all_descendants_and_wait_no_children_in_a_fresh_process() {
    let (status, output) = run_helper("helper_kill_all_descendants").await;
    assert_eq!(status, ExitStatus::Code(0), "helper failed:\n{output}");
    assert!(
        output.contains("helper_kill_all_descendants ... ok"),
        "helper did not run:\n{output}"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run by kill_all_descendants_and_wait_no_children_in_a_fresh_process"]
async fn helper_kill_all_descendants() {
    if !helper_enabled("helper_kill_all_descendants") {
        return;
    }
    let bin = helper_test_child();
    process::init_supervisor().expect("init");
    assert!(
        process::wait_no_children(Duration::from_millis(10)).await,
        "no children yet"
    );
    let dir = temp_dir();
    let g = dir.path().join("g.pid");
    let d = dir.path().join("d.pid");
    let args = [
        "--ignore-term",
        "--spawn-grandchild",
        path_str(&g),
        "--double-fork",
        path_str(&d),
    ];
    let (mut child, _cleanup) = start_ready(spec_for(&bin, dir.path(), &args), "ready").await;
    let gpid = read_pid_file(&g).await;
    let dpid = read_pid_file(&d).await;
    assert!(
        !process::wait_no_children(Duration::from_millis(50)).await,
        "children alive"
    );
    // The main process, its grandchild and the adopted daemon (the intermediate was reaped).
    let n = process::kill_all_descendants();
    assert_eq!(n, 3, "killed {n}");
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Signal(libc::SIGKILL)
    );
    assert!(process::wait_no_children(LONG).await, "all reaped");
    assert_gone(gpid, "grandchild").await;
    assert_gone(dpid, "daemon").await;
}

/// A child dies with its parent (`PR_SET_PDEATHSIG`): the helper plays warden and is killed.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_die_when_warden_is_killed() {
    let dir = temp_dir();
    let pid_file = dir.path().join("child.pid");
    let mut s = helper_spec("helper_spawn_and_hang", dir.path()).await;
    s.env
        .push(("WARDEN_TEST_PIDFILE".into(), pid_file.clone().into()));
    let mut helper = process::spawn(&s).expect("spawn helper");
    let _cleanup = Cleanup(vec![helper.pid()]);
    let cpid = read_pid_file(&pid_file).await;
    let _cleanup2 = Cleanup(vec![cpid]);
    assert!(!gone(cpid));
    // Only the helper's group: the grandchild is in its own session and must die by itself.
    helper.signal(Signal::Kill).expect("kill helper");
    assert_eq!(
        timeout(LONG, helper.wait()).await.expect("exits"),
        ExitStatus::Signal(libc::SIGKILL)
    );
    assert_gone(cpid, "child of the killed warden").await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run by children_die_when_warden_is_killed"]
async fn helper_spawn_and_hang() {
    if !helper_enabled("helper_spawn_and_hang") {
        return;
    }
    let bin = helper_test_child();
    let pid_file =
        PathBuf::from(std::env::var_os("WARDEN_TEST_PIDFILE").expect("WARDEN_TEST_PIDFILE"));
    // The test's own dir: this helper is SIGKILLed, so a temp dir of its own would be left.
    let dir = pid_file.parent().expect("the test's dir");
    let args = ["--ready-file", path_str(&pid_file), "--sleep", "forever"];
    let mut child = process::spawn(&spec_for(&bin, dir, &args)).expect("spawn");
    // Hang until killed.
    let status = child.wait().await;
    panic!("the child ended first: {status}");
}

/// Where the helper below opens descriptors without close-on-exec, as `warden up -d` may
/// inherit them: the first free number from 7 (the one the hardening probe found) and from
/// 200.
#[cfg(unix)]
const INHERITED_FDS_FROM: [i32; 2] = [7, 200];

/// Issue 8, C.8: a file descriptor warden inherited (no close-on-exec) never reaches a
/// service: the helper plays warden with such descriptors open, and its child lists its own.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fds_inherited_by_warden_do_not_leak_into_services() {
    let (status, output) = run_helper("helper_fds_of_a_service").await;
    assert_eq!(status, ExitStatus::Code(0), "helper failed:\n{output}");
    assert!(
        output.contains("helper_fds_of_a_service ... ok"),
        "helper did not run:\n{output}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run by fds_inherited_by_warden_do_not_leak_into_services"]
async fn helper_fds_of_a_service() {
    use std::os::fd::AsRawFd;

    if !helper_enabled("helper_fds_of_a_service") {
        return;
    }
    let null = std::fs::File::open("/dev/null").expect("open /dev/null");
    let inherited = INHERITED_FDS_FROM.map(|from| {
        // SAFETY: F_DUPFD makes a copy at the lowest free number >= `from`, without
        // close-on-exec (unlike every descriptor std opens).
        let fd = unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD, from) };
        assert!(
            fd >= from,
            "F_DUPFD {from}: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: F_GETFD only reads the flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, 0, "fd {fd} is inheritable");
        fd
    });
    let dir = temp_dir();
    let mut s = spec_for(&helper_test_child(), dir.path(), &["--list-fds"]);
    s.output = Output::Separate;
    let (status, out, err) = run_to_end(&s).await;
    assert_eq!(status, ExitStatus::Code(0), "test-child failed: {err}");
    assert_eq!(
        out.trim_end(),
        "fds: 0 1 2",
        "the service's open descriptors"
    );
    for fd in inherited {
        // warden's own copies stay open: only the child's are closed at exec.
        // SAFETY: as above.
        assert_ne!(
            unsafe { libc::fcntl(fd, libc::F_GETFD) },
            -1,
            "fd {fd} open"
        );
        // SAFETY: closing the copies this test made.
        unsafe { libc::close(fd) };
    }
}

/// `Output::Joined`: descriptors 1 and 2 of the child are the same pipe (one inode), warden
/// gets one read end only, and the bytes come in the program's own order.
#[tokio::test]
async fn joined_output_gives_the_child_one_pipe_as_stdout_and_stderr() {
    use std::fmt::Write as _;
    let dir = temp_dir();
    let mut s = spec(dir.path(), &["--alternate", "500"]).await;
    s.output = Output::Joined;
    let mut child = process::spawn(&s).expect("spawn");
    assert!(child.take_stderr().is_none(), "one pipe only");
    let mut stdout = child.take_stdout().expect("the joined pipe");
    let mut out = String::new();
    timeout(LONG, stdout.read_to_string(&mut out))
        .await
        .expect("output ends in time")
        .expect("read the pipe");
    assert_eq!(
        timeout(LONG, child.wait()).await.expect("exits"),
        ExitStatus::Code(0)
    );
    let expected = (1..=500).fold(String::new(), |mut s, i| {
        let _ = writeln!(s, "out-{i}\nerr-{i}");
        s
    });
    assert_eq!(out, expected, "the program's own order");

    // The kernel's view: both descriptors name the same pipe.
    #[cfg(target_os = "linux")]
    {
        let script = "readlink /proc/self/fd/1; readlink /proc/self/fd/2 >&2";
        let mut s = spec_for(Path::new("/bin/sh"), dir.path(), &["-c", script]);
        s.output = Output::Joined;
        let mut child = process::spawn(&s).expect("spawn sh");
        let mut out = String::new();
        let mut stdout = child.take_stdout().expect("the joined pipe");
        timeout(LONG, stdout.read_to_string(&mut out))
            .await
            .expect("output ends in time")
            .expect("read the pipe");
        assert_eq!(
            timeout(LONG, child.wait()).await.expect("exits"),
            ExitStatus::Code(0)
        );
        let names: Vec<&str> = out.lines().collect();
        assert_eq!(names.len(), 2, "{out}");
        assert!(names[0].starts_with("pipe:["), "{out}");
        assert_eq!(names[0], names[1], "fd 1 and fd 2 are one pipe");
    }
}

/// A launcher that double-forks a daemon which clears its environment, then exits 0: the
/// daemon is found by its start time (no marker left), followed as the main process, and
/// signalled first; a stranger's pid is refused.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_cleared_its_environment_is_found_and_followed() {
    let dir = temp_dir();
    let me = std::process::id();
    let pid_file = dir.path().join("daemon.pid");
    let mut launcher = process::spawn(
        &tagged_spec(
            dir.path(),
            "web",
            &["--daemon-clear-env", "--double-fork", path_str(&pid_file)],
        )
        .await,
    )
    .expect("spawn");
    let launcher_pid = launcher.pid();
    assert_eq!(
        timeout(LONG, launcher.wait())
            .await
            .expect("launcher exits"),
        ExitStatus::Code(0)
    );
    let dpid = read_pid_file(&pid_file).await;
    wait_adopted(dpid, me).await;
    // Other tests of this binary start processes at the same moment: their lifetimes may
    // contain the daemon's start too, which makes it ambiguous (and never someone else's).
    match launcher.find_daemon() {
        process::Adoption::One(pid) => assert_eq!(pid, dpid),
        process::Adoption::Ambiguous(pids) => assert!(pids.contains(&dpid), "{pids:?}"),
        process::Adoption::Nothing => panic!("the daemon {dpid} is not found"),
    }

    // SAFETY: plain syscall.
    let stranger = unsafe { libc::getppid() } as u32;
    let err = launcher
        .follow(stranger)
        .expect_err("a stranger is refused");
    assert!(
        err.to_string().contains("is not of this service's tree"),
        "{err}"
    );
    assert_eq!(launcher.pid(), launcher_pid);

    launcher.follow(dpid).expect("follow the daemon");
    assert_eq!(launcher.pid(), dpid);
    assert_eq!(launcher.exit_status(), None, "the daemon runs");
    let record = launcher.group_record("web");
    assert_eq!(record.pgid, launcher_pid);
    assert_eq!(record.main.map(|m| m.pid), Some(dpid));
    launcher.signal(Signal::Term).expect("signal");
    assert_eq!(
        timeout(LONG, launcher.wait())
            .await
            .expect("the daemon exits"),
        ExitStatus::Signal(libc::SIGTERM),
        "its real status: it is warden's child"
    );
    assert!(launcher.wait_tree_gone(LONG).await, "tree gone");
}
