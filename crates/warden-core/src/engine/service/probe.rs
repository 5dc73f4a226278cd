//! The probes of one run: a `ready` check while the service is starting, a `health` check
//! while it runs. Each check is one small task that probes, reports and waits for the next
//! `interval` (measured start to start; a failing `ready` check sooner, from 100 ms doubling
//! up to `interval`), so at most one probe per check is ever in flight.
//! The task of the service decides what a result means ([`crate::health::Tracker`]) and
//! acts: up when `ready` passes, a restart (or nothing) when `health` turns unhealthy.
//! Health failures count only once the service is up (`running`): before, it is `starting`,
//! which its ready check, `min_uptime` and `start_timeout` judge.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Phase, ServiceTask};
use crate::config::{Check, OnUnhealthy, Probe, ServiceConfig};
use crate::engine::events::Level;
use crate::health::{ExecEnv, Health, Prober, Tracker, Transition};
use crate::logs::{LogLine, ServiceLogs};
use crate::process::ExitStatus;

/// Which check a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    Ready,
    Health,
}

/// One probe's result, or a resource sample (with the memory limit's reason once the tree
/// stayed above `memory_max` for two samples).
#[derive(Debug)]
pub(super) enum ProbeResult {
    Check {
        which: Which,
        result: Result<(), String>,
    },
    Usage(super::Usage, Option<String>),
    /// A notify message (`notify = true`; never on Windows).
    #[cfg_attr(not(unix), allow(dead_code))]
    Notify(super::notify::Note),
}

/// Where a run's probes and sampler send their results. Boxed: a channel's buffer is a block
/// of 32 slots from the start, and 32 bare results would be 2.5 KiB in every running service.
pub(super) type ResultTx = mpsc::Sender<Box<ProbeResult>>;

/// The probes of the current run; dropping it ends them.
pub(super) struct Probes {
    /// Where the results arrive: made with the first task that sends one (a service without
    /// checks has none until its figures are asked for).
    chan: Option<(ResultTx, mpsc::Receiver<Box<ProbeResult>>)>,
    /// The ready check's task (ended once it passed), then the health check's.
    ready_task: Option<JoinHandle<()>>,
    health_task: Option<JoinHandle<()>>,
    sampler: super::sample::Sampler,
    notify_task: Option<JoinHandle<()>>,
    /// The last `STATUS=` of a notify message.
    pub(super) status_text: Option<String>,
    /// The last resource sample.
    pub(super) usage: Option<super::Usage>,
    started: Instant,
    /// `None` once the ready check passed (it stops then), or without one.
    ready: Option<Tracker>,
    health: Option<Tracker>,
    /// The health check has passed once in this run (`depends_on` condition `healthy`).
    pub(super) was_healthy: bool,
}

impl Drop for Probes {
    fn drop(&mut self) {
        for t in [&self.ready_task, &self.health_task].into_iter().flatten() {
            t.abort();
        }
        if let Some(t) = &self.notify_task {
            t.abort();
        }
    }
}

/// The output lines a `log_line` ready check reads, taken before the spawn so that no line
/// is missed.
pub(super) fn subscribe(
    cfg: &ServiceConfig,
    logs: &ServiceLogs,
) -> Option<broadcast::Receiver<LogLine>> {
    matches!(
        cfg.health.ready.as_ref().map(|c| &c.probe),
        Some(Probe::LogLine(_))
    )
    .then(|| logs.subscribe())
}

impl Probes {
    /// Start the checks and the sampler of the run of `pid` that started at `started`.
    pub(super) fn start(
        cfg: &ServiceConfig,
        sensing: &super::Sensing,
        pid: u32,
        exec: ExecEnv,
        lines: Option<broadcast::Receiver<LogLine>>,
        notify: Option<super::notify::Socket>,
        started: Instant,
    ) -> Probes {
        let prober = &sensing.prober;
        let mut chan = None;
        let mut tx = || -> ResultTx { result_chan(&mut chan).0.clone() };
        let mut sampler =
            super::sample::Sampler::new(sensing.clone(), cfg.health.memory_max, pid, started);
        let exec = Arc::new(exec);
        let timer = (sensing.probe_times.clone(), cfg.name.clone());
        let ready_task = cfg
            .health
            .ready
            .as_ref()
            .map(|check| match (&check.probe, lines) {
                (Probe::LogLine(pattern), Some(lines)) => {
                    tokio::spawn(watch_lines(pattern.clone(), lines, tx()))
                }
                _ => spawn_loop(Which::Ready, check, prober, &exec, &tx(), &timer),
            });
        let health_task = cfg
            .health
            .health
            .as_ref()
            .map(|check| spawn_loop(Which::Health, check, prober, &exec, &tx(), &timer));
        let notify_task = notify
            .map(|sock| tokio::spawn(super::notify::listen(sock, pid, cfg.health.watchdog, tx())));
        sampler.start_if_needed(&mut chan);
        Probes {
            chan,
            ready_task,
            health_task,
            sampler,
            notify_task,
            status_text: None,
            usage: None,
            started,
            ready: cfg.health.ready.as_ref().map(|_| Tracker::default()),
            health: cfg.health.health.as_ref().map(|_| Tracker::default()),
            was_healthy: false,
        }
    }

