//! The supervisor: one task per service ([`service::ServiceTask`]), and an engine loop that
//! owns them by name, starts them, applies a reload as a diff, answers status and shuts
//! everything down.
//!
//! The engine is driven through a cloneable [`Handle`]; the control API and `warden up` are
//! both clients of it.

mod deps; // health: depends_on
pub mod events;
mod hand_stopped;
mod in_force; // GET /v1/services/{name}/config
pub mod metrics; // health: /health and /metrics
mod reload;
pub mod service;
pub mod spawner;
#[cfg(test)]
mod tests;
mod wait;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use events::{Events, Level};
use service::{Rest, ServiceTask, Snapshot, View};
pub use spawner::{OsSpawner, Proc, Spawner};

use crate::config::{self, Config, ConfigErrors, ProcessEnv, ServiceConfig, WhenAllEnded};
use crate::logs::ServiceLogs;
pub use crate::proto::{Action, ReloadReport};
use crate::proto::{StatusReport, WardenInfo};
use crate::state::StateDir;

/// What every service task shares.
pub struct Ctx {
    pub events: Events,
    /// Shared with the caller, which keeps the lock until warden really exits.
    pub state: Arc<StateDir>,
    /// `WARDEN_INSTANCE` for every child.
    pub marker: String,
    /// Turns true on a second Ctrl-C: stop waiting for graceful exits, kill at once.
    pub kill_now: watch::Receiver<bool>,
    /// Starts every process (the OS, or a fake in the engine's unit tests).
    pub spawner: Arc<dyn Spawner>,
    /// What a task tells the engine about itself.
    pub notices: mpsc::UnboundedSender<Notice>,
    /// Probes and resource samples (health).
    pub sensing: service::Sensing,
}

/// What a service task tells the engine on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// It came to rest (exited, failed) by itself: maybe no service will run again.
    Rested,
    /// Its exit asks to stop warden (`exit_actions`).
    StopWarden { service: String, reason: String },
}

/// Why warden should end without being asked (see [`Handle::finished`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// `exit_actions` said `stop-warden` for this exit.
    StopWarden { service: String, reason: String },
    /// `when_all_ended = "stop"`: no service will run again; these failed.
    AllEnded { failed: Vec<String> },
}

impl Finish {
    /// A failure for the service manager above warden?
    pub fn failed(&self) -> bool {
        match self {
            Finish::StopWarden { .. } => true,
            Finish::AllEnded { failed } => !failed.is_empty(),
        }
    }
}

impl std::fmt::Display for Finish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finish::StopWarden { service, reason } => {
                write!(f, "{service} {reason}; its exit_actions stop warden")
            }
            Finish::AllEnded { failed } if failed.is_empty() => {
                f.write_str("every service ended (when_all_ended = \"stop\")")
            }
            Finish::AllEnded { failed } => write!(
                f,
                "every service ended (when_all_ended = \"stop\"); failed: {}",
                failed.join(", ")
            ),
        }
    }
}

/// An error of an engine operation, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("no service named {name:?} (known: {})", known.join(", "))]
    UnknownService { name: String, known: Vec<String> },
    #[error("{name}: {reason}")]
    Failed { name: String, reason: String },
    #[error("warden is shutting down")]
    ShuttingDown,
}

/// Why a reload changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// The config file has errors (each with its position).
    #[error("the config has errors; nothing was changed")]
    Config(ConfigErrors),
    #[error("warden is shutting down")]
    ShuttingDown,
}

/// What `status` reads, kept current by the engine loop: answering it never waits on the
/// loop (a reload may be busy stopping removed services) or on a service task.
struct Board {
    config: String,
    /// The file a reload re-reads.
    config_path: std::path::PathBuf,
    started: Instant,
    services: Vec<(String, watch::Receiver<Snapshot>, Arc<ServiceLogs>)>,
    in_force: Arc<Vec<Arc<ServiceConfig>>>, // each service's config as the engine runs it
    /// The engine has ended: no status any more.
    closed: bool,
    /// health: when the figures were last asked for (the samplers run while they are).
    demand: Arc<watch::Sender<Option<Instant>>>,
    extra: metrics::Extra, // health: what /health and /metrics read beyond the status
}

