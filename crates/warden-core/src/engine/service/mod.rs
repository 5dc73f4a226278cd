//! One task per service: it owns the child, decides on restarts, and answers requests.
//!
//! The task waits on everything at once (`select!`): the child's exit, a request, the end of
//! a backoff delay. What to do after an exit is decided by the pure functions of
//! [`crate::policy`]. Its state is one [`Phase`], whose variants carry their data; what it
//! publishes ([`Snapshot`]) is derived from it after every change, never written beside it.

mod daemonize;
mod notify; // health: sd_notify
mod probe; // health: ready and health checks
mod sample; // health: resource samples
mod snapshot;
mod stop;
mod up;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use self::sample::Sensing;
use self::snapshot::view;
pub use self::snapshot::{Snapshot, Usage, View};
use super::events::Level;
use super::spawner::Proc;
use super::{Ctx, Notice};
use crate::config::ServiceConfig;
use crate::logs::ServiceLogs;
use crate::policy::{self, AfterExit, RestartHistory, StartVerdict};
use crate::process::{ExitStatus, Output, SpawnSpec};
use crate::proto::LastExit;
use crate::util::{fmt_duration, rfc3339_ms};

/// The shortest wait before a start that could not spawn is tried again (a missing program
/// under `backoff.initial = "0s"` would otherwise spin).
const SPAWN_RETRY_FLOOR: Duration = Duration::from_millis(100);

/// The answer to a request: `Err` carries the reason in words.
pub type Reply = oneshot::Sender<Result<(), String>>;

/// When a start's reply is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Once the process was spawned (or could not be): warden's own start of its services.
    Spawned,
    /// Once the service is *up* (its main process ran `min_uptime`), or with the reason
    /// when it ended before: `warden start` and `restart`.
    Up,
}

/// What the engine asks of a service task.
pub enum Request {
    /// Start it (by hand or at warden's start); resets the restart history.
    Start(Reply, Until),
    /// Stop it; it stays stopped until started again.
    Stop(Reply),
    /// Stop it if it runs, then start it; answers once it is up.
    Restart(Reply),
    /// Take a new config (reload). It restarts if it was running or waiting to restart.
    Reconfigure(Arc<ServiceConfig>, Reply),
    /// Stop it and end the task.
    Shutdown(Reply),
    /// `depends_on`: stop it if it runs and rest `pending` with this reason (`engine/deps.rs`).
    Wait(String, Reply),
}

/// A running child and what belongs to its run.
struct Run {
    child: Box<dyn Proc>,
    /// When the launcher was spawned: `start_timeout` and "ran" count from here.
    started: Instant,
    /// When the current main process became the main one (the spawn, or the moment a
    /// daemon was followed): `min_uptime` and the uptime count from here.
    main_since: Instant,
    /// The main process is a daemon the launcher left (`pid_file`, or adopted).
    followed: bool,
    /// The launcher exited with a success code; the pid of `pid_file` is awaited.
    awaiting: Option<daemonize::PidWait>,
    pumps: Vec<JoinHandle<()>>,
}

/// Where a service rests when no process runs and nothing is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    Pending,
    Stopped,
    Exited,
    Failed,
}

enum Phase {
    Rest {
        rest: Rest,
        reason: String,
    },
    /// Spawned, not yet up: it has not run `min_uptime`.
    Starting(Run),
    Running(Run),
    /// The run is being ended by the task (its tree is owned by the stopping code).
    Stopping {
        pid: u32,
        since: Instant,
    },
    Backoff {
        until: Instant,
        reason: String,
    },
}

enum Event {
    Exited(ExitStatus),
    /// A starting service ran `min_uptime`.
    Up,
    /// The pid file names this pid (not yet checked against the tree).
    PidFile(u32),
    /// A starting service was not up within `start_timeout`.
    StartTimeout,
    BackoffOver,
    Request(Option<Request>),
    /// health: a ready or health probe's result.
    Probe(probe::ProbeResult),
}

