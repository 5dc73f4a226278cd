//! The life cycle of a running warden, shared by `warden up` (foreground or detached) and
//! the Windows service mode: lock the state dir, end what a killed warden left, run the
//! engine and the control endpoint, react to stop and reload requests, shut down within
//! `shutdown_timeout`, and leave no process behind.

pub mod endpoint;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::api::server::ServeError;
use crate::config::Config;
use crate::engine::{Engine, Events, Level};
use crate::logs::OwnLog;
use crate::process;
use crate::state::{StateDir, StateError};

/// How long after the start has settled (every service up, or its start ended otherwise) the
/// clean code pages are released a second time (see [`process::release_settled_pages`]): the
/// tail of the last starts (their first output, the status they publish) runs meanwhile.
const SETTLED_AFTER_START: Duration = Duration::from_millis(250);

/// The longest wait for the start to settle before that release (a service may stay
/// `starting` for its whole `start_timeout`).
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// Why warden could not supervise.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("already running (pid {pid})")]
    AlreadyRunning { pid: String },
    #[error(transparent)]
    State(StateError),
    #[error("cannot set up supervision")]
    Setup(#[source] std::io::Error),
    #[error("cannot serve the control API on {what}")]
    Serve {
        what: String,
        #[source]
        source: ServeError,
    },
    /// A service's `exit_actions` stopped warden, or every service ended and some failed.
    #[error("{0}")]
    Finished(crate::engine::Finish),
    #[error("cannot make an API token")]
    Random(#[source] std::io::Error),
    #[error("cannot write {}", path.display())]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the outside world asks of a running warden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Stop every service and exit (a second one kills at once).
    Stop,
    /// Re-read the config and apply the difference.
    Reload,
}

/// How to run.
pub struct Options {
    /// Print the services' output as `NAME | line`.
    pub attach: bool,
    /// Someone at a terminal can press Ctrl-C (`warden up` in the foreground).
    pub interactive: bool,
    /// Requests from outside (signals, the Windows SCM, the API's shutdown).
    pub requests: mpsc::Receiver<Request>,
    /// A sender for the same channel, handed to the control endpoint.
    pub requests_tx: mpsc::Sender<Request>,
    /// Called once every autostart service had its first start attempt.
    pub on_ready: Box<dyn FnOnce() + Send>,
    /// The Windows service name when running under the SCM (names the control pipe).
    pub instance: Option<String>,
    /// Called once when stopping begins (whoever asked), so a service manager can report
    /// it; progress reports while stopping are the caller's (the Windows service has its
    /// own ticker), so the loop here waits on events only.
    pub on_stopping: Box<dyn FnOnce() + Send>,
    /// Every event and output line as one JSON object per line on stdout (`--log-format
    /// json`, for container log collectors); implies the output lines of `attach`.
    pub json: bool,
    /// Write the events into `<state_dir>/warden.log`, rotated by `[warden] log` (`up -d`,
    /// the Windows service, a launchd job), instead of stderr.
    pub own_log: bool,
    /// Forget every service stopped by hand before starting (`warden up --reset`).
    pub reset: bool,
}

/// Supervise `config` until asked to stop (or the engine ends); returns once every process
/// is gone and the state dir is released.
pub async fn supervise(config: Config, mut opts: Options) -> Result<(), DaemonError> {
    let mut events = Events::detect();
    events.json = opts.json;
    let state = match StateDir::lock(&config.warden.state_dir) {
        Ok(s) => s,
        Err(StateError::AlreadyRunning { pid }) => {
            return Err(DaemonError::AlreadyRunning { pid });
        }
        Err(e) => return Err(DaemonError::State(e)),
    };
    if opts.own_log {
        let path = crate::state::layout::Layout::new(&config.warden.state_dir).log();
        let log = config.warden.log;
        // Lives as long as the process: every task may write an event until the very end.
        events.file = Some(Box::leak(Box::new(OwnLog::open(
            &path,
            log.max_size,
            log.keep,
        ))));
    }
    process::init_supervisor().map_err(DaemonError::Setup)?;
    // Reading every process's environment finds what left its process group: not needed
    // after a clean exit, nor in cgroup mode, where the instance's cgroups hold every
    // process a killed warden left (an unprivileged process cannot leave its cgroup).
    let clean = state.take_clean_exit();
    let scan = !clean && !matches!(process::tracking(), process::Tracking::Cgroup { .. });
    let leftovers = process::kill_leftovers(&state.recorded_groups(), &state.marker(), scan);
    if leftovers > 0 {
        events.emit(
            "warden",
            Level::Warn,
            &format!("ended {leftovers} process(es) left behind by a previous warden"),
        );
    }
    state.clear_all_groups();
    hand_stopped(&config, &state, opts.reset, events);
    // What `warden check` warns about (a program not found): said once, then every service
    // starts anyway and shows its own reason.
    for w in &config.warnings {
        events.emit("warden", Level::Warn, &w.to_string());
    }
    // 0750 like every log dir (a dir another user can write is refused when a log opens).
    if let Err(e) = crate::state::secure_dir(&config.warden.log_dir, 0o750) {
        events.emit(
            "warden",
            Level::Warn,
            &format!(
                "cannot create log dir {}: {e}",
                config.warden.log_dir.display()
            ),
        );
    }
    let (kill_tx, kill_rx) = watch::channel(false);
    let config_path = config.path.clone();
    let count = config.services.len();
    // Held to the very end: `warden down` waits for this lock, so it must outlive the
    // control endpoint and the last reaped child.
    let state = std::sync::Arc::new(state);
    let attach = opts.attach || opts.json;
    // The engine takes the services' configs; the endpoint below reads only `[warden]`.
    let mut config = config;
    let services = std::mem::take(&mut config.services);
    let engine = Engine::new(
        Config {
            services,
            ..config.clone()
        },
        state.clone(),
        events,
        kill_rx,
        attach,
    );
    let shutdown_timeout = engine.shutdown_timeout();
    let (handle, mut task, ready) = engine.spawn();
    // Serve only once every autostart service had its first start attempt, so that the
    // first `status` after `up -d` already shows their pids.
    let _ = ready.await;
    let server = match endpoint::serve(
        &config,
        opts.instance.as_deref(),
        handle.clone(),
        opts.requests_tx.clone(),
    )
    .await
    {
        Ok(s) => s,
        Err(f) => {
            handle.shutdown().await;
            let _ = task.await;
            return Err(f);
        }
    };
    (opts.on_ready)();
    events.emit(
        "warden",
        Level::Info,
        &format!(
            "supervising {count} service(s) from {} (pid {})",
            config_path.display(),
            std::process::id()
        ),
    );
    // The start is over: what only it ran (the config reader, the first spawns) need not stay
    // mapped; what warden runs from now on is mapped again as it runs.
    process::release_startup_pages();
    // The start's tail (each service coming up after its `min_uptime`, each pump's first
    // read, the last events) runs after it and maps a megabyte of code back: once every
    // start has settled, release the clean pages again. Once; woken by the services' own
    // changes, nothing is polled.
    let settling = handle.clone();
    let settled = async move {
        let _ = tokio::time::timeout(SETTLE_LIMIT, settling.settled()).await;
        tokio::time::sleep(SETTLED_AFTER_START).await;
    };
    tokio::pin!(settled);
    let mut released = false;

    let mut finished = None;
    let mut task_done = false;
    loop {
        tokio::select! {
            () = &mut settled, if !released => {
                released = true;
                process::release_settled_pages();
            }
            ask = opts.requests.recv() => match ask {
                Some(Request::Reload) => {
                    // The outcome is logged by the engine; nobody waits for it here, and a
                    // stop asked meanwhile must not wait behind a slow reload.
                    let h = handle.clone();
                    tokio::spawn(async move {
                        let _ = h.reload().await;
                    });
                }
                Some(Request::Stop) | None => break,
            },
            finish = handle.finished() => {
                let level = if finish.failed() { Level::Bad } else { Level::Info };
                events.emit("warden", level, &finish.to_string());
                finished = Some(finish);
                break;
            }
            _ = &mut task => {
                task_done = true;
                break;
            }
        }
    }

    events.emit(
        "warden",
        Level::Info,
        if opts.interactive {
            "stopping every service (Ctrl-C again kills at once)"
        } else {
            "stopping every service"
        },
    );
    (opts.on_stopping)();
    let shutdown = handle.shutdown();
    tokio::pin!(shutdown);
    let deadline = tokio::time::sleep(shutdown_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            ask = opts.requests.recv() => if matches!(ask, Some(Request::Stop)) && !*kill_tx.borrow() {
                events.emit("warden", Level::Warn, "killing every service now");
                let _ = kill_tx.send(true);
            },
            () = &mut deadline, if !*kill_tx.borrow() => {
                events.emit("warden", Level::Warn, "shutdown_timeout passed; killing every service now");
                let _ = kill_tx.send(true);
            },
        }
    }
    if !task_done {
        let _ = task.await; // a JoinHandle must not be polled again once it answered
    }
    drop(server);
    let stray = process::kill_all_descendants();
    if stray > 0 {
        events.emit(
            "warden",
            Level::Warn,
            &format!("killed {stray} stray process(es) that outlived their service"),
        );
    }
    let reaped = process::wait_no_children(Duration::from_secs(5)).await;
    // The cgroups kept for a next run of their service: there is none now.
    process::release_cgroups();
    if !reaped {
        events.emit(
            "warden",
            Level::Bad,
            "some child processes could not be reaped",
        );
    } else if let Err(e) = state.mark_clean_exit() {
        events.emit(
            "warden",
            Level::Warn,
            &format!("cannot mark the clean exit (the next start reads every process): {e}"),
        );
    }
    events.emit("warden", Level::Info, "all services stopped");
    // Only now may the next warden (or a waiting `warden down`) take the state dir.
    drop(state);
    match finished {
        Some(f) if f.failed() => Err(DaemonError::Finished(f)),
        _ => Ok(()),
    }
}

