//! One task per service: it owns the child, decides on restarts, and answers requests.
//!
//! The task waits on everything at once (`select!`): the child's exit, a request, the end of
//! a backoff delay. What to do after an exit is decided by the pure functions of
//! [`crate::policy`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::Ctx;
use super::events::Level;
use crate::api::types::{LastExit, ServiceStatus, State};
use crate::config::ServiceConfig;
use crate::logs::{ServiceLogs, Stream};
use crate::policy::{self, AfterExit, RestartHistory, StartVerdict};
use crate::process::{self, Child, ExitStatus, SpawnSpec};
use crate::util::{fmt_duration, rfc3339_ms};

/// The answer to a request: `Err` carries the reason in words.
pub type Reply = oneshot::Sender<Result<(), String>>;

/// What the engine asks of a service task.
pub enum Request {
    /// Start it (by hand or at warden's start); resets the restart history.
    Start(Reply),
    /// Stop it; it stays stopped until started again.
    Stop(Reply),
    /// Stop it if it runs, then start it.
    Restart(Reply),
    /// Take a new config (reload). It restarts if it was running or waiting to restart.
    Reconfigure(Box<ServiceConfig>, Reply),
    /// Stop it and end the task.
    Shutdown(Reply),
}

/// What the task publishes about itself; the API turns it into [`ServiceStatus`].
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub state: State,
    pub pid: Option<u32>,
    pub started: Option<Instant>,
    pub restarts: u32,
    pub last_exit: Option<LastExit>,
    pub next_start: Option<Instant>,
    pub reason: Option<String>,
}

impl Snapshot {
    pub fn status(&self, name: &str, now: Instant) -> ServiceStatus {
        ServiceStatus {
            name: name.to_owned(),
            state: self.state,
            pid: self.pid,
            uptime_ms: self
                .started
                .map(|s| now.saturating_duration_since(s).as_millis() as u64),
            restarts: self.restarts,
            last_exit: self.last_exit.clone(),
            next_start_in_ms: self
                .next_start
                .map(|t| t.saturating_duration_since(now).as_millis() as u64),
            reason: self.reason.clone(),
        }
    }
}

/// A running child and what belongs to its run.
struct Run {
    child: Child,
    started: Instant,
    pumps: Vec<JoinHandle<()>>,
}

enum Phase {
    /// No child, nothing scheduled: pending, stopped, exited or failed.
    Idle,
    Running(Run),
    Backoff {
        until: Instant,
    },
}

enum Event {
    Exited(ExitStatus),
    BackoffOver,
    Request(Option<Request>),
}

/// Why a run ended by warden's hand.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StopKind {
    /// Stopped by hand (or shutdown): rests in `stopped`.
    Stop,
    /// A restart follows at once.
    Restart,
}

pub struct ServiceTask {
    cfg: ServiceConfig,
    logs: Arc<ServiceLogs>,
    ctx: Arc<Ctx>,
    rx: mpsc::Receiver<Request>,
    status: watch::Sender<Snapshot>,
    history: RestartHistory,
    phase: Phase,
}

impl ServiceTask {
    pub fn new(
        cfg: ServiceConfig,
        logs: Arc<ServiceLogs>,
        ctx: Arc<Ctx>,
        rx: mpsc::Receiver<Request>,
        status: watch::Sender<Snapshot>,
    ) -> ServiceTask {
        ServiceTask {
            cfg,
            logs,
            ctx,
            rx,
            status,
            history: RestartHistory::default(),
            phase: Phase::Idle,
        }
    }

