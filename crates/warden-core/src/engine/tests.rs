//! The engine's decisions, tested through a recording fake [`Spawner`] under tokio's paused
//! clock: no process is started and no wall-clock time passes, so each test runs in
//! microseconds and asserts exact delays.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::spawner::{BoxFuture, Proc, Spawner};
use super::{Action, Engine, EngineError, Events, Handle, ReloadError};
use crate::config::{self, Config, Env};
#[cfg(unix)]
use crate::process::Signal;
use crate::process::StopStep;
use crate::process::{
    Adoption, ExitStatus, GroupRecord, OutputPipe, SpawnError, SpawnSpec, StepOutcome,
};
use crate::proto::{ServiceStatus, State, StatusReport};
use crate::state::StateDir;

// ---------------------------------------------------------------------------------------
// The fake

/// One process the engine asked for.
struct Spawned {
    pid: u32,
    program: String,
    env: Vec<(OsString, OsString)>,
    exit: Arc<watch::Sender<Option<ExitStatus>>>,
    steps: Vec<StopStep>,
    killed: bool,
    credentials: crate::process::Credentials,
    confinement: Option<crate::process::Confinement>,
}

#[derive(Default)]
struct Book {
    spawned: Vec<Spawned>,
    /// Programs whose spawn fails with "not found".
    missing: BTreeSet<String>,
    /// Programs that ignore every graceful step (only a kill ends them).
    stubborn: BTreeSet<String>,
    /// Programs whose privileges cannot be granted (a permanent spawn error).
    refused: BTreeSet<String>,
    /// What a launcher of this program leaves behind when it exits (default: nothing).
    leaves: std::collections::BTreeMap<String, Adoption>,
    /// The pids `follow` accepts (the daemons of [`Fake::daemon`]).
    tree: BTreeSet<u32>,
    /// Give the Windows steps of `stop_method` (Ctrl-C, `WM_CLOSE`) on every OS.
    windows_steps: bool,
    /// (program, step): this step cannot reach that program (no console, no window).
    not_applicable: Vec<(String, StopStep)>,
    /// Programs that exit (code 0) this long after their first applied graceful step.
    stops_after: std::collections::BTreeMap<String, Duration>,
}

/// A spawner that records what it is asked and lets the test end processes.
#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Book>>);

impl Fake {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.0.lock().unwrap()
    }

    /// The pids spawned for `program`, oldest first.
    fn pids(&self, program: &str) -> Vec<u32> {
        self.book()
            .spawned
            .iter()
            .filter(|s| s.program == program)
            .map(|s| s.pid)
            .collect()
    }

    fn last_pid(&self, program: &str) -> u32 {
        *self.pids(program).last().unwrap()
    }

    /// End process `pid` on its own.
    fn exit(&self, pid: u32, status: ExitStatus) {
        let book = self.book();
        let p = book.spawned.iter().find(|s| s.pid == pid).unwrap();
        p.exit.send_replace(Some(status));
    }

    fn steps(&self, pid: u32) -> Vec<StopStep> {
        let book = self.book();
        book.spawned
            .iter()
            .find(|s| s.pid == pid)
            .unwrap()
            .steps
            .clone()
    }

    fn killed(&self, pid: u32) -> bool {
        self.book().spawned.iter().any(|s| s.pid == pid && s.killed)
    }

    /// A process a launcher left behind (not spawned by warden), which `follow` accepts:
    /// its pid. It ends by [`Fake::exit`] like any other.
    fn daemon(&self) -> u32 {
        let mut book = self.book();
        let pid = 1000 + book.spawned.len() as u32;
        book.spawned.push(Spawned {
            pid,
            program: "<daemon>".into(),
            env: Vec::new(),
            exit: Arc::new(watch::Sender::new(None)),
            steps: Vec::new(),
            killed: false,
            credentials: crate::process::Credentials::default(),
            confinement: None,
        });
        book.tree.insert(pid);
        pid
    }

    fn env_of(&self, pid: u32, key: &str) -> Option<String> {
        let book = self.book();
        let p = book.spawned.iter().find(|s| s.pid == pid).unwrap();
        p.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }
}

impl Spawner for Fake {
    fn spawn(&self, spec: &SpawnSpec) -> Result<Box<dyn Proc>, SpawnError> {
        let mut book = self.book();
        let program = spec.program.to_string_lossy().into_owned();
        if book.missing.contains(&program) {
            return Err(SpawnError::NotFound {
                program,
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        if book.refused.contains(&program) {
            return Err(SpawnError::Privileges {
                program,
                reason: "only root can switch users".into(),
            });
        }
        let pid = 1000 + book.spawned.len() as u32;
        let exit = Arc::new(watch::Sender::new(None));
        let stubborn = book.stubborn.contains(&program);
        book.spawned.push(Spawned {
            pid,
            program,
            env: spec.env.clone(),
            exit: exit.clone(),
            steps: Vec::new(),
            killed: false,
            credentials: spec.credentials.clone(),
            confinement: spec.confinement.clone(),
        });
        Ok(Box::new(FakeProc {
            pid,
            program: spec.program.to_string_lossy().into_owned(),
            status: exit.subscribe(),
            exit,
            stubborn,
            book: self.clone(),
        }))
    }

    fn stop_steps(
        &self,
        stop_signal: crate::process::Signal,
        stop_method: &[crate::model::StopMethod],
    ) -> Vec<StopStep> {
        use crate::model::StopMethod;
        if !self.book().windows_steps {
            return crate::process::stop_steps(stop_signal, stop_method);
        }
        stop_method
            .iter()
            .filter_map(|m| match m {
                StopMethod::CtrlC => Some(StopStep::CtrlC),
                StopMethod::WmClose => Some(StopStep::WmClose),
                StopMethod::Terminate => None,
            })
            .collect()
    }
}

struct FakeProc {
    pid: u32,
    program: String,
    exit: Arc<watch::Sender<Option<ExitStatus>>>,
    status: watch::Receiver<Option<ExitStatus>>,
    stubborn: bool,
    book: Fake,
}

impl Proc for FakeProc {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn group_record(&self, service: &str) -> GroupRecord {
        GroupRecord {
            service: service.to_owned(),
            pgid: self.pid,
            start_time: 0,
            main: None,
        }
    }

    fn take_stdout(&mut self) -> Option<OutputPipe> {
        None
    }

    fn take_stderr(&mut self) -> Option<OutputPipe> {
        None
    }

    fn wait(&mut self) -> BoxFuture<'_, ExitStatus> {
        Box::pin(async move {
            let status = self.status.wait_for(Option::is_some).await.map(|s| *s);
            match status {
                Ok(Some(s)) => s,
                _ => std::future::pending().await,
            }
        })
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        *self.status.borrow()
    }

    fn wait_tree_gone(&mut self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            tokio::time::timeout(timeout, self.status.wait_for(Option::is_some))
                .await
                .is_ok()
        })
    }