    /// What the health check says now (`Unknown` before its first result).
    /// The main process is `pid` now (a daemon warden follows): sample its tree.
    pub(super) fn sample_pid(&self, pid: u32) {
        self.sampler.set_pid(pid);
    }

    pub(super) fn health(&self) -> Option<Health> {
        self.health.as_ref().map(|t| t.health)
    }

    /// The last failure of the ready check, for a `start_timeout` reason.
    pub(super) fn ready_error(&self) -> Option<&str> {
        self.ready.as_ref()?.last_error.as_deref()
    }
}

/// The next result, or never when there are no probes. A sampler that is not running is
/// started here when the figures are asked for.
pub(super) async fn next(probes: &mut Option<Probes>) -> ProbeResult {
    let Some(p) = probes else {
        return std::future::pending().await;
    };
    loop {
        if p.sampler.dormant() {
            tokio::select! {
                r = recv(&mut p.chan) => return r,
                () = p.sampler.asked() => p.sampler.start_if_needed(&mut p.chan),
            }
        } else {
            tokio::select! {
                r = recv(&mut p.chan) => return r,
                () = p.sampler.ended() => {}
            }
        }
    }
}

/// The next result on `chan`; never while there is none.
async fn recv(chan: &mut Option<(ResultTx, mpsc::Receiver<Box<ProbeResult>>)>) -> ProbeResult {
    match chan {
        Some((_, rx)) => match rx.recv().await {
            Some(r) => *r,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The results' channel, made now if there is none yet.
pub(super) fn result_chan(
    chan: &mut Option<(ResultTx, mpsc::Receiver<Box<ProbeResult>>)>,
) -> &(ResultTx, mpsc::Receiver<Box<ProbeResult>>) {
    chan.get_or_insert_with(|| mpsc::channel(4))
}

fn spawn_loop(
    which: Which,
    check: &Check,
    prober: &Arc<dyn Prober>,
    exec: &Arc<ExecEnv>,
    tx: &ResultTx,
    timer: &(Arc<crate::engine::metrics::ProbeTimes>, String),
) -> JoinHandle<()> {
    let (check, prober, exec, tx) = (check.clone(), prober.clone(), exec.clone(), tx.clone());
    let (times, name) = timer.clone();
    tokio::spawn(async move {
        // A `ready` check is retried sooner while it fails: a program is often up within a
        // second, and its dependents should not wait a whole `interval` (10 s by default) for
        // the second probe. 100 ms after the first, doubling up to `interval`.
        let mut gap = match which {
            Which::Ready => READY_RETRY_FIRST.min(check.interval),
            Which::Health => check.interval,
        };
        loop {
            let began = Instant::now();
            let result = match tokio::time::timeout(
                check.timeout,
                prober.probe(&check.probe, check.timeout, &exec),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "{}: no answer within {}",
                    check.probe.kind(),
                    crate::util::fmt_duration(check.timeout)
                )),
            };
            times.observe(&name, began.elapsed());
            if tx
                .send(Box::new(ProbeResult::Check { which, result }))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep_until(began + gap).await;
            gap = gap.saturating_mul(2).min(check.interval);
        }
    })
}

/// The first retry of a failing `ready` check (see [`spawn_loop`]).
const READY_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);