    pub fn initial_snapshot(reason: Option<String>, state: State) -> Snapshot {
        Snapshot {
            state,
            pid: None,
            started: None,
            restarts: 0,
            last_exit: None,
            next_start: None,
            reason,
        }
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn emit(&self, level: Level, msg: &str) {
        self.ctx.events.emit(&self.cfg.name, level, msg);
    }

    fn publish(&self, f: impl FnOnce(&mut Snapshot)) {
        self.status.send_modify(f);
    }

    /// The task's life: wait on the child, the backoff timer and requests together.
    pub async fn run(mut self) {
        loop {
            let event = match &mut self.phase {
                Phase::Running(run) => tokio::select! {
                    status = run.child.wait() => Event::Exited(status),
                    req = self.rx.recv() => Event::Request(req),
                },
                Phase::Backoff { until } => {
                    let until = *until;
                    tokio::select! {
                        () = tokio::time::sleep_until(until.into()) => Event::BackoffOver,
                        req = self.rx.recv() => Event::Request(req),
                    }
                }
                Phase::Idle => Event::Request(self.rx.recv().await),
            };
            match event {
                Event::Exited(status) => self.on_exit(status).await,
                Event::BackoffOver => {
                    self.phase = Phase::Idle;
                    self.start(true);
                }
                Event::Request(None) => {
                    self.stop(StopKind::Stop, "warden is shutting down").await;
                    break;
                }
                Event::Request(Some(Request::Shutdown(reply))) => {
                    self.stop(StopKind::Stop, "warden is shutting down").await;
                    let _ = reply.send(Ok(()));
                    break;
                }
                Event::Request(Some(req)) => self.handle(req).await,
            }
        }
    }

    async fn handle(&mut self, req: Request) {
        match req {
            Request::Start(reply) => {
                let result = if let Phase::Running(_) = &self.phase {
                    Ok(())
                } else {
                    self.phase = Phase::Idle;
                    self.history.reset();
                    self.start(false);
                    self.start_result()
                };
                let _ = reply.send(result);
            }
            Request::Stop(reply) => {
                self.stop(StopKind::Stop, "stopped by hand").await;
                let _ = reply.send(Ok(()));
            }
            Request::Restart(reply) => {
                self.stop(StopKind::Restart, "restarting").await;
                self.history.reset();
                self.start(false);
                let _ = reply.send(self.start_result());
            }
            Request::Reconfigure(cfg, reply) => {
                let was_active = !matches!(self.phase, Phase::Idle);
                if was_active {
                    self.stop(StopKind::Restart, "config changed").await;
                }
                if let Err(e) = self.logs.reconfigure(&cfg.log) {
                    self.emit(
                        Level::Warn,
                        &format!("cannot apply the new log settings: {e}"),
                    );
                }
                self.cfg = *cfg;
                let result = if was_active {
                    self.history.reset();
                    self.start(false);
                    self.start_result()
                } else {
                    Ok(())
                };
                let _ = reply.send(result);
            }
            Request::Shutdown(_) => unreachable!("handled by run"),
        }
    }

    /// After a start attempt: `Err` with the reason if it did not end up running.
    fn start_result(&self) -> Result<(), String> {
        match &self.phase {
            Phase::Running(_) => Ok(()),
            _ => Err(self
                .status
                .borrow()
                .reason
                .clone()
                .unwrap_or_else(|| "did not start".into())),
        }
    }

    fn spawn_spec(&self) -> SpawnSpec {
        let (program, args) = self
            .cfg
            .command
            .split_first()
            .map_or_else(|| (String::new(), &[][..]), |(p, a)| (p.clone(), a));
        let mut env = self.cfg.child_env();
        env.push(("WARDEN_INSTANCE".into(), self.ctx.marker.clone().into()));
        SpawnSpec {
            program: program.into(),
            args: args.iter().map(Into::into).collect(),
            cwd: self.cfg.cwd.clone(),
            clear_env: !self.cfg.inherit_env,
            env,
            capture_output: true,
        }
    }

    /// Start the child now (the start limit permitting). `restart`: this start follows an
    /// exit by the restart policy (it counts in `restarts`).
    fn start(&mut self, restart: bool) {
        let now = Instant::now();
        if let StartVerdict::LimitHit { count, window } =
            self.history.record_start(self.cfg.start_limit, now)
        {
            let reason = format!(
                "start limit reached: more than {count} starts within {}",
                fmt_duration(window)
            );
            self.emit(Level::Bad, &format!("failed: {reason}"));
            self.publish(|s| {
                s.state = State::Failed;
                s.pid = None;
                s.started = None;
                s.next_start = None;
                s.reason = Some(reason);
            });
            self.phase = Phase::Idle;
            return;
        }
        match process::spawn(&self.spawn_spec()) {
            Ok(mut child) => {
                let pid = child.pid();
                let mut pumps = Vec::with_capacity(2);
                if let Some(out) = child.take_stdout() {
                    pumps.push(self.logs.pump(out, Stream::Out));
                }
                if let Some(err) = child.take_stderr() {
                    pumps.push(self.logs.pump(err, Stream::Err));
                }
                if let Err(e) = self.ctx.state.save_group(&child.group_record(self.name())) {
                    self.emit(
                        Level::Warn,
                        &format!("cannot record process group {pid} in the state dir: {e}"),
                    );
                }
                self.emit(Level::Good, &format!("started (pid {pid})"));
                self.publish(|s| {
                    s.state = State::Running;
                    s.pid = Some(pid);
                    s.started = Some(now);
                    s.next_start = None;
                    s.reason = None;
                    if restart {
                        s.restarts += 1;
                    }
                });
                self.phase = Phase::Running(Run {
                    child,
                    started: now,
                    pumps,
                });
            }
            Err(err) => {
                let reason = format!("cannot start: {}", error_chain(&err));
                self.emit(Level::Bad, &reason);
                if restart {
                    self.publish(|s| s.restarts += 1);
                }
                self.after_end(None, Duration::ZERO, reason);
            }
        }
    }

    /// The main process ended on its own.
    async fn on_exit(&mut self, status: ExitStatus) {
        let Phase::Running(run) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        let ran = run.started.elapsed();
        // What the program left behind in its group goes too, before any restart.
        self.end_tree(run, false).await;
        self.publish(|s| {
            s.last_exit = Some(last_exit(status, ran));
            s.pid = None;
            s.started = None;
        });
        self.after_end(Some(status), ran, format!("exited with {status}"));
    }

    /// Decide and enter what follows the end of a run (`None`: the spawn failed).
    fn after_end(&mut self, status: Option<ExitStatus>, ran: Duration, what: String) {
        let decision = policy::after_exit(
            self.cfg.restart,
            &self.cfg.success_codes,
            &self.cfg.backoff,
            &mut self.history,
            status,
            ran,
            fastrand::f64(),
        );
        let after = if status.is_some() {
            format!(" after {}", fmt_duration(ran))
        } else {
            String::new()
        };
        match decision {
            AfterExit::Restart { delay, attempt } => {
                if status.is_some() {
                    let level = if policy::is_success(&self.cfg.success_codes, status) {
                        Level::Info
                    } else {
                        Level::Warn
                    };
                    self.emit(
                        level,
                        &format!(
                            "{what}{after}; restarting in {} (attempt {attempt})",
                            fmt_duration(delay)
                        ),
                    );
                }
                if delay.is_zero() {
                    self.start(true);
                } else {
                    let until = crate::util::instant_after(Instant::now(), delay);
                    self.publish(|s| {
                        s.state = State::Backoff;
                        s.next_start = Some(until);
                        s.reason = Some(what);
                    });
                    self.phase = Phase::Backoff { until };
                }
            }
            AfterExit::Rest { failed } => {
                let (state, level) = if failed {
                    (State::Failed, Level::Bad)
                } else {
                    (State::Exited, Level::Info)
                };
                if status.is_some() {
                    self.emit(
                        level,
                        &format!(
                            "{what}{after}; not restarted (restart = {})",
                            restart_name(self.cfg.restart)
                        ),
                    );
                }
                self.publish(|s| {
                    s.state = state;
                    s.next_start = None;
                    s.reason = Some(what);
                });
                self.phase = Phase::Idle;
            }
        }
    }

    /// Stop whatever runs or is scheduled. Rests in `stopped` with `reason` (unless a
    /// restart follows).
    async fn stop(&mut self, kind: StopKind, reason: &str) {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Running(run) => {
                self.publish(|s| s.state = State::Stopping);
                let ran = run.started.elapsed();
                let pid = run.child.pid();
                let status = self.end_tree(run, true).await;
                if kind == StopKind::Stop {
                    let how = status.map_or_else(String::new, |st| format!(", {st}"));
                    self.emit(
                        Level::Info,
                        &format!("stopped (pid {pid}{how}, ran {})", fmt_duration(ran)),
                    );
                }
                self.publish(|s| {
                    if let Some(st) = status {
                        s.last_exit = Some(last_exit(st, ran));
                    }
                });
            }
            Phase::Backoff { .. } | Phase::Idle => {}
        }
        self.publish(|s| {
            s.state = State::Stopped;
            s.pid = None;
            s.started = None;
            s.next_start = None;
            s.reason = Some(reason.to_owned());
        });
    }

