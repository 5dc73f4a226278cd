//! `warden up`: supervise the services in the foreground.

use std::time::Duration;

use tokio::sync::watch;
use warden_core::config::{self, ProcessEnv};
use warden_core::engine::{Engine, Events, Handle, Level, ReloadReport};
use warden_core::process;
use warden_core::state::{StateDir, StateError};

use crate::Failure;
use crate::cli::ConfigArg;

pub fn run(arg: &ConfigArg, attach: bool) -> Result<(), Failure> {
    let config = super::load_config(arg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the runtime: {e}")))?;
    rt.block_on(supervise(config, attach))
}

/// What warden's own signals ask for.
enum Ask {
    Stop,
    Reload,
}

async fn supervise(config: config::Config, attach: bool) -> Result<(), Failure> {
    let events = Events::detect();
    let state = match StateDir::lock(&config.warden.state_dir) {
        Ok(s) => s,
        Err(StateError::AlreadyRunning { pid }) => return Err(Failure::failed(format!("already running (pid {pid})"))),
        Err(e) => return Err(Failure::failed(crate::commands::chain(&e))),
    };
    process::init_supervisor().map_err(|e| Failure::failed(format!("cannot set up supervision: {e}")))?;
    let leftovers = process::kill_leftovers(&state.recorded_groups(), &state.marker());
    if leftovers > 0 {
        events.emit("warden", Level::Warn, &format!("ended {leftovers} process(es) left behind by a previous warden"));
    }
    state.clear_all_groups();
    if let Err(e) = std::fs::create_dir_all(&config.warden.log_dir) {
        events.emit("warden", Level::Warn, &format!("cannot create log dir {}: {e}", config.warden.log_dir.display()));
    }
    let mut signals = Signals::new().map_err(|e| Failure::failed(format!("cannot listen for signals: {e}")))?;
    let (kill_tx, kill_rx) = watch::channel(false);
    let config_path = config.path.clone();
    let count = config.services.len();
    let engine = Engine::new(config, state, events, kill_rx, attach);
    let shutdown_timeout = engine.shutdown_timeout();
    let (handle, mut task, ready) = engine.spawn();
    let _ = ready.await;
    events.emit(
        "warden",
        Level::Info,
        &format!("supervising {count} service(s) from {} (pid {}); Ctrl-C stops them", config_path.display(), std::process::id()),
    );

    loop {
        tokio::select! {
            ask = signals.next() => match ask {
                Ask::Stop => break,
                Ask::Reload => reload(&handle, &config_path, events).await,
            },
            _ = &mut task => break,
        }
    }

    events.emit("warden", Level::Info, "stopping every service (Ctrl-C again kills at once)");
    let shutdown = handle.shutdown();
    tokio::pin!(shutdown);
    let deadline = tokio::time::sleep(shutdown_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            ask = signals.next() => if matches!(ask, Ask::Stop) {
                events.emit("warden", Level::Warn, "killing every service now");
                let _ = kill_tx.send(true);
            },
            () = &mut deadline, if !*kill_tx.borrow() => {
                events.emit("warden", Level::Warn, "shutdown_timeout passed; killing every service now");
                let _ = kill_tx.send(true);
            },
        }
    }
    let _ = task.await;
    let stray = process::kill_all_descendants();
    if stray > 0 {
        events.emit("warden", Level::Warn, &format!("killed {stray} stray process(es) that outlived their service"));
    }
    if !process::wait_no_children(Duration::from_secs(5)).await {
        events.emit("warden", Level::Bad, "some child processes could not be reaped");
    }
    events.emit("warden", Level::Info, "all services stopped");
    Ok(())
}

/// Re-read the config and apply it; a bad config changes nothing.
async fn reload(handle: &Handle, path: &std::path::Path, events: Events) {
    match config::load(path, &ProcessEnv) {
        Err(errors) => {
            for e in &errors.errors {
                events.emit("warden", Level::Bad, &e.to_string());
            }
            events.emit("warden", Level::Bad, "reload refused: the config has errors; nothing was changed");
        }
        Ok(new) => {
            if let Some(report) = handle.reload(new).await {
                events.emit("warden", Level::Info, &format!("reloaded: {}", summarize(&report)));
            }
        }
    }
}

/// `added a; restarted b; removed c; 2 unchanged`.
pub fn summarize(r: &ReloadReport) -> String {
    let mut parts = Vec::new();
    for (what, names) in [("added", &r.added), ("restarted", &r.restarted), ("removed", &r.removed)] {
        if !names.is_empty() {
            parts.push(format!("{what} {}", names.join(", ")));
        }
    }
    parts.push(format!("{} unchanged", r.unchanged.len()));
    if !r.needs_warden_restart.is_empty() {
        parts.push(format!("changes to {} take effect when warden restarts", r.needs_warden_restart.join(", ")));
    }
    for e in &r.errors {
        parts.push(format!("error: {e}"));
    }
    parts.join("; ")
}

#[cfg(unix)]
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Ask {
        tokio::select! {
            _ = self.int.recv() => Ask::Stop,
            _ = self.term.recv() => Ask::Stop,
            _ = self.hup.recv() => Ask::Reload,
        }
    }
}

#[cfg(windows)]
struct Signals {
    ctrl_c: tokio::signal::windows::CtrlC,
    close: tokio::signal::windows::CtrlClose,
}

#[cfg(windows)]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals { ctrl_c: tokio::signal::windows::ctrl_c()?, close: tokio::signal::windows::ctrl_close()? })
    }

    async fn next(&mut self) -> Ask {
        tokio::select! {
            _ = self.ctrl_c.recv() => Ask::Stop,
            _ = self.close.recv() => Ask::Stop,
        }
    }
}