/// `log_line`: one result, the first line that matches.
async fn watch_lines(pattern: String, mut lines: broadcast::Receiver<LogLine>, tx: ResultTx) {
    // Checked at load time: it compiles.
    let Ok(re) = regex::bytes::Regex::new(&pattern) else {
        return;
    };
    loop {
        match lines.recv().await {
            Ok(line) if re.is_match(&line.bytes) => {
                let _ = tx
                    .send(Box::new(ProbeResult::Check {
                        which: Which::Ready,
                        result: Ok(()),
                    }))
                    .await;
                return;
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

impl ServiceTask {
    /// How an exec probe runs: like the command (cwd, environment, the service's user and
    /// limits; beside its cgroup, not in it).
    pub(super) fn exec_env(&self) -> ExecEnv {
        let spec = self.spawn_spec();
        ExecEnv {
            cwd: spec.cwd,
            clear_env: spec.clear_env,
            env: spec.env,
            credentials: spec.credentials,
        }
    }

    /// What the published status says of health: `None` without a health check.
    pub(super) fn health_shown(&self) -> Option<Health> {
        self.cfg.health.health.as_ref()?;
        Some(
            self.probes
                .as_ref()
                .and_then(Probes::health)
                .unwrap_or(Health::Unknown),
        )
    }

    /// Act on one probe result.
    pub(super) async fn on_probe(&mut self, r: ProbeResult) {
        let Some(probes) = self.probes.as_mut() else {
            return;
        };
        let (which, result) = match r {
            ProbeResult::Check { which, result } => (which, result),
            ProbeResult::Notify(note) => {
                self.on_note(note).await;
                return;
            }
            ProbeResult::Usage(usage, over) => {
                probes.usage = Some(usage);
                match over {
                    Some(reason) => self.end_run_for(reason).await,
                    None => self.publish(),
                }
                return;
            }
        };
        // While it is starting, its ready check (or min_uptime) and start_timeout judge it:
        // a health failure then does not count (a slow start is not a sick program).
        if which == Which::Health && result.is_err() && matches!(self.phase, Phase::Starting(_)) {
            return;
        }
        let ran = probes.started.elapsed();
        let (check, tracker) = match which {
            Which::Ready => (self.cfg.health.ready.as_ref(), probes.ready.as_mut()),
            Which::Health => (self.cfg.health.health.as_ref(), probes.health.as_mut()),
        };
        let (Some(check), Some(tracker)) = (check, tracker) else {
            return;
        };
        let before = tracker.health;
        let transition = tracker.record(check, ran, result);
        let error = tracker.last_error.clone().unwrap_or_default();
        match (which, transition) {
            (Which::Ready, Some(Transition::Healthy)) => {
                probes.ready = None;
                if let Some(t) = probes.ready_task.take() {
                    t.abort();
                }
                if let Phase::Starting(_) = self.phase {
                    self.emit(
                        Level::Good,
                        &format!("ready ({} check passed)", check.probe.kind()),
                    );
                    if let Phase::Starting(run) = self.take_phase() {
                        self.set(Phase::Running(run));
                    }
                }
            }
            (Which::Health, Some(Transition::Healthy)) => {
                probes.was_healthy = true;
                if before == Health::Unhealthy {
                    self.emit(Level::Good, "healthy again");
                }
                self.publish();
            }
            (Which::Health, Some(Transition::Unhealthy)) => {
                let reason = format!("unhealthy: {error}");
                if self.cfg.health.on_unhealthy == OnUnhealthy::Ignore {
                    self.emit(
                        Level::Warn,
                        &format!("{reason} (on_unhealthy = \"ignore\")"),
                    );
                    self.publish();
                } else {
                    self.end_run_for(reason).await;
                }
            }
            _ => {}
        }
    }

    /// Act on a notify message.
    async fn on_note(&mut self, note: super::notify::Note) {
        use super::notify::Note;
        match note {
            Note::Ready => {
                if let Phase::Starting(_) = self.phase {
                    self.emit(Level::Good, "ready (READY=1)");
                    if let Phase::Starting(run) = self.take_phase() {
                        self.set(Phase::Running(run));
                    }
                }
            }
            Note::Status(text) => {
                let Some(p) = self.probes.as_mut() else {
                    return;
                };
                if p.status_text.as_deref() != Some(text.as_str()) {
                    p.status_text = Some(text.clone());
                    self.emit(Level::Info, &format!("status: {text}"));
                    self.publish();
                }
            }
            Note::Stopping => self.emit(Level::Info, "stopping (STOPPING=1)"),
            Note::WatchdogTimeout => self.end_run_for("watchdog timeout".into()).await,
        }
    }

    /// End the current run because warden judged it broken (health, watchdog, memory), then
    /// follow the restart policy as after a crash: it counts in `restarts`, in the backoff
    /// and in the start limit. With `restart = "never"` it rests `exited` with `reason`.
    pub(super) async fn end_run_for(&mut self, reason: String) {
        let (Phase::Running(run) | Phase::Starting(run)) = self.take_phase() else {
            return;
        };
        let ran = run.started.elapsed();
        self.emit(Level::Warn, &format!("{reason}: stopping it"));
        self.set(Phase::Stopping {
            pid: run.child.pid(),
            since: run.started,
        });
        let status = self.end_tree(run, true).await;
        // A tree killed by warden did not exit with success, whatever its code.
        let status = match status {
            Some(ExitStatus::Code(0)) | None => ExitStatus::Signal(9),
            Some(s) => s,
        };
        self.last_exit = Some(super::last_exit(status, ran));
        self.after_end(Some(status), ran, reason);
    }
}