    fn request_stop(&self, step: StopStep) -> BoxFuture<'_, io::Result<StepOutcome>> {
        Box::pin(async move {
            let mut book = self.book.book();
            if book.not_applicable.contains(&(self.program.clone(), step)) {
                return Ok(StepOutcome::NotApplicable);
            }
            let after = book.stops_after.get(&self.program).copied();
            let me = book.spawned.iter_mut().find(|s| s.pid == self.pid).unwrap();
            me.steps.push(step);
            if let Some(after) = after {
                if me.steps.len() == 1 {
                    let exit = self.exit.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        exit.send_if_modified(|s| {
                            s.get_or_insert(ExitStatus::Code(0));
                            true
                        });
                    });
                }
            } else if !self.stubborn {
                self.exit.send_if_modified(|s| {
                    s.get_or_insert(ExitStatus::Signal(15));
                    true
                });
            }
            Ok(StepOutcome::Applied)
        })
    }

    fn kill_tree(&self) -> io::Result<()> {
        let mut book = self.book.book();
        let me = book.spawned.iter_mut().find(|s| s.pid == self.pid).unwrap();
        me.killed = true;
        self.exit.send_if_modified(|s| {
            s.get_or_insert(ExitStatus::Signal(9));
            true
        });
        Ok(())
    }

    fn follow(&mut self, pid: u32) -> io::Result<()> {
        let book = self.book.book();
        if !book.tree.contains(&pid) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("pid {pid} is not of this service's tree"),
            ));
        }
        let daemon = book.spawned.iter().find(|s| s.pid == pid).unwrap();
        self.exit = daemon.exit.clone();
        self.status = self.exit.subscribe();
        self.pid = pid;
        self.program = daemon.program.clone();
        Ok(())
    }

    fn find_daemon(&self) -> Adoption {
        self.book
            .book()
            .leaves
            .get(&self.program)
            .cloned()
            .unwrap_or(Adoption::Nothing)
    }
}

// ---------------------------------------------------------------------------------------
// The rig: an engine over the fake, in a temp dir

struct NoEnv;

impl Env for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

struct Rig {
    dir: tempfile::TempDir,
    fake: Fake,
    handle: Handle,
    task: JoinHandle<()>,
    events: &'static Mutex<Vec<String>>,
    kill_now: watch::Sender<bool>,
}

fn load(dir: &Path, toml: &str) -> Config {
    let path = dir.join("warden.toml");
    std::fs::write(&path, toml).unwrap();
    match config::load_str(toml, &path, &NoEnv) {
        Ok(c) => c,
        Err(e) => panic!("bad test config: {:?}", e.errors),
    }
}

/// An engine over `toml`, with `prepare` applied to the fake first.
async fn rig_with(toml: &str, prepare: impl FnOnce(&mut Book)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    rig_in(dir, toml, prepare).await
}

async fn rig_in(dir: tempfile::TempDir, toml: &str, prepare: impl FnOnce(&mut Book)) -> Rig {
    let fake = Fake::default();
    prepare(&mut fake.book());
    let config = load(dir.path(), toml);
    let state = Arc::new(StateDir::lock(&config.warden.state_dir).unwrap());
    let events: &'static Mutex<Vec<String>> = Box::leak(Box::new(Mutex::new(Vec::new())));
    let (kill_now, kill_rx) = watch::channel(false);
    let engine = Engine::new(config, state, Events::recording(events), kill_rx, false)
        .with_spawner(Arc::new(fake.clone()))
        .with_prober(Arc::new(health::FakeProber::default()));
    let (handle, task, ready) = engine.spawn();
    ready.await.unwrap();
    Rig {
        dir,
        fake,
        handle,
        task,
        events,
        kill_now,
    }
}

async fn rig(toml: &str) -> Rig {
    rig_with(toml, |_| {}).await
}

impl Rig {
    async fn report(&self) -> StatusReport {
        self.handle.status().await.unwrap()
    }

    async fn status(&self, name: &str) -> ServiceStatus {
        let report = self.report().await;
        report
            .services
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    }