impl Board {
    fn report(&self) -> Option<StatusReport> {
        if self.closed {
            return None;
        }
        let now = Instant::now();
        self.demand.send_replace(Some(now)); // health: CPU and MEM are wanted
        Some(StatusReport {
            warden: WardenInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                pid: std::process::id(),
                config: self.config.clone(),
                uptime_ms: self.started.elapsed().as_millis() as u64,
                tracking: tracking_mode(),
            },
            services: self
                .services
                .iter()
                .map(|(name, s, logs)| s.borrow().status(name, now, logs.problem()))
                .collect(),
        })
    }
}

/// The status's `tracking`, from the process layer's mode (found once).
fn tracking_mode() -> crate::proto::Tracking {
    match crate::process::tracking() {
        crate::process::Tracking::Cgroup { .. } => crate::proto::Tracking::Cgroup,
        crate::process::Tracking::Job => crate::proto::Tracking::Job,
        crate::process::Tracking::ProcessGroup { .. } => crate::proto::Tracking::ProcessGroup,
    }
}

fn read(board: &std::sync::RwLock<Board>) -> std::sync::RwLockReadGuard<'_, Board> {
    board
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(board: &std::sync::RwLock<Board>) -> std::sync::RwLockWriteGuard<'_, Board> {
    board
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

enum Request {
    /// Answered with the services a start started first (`depends_on`).
    Act(
        Action,
        String,
        oneshot::Sender<Result<Vec<String>, EngineError>>,
    ),
    Logs(
        String,
        oneshot::Sender<Result<Arc<ServiceLogs>, EngineError>>,
    ),
    Reload(Box<Config>, oneshot::Sender<ReloadReport>),
    Shutdown(oneshot::Sender<()>),
}

/// A cloneable way to drive the engine.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Request>,
    board: Arc<std::sync::RwLock<Board>>,
    events: Events,
    finish: watch::Receiver<Option<Finish>>,
}

impl Handle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// The status of warden and every service; `None` once the engine has ended. Answered
    /// from the published snapshots, never queued behind a reload or a stop.
    #[allow(clippy::unused_async)] // async like the other calls of the handle
    pub async fn status(&self) -> Option<StatusReport> {
        read(&self.board).report()
    }

    /// The config file warden runs (the one a reload re-reads); `None` once the engine ended.
    pub fn config_path(&self) -> Option<std::path::PathBuf> {
        let board = read(&self.board);
        (!board.closed).then(|| board.config_path.clone())
    }

    /// Start, stop or restart one service; returns once it took effect.
    pub async fn act(&self, action: Action, name: &str) -> Result<(), EngineError> {
        self.act_reporting(action, name).await.map(drop)
    }

    /// As [`Handle::act`], with what a start started first because `name` needs it.
    pub async fn act_reporting(
        &self,
        action: Action,
        name: &str,
    ) -> Result<Vec<String>, EngineError> {
        self.ask(|tx| Request::Act(action, name.to_owned(), tx))
            .await
            .unwrap_or(Err(EngineError::ShuttingDown))
    }

    pub async fn logs(&self, name: &str) -> Result<Arc<ServiceLogs>, EngineError> {
        self.ask(|tx| Request::Logs(name.to_owned(), tx))
            .await
            .unwrap_or(Err(EngineError::ShuttingDown))
    }

    /// Apply a new, already validated config.
    pub async fn apply(&self, config: Config) -> Option<ReloadReport> {
        self.ask(|tx| Request::Reload(Box::new(config), tx)).await
    }

    /// Re-read the config file warden runs and apply what changed: the one reload path, for
    /// `POST /v1/reload`, SIGHUP and the Windows service's reload alike. A config with errors
    /// changes nothing; its warnings (a program not found) change nothing about that, and
    /// travel in the report. Either way the outcome goes to warden's log.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let path = read(&self.board).config_path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path, &ProcessEnv))
            .await
            .map_err(|_| ReloadError::ShuttingDown)?;
        let events = self.events;
        match loaded {
            Err(errors) => {
                for e in &errors.errors {
                    events.emit("warden", Level::Bad, &e.to_string());
                }
                events.emit(
                    "warden",
                    Level::Bad,
                    "reload refused: the config has errors; nothing was changed",
                );
                Err(ReloadError::Config(errors))
            }
            Ok(new) => {
                let warnings: Vec<String> = new.warnings.iter().map(ToString::to_string).collect();
                for w in &warnings {
                    events.emit("warden", Level::Warn, w);
                }
                let mut report = self.apply(new).await.ok_or(ReloadError::ShuttingDown)?;
                report.warnings = warnings;
                events.emit(
                    "warden",
                    Level::Info,
                    &format!("reloaded: {}", report.summary()),
                );
                Ok(report)
            }
        }
    }

    /// Resolves once warden should end on its own (`exit_actions`, `when_all_ended`); never
    /// otherwise.
    pub async fn finished(&self) -> Finish {
        let mut rx = self.finish.clone();
        let finish = rx.wait_for(Option::is_some).await.map(|f| f.clone());
        match finish {
            Ok(Some(f)) => f,
            _ => std::future::pending().await,
        }
    }

    /// Stop every service and end the engine; returns when all are stopped.
    pub async fn shutdown(&self) {
        let _ = self.ask(Request::Shutdown).await;
    }
}