pub struct ServiceTask {
    cfg: Arc<ServiceConfig>,
    logs: Arc<ServiceLogs>,
    ctx: Arc<Ctx>,
    rx: mpsc::Receiver<Request>,
    status: watch::Sender<Snapshot>,
    history: RestartHistory,
    phase: Phase,
    restarts: u32,
    last_exit: Option<LastExit>,
    /// Replies waiting for the service to be up (or to end before).
    waiting: Vec<Reply>,
    /// health: the probes of the current run (`probe.rs`).
    probes: Option<probe::Probes>,
}

impl ServiceTask {
    /// A task resting in `rest` (with `reason`) until its first request. Returns the task and
    /// the receiver of what it publishes.
    pub fn new(
        cfg: Arc<ServiceConfig>,
        logs: Arc<ServiceLogs>,
        ctx: Arc<Ctx>,
        rx: mpsc::Receiver<Request>,
        rest: Rest,
        reason: String,
    ) -> (ServiceTask, watch::Receiver<Snapshot>) {
        let phase = Phase::Rest { rest, reason };
        let (status, status_rx) = watch::channel(Snapshot::new(view(&phase)));
        let task = ServiceTask {
            cfg,
            logs,
            ctx,
            rx,
            status,
            history: RestartHistory::default(),
            phase,
            restarts: 0,
            last_exit: None,
            waiting: Vec::new(),
            probes: None,
        };
        (task, status_rx)
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn emit(&self, level: Level, msg: &str) {
        self.ctx.events.emit(&self.cfg.name, level, msg);
    }

    /// Enter `phase` and publish what it shows. Replies waiting for the service to be up
    /// get their answer once it is, or once it will not be.
    fn set(&mut self, phase: Phase) {
        self.phase = phase;
        if !matches!(self.phase, Phase::Starting(_) | Phase::Running(_)) {
            self.probes = None; // health: the probes end with the run
        }
        self.publish();
        if let Phase::Rest {
            rest: Rest::Exited | Rest::Failed,
            ..
        } = self.phase
        {
            // Maybe no service will run again (`when_all_ended`).
            let _ = self.ctx.notices.send(Notice::Rested);
        }
        let settled = !matches!(self.phase, Phase::Starting(_) | Phase::Stopping { .. });
        if settled && !self.waiting.is_empty() {
            let result = self.start_result();
            for reply in self.waiting.drain(..) {
                let _ = reply.send(result.clone());
            }
        }
    }

    /// Answer a start now, or once the service is up (`Until::Up` while it is starting).
    fn reply_after_start(&mut self, reply: Reply, until: Until) {
        if until == Until::Up && matches!(self.phase, Phase::Starting(_)) {
            self.waiting.push(reply);
        } else {
            let _ = reply.send(self.start_result());
        }
    }

    fn rest(&mut self, rest: Rest, reason: impl Into<String>) {
        self.set(Phase::Rest {
            rest,
            reason: reason.into(),
        });
    }

    fn publish(&self) {
        self.status.send_replace(Snapshot {
            view: view(&self.phase),
            restarts: self.restarts,
            last_exit: self.last_exit.clone(),
            health: self.health_shown(),
            was_healthy: self.probes.as_ref().is_some_and(|p| p.was_healthy),
            usage: self.probes.as_ref().and_then(|p| p.usage),
            status_text: self.probes.as_ref().and_then(|p| p.status_text.clone()),
        });
    }

    /// The task's life: wait on the child, the backoff timer and requests together.
    pub async fn run(mut self) {
        loop {
            let event = match &mut self.phase {
                Phase::Running(run) => tokio::select! {
                    status = run.child.wait() => Event::Exited(status),
                    req = self.rx.recv() => Event::Request(req),
                    r = probe::next(&mut self.probes) => Event::Probe(r),
                },
                // Boxed: the timers of these phases would double every idle task's future.
                Phase::Starting(_) | Phase::Backoff { .. } => Box::pin(self.next_timed()).await,
                Phase::Rest { .. } | Phase::Stopping { .. } => Event::Request(self.rx.recv().await),
            };
            // Boxed: what handling an event awaits (a stop, a restart) is far larger than
            // the waiting above, and it would otherwise sit in every idle task's memory.
            if Box::pin(self.on_event(event)).await {
                break;
            }
        }
    }

    /// Act on one event; `true` once the task should end.
    async fn on_event(&mut self, event: Event) -> bool {
        match event {
            Event::Exited(status) => self.on_exit(status).await,
            Event::Up => {
                if let Phase::Starting(run) = self.take_phase() {
                    self.set(Phase::Running(run));
                }
            }
            Event::PidFile(pid) => self.on_pid(pid),
            Event::StartTimeout => self.on_start_timeout().await,
            Event::BackoffOver => self.start(true),
            Event::Probe(r) => self.on_probe(r).await,
            Event::Request(None) => {
                self.stop("warden is shutting down").await;
                return true;
            }
            Event::Request(Some(Request::Shutdown(reply))) => {
                self.stop("warden is shutting down").await;
                let _ = reply.send(Ok(()));
                return true;
            }
            Event::Request(Some(req)) => self.handle(req).await,
        }
        false
    }

    async fn handle(&mut self, req: Request) {
        match req {
            Request::Start(reply, until) => {
                if !matches!(self.phase, Phase::Starting(_) | Phase::Running(_)) {
                    self.history.reset();
                    self.start(false);
                }
                self.reply_after_start(reply, until);
            }
            Request::Stop(reply) => {
                self.stop("stopped by hand").await;
                let _ = reply.send(Ok(()));
            }
            Request::Restart(reply) => {
                // A start waiting for the old run to be up waits for the new one instead.
                let waiting = std::mem::take(&mut self.waiting);
                self.stop("restarting").await;
                self.waiting = waiting;
                self.history.reset();
                self.start(false);
                self.reply_after_start(reply, Until::Up);
            }
            Request::Reconfigure(cfg, reply) => {
                let was_active = matches!(
                    self.phase,
                    Phase::Starting(_) | Phase::Running(_) | Phase::Backoff { .. }
                );
                let waiting = std::mem::take(&mut self.waiting);
                if was_active {
                    self.stop("config changed").await;
                }
                self.waiting = waiting;
                self.logs.reconfigure(&cfg.log);
                self.cfg = cfg;
                let result = if was_active {
                    self.history.reset();
                    self.start(false);
                    self.start_result()
                } else {
                    Ok(())
                };
                let _ = reply.send(result);
            }
            Request::Wait(reason, reply) => {
                // depends_on: back to pending until what it needs holds again.
                if !matches!(self.phase, Phase::Rest { .. }) {
                    self.stop(&reason).await;
                }
                self.rest(Rest::Pending, reason);
                let _ = reply.send(Ok(()));
            }
            Request::Shutdown(_) => unreachable!("handled by run"),
        }
    }

    /// After a start attempt: `Err` with the reason if it did not end up running.
    fn start_result(&self) -> Result<(), String> {
        match &self.phase {
            Phase::Starting(_) | Phase::Running(_) => Ok(()),
            other => Err(view(other)
                .reason()
                .map_or_else(|| "did not start".to_owned(), str::to_owned)),
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
            output: if self.cfg.log.joined() {
                Output::Joined
            } else {
                Output::Separate
            },
            // Every spawn of the service (stop_command, probes) runs with its credentials.
            credentials: self.cfg.privileges.credentials.clone(),
            confinement: None,
        }
    }

    /// Start the child now (the start limit permitting). `restart`: this start follows an
    /// exit by the restart policy (it counts in `restarts`).
    fn start(&mut self, restart: bool) {
        let now = Instant::now();
        if let StartVerdict::LimitHit { count, window } = self
            .history
            .record_start(self.cfg.start_limit, now.into_std())
        {
            let reason = format!(
                "start limit reached: more than {count} starts within {}",
                fmt_duration(window)
            );
            self.emit(Level::Bad, &format!("failed: {reason}"));
            self.rest(Rest::Failed, reason);
            return;
        }
        if restart {
            self.restarts = self.restarts.saturating_add(1);
        }
        let lines = probe::subscribe(&self.cfg, &self.logs); // health: before the first line
        let mut spec = self.spawn_spec();
        spec.confinement = Some(crate::process::Confinement {
            instance: self.ctx.marker.clone(),
            service: self.cfg.name.clone(),
            memory_max: self.cfg.privileges.memory_limit,
            cpu_max: self.cfg.privileges.cpu_max,
        });
        // health: notify = true binds NOTIFY_SOCKET before the spawn
        let notify =
            notify::bind(&self.cfg, self.ctx.state.path(), &mut spec).unwrap_or_else(|e| {
                self.emit(Level::Bad, &e);
                None
            });
        match self.ctx.spawner.spawn(&spec) {
            Ok(mut child) => {
                let pid = child.pid();
                for note in child.confinement_notes() {
                    self.emit(Level::Warn, &note);
                }
                // One task reads both pipes, fairly (see `ServiceLogs::pump_pair`).
                let (out, err) = (child.take_stdout(), child.take_stderr());
                let pumps = vec![self.logs.pump_pair(out, err)];
                if child.needs_record()
                    && let Err(e) = self.ctx.state.save_group(&child.group_record(self.name()))
                {
                    self.emit(
                        Level::Warn,
                        &format!("cannot record process group {pid} in the state dir: {e}"),
                    );
                }
                self.emit(Level::Good, &format!("started (pid {pid})"));
                let run = Run {
                    child,
                    started: now,
                    main_since: now,
                    followed: false,
                    awaiting: None,
                    pumps,
                };
                // health: the probes of this run
                self.probes = Some(probe::Probes::start(
                    &self.cfg,
                    &self.ctx.sensing,
                    pid,
                    self.exec_env(),
                    lines,
                    notify,
                    now,
                ));
                self.set(if up::is_up(&self.cfg, &run) {
                    Phase::Running(run)
                } else {
                    Phase::Starting(run)
                });
            }
            Err(err) => {
                let reason = format!("cannot start: {}", error_chain(&err));
                self.emit(Level::Bad, &reason);
                if err.is_permanent() {
                    // Its privileges cannot be granted: a retry would fail the same way.
                    self.rest(Rest::Failed, reason);
                } else {
                    self.after_end(None, Duration::ZERO, reason);
                }
            }
        }
    }

    /// Take the phase out, leaving a placeholder the caller replaces.
    fn take_phase(&mut self) -> Phase {
        std::mem::replace(
            &mut self.phase,
            Phase::Rest {
                rest: Rest::Exited,
                reason: String::new(),
            },
        )
    }

    /// The main process ended on its own.
    async fn on_exit(&mut self, status: ExitStatus) {
        let (was_up, run) = match self.take_phase() {
            Phase::Running(run) => (true, run),
            Phase::Starting(run) => (false, run),
            _ => return,
        };
        // A launcher that daemonized: the run goes on with the daemon as its main process.
        let mut run = match self.daemonized(run, status, was_up) {
            Ok(phase) => {
                self.set(phase);
                return;
            }
            Err(run) => run,
        };
        Self::reach_leftovers(&mut run);
        let ran = run.started.elapsed();
        // What the program left behind in its group goes too, before any restart.
        self.set(Phase::Stopping {
            pid: run.child.pid(),
            since: run.started,
        });
        self.end_tree(run, false).await;
        self.last_exit = Some(last_exit(status, ran));
        self.after_end(Some(status), ran, format!("exited with {status}"));
    }

    /// A start that was not up within `start_timeout`: end its tree; the restart policy
    /// decides as for a failed start.
    async fn on_start_timeout(&mut self) {
        let Phase::Starting(run) = self.take_phase() else {
            return;
        };
        let reason = self.not_up_reason(&run);
        self.emit(Level::Bad, &reason);
        self.set(Phase::Stopping {
            pid: run.child.pid(),
            since: run.main_since,
        });
        let since = run.started;
        self.end_tree(run, true).await;
        self.after_end(None, since.elapsed(), reason);
    }

    /// Decide and enter what follows the end of a run (`None`: the spawn failed).
    fn after_end(&mut self, status: Option<ExitStatus>, ran: Duration, what: String) {
        let decision = policy::after_exit_with(
            &self.cfg.exit_actions,
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
                // A start that failed is never retried in the same call: with a zero
                // backoff that would recurse (spawn fails, restart, spawn fails, ...) until
                // the stack overflows. It waits at least SPAWN_RETRY_FLOOR instead.
                let delay = if status.is_none() {
                    delay.max(SPAWN_RETRY_FLOOR)
                } else {
                    delay
                };
                if delay.is_zero() {
                    self.start(true);
                } else {
                    self.set(Phase::Backoff {
                        until: deadline_after(delay),
                        reason: what,
                    });
                }
            }
            AfterExit::Rest { failed } => {
                let (rest, level) = if failed {
                    (Rest::Failed, Level::Bad)
                } else {
                    (Rest::Exited, Level::Info)
                };
                if let Some(st) = status {
                    // `exit_actions` decided before the policy when it names this exit.
                    let by = match self.cfg.exit_actions.for_code(st.code()) {
                        Some(crate::model::ExitAction::Exit) => "exit_actions: exit".to_owned(),
                        _ => format!("restart = {}", self.cfg.restart.name()),
                    };
                    self.emit(level, &format!("{what}{after}; not restarted ({by})"));
                }
                self.rest(rest, what);
            }
            AfterExit::StopWarden => {
                self.emit(
                    Level::Bad,
                    &format!("{what}{after}; exit_actions: stop-warden: stopping warden"),
                );
                let _ = self.ctx.notices.send(Notice::StopWarden {
                    service: self.cfg.name.clone(),
                    reason: what.clone(),
                });
                self.rest(Rest::Exited, what);
            }
        }
    }