    /// Wait (in paused time) until `name`'s status satisfies `f`; at most an hour of it.
    async fn until(&self, name: &str, f: impl Fn(&ServiceStatus) -> bool) -> ServiceStatus {
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            let s = self.status(name).await;
            if f(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{name} never got there: {s:?}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn until_state(&self, name: &str, state: State) -> ServiceStatus {
        self.until(name, |s| s.state == state).await
    }

    /// Wait until `program` was spawned `n` times.
    async fn until_spawned(&self, program: &str, n: usize) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            let pids = self.fake.pids(program);
            if pids.len() >= n {
                return pids[n - 1];
            }
            assert!(Instant::now() < deadline, "{program} spawned {pids:?}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn has_event(&self, text: &str) -> bool {
        self.events().iter().any(|e| e.contains(text))
    }

    fn rewrite(&self, toml: &str) {
        std::fs::write(self.dir.path().join("warden.toml"), toml).unwrap();
    }
}

/// A service running `prog` with no jitter (exact delays), up as soon as it is spawned
/// (`min_uptime = "0s"`), and the given extra lines.
fn svc(name: &str, prog: &str, extra: &str) -> String {
    svc_up(name, prog, &format!("min_uptime = \"0s\"\n{extra}"))
}

/// [`svc`] with the default `min_uptime` (1 s) unless `extra` sets it.
fn svc_up(name: &str, prog: &str, extra: &str) -> String {
    format!(
        "[services.{name}]\ncommand = [\"{prog}\"]\nbackoff = {{ initial = \"100ms\", max = \"1s\", factor = 2.0, jitter = 0.0, reset_after = \"10s\" }}\n{extra}\n"
    )
}

const CRASH: ExitStatus = ExitStatus::Code(1);

/// A countdown seen by polling every millisecond (of paused time) is at most 1 ms short.
fn assert_near(got: Option<u64>, want: u64) {
    let got = got.unwrap();
    assert!(got == want || got + 1 == want, "{got} ms, not {want} ms");
}

// ---------------------------------------------------------------------------------------
// Start

#[tokio::test(start_paused = true)]
async fn autostart_services_run_once_the_engine_is_ready() {
    let r = rig(&(svc("a", "pa", "") + &svc("b", "pb", ""))).await;
    let a = r.status("a").await;
    assert_eq!(
        (a.state, a.pid, a.restarts),
        (State::Running, Some(r.fake.last_pid("pa")), 0)
    );
    assert_eq!(r.status("b").await.state, State::Running);
    assert!(r.has_event("[a] started (pid 1000)") || r.has_event("[a] started (pid 1001)"));
}

#[tokio::test(start_paused = true)]
async fn autostart_false_rests_stopped_until_started_by_hand() {
    let r = rig(&svc("a", "pa", "autostart = false")).await;
    let a = r.status("a").await;
    assert_eq!(
        (a.state, a.reason.as_deref()),
        (State::Stopped, Some("autostart = false"))
    );
    assert!(r.fake.pids("pa").is_empty());
    r.handle.act(Action::Start, "a").await.unwrap();
    assert_eq!(r.status("a").await.state, State::Running);
}

#[tokio::test(start_paused = true)]
async fn children_get_their_service_and_instance_markers() {
    let r = rig(&svc("a", "pa", "")).await;
    let pid = r.fake.last_pid("pa");
    assert_eq!(r.fake.env_of(pid, "WARDEN_SERVICE").as_deref(), Some("a"));
    let marker = r.fake.env_of(pid, "WARDEN_INSTANCE").unwrap();
    assert!(!marker.is_empty());
}

#[tokio::test(start_paused = true)]
async fn start_of_a_running_service_changes_nothing() {
    let r = rig(&svc("a", "pa", "")).await;
    let pid = r.fake.last_pid("pa");
    r.handle.act(Action::Start, "a").await.unwrap();
    assert_eq!(r.fake.pids("pa"), vec![pid]);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_service_is_an_error_that_names_the_known_ones() {
    let r = rig(&(svc("a", "pa", "") + &svc("b", "pb", ""))).await;
    let err = r.handle.act(Action::Stop, "nope").await.unwrap_err();
    assert_eq!(
        err,
        EngineError::UnknownService {
            name: "nope".into(),
            known: vec!["a".into(), "b".into()]
        }
    );
}

// ---------------------------------------------------------------------------------------
// Up: a start is done once the main process ran `min_uptime`

#[tokio::test(start_paused = true)]
async fn a_service_is_starting_until_it_ran_min_uptime_then_running() {
    let t0 = Instant::now();
    let r = rig(&svc_up("a", "pa", "")).await;
    assert!(
        t0.elapsed() < Duration::from_millis(1),
        "warden's own start does not wait"
    );
    let s = r.status("a").await;
    assert_eq!(
        (s.state, s.pid),
        (State::Starting, Some(r.fake.last_pid("pa")))
    );
    assert_eq!(s.reason, None);
    let s = r.until_state("a", State::Running).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took <= Duration::from_millis(1001),
        "{took:?}"
    );
    assert_eq!(s.pid, Some(r.fake.last_pid("pa")));
}

#[tokio::test(start_paused = true)]
async fn start_by_hand_answers_once_the_service_is_up() {
    let r = rig(&svc_up("a", "pa", "autostart = false\nmin_uptime = \"2s\"")).await;
    let t0 = Instant::now();
    r.handle.act(Action::Start, "a").await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    assert_eq!(r.status("a").await.state, State::Running);
}

#[tokio::test(start_paused = true)]
async fn start_fails_with_the_reason_when_the_program_dies_before_it_is_up() {
    let r = rig(&svc_up("a", "pa", "autostart = false\nrestart = \"never\"")).await;
    let handle = r.handle.clone();
    let start = tokio::spawn(async move { handle.act(Action::Start, "a").await });
    let pid = r.until_spawned("pa", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.fake.exit(pid, CRASH);
    let err = start.await.unwrap().unwrap_err();
    assert_eq!(
        err,
        EngineError::Failed {
            name: "a".into(),
            reason: "exited with code 1".into()
        }
    );
    assert_eq!(r.status("a").await.state, State::Exited);
}

#[tokio::test(start_paused = true)]
async fn a_crash_before_up_still_follows_the_restart_policy() {
    let r = rig(&svc_up("a", "pa", "")).await;
    r.fake.exit(r.fake.last_pid("pa"), CRASH);
    let s = r.until_state("a", State::Backoff).await;
    assert_eq!(s.reason.as_deref(), Some("exited with code 1"));
    r.until_spawned("pa", 2).await;
    assert_eq!(r.until_state("a", State::Starting).await.restarts, 1);
}

#[tokio::test(start_paused = true)]
async fn restart_answers_once_the_new_process_is_up() {
    let r = rig(&svc_up("a", "pa", "")).await;
    r.until_state("a", State::Running).await;
    let t0 = Instant::now();
    r.handle.act(Action::Restart, "a").await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    assert_eq!(r.fake.pids("pa").len(), 2);
    assert_eq!(r.status("a").await.state, State::Running);
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_starting_answers_the_waiting_start() {
    let r = rig(&svc_up(
        "a",
        "pa",
        "autostart = false\nmin_uptime = \"10s\"",
    ))
    .await;
    let handle = r.handle.clone();
    let start = tokio::spawn(async move { handle.act(Action::Start, "a").await });
    r.until_state("a", State::Starting).await;
    r.handle.act(Action::Stop, "a").await.unwrap();
    let err = start.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, EngineError::Failed { reason, .. } if reason == "stopped by hand"),
        "{err:?}"
    );
}

/// `up -d --wait` (`Handle::settled`): resolves at the moment the last start comes up or
/// fails, woken by the tasks' snapshots.
#[tokio::test(start_paused = true)]
async fn settled_waits_for_every_start_to_come_up_or_fail() {
    let toml = format!(
        "{}{}{}",
        svc_up("a", "pa", ""),
        svc_up("b", "pb", "min_uptime = \"3s\""),
        svc_up("c", "pc", "restart = \"never\"\nmin_uptime = \"10s\""),
    );
    let r = rig(&toml).await;
    let t0 = Instant::now();
    let handle = r.handle.clone();
    let wait = tokio::spawn(async move { handle.settled().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.fake.exit(r.fake.last_pid("pc"), CRASH);
    wait.await.unwrap();
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(3),
        "b is up at 3s; a was at 1s"
    );
    let report = r.report().await;
    let states: Vec<State> = report.services.iter().map(|s| s.state).collect();
    assert_eq!(states, [State::Running, State::Running, State::Exited]);
}

#[tokio::test(start_paused = true)]
async fn settled_counts_a_crash_and_quick_restart_as_not_up() {
    // No backoff to speak of: by the time the waiter looks, it is starting again.
    let r = rig("[services.a]\ncommand = [\"pa\"]\nbackoff = { initial = \"1ms\", max = \"1ms\", jitter = 0.0 }\n").await;
    let handle = r.handle.clone();
    let t0 = Instant::now();
    let wait = tokio::spawn(async move { handle.settled().await });
    tokio::task::yield_now().await;
    r.fake.exit(r.fake.last_pid("pa"), CRASH);
    wait.await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    let s = r.status("a").await;
    assert_ne!(s.state, State::Running, "{s:?}");
}

// ---------------------------------------------------------------------------------------
// Crashes, backoff, start limit

#[tokio::test(start_paused = true)]
async fn a_crash_is_restarted_after_the_initial_backoff() {
    let r = rig(&svc("a", "pa", "")).await;
    let first = r.fake.last_pid("pa");
    let t0 = Instant::now();
    r.fake.exit(first, CRASH);
    let s = r.until_state("a", State::Backoff).await;
    assert_near(s.next_start_in_ms, 100);
    assert_eq!(s.reason.as_deref(), Some("exited with code 1"));
    assert_eq!(s.last_exit.as_ref().unwrap().code, Some(1));
    let second = r.until_spawned("pa", 2).await;
    assert_ne!(first, second);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(100) && waited < Duration::from_millis(102),
        "{waited:?}"
    );
    let s = r.until_state("a", State::Running).await;
    assert_eq!((s.pid, s.restarts), (Some(second), 1));
    assert!(r.has_event("[a] exited with code 1 after 0ms; restarting in 100ms (attempt 1)"));
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_per_consecutive_crash_up_to_max() {
    let r = rig(&svc("a", "pa", "")).await;
    let mut delays = Vec::new();
    for n in 1..=6 {
        let pid = r.until_spawned("pa", n).await;
        r.until("a", |s| s.pid == Some(pid)).await;
        r.fake.exit(pid, CRASH);
        let s = r.until_state("a", State::Backoff).await;
        delays.push(s.next_start_in_ms.unwrap());
    }
    for (got, want) in delays.into_iter().zip([100, 200, 400, 800, 1000, 1000]) {
        assert_near(Some(got), want);
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_run_resets_the_backoff() {
    let r = rig(&svc("a", "pa", "")).await;
    for n in 1..=3 {
        let pid = r.until_spawned("pa", n).await;
        r.until("a", |s| s.pid == Some(pid)).await;
        r.fake.exit(pid, CRASH);
        r.until_state("a", State::Backoff).await;
    }
    let pid = r.until_spawned("pa", 4).await;
    r.until("a", |s| s.pid == Some(pid)).await;
    tokio::time::sleep(Duration::from_secs(10)).await; // reset_after
    r.fake.exit(pid, CRASH);
    let s = r.until_state("a", State::Backoff).await;
    assert_near(s.next_start_in_ms, 100);
}

#[tokio::test(start_paused = true)]
async fn the_start_limit_puts_a_crash_loop_in_failed() {
    let r = rig(&svc(
        "a",
        "pa",
        "start_limit = { count = 3, window = \"60s\" }",
    ))
    .await;
    for n in 1..=3 {
        let pid = r.until_spawned("pa", n).await;
        r.until("a", |s| s.pid == Some(pid)).await;
        r.fake.exit(pid, CRASH);
    }
    let s = r.until_state("a", State::Failed).await;
    assert_eq!(
        s.reason.as_deref(),
        Some("start limit reached: more than 3 starts within 1m00s")
    );
    assert_eq!(r.fake.pids("pa").len(), 3);
    assert_eq!(s.pid, None);
}

#[tokio::test(start_paused = true)]
async fn a_start_by_hand_after_failed_begins_a_new_history() {
    let r = rig(&svc(
        "a",
        "pa",
        "start_limit = { count = 1, window = \"60s\" }",
    ))
    .await;
    let pid = r.fake.last_pid("pa");
    r.fake.exit(pid, CRASH);
    r.until_state("a", State::Failed).await;
    r.handle.act(Action::Start, "a").await.unwrap();
    let s = r.status("a").await;
    assert_eq!(s.state, State::Running);
    assert_eq!(r.fake.pids("pa").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn restart_never_rests_in_exited_with_the_reason() {
    let r = rig(&svc("a", "pa", "restart = \"never\"")).await;
    let pid = r.fake.last_pid("pa");
    r.fake.exit(pid, ExitStatus::Code(0));
    let s = r.until_state("a", State::Exited).await;
    assert_eq!(s.reason.as_deref(), Some("exited with code 0"));
    assert!(r.has_event("not restarted (restart = never)"));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(r.fake.pids("pa").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn on_failure_keeps_a_success_code_exited() {
    let r = rig(&svc(
        "a",
        "pa",
        "restart = \"on-failure\"\nsuccess_codes = [0, 3]",
    ))
    .await;
    r.fake.exit(r.fake.last_pid("pa"), ExitStatus::Code(3));
    r.until_state("a", State::Exited).await;
    assert_eq!(r.fake.pids("pa").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn on_failure_restarts_a_death_by_signal() {
    let r = rig(&svc("a", "pa", "restart = \"on-failure\"")).await;
    r.fake.exit(r.fake.last_pid("pa"), ExitStatus::Signal(11));
    r.until_spawned("pa", 2).await;
    assert_eq!(r.until_state("a", State::Running).await.restarts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_program_that_cannot_start_is_retried_with_backoff() {
    let r = rig_with(&svc("a", "ghost", ""), |b| {
        b.missing.insert("ghost".into());
    })
    .await;
    let s = r.until_state("a", State::Backoff).await;
    assert_eq!(
        s.reason.as_deref(),
        Some("cannot start: program not found: ghost: entity not found")
    );
    assert_eq!(s.pid, None);
    assert_near(s.next_start_in_ms, 100);
    // The first retry fails too: the second delay doubles.
    let s = r
        .until("a", |s| s.restarts == 1 && s.state == State::Backoff)
        .await;
    assert_near(s.next_start_in_ms, 200);
}

// A missing program under a zero backoff recursed (spawn fails, restart at once, ...) until
// the stack overflowed and warden aborted with every service.
#[tokio::test(start_paused = true)]
async fn a_missing_program_under_a_zero_backoff_waits_between_tries() {
    let toml = "[services.a]\ncommand = [\"ghost\"]\nmin_uptime = \"0s\"\nbackoff = { initial = \"0s\", max = \"0s\", jitter = 0.0 }\n";
    let r = rig_with(toml, |b| {
        b.missing.insert("ghost".into());
    })
    .await;
    let s = r.until_state("a", State::Backoff).await;
    assert_near(s.next_start_in_ms, 100);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = r.status("a").await;
    assert!(s.restarts <= 10, "at most one try per 100 ms: {s:?}");
}

// A `warden start` waiting for a starting service got "restarting" when a restart came
// first; it now waits for the new run to be up.
#[tokio::test(start_paused = true)]
async fn a_start_waiting_across_a_restart_answers_once_the_new_run_is_up() {
    let r = rig(&svc_up("a", "pa", "autostart = false")).await;
    let h1 = r.handle.clone();
    let start = tokio::spawn(async move { h1.act(Action::Start, "a").await });
    r.until_state("a", State::Starting).await;
    r.handle.act(Action::Restart, "a").await.unwrap();
    assert_eq!(start.await.unwrap(), Ok(()));
    assert_eq!(r.fake.pids("pa").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_program_that_cannot_start_under_restart_never_is_failed() {
    let r = rig_with(&svc("a", "ghost", "restart = \"never\""), |b| {
        b.missing.insert("ghost".into());
    })
    .await;
    let s = r.status("a").await;
    assert_eq!(s.state, State::Failed);
    let err = r.handle.act(Action::Start, "a").await.unwrap_err();
    assert!(
        matches!(err, EngineError::Failed { reason, .. } if reason.starts_with("cannot start"))
    );
}

// ---------------------------------------------------------------------------------------
// Stop and restart

#[cfg(unix)] // `stop_signal` is a config error on Windows
#[tokio::test(start_paused = true)]
async fn stop_sends_the_stop_signal_and_rests_stopped() {
    let r = rig(&svc("a", "pa", "stop_signal = \"INT\"")).await;
    let pid = r.fake.last_pid("pa");
    tokio::time::sleep(Duration::from_secs(3)).await;
    r.handle.act(Action::Stop, "a").await.unwrap();
    let s = r.status("a").await;
    assert_eq!(
        (s.state, s.pid, s.reason.as_deref()),
        (State::Stopped, None, Some("stopped by hand"))
    );
    if cfg!(unix) {
        assert_eq!(r.fake.steps(pid), vec![StopStep::Signal(Signal::Int)]);
    }
    assert!(!r.fake.killed(pid));
    assert_eq!(s.last_exit.as_ref().unwrap().ran_ms, 3000);
    assert!(r.has_event(&format!("[a] stopped (pid {pid}, signal 15")));
    assert!(r.has_event("ran 3.0s)"));
}

#[tokio::test(start_paused = true)]
async fn a_program_that_ignores_the_stop_signal_is_killed_after_stop_timeout() {
    let r = rig_with(&svc("a", "pa", "stop_timeout = \"2s\""), |b| {
        b.stubborn.insert("pa".into());
    })
    .await;
    let pid = r.fake.last_pid("pa");
    let t0 = Instant::now();
    r.handle.act(Action::Stop, "a").await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    assert!(r.fake.killed(pid));
    assert!(r.has_event("[a] did not stop within 2.0s; killing"));
    assert_eq!(r.status("a").await.last_exit.unwrap().signal, Some(9));
}

#[tokio::test(start_paused = true)]
async fn a_second_ctrl_c_kills_at_once_without_waiting_for_stop_timeout() {
    let r = rig_with(&svc("a", "pa", "stop_timeout = \"60s\""), |b| {
        b.stubborn.insert("pa".into());
    })
    .await;
    let pid = r.fake.last_pid("pa");
    let handle = r.handle.clone();
    let t0 = Instant::now();
    let stop = tokio::spawn(async move { handle.act(Action::Stop, "a").await });
    r.until_state("a", State::Stopping).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.kill_now.send_replace(true);
    stop.await.unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(r.fake.killed(pid));
    assert!(
        !r.has_event("did not stop within"),
        "a kill asked for is not reported as a timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn status_shows_stopping_with_the_pid_while_a_stop_runs() {
    let r = rig_with(&svc("a", "pa", "stop_timeout = \"5s\""), |b| {
        b.stubborn.insert("pa".into());
    })
    .await;
    let pid = r.fake.last_pid("pa");
    let handle = r.handle.clone();
    let stop = tokio::spawn(async move { handle.act(Action::Stop, "a").await });
    let s = r.until_state("a", State::Stopping).await;
    assert_eq!(s.pid, Some(pid));
    assert!(s.uptime_ms.is_some());
    stop.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn stop_cancels_a_pending_restart() {
    let r = rig(&svc("a", "pa", "")).await;
    r.fake.exit(r.fake.last_pid("pa"), CRASH);
    r.until_state("a", State::Backoff).await;
    r.handle.act(Action::Stop, "a").await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(r.fake.pids("pa").len(), 1);
    assert_eq!(r.status("a").await.state, State::Stopped);
}

#[tokio::test(start_paused = true)]
async fn restart_stops_the_old_process_and_starts_a_new_one() {
    let r = rig(&svc("a", "pa", "")).await;
    let old = r.fake.last_pid("pa");
    r.handle.act(Action::Restart, "a").await.unwrap();
    let new = r.fake.last_pid("pa");
    assert_ne!(old, new);
    let s = r.status("a").await;
    assert_eq!((s.state, s.pid, s.restarts), (State::Running, Some(new), 0));
    assert!(!r.fake.steps(old).is_empty());
}

#[tokio::test(start_paused = true)]
async fn stop_command_runs_with_warden_pid_instead_of_the_signal() {
    let r = rig(&svc(
        "a",
        "pa",
        "stop_command = [\"stopper\", \"now\"]\nstop_timeout = \"1s\"",
    ))
    .await;
    let pid = r.fake.last_pid("pa");
    let handle = r.handle.clone();
    let stop = tokio::spawn(async move { handle.act(Action::Stop, "a").await });
    let stopper = r.until_spawned("stopper", 1).await;
    assert_eq!(r.fake.env_of(stopper, "WARDEN_PID"), Some(pid.to_string()));
    r.fake.exit(pid, ExitStatus::Code(0));
    stop.await.unwrap().unwrap();
    assert!(
        r.fake.steps(pid).is_empty(),
        "no signal with a stop_command"
    );
    assert!(
        r.fake.killed(stopper),
        "a stop command still running is ended"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_by_hand_survives_a_new_engine_on_the_same_state_dir() {
    let r = rig(&(svc("a", "pa", "") + &svc("b", "pb", ""))).await;
    r.handle.act(Action::Stop, "a").await.unwrap();
    r.handle.shutdown().await;
    r.task.await.unwrap();
    let toml = std::fs::read_to_string(r.dir.path().join("warden.toml")).unwrap();
    let again = rig_in(r.dir, &toml, |_| {}).await;
    let a = again.status("a").await;
    assert_eq!(
        (a.state, a.reason.as_deref()),
        (State::Stopped, Some("stopped by hand"))
    );
    assert!(again.fake.pids("pa").is_empty());
    assert_eq!(again.status("b").await.state, State::Running);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_every_service_and_ends_status() {
    let r = rig(&(svc("a", "pa", "") + &svc("b", "pb", ""))).await;
    let (a, b) = (r.fake.last_pid("pa"), r.fake.last_pid("pb"));
    r.handle.shutdown().await;
    assert!(r.handle.status().await.is_none());
    assert!(!r.fake.steps(a).is_empty() && !r.fake.steps(b).is_empty());
    assert_eq!(
        r.handle.act(Action::Start, "a").await,
        Err(EngineError::ShuttingDown)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_services_concurrently() {
    let r = rig_with(
        &(svc("a", "pa", "stop_timeout = \"2s\"") + &svc("b", "pb", "stop_timeout = \"2s\"")),
        |b| {
            b.stubborn.insert("pa".into());
            b.stubborn.insert("pb".into());
        },
    )
    .await;
    let t0 = Instant::now();
    r.handle.shutdown().await;
    assert_eq!(t0.elapsed(), Duration::from_secs(2), "not 4 s: in parallel");
}

// ---------------------------------------------------------------------------------------
// Reload

#[tokio::test(start_paused = true)]
async fn reload_applies_a_diff_and_reports_it() {
    let r = rig(&(svc("keep", "pk", "") + &svc("change", "pc", "") + &svc("gone", "pg", ""))).await;
    let keep = r.fake.last_pid("pk");
    let gone = r.fake.last_pid("pg");
    r.rewrite(
        &(svc("keep", "pk", "")
            + &svc("change", "pc", "stop_timeout = \"3s\"")
            + &svc("new", "pn", "")),
    );
    let report = r.handle.reload().await.unwrap();
    assert_eq!(report.added, vec!["new"]);
    assert_eq!(report.removed, vec!["gone"]);
    assert_eq!(report.restarted, vec!["change"]);
    assert_eq!(report.unchanged, vec!["keep"]);
    assert_eq!(
        r.fake.pids("pk"),
        vec![keep],
        "an unchanged service keeps running"
    );
    assert_eq!(r.fake.pids("pc").len(), 2);
    assert!(!r.fake.steps(gone).is_empty());
    let names: Vec<String> = r
        .report()
        .await
        .services
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["keep", "change", "new"], "in config order");
    assert!(
        r.has_event("[warden] reloaded: added new; restarted change; removed gone; 1 unchanged")
    );
}

#[tokio::test(start_paused = true)]
async fn reload_with_errors_changes_nothing() {
    let r = rig(&svc("a", "pa", "")).await;
    let pid = r.fake.last_pid("pa");
    r.rewrite("[services.a]\ncomand = [\"x\"]\n");
    match r.handle.reload().await {
        Err(ReloadError::Config(errors)) => assert!(!errors.errors.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.fake.pids("pa"), vec![pid]);
    assert_eq!(r.status("a").await.state, State::Running);
    assert!(r.has_event("reload refused: the config has errors; nothing was changed"));
}

#[tokio::test(start_paused = true)]
async fn reload_keeps_a_service_stopped_by_hand_stopped() {
    let r = rig(&svc("a", "pa", "")).await;
    r.handle.act(Action::Stop, "a").await.unwrap();
    r.rewrite(&svc("a", "pa", "stop_timeout = \"3s\""));
    let report = r.handle.reload().await.unwrap();
    assert_eq!(r.status("a").await.state, State::Stopped);
    assert_eq!(r.fake.pids("pa").len(), 1);
    // Issue 9: it was reported "restarted" though it stays stopped.
    assert!(report.restarted.is_empty(), "{report:?}");
    assert_eq!(report.updated, vec!["a"]);
}

#[tokio::test(start_paused = true)]
async fn reload_that_turns_autostart_on_starts_the_service() {
    let r = rig(&svc("a", "pa", "autostart = false")).await;
    r.rewrite(&svc("a", "pa", "autostart = true"));
    r.handle.reload().await.unwrap();
    assert_eq!(r.status("a").await.state, State::Running);
}

#[tokio::test(start_paused = true)]
async fn reload_restarts_a_changed_service_waiting_in_backoff() {
    let r = rig(&svc("a", "pa", "")).await;
    r.fake.exit(r.fake.last_pid("pa"), CRASH);
    r.until_state("a", State::Backoff).await;
    r.rewrite(&svc("a", "pa2", ""));
    r.handle.reload().await.unwrap();
    assert_eq!(r.status("a").await.state, State::Running);
    assert_eq!(r.fake.pids("pa2").len(), 1, "the new command runs at once");
}

#[tokio::test(start_paused = true)]
async fn a_removed_service_is_forgotten_by_the_hand_stopped_list() {
    let r = rig(&(svc("a", "pa", "") + &svc("b", "pb", ""))).await;
    r.handle.act(Action::Stop, "a").await.unwrap();
    r.rewrite(&svc("b", "pb", ""));
    r.handle.reload().await.unwrap();
    r.rewrite(&(svc("a", "pa", "") + &svc("b", "pb", "")));
    let report = r.handle.reload().await.unwrap();
    assert_eq!(report.added, vec!["a"]);
    assert_eq!(
        r.status("a").await.state,
        State::Running,
        "no longer stopped by hand"
    );
}

// ---------------------------------------------------------------------------------------
// Logs

#[tokio::test(start_paused = true)]
async fn a_service_whose_log_file_cannot_be_opened_still_runs_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notadir"), "a file, not a dir").unwrap();
    let r = rig_in(
        dir,
        &svc("a", "pa", "[services.a.log]\nstdout = \"notadir/x.log\""),
        |_| {},
    )
    .await;
    let s = r.status("a").await;
    assert_eq!(s.state, State::Running);
    let reason = s.reason.unwrap();
    assert!(reason.starts_with("log: cannot open "), "{reason}");
    assert!(
        reason.contains(&Path::new("notadir").join("x.log").display().to_string()),
        "{reason}"
    );
    assert!(r.has_event("[a] log: cannot open "));
    let err = r.handle.act(Action::Restart, "a").await;
    assert_eq!(err, Ok(()), "it is a service like any other");
}

// Issue 9: the "ran" time of a stopped service counted until the stop request, not the exit.
#[tokio::test(start_paused = true)]
async fn the_ran_time_of_a_stop_counts_until_the_tree_is_gone() {
    let r = rig_with(&svc("a", "pa", "stop_timeout = \"2s\""), |b| {
        b.stubborn.insert("pa".into());
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    r.handle.act(Action::Stop, "a").await.unwrap();
    assert_eq!(r.status("a").await.last_exit.unwrap().ran_ms, 3000);
    assert!(r.has_event("ran 3.0s)"), "{:?}", r.events());
}

// Issue 9: a restart wrote no "stopped" line for the old pid.
#[tokio::test(start_paused = true)]
async fn a_restart_reports_the_old_process_stopped() {
    let r = rig(&svc("a", "pa", "")).await;
    let old = r.fake.last_pid("pa");
    r.handle.act(Action::Restart, "a").await.unwrap();
    assert!(
        r.has_event(&format!("[a] stopped (pid {old}, ")),
        "{:?}",
        r.events()
    );
}

// ---------------------------------------------------------------------------------------
// Issue 9: exit_actions and when_all_ended

#[tokio::test(start_paused = true)]
async fn exit_actions_exit_keeps_a_code_exited_under_restart_always() {
    let r = rig(&svc("a", "pa", "exit_actions = { 0 = \"exit\" }")).await;
    r.fake.exit(r.fake.last_pid("pa"), ExitStatus::Code(0));
    let s = r.until_state("a", State::Exited).await;
    assert_eq!(s.reason.as_deref(), Some("exited with code 0"));
    assert!(
        r.has_event("not restarted (exit_actions: exit)"),
        "the event names what decided: {:?}",
        r.events()
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(r.fake.pids("pa").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn exit_actions_restart_restarts_under_restart_never() {
    let r = rig(&svc(
        "a",
        "pa",
        "restart = \"never\"\nexit_actions = { default = \"restart\" }",
    ))
    .await;
    r.fake.exit(r.fake.last_pid("pa"), ExitStatus::Code(5));
    r.until_spawned("pa", 2).await;
}

#[tokio::test(start_paused = true)]
async fn exit_actions_stop_warden_finishes_the_engine_with_a_failure() {
    let r = rig(&(svc("a", "pa", "exit_actions = { 2 = \"stop-warden\" }") + &svc("b", "pb", "")))
        .await;
    r.fake.exit(r.fake.last_pid("pa"), ExitStatus::Code(3));
    r.until_spawned("pa", 2).await; // another code: the policy restarts it
    let handle = r.handle.clone();
    let finished = tokio::spawn(async move { handle.finished().await });
    r.fake.exit(r.fake.last_pid("pa"), ExitStatus::Code(2));
    let finish = finished.await.unwrap();
    assert_eq!(
        finish,
        super::Finish::StopWarden {
            service: "a".into(),
            reason: "exited with code 2".into()
        }
    );
    assert!(finish.failed());
    assert_eq!(r.status("a").await.state, State::Exited);
    assert!(r.has_event("exit_actions: stop-warden: stopping warden"));
}

#[tokio::test(start_paused = true)]
async fn when_all_ended_stop_finishes_once_no_service_will_run_again() {
    let toml = format!(
        "[warden]\nwhen_all_ended = \"stop\"\n{}{}",
        svc("job", "pj", "restart = \"never\""),
        svc(
            "flaky",
            "pf",
            "restart = \"on-failure\"\nstart_limit = { count = 1, window = \"1h\" }"
        )
    );
    let r = rig(&toml).await;
    let handle = r.handle.clone();
    let mut finished = tokio::spawn(async move { handle.finished().await });
    r.fake.exit(r.fake.last_pid("pj"), ExitStatus::Code(0));
    r.until_state("job", State::Exited).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        futures_poll(&mut finished).await.is_none(),
        "flaky still runs: warden keeps going"
    );
    r.fake.exit(r.fake.last_pid("pf"), CRASH);
    let finish = finished.await.unwrap();
    assert_eq!(
        finish,
        super::Finish::AllEnded {
            failed: vec!["flaky".into()]
        }
    );
}

#[tokio::test(start_paused = true)]
async fn when_all_ended_keep_never_finishes() {
    let r = rig(&svc("job", "pj", "restart = \"never\"")).await;
    r.fake.exit(r.fake.last_pid("pj"), ExitStatus::Code(0));
    r.until_state("job", State::Exited).await;
    let waited = tokio::time::timeout(Duration::from_secs(60), r.handle.finished()).await;
    assert!(waited.is_err(), "the default keeps warden running");
}

/// Poll a task once without waiting: `Some` if it finished.
async fn futures_poll<T>(task: &mut JoinHandle<T>) -> Option<T> {
    tokio::select! {
        biased;
        r = task => Some(r.unwrap()),
        () = tokio::task::yield_now() => None,
    }
}

// ---------------------------------------------------------------------------------------
// Privileges and confinement

/// Every spawn of a service carries its credentials (Unix); only its own run gets its
/// cgroup (Linux) or job limits (Windows).
#[tokio::test(start_paused = true)]
async fn the_service_and_its_stop_command_carry_its_credentials_and_only_the_service_its_cgroup() {
    let unix_keys = if cfg!(unix) {
        "user = \"root\"\numask = \"0027\"\nnice = 3\nlimits = { nofile = 100 }\n"
    } else {
        ""
    };
    let r = rig(&svc(
        "a",
        "pa",
        &format!(
            "stop_command = [\"stopper\"]\nstop_timeout = \"1s\"\nmemory_limit = \"1GiB\"\n{unix_keys}"
        ),
    ))
    .await;
    let pid = r.fake.last_pid("pa");
    let handle = r.handle.clone();
    let stop = tokio::spawn(async move { handle.act(Action::Stop, "a").await });
    let stopper = r.until_spawned("stopper", 1).await;
    r.fake.exit(pid, ExitStatus::Code(0));
    stop.await.unwrap().unwrap();
    let book = r.fake.book();
    let of = |pid: u32| book.spawned.iter().find(|s| s.pid == pid).unwrap();
    let expected = if cfg!(unix) {
        crate::process::Credentials {
            user: Some("root".into()),
            umask: Some(0o027),
            nice: Some(3),
            limits: vec![(
                crate::process::Resource::Nofile,
                crate::process::LimitValue::Value(100),
            )],
            ..Default::default()
        }
    } else {
        crate::process::Credentials::default()
    };
    assert_eq!(of(pid).credentials, expected);
    assert_eq!(
        of(stopper).credentials,
        expected,
        "stop_command runs as the service"
    );
    let conf = of(pid).confinement.clone().unwrap();
    assert_eq!(conf.service, "a");
    assert_eq!(conf.memory_max, Some(1 << 30));
    assert!(!conf.instance.is_empty());
    assert_eq!(
        of(stopper).confinement,
        None,
        "stop_command runs beside the tree"
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_whose_privileges_cannot_be_granted_fails_at_once_and_is_not_retried() {
    let r = rig_with(&(svc("a", "pa", "") + &svc("b", "pb", "")), |b| {
        b.refused.insert("pa".into());
    })
    .await;
    let a = r.until_state("a", State::Failed).await;
    assert!(
        a.reason
            .as_deref()
            .unwrap()
            .contains("only root can switch users"),
        "{a:?}"
    );
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let a = r.status("a").await;
    assert_eq!((a.state, a.restarts), (State::Failed, 0));
    assert_eq!(r.status("b").await.state, State::Running, "the others run");
}

// health: ready, health and depends_on, in their own file
#[path = "tests_daemonize.rs"]
mod daemonize;
// the timing of the graceful stop steps, in its own file
#[path = "tests_deps.rs"]
mod deps; // depends_on: start by hand, reload
#[path = "health_tests.rs"]
mod health;

#[path = "sample_tests.rs"]
mod sample;
#[path = "tests_stop.rs"]
mod stop;

/// `stop --all` is one request per service, all at once: each is recorded as stopped by
/// hand (the file is written off the loop, the newest set each time), and the last set is
/// on disk once the engine has shut down.
#[tokio::test(start_paused = true)]
async fn a_burst_of_stops_by_hand_is_all_on_disk_after_shutdown() {
    let names: Vec<String> = (0..30).map(|i| format!("s{i:02}")).collect();
    let toml: String = names.iter().map(|n| svc(n, &format!("p{n}"), "")).collect();
    let r = rig(&toml).await;
    let stops: Vec<_> = names
        .iter()
        .map(|n| {
            let (h, n) = (r.handle.clone(), n.clone());
            tokio::spawn(async move { h.act(Action::Stop, &n).await })
        })
        .collect();
    for s in stops {
        s.await.unwrap().unwrap();
    }
    r.handle.shutdown().await;
    let state = r.dir.path().join(".warden");
    let data = std::fs::read(crate::state::layout::Layout::new(&state).hand_stopped())
        .expect("stopped.json");
    let saved: Vec<crate::state::HandStopped> = serde_json::from_slice(&data).unwrap();
    let saved: Vec<String> = saved.into_iter().map(|h| h.name).collect();
    assert_eq!(saved, names);
}