struct Entry {
    /// Shared with the task and the board's `in_force`: one copy per service, not three.
    cfg: Arc<ServiceConfig>,
    tx: mpsc::Sender<service::Request>,
    status: watch::Receiver<Snapshot>,
    logs: Arc<ServiceLogs>,
    task: JoinHandle<()>,
}

/// The engine: create it with [`Engine::new`], then `spawn` its loop.
pub struct Engine {
    config: Config,
    ctx: Arc<Ctx>,
    entries: Vec<Entry>,
    hand_stopped: hand_stopped::HandStopped,
    board: Arc<std::sync::RwLock<Board>>,
    /// With `--attach`: the width of the name column.
    attach: Option<usize>,
    /// `depends_on`: the gate of each service waiting for (or following) what it needs.
    gates: std::collections::BTreeMap<String, JoinHandle<()>>,
    /// `depends_on`: the services to start through their gate once all exist.
    to_gate: Vec<String>,
    /// The tasks' notices, taken by the loop.
    notices: Option<mpsc::UnboundedReceiver<Notice>>,
    /// Set once warden should end on its own.
    finish: watch::Sender<Option<Finish>>,
}

impl Engine {
    /// Build the engine for `config`. The state dir must be locked already; the caller keeps
    /// a clone of it, so the single-instance lock lasts until the caller drops it.
    pub fn new(
        config: Config,
        state: Arc<StateDir>,
        events: Events,
        kill_now: watch::Receiver<bool>,
        attach: bool,
    ) -> Engine {
        let marker = state.marker();
        let (notices_tx, notices_rx) = mpsc::unbounded_channel();
        let demand = Arc::new(watch::Sender::new(None));
        let extra = metrics::Extra::default();
        let hand_stopped = hand_stopped::HandStopped::new(state.hand_stopped());
        let width = config
            .services
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        Engine {
            ctx: Arc::new(Ctx {
                events,
                state,
                marker,
                kill_now,
                spawner: Arc::new(OsSpawner),
                notices: notices_tx,
                sensing: service::Sensing {
                    prober: Arc::new(crate::health::OsProber),
                    sample_interval: config.warden.health.sample_interval,
                    demand: demand.subscribe(),
                    probe_times: extra.probe_times.clone(),
                },
            }),
            notices: Some(notices_rx),
            finish: watch::Sender::new(None),
            board: Arc::new(std::sync::RwLock::new(Board {
                config: config.path.display().to_string(),
                config_path: config.path.clone(),
                started: Instant::now(),
                services: Vec::new(),
                in_force: Arc::default(),
                closed: false,
                demand,
                extra,
            })),
            config,
            entries: Vec::new(),
            hand_stopped,
            attach: attach.then_some(width),
            gates: std::collections::BTreeMap::new(),
            to_gate: Vec::new(),
        }
    }

    /// Start every process through `spawner` instead of the OS (the engine's unit tests).
    #[must_use]
    pub fn with_spawner(mut self, spawner: Arc<dyn Spawner>) -> Engine {
        let ctx = &self.ctx;
        self.ctx = Arc::new(Ctx {
            events: ctx.events,
            state: ctx.state.clone(),
            marker: ctx.marker.clone(),
            kill_now: ctx.kill_now.clone(),
            spawner,
            notices: ctx.notices.clone(),
            sensing: ctx.sensing.clone(),
        });
        self
    }