/// The services stopped by hand stay stopped: say so for each one that would start
/// otherwise, or forget them all (`reset`, `warden up --reset`).
fn hand_stopped(config: &Config, state: &StateDir, reset: bool, events: Events) {
    let stopped = state.hand_stopped_since();
    if reset {
        if stopped.is_empty() {
            return;
        }
        match state.save_hand_stopped(&[]) {
            Ok(()) => {
                let names: Vec<&str> = stopped.iter().map(|h| h.name.as_str()).collect();
                let message = format!("forgot the services stopped by hand: {}", names.join(", "));
                events.emit("warden", Level::Info, &message);
            }
            Err(e) => events.emit(
                "warden",
                Level::Warn,
                &format!("cannot forget the services stopped by hand: {e}"),
            ),
        }
        return;
    }
    for h in stopped {
        if !config.service(&h.name).is_some_and(|s| s.autostart) {
            continue;
        }
        let when = h.since.map(|at| format!(" on {at}")).unwrap_or_default();
        let message = format!("stopped by hand{when}; warden start {} starts it", h.name);
        events.emit(&h.name, Level::Warn, &message);
    }
}

/// Forward warden's own signals as [`Request`]s: SIGINT/SIGTERM stop, SIGHUP reloads (Unix);
/// Ctrl-C and the console's close stop (Windows).
pub fn forward_signals(tx: mpsc::Sender<Request>) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            loop {
                let ask = tokio::select! {
                    _ = int.recv() => Request::Stop,
                    _ = term.recv() => Request::Stop,
                    _ = hup.recv() => Request::Reload,
                };
                if tx.send(ask).await.is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(windows)]
    {
        let mut ctrl_c = tokio::signal::windows::ctrl_c()?;
        let mut close = tokio::signal::windows::ctrl_close()?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = ctrl_c.recv() => {},
                    _ = close.recv() => {},
                }
                if tx.send(Request::Stop).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(())
}