    /// Stop whatever runs or is scheduled. Rests in `stopped` with `reason` (a restart may
    /// follow).
    async fn stop(&mut self, reason: &str) {
        let phase = std::mem::replace(
            &mut self.phase,
            Phase::Rest {
                rest: Rest::Stopped,
                reason: reason.to_owned(),
            },
        );
        if let Phase::Running(mut run) | Phase::Starting(mut run) = phase {
            // A daemon that wrote its pid file meanwhile is stopped as the main process.
            self.try_pid_file(&mut run);
            let pid = run.child.pid();
            self.set(Phase::Stopping {
                pid,
                since: run.started,
            });
            let since = run.started;
            let status = self.end_tree(run, true).await;
            // It ran until its tree was gone, not until the stop was asked.
            let ran = since.elapsed();
            let how = status.map_or_else(String::new, |st| format!(", {st}"));
            self.emit(
                Level::Info,
                &format!("stopped (pid {pid}{how}, ran {})", fmt_duration(ran)),
            );
            if let Some(st) = status {
                self.last_exit = Some(last_exit(st, ran));
            }
        }
        self.rest(Rest::Stopped, reason);
    }
}

/// `now + delay`, saturating far in the future instead of overflowing.
fn deadline_after(delay: Duration) -> Instant {
    deadline_after_from(Instant::now(), delay)
}

/// `from + delay`, saturating far in the future instead of overflowing.
fn deadline_after_from(from: Instant, delay: Duration) -> Instant {
    from.checked_add(delay)
        .or_else(|| from.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(from)
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