    /// Start the engine loop: every autostart service is started (concurrently). The returned
    /// future resolves once every autostart service had its first start attempt.
    pub fn spawn(mut self) -> (Handle, JoinHandle<()>, oneshot::Receiver<()>) {
        let (tx, rx) = mpsc::channel(64);
        let (ready_tx, ready_rx) = oneshot::channel();
        let board = self.board.clone();
        let events = self.ctx.events;
        let finish = self.finish.subscribe();
        let task = tokio::spawn(async move {
            // Taken, not copied: from here the entries hold the services' configs.
            let services = std::mem::take(&mut self.config.services);
            let mut waits = Vec::new();
            for cfg in services {
                let (entry, wait) = self.new_service(Arc::new(cfg));
                self.entries.push(entry);
                waits.extend(wait);
            }
            // depends_on: those that need others start through their gate, once all exist.
            for name in std::mem::take(&mut self.to_gate) {
                let (tx, _rx) = oneshot::channel();
                self.start_gated(&name, service::Until::Spawned, tx);
            }
            // Once, not once per service: each publish copies the whole list.
            self.publish();
            for w in waits {
                let _ = w.await;
            }
            // What the start parsed and built is freed by now: give its pages back.
            crate::process::release_free_heap();
            let _ = ready_tx.send(());
            self.run(rx).await;
        });
        (
            Handle {
                tx,
                board,
                events,
                finish,
            },
            task,
            ready_rx,
        )
    }