    /// End a run's whole tree: first the graceful steps (`stop_command` or `stop_signal`, up
    /// to `stop_timeout`), to the main process or, after it exited on its own, to what is left
    /// of its group; then SIGKILL to whatever remains. `asked`: a stop was asked for, so a
    /// kill after the timeout is reported. Returns the main process's status.
    async fn end_tree(&mut self, mut run: Run, asked: bool) -> Option<ExitStatus> {
        let timeout = self.cfg.stop_timeout;
        let mut kill_now = self.ctx.kill_now.clone();
        let mut stop_cmd = None;
        let already_gone =
            run.child.exit_status().is_some() && run.child.wait_tree_gone(Duration::ZERO).await;
        if !already_gone {
            let (gone, cmd) = self.graceful(&mut run, &mut kill_now).await;
            stop_cmd = cmd;
            if !gone {
                if asked && !*kill_now.borrow() {
                    self.emit(
                        Level::Warn,
                        &format!("did not stop within {}; killing", fmt_duration(timeout)),
                    );
                }
                if let Err(e) = run.child.kill_tree() {
                    self.emit(
                        Level::Warn,
                        &format!("cannot kill process group {}: {e}", run.child.pid()),
                    );
                }
                if !run.child.wait_tree_gone(Duration::from_secs(5)).await {
                    self.emit(
                        Level::Bad,
                        &format!("processes of group {} survive SIGKILL", run.child.pid()),
                    );
                }
            }
        }
        if let Some(mut cmd) = stop_cmd {
            if cmd.exit_status().is_none() {
                let _ = cmd.kill_tree();
            }
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                cmd.wait_tree_gone(Duration::from_secs(5)),
            )
            .await;
        }
        let status = run.child.exit_status();
        if let Err(e) = self.ctx.state.clear_group(self.name()) {
            self.emit(
                Level::Warn,
                &format!("cannot clear the record of group {}: {e}", run.child.pid()),
            );
        }
        // The tree is gone, so every writer of the pipes is closed: the pumps end at once,
        // after writing a last line without newline.
        for pump in run.pumps.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), pump).await;
        }
        status
    }

    /// The graceful steps, within `stop_timeout` (or until a second Ctrl-C): `stop_command`
    /// if there is one, else `stop_signal` to the group (Unix) or each step of `stop_method`
    /// but `terminate`, with the timeout split across them (Windows). Returns whether the
    /// whole tree is gone, and the stop command's child if one was started.
    async fn graceful(
        &self,
        run: &mut Run,
        kill_now: &mut watch::Receiver<bool>,
    ) -> (bool, Option<Child>) {
        let timeout = self.cfg.stop_timeout;
        let mut stop_cmd = None;
        if let Some(cmd) = &self.cfg.stop_command {
            let mut spec = self.spawn_spec();
            if let Some((program, args)) = cmd.split_first() {
                spec.program = program.into();
                spec.args = args.iter().map(Into::into).collect();
            }
            spec.env
                .push(("WARDEN_PID".into(), run.child.pid().to_string().into()));
            spec.capture_output = false;
            match process::spawn(&spec) {
                Ok(c) => stop_cmd = Some(c),
                Err(e) => self.emit(
                    Level::Warn,
                    &format!(
                        "stop_command failed: {}; using the stop signal",
                        error_chain(&e)
                    ),
                ),
            }
        }
        if stop_cmd.is_some() {
            return (
                wait_gone_or_kill_now(&mut run.child, timeout, kill_now).await,
                stop_cmd,
            );
        }
        #[cfg(unix)]
        {
            if let Err(e) = run.child.signal(self.cfg.stop_signal) {
                self.emit(
                    Level::Warn,
                    &format!(
                        "cannot send {} to group {}: {e}",
                        self.cfg.stop_signal,
                        run.child.pid()
                    ),
                );
            }
            (
                wait_gone_or_kill_now(&mut run.child, timeout, kill_now).await,
                None,
            )
        }
        #[cfg(windows)]
        {
            use crate::config::StopMethod;
            let steps: Vec<StopMethod> = self
                .cfg
                .stop_method
                .iter()
                .copied()
                .filter(|m| *m != StopMethod::Terminate)
                .collect();
            if steps.is_empty() {
                return (false, None);
            }
            let share = timeout / u32::try_from(steps.len()).unwrap_or(1);
            for step in steps {
                // The Ctrl-C step waits for a short-lived helper process.
                let asked = tokio::task::block_in_place(|| run.child.request_stop(step));
                if asked.is_err() {
                    continue; // e.g. no window for WM_CLOSE: the next step at once
                }
                if wait_gone_or_kill_now(&mut run.child, share, kill_now).await {
                    return (true, None);
                }
                if *kill_now.borrow() {
                    break;
                }
            }
            (false, None)
        }
    }
}

/// Wait until the child's whole tree is gone (`true`), `timeout` passed or a second Ctrl-C
/// asked to kill at once (`false`).
async fn wait_gone_or_kill_now(
    child: &mut Child,
    timeout: Duration,
    kill_now: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        gone = child.wait_tree_gone(timeout) => gone,
        _ = kill_now.wait_for(|k| *k) => false,
    }
}

fn restart_name(p: crate::config::RestartPolicy) -> &'static str {
    match p {
        crate::config::RestartPolicy::Always => "always",
        crate::config::RestartPolicy::OnFailure => "on-failure",
        crate::config::RestartPolicy::Never => "never",
    }
}

fn last_exit(status: ExitStatus, ran: Duration) -> LastExit {
    LastExit {
        code: status.code(),
        signal: status.signal(),
        at: rfc3339_ms(SystemTime::now()),
        ran_ms: ran.as_millis() as u64,
    }
}

/// `err: cause: cause`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut src = err.source();
    while let Some(e) = src {
        s.push_str(": ");
        s.push_str(&e.to_string());
        src = e.source();
    }
    s
}