    /// Create the task of a service and start it if it should run; the caller adds the
    /// entry (and publishes). Returns the entry and the start's reply.
    fn new_service(
        &mut self,
        cfg: Arc<ServiceConfig>,
    ) -> (Entry, Option<oneshot::Receiver<Result<(), String>>>) {
        let events = self.ctx.events;
        let name = cfg.name.clone();
        let reporter: crate::logs::Reporter = {
            let name = name.clone();
            Arc::new(move |msg: &str| events.emit(&name, Level::Warn, msg))
        };
        // A log file that cannot be opened does not stop the service: its output is held in
        // memory and the file retried; `status` shows why (see `ServiceLogs::problem`).
        let logs = ServiceLogs::open(&name, &cfg.log, reporter);
        if let Some(problem) = logs.problem() {
            events.emit(&name, Level::Bad, &format!("log: {problem}"));
        }
        let should_start = cfg.autostart && !self.hand_stopped.contains(&name);
        let (rest, reason) = if should_start {
            (Rest::Pending, "starting")
        } else if cfg.autostart {
            (Rest::Stopped, "stopped by hand")
        } else {
            (Rest::Stopped, "autostart = false")
        };
        let (req_tx, req_rx) = mpsc::channel(16);
        if let Some(width) = self.attach {
            let mut lines = logs.subscribe();
            let name = name.clone();
            tokio::spawn(async move {
                loop {
                    match lines.recv().await {
                        Ok(line) => {
                            events.attach_line(&name, width, line.stream, line.at, &line.bytes);
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            events.attach_lagged(&name, width, n);
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    }
                }
            });
        }
        let (task, status_rx) = ServiceTask::new(
            cfg.clone(),
            logs.clone(),
            self.ctx.clone(),
            req_rx,
            rest,
            reason.to_owned(),
        );
        let task = tokio::spawn(task.run());
        if should_start && !cfg.depends_on.is_empty() {
            self.to_gate.push(name.clone()); // depends_on: started by its gate
        }
        let wait = if should_start && cfg.depends_on.is_empty() {
            let (tx, rx) = oneshot::channel();
            // A fresh channel with room: this cannot fail.
            let _ = req_tx.try_send(service::Request::Start(tx, service::Until::Spawned));
            Some(rx)
        } else {
            None
        };
        let entry = Entry {
            cfg,
            tx: req_tx,
            status: status_rx,
            logs,
            task,
        };
        (entry, wait)
    }

    fn find(&self, name: &str) -> Result<&Entry, EngineError> {
        self.entries
            .iter()
            .find(|e| e.cfg.name == name)
            .ok_or_else(|| EngineError::UnknownService {
                name: name.to_owned(),
                known: self.entries.iter().map(|e| e.cfg.name.clone()).collect(),
            })
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut notices = self.notices.take();
        loop {
            let msg = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => msg,
                    None => break,
                },
                Some(notice) = async {
                    match notices.as_mut() {
                        Some(n) => n.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    self.on_notice(notice);
                    continue;
                }
            };
            match msg {
                Request::Act(action, name, reply) => {
                    let result = self.act(action, &name);
                    match result {
                        Ok((rx, first)) => {
                            // Answer from a separate task so a long stop does not block others.
                            tokio::spawn(async move {
                                let r = match rx.await {
                                    Ok(Ok(())) => Ok(first),
                                    Ok(Err(reason)) => Err(EngineError::Failed { name, reason }),
                                    Err(_) => Err(EngineError::ShuttingDown),
                                };
                                let _ = reply.send(r);
                            });
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
                Request::Logs(name, reply) => {
                    let _ = reply.send(self.find(&name).map(|e| e.logs.clone()));
                }
                Request::Reload(config, reply) => {
                    let report = self.reload(*config).await;
                    let _ = reply.send(report);
                }
                Request::Shutdown(reply) => {
                    self.shutdown().await;
                    self.hand_stopped.flush().await;
                    let _ = reply.send(());
                    return;
                }
            }
        }
        self.shutdown().await;
        self.hand_stopped.flush().await;
    }

    /// A service came to rest on its own, or asked warden to stop: decide whether warden
    /// ends (`exit_actions = "stop-warden"`, `when_all_ended = "stop"`).
    fn on_notice(&mut self, notice: Notice) {
        let finish = match notice {
            Notice::StopWarden { service, reason } => Finish::StopWarden { service, reason },
            Notice::Rested => {
                if self.config.warden.when_all_ended != WhenAllEnded::Stop {
                    return;
                }
                let mut failed = Vec::new();
                for e in &self.entries {
                    let snapshot = e.status.borrow();
                    match &snapshot.view {
                        View::Stopped { .. } => {}
                        View::Failed { .. } => failed.push(e.cfg.name.clone()),
                        View::Exited { .. } => {
                            let ok = snapshot.last_exit.as_ref().is_some_and(|l| {
                                l.code.is_some_and(|c| e.cfg.success_codes.contains(&c))
                            });
                            if !ok {
                                failed.push(e.cfg.name.clone());
                            }
                        }
                        _ => return, // it will run (again)
                    }
                }
                Finish::AllEnded { failed }
            }
        };
        self.finish.send_if_modified(|f| {
            if f.is_some() {
                return false; // the first reason stands
            }
            *f = Some(finish);
            true
        });
    }

    fn act(&mut self, action: Action, name: &str) -> Result<deps::Acting, EngineError> {
        let (tx, rx) = oneshot::channel();
        // depends_on: a start goes through the gate, after what it needs; a stop ends it.
        if action == Action::Start && !self.find(name)?.cfg.depends_on.is_empty() {
            return Ok((rx, self.start_by_hand(name, tx)));
        }
        if action == Action::Stop {
            self.end_gate(name);
        }
        let entry = self.find(name)?;
        let req = match action {
            Action::Start => service::Request::Start(tx, service::Until::Up),
            Action::Stop => service::Request::Stop(tx),
            Action::Restart => service::Request::Restart(tx),
        };
        entry.tx.try_send(req).map_err(|_| EngineError::Failed {
            name: name.to_owned(),
            reason: "too many requests are pending for this service".into(),
        })?;
        let changed = match action {
            Action::Stop => self.hand_stopped.insert(name.to_owned()),
            Action::Start | Action::Restart => self.hand_stopped.remove(name),
        };
        if changed {
            self.save_hand_stopped();
        }
        Ok((rx, Vec::new()))
    }

    fn save_hand_stopped(&mut self) {
        self.hand_stopped.save(&self.ctx);
    }

    /// Stop every service and wait for their tasks: dependents before what they need
    /// (`depends_on`), each level all at once.
    async fn shutdown(&mut self) {
        for (_, gate) in std::mem::take(&mut self.gates) {
            gate.abort();
        }
        for level in self.stop_levels() {
            let mut waits = Vec::new();
            // A set: 1,000 services in one level are not 1,000,000 name comparisons.
            let level: std::collections::HashSet<String> = level.into_iter().collect();
            let (now, later): (Vec<Entry>, Vec<Entry>) = self
                .entries
                .drain(..)
                .partition(|e| level.contains(&e.cfg.name));
            self.entries = later;
            for entry in now {
                let (tx, rx) = oneshot::channel();
                let _ = entry.tx.send(service::Request::Shutdown(tx)).await;
                waits.push((rx, entry.task));
            }
            for (rx, task) in waits {
                let _ = rx.await;
                let _ = task.await;
            }
        }
        write(&self.board).closed = true;
    }

    /// The overall shutdown budget (`[warden] shutdown_timeout`).
    pub fn shutdown_timeout(&self) -> Duration {
        self.config.warden.shutdown_timeout
    }
}
