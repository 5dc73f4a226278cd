//! Service mode: `warden service-run --name NAME -c FILE`, started by the SCM.
//!
//! The life cycle of one run:
//!
//! 1. [`run`] hands the main thread to the SCM's dispatcher
//!    (`StartServiceCtrlDispatcherW`), which calls the service main on a thread of its own.
//! 2. The service main registers the control handler and reports `START_PENDING`; a ticker
//!    advances the checkpoint every second while services start.
//! 3. It loads the config (a config error ends in `STOPPED` with service-specific exit code
//!    2, so the SCM's recovery actions apply; its lines, timestamped, go to the `warden.log`
//!    of the state dir the config sets, read despite the error, and to the Event Log), sends warden's own event lines to
//!    `<state_dir>\warden.log`, and runs [`warden_core::daemon::supervise`] on a tokio runtime.
//! 4. `on_ready` reports `RUNNING`, accepting `STOP`, `SHUTDOWN`, `PRESHUTDOWN` and `PARAMCHANGE`.
//!    `STOP`, `SHUTDOWN` and `PRESHUTDOWN` become [`Request::Stop`] (and `STOP_PENDING` at once),
//!    `PARAMCHANGE` [`Request::Reload`].
//! 5. When the supervisor begins stopping on its own (the API's shutdown), `on_stopping`
//!    reports `STOP_PENDING` too. While stopping, the same ticker advances the checkpoint
//!    every second; every path, including a panic in the supervisor, ends in `STOPPED`.
//!
//! The phases are a small state machine ([`Phase`]) that only moves forward, tested
//! without the SCM.

use std::ffi::OsString;
use std::os::windows::io::IntoRawHandle;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;
use warden_core::config::{Config, ProcessEnv};
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{
    self, ServiceControlHandlerResult, ServiceStatusHandle,
};
use windows_service::{define_windows_service, service_dispatcher};
use windows_sys::Win32::Foundation::ERROR_FAILED_SERVICE_CONTROLLER_CONNECT;
use windows_sys::Win32::System::Console::{STD_ERROR_HANDLE, STD_OUTPUT_HANDLE, SetStdHandle};

use super::eventlog::{EventLevel, report_event};
use super::scm;
use crate::Failure;
use warden_core::daemon::{self, Options, Request};
use warden_core::engine::{Events, Level};

/// How long the SCM should wait between two checkpoints (they advance every second).
const WAIT_HINT: Duration = Duration::from_secs(10);

/// Where the service is in its life; only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting { checkpoint: u32 },
    Running,
    Stopping { checkpoint: u32 },
    Stopped { exit: ServiceExitCode },
}

/// What happens to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A second passed (or the supervisor reported progress).
    Tick,
    /// Every autostart service had its first start.
    Ready,
    /// A stop was asked for (or the supervisor began stopping on its own).
    Stop,
    /// The supervisor returned.
    Exited(ServiceExitCode),
}

impl Phase {
    /// The next phase, or `None` when the event changes nothing (nothing to report).
    pub fn next(self, event: Event) -> Option<Phase> {
        match (self, event) {
            // Nothing after STOPPED; nothing new while running or once stopping.
            (Phase::Stopped { .. }, _)
            | (Phase::Running, Event::Tick | Event::Ready)
            | (Phase::Stopping { .. }, Event::Ready) => None,
            (_, Event::Exited(exit)) => Some(Phase::Stopped { exit }),
            (Phase::Starting { checkpoint }, Event::Tick) => Some(Phase::Starting {
                checkpoint: checkpoint + 1,
            }),
            (Phase::Stopping { checkpoint }, Event::Tick | Event::Stop) => Some(Phase::Stopping {
                checkpoint: checkpoint + 1,
            }),
            (Phase::Starting { .. }, Event::Ready) => Some(Phase::Running),
            (Phase::Starting { .. } | Phase::Running, Event::Stop) => {
                Some(Phase::Stopping { checkpoint: 1 })
            }
        }
    }

    /// The status the SCM is told in this phase.
    pub fn status(self) -> ServiceStatus {
        let (state, accept, exit, checkpoint, wait_hint) = match self {
            Phase::Starting { checkpoint } => (
                ServiceState::StartPending,
                ServiceControlAccept::empty(),
                ServiceExitCode::NO_ERROR,
                checkpoint,
                WAIT_HINT,
            ),
            Phase::Running => (
                ServiceState::Running,
                ServiceControlAccept::STOP
                    | ServiceControlAccept::SHUTDOWN
                    | ServiceControlAccept::PRESHUTDOWN
                    | ServiceControlAccept::PARAM_CHANGE,
                ServiceExitCode::NO_ERROR,
                0,
                Duration::ZERO,
            ),
            Phase::Stopping { checkpoint } => (
                ServiceState::StopPending,
                ServiceControlAccept::empty(),
                ServiceExitCode::NO_ERROR,
                checkpoint,
                WAIT_HINT,
            ),
            Phase::Stopped { exit } => (
                ServiceState::Stopped,
                ServiceControlAccept::empty(),
                exit,
                0,
                Duration::ZERO,
            ),
        };
        ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code: exit,
            checkpoint,
            wait_hint,
            process_id: None,
        }
    }
}

/// The exit code reported with `STOPPED`: none for a clean stop, the failure's exit code
/// (2 config error, 1 anything else) as a service-specific code otherwise.
pub fn exit_code(outcome: &Result<(), Failure>) -> ServiceExitCode {
    match outcome {
        Ok(()) => ServiceExitCode::NO_ERROR,
        Err(f) => ServiceExitCode::ServiceSpecific(u32::from(f.code.max(1))),
    }
}

/// Reports the phase to the SCM as it changes.
struct Reporter {
    handle: OnceLock<ServiceStatusHandle>,
    phase: Mutex<Phase>,
}

impl Reporter {
    fn new() -> Reporter {
        Reporter {
            handle: OnceLock::new(),
            phase: Mutex::new(Phase::Starting { checkpoint: 1 }),
        }
    }

    fn on(&self, event: Event) {
        // A poisoned lock only means a panic elsewhere; the phase is still a valid value.
        let mut phase = self
            .phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(next) = phase.next(event) {
            *phase = next;
            self.send(next);
        }
    }

    fn send(&self, phase: Phase) {
        if let Some(h) = self.handle.get()
            && let Err(e) = h.set_service_status(phase.status())
        {
            eprintln!(
                "[warden] cannot report the service status: {}",
                scm::describe(&e)
            );
        }
    }

    fn current(&self) -> Phase {
        *self
            .phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The service name and config, for the service main (which the dispatcher calls without
/// context).
static ARGS: OnceLock<(String, PathBuf)> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

pub fn run(name: &str, config: &Path) -> Result<(), Failure> {
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_owned());
    let _ = ARGS.set((name.to_owned(), config));
    match service_dispatcher::start(name, ffi_service_main) {
        Ok(()) => Ok(()),
        Err(e) if scm::os_code(&e) == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) => {
            Err(Failure::usage(
                "`warden service-run` is started by the Windows service manager (see `warden install`); to supervise in this console, run `warden up -c FILE`",
            ))
        }
        Err(e) => Err(Failure::failed(format!(
            "cannot connect to the service manager: {}",
            scm::describe(&e)
        ))),
    }
}

fn service_main(_arguments: Vec<OsString>) {
    let Some((name, config)) = ARGS.get() else {
        return;
    };
    let (tx, rx) = mpsc::channel(8);
    let reporter = Arc::new(Reporter::new());
    let handler = {
        let reporter = Arc::clone(&reporter);
        let tx = tx.clone();
        move |control| handle_control(control, &reporter, &tx)
    };
    let handle = match service_control_handler::register(name, handler) {
        Ok(h) => h,
        Err(e) => {
            report_event(
                EventLevel::Error,
                &format!(
                    "service {name}: cannot register the control handler: {}",
                    scm::describe(&e)
                ),
            );
            return;
        }
    };
    let _ = reporter.handle.set(handle);
    reporter.send(reporter.current());

    // Whatever happens inside (even a panic), the SCM hears STOPPED.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_service(name, config, &reporter, tx, rx)
    }))
    .unwrap_or_else(|_| Err(Failure::failed("warden panicked; see warden.log")));
    match &outcome {
        Ok(()) => {
            report_event(EventLevel::Info, &format!("service {name} stopped"));
        }
        Err(f) => {
            let msg = format!("service {name} stopped because of an error: {}", f.message);
            log_lines(Level::Bad, &msg);
            report_event(EventLevel::Error, &msg);
        }
    }
    reporter.on(Event::Exited(exit_code(&outcome)));
}

fn handle_control(
    control: ServiceControl,
    reporter: &Reporter,
    tx: &mpsc::Sender<Request>,
) -> ServiceControlHandlerResult {
    match control {
        ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
            reporter.on(Event::Stop);
            // A full queue already holds a stop or reload; the supervisor sees it.
            let _ = tx.try_send(Request::Stop);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::ParamChange => {
            let _ = tx.try_send(Request::Reload);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    }
}

fn run_service(
    name: &str,
    config_path: &Path,
    reporter: &Arc<Reporter>,
    tx: mpsc::Sender<Request>,
    rx: mpsc::Receiver<Request>,
) -> Result<(), Failure> {
    let config = match warden_core::config::load(config_path, &ProcessEnv) {
        Ok(c) => c,
        Err(errors) => {
            let f = crate::commands::errors_failure(
                &errors,
                &format!("; service {name} was not started"),
            );
            // The instance's own warden.log, where its other events go: the state dir the
            // config sets, read despite the errors.
            let text = std::fs::read_to_string(config_path).unwrap_or_default();
            let dir = crate::os::state_dir_despite_errors(config_path, &text);
            if let Err(e) = redirect_stderr(&dir) {
                report_event(
                    EventLevel::Warning,
                    &format!(
                        "service {name}: cannot open {}: {e}",
                        dir.join("warden.log").display()
                    ),
                );
            }
            return Err(f);
        }
    };
    if let Err(e) = redirect_stderr(&config.warden.state_dir) {
        report_event(
            EventLevel::Warning,
            &format!(
                "service {name}: cannot open {}: {e}; warden's own events go to the event log only",
                config.warden.state_dir.join("warden.log").display()
            ),
        );
    }
    let rt = crate::commands::runtime()?;
    rt.block_on(supervise(name, config, reporter, tx, rx))
}

async fn supervise(
    name: &str,
    config: Config,
    reporter: &Arc<Reporter>,
    tx: mpsc::Sender<Request>,
    rx: mpsc::Receiver<Request>,
) -> Result<(), Failure> {
    // The checkpoint advances every second while starting and stopping (the supervisor
    // itself has no ticker: this is the SCM's need, so it lives here).
    let ticker = {
        let reporter = Arc::clone(reporter);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                reporter.on(Event::Tick);
            }
        })
    };
    let started = format!(
        "service {name} started: supervising {} service(s) from {} (pid {})",
        config.services.len(),
        config.path.display(),
        std::process::id()
    );
    let on_ready = {
        let reporter = Arc::clone(reporter);
        Box::new(move || {
            reporter.on(Event::Ready);
            report_event(EventLevel::Info, &started);
        })
    };
    let on_stopping = {
        let reporter = Arc::clone(reporter);
        Box::new(move || reporter.on(Event::Stop))
    };
    let opts = Options {
        attach: false,
        interactive: false,
        requests: rx,
        requests_tx: tx,
        on_ready,
        instance: Some(name.to_owned()),
        on_stopping,
        json: false,
        // Its stderr is `warden.log` too (`redirect_stderr`), for what comes before this.
        own_log: true,
        reset: false,
    };
    let outcome = daemon::supervise(config, opts)
        .await
        .map_err(|e| Failure::failed(crate::commands::chain(&e)));
    ticker.abort();
    outcome
}

/// Write `text` to warden's own log (its stderr), each line an event line with its time,
/// as the supervisor writes its own.
fn log_lines(level: Level, text: &str) {
    let events = Events {
        color: false,
        timestamps: true,
        record: None,
        json: false,
        file: None,
    };
    for line in text.lines() {
        events.emit("warden", level, line);
    }
}

/// Send warden's own event lines (its stderr) to `<state_dir>\warden.log`, appended: in
/// service mode stderr goes nowhere. Rust's `stderr()` looks the handle up on every write,
/// so `SetStdHandle` is enough.
fn redirect_stderr(state_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    // Never through a symlink or junction (see `warden_core::state`).
    let file = warden_core::state::open_private_log(&state_dir.join("warden.log"))
        .map_err(std::io::Error::other)?;
    // The handle lives as long as the process: it is its stderr from now on.
    let handle = file.into_raw_handle();
    // SAFETY: a valid file handle that is never closed.
    let ok = unsafe {
        SetStdHandle(STD_ERROR_HANDLE, handle) != 0 && SetStdHandle(STD_OUTPUT_HANDLE, handle) != 0
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[Event]) -> Vec<Phase> {
        let mut phase = Phase::Starting { checkpoint: 1 };
        let mut reported = Vec::new();
        for &e in events {
            if let Some(next) = phase.next(e) {
                phase = next;
                reported.push(next);
            }
        }
        reported
    }

    #[test]
    fn a_normal_life_reports_every_phase_in_order() {
        let r = run(&[
            Event::Tick,
            Event::Ready,
            Event::Tick,
            Event::Stop,
            Event::Tick,
            Event::Exited(ServiceExitCode::NO_ERROR),
        ]);
        assert_eq!(
            r,
            [
                Phase::Starting { checkpoint: 2 },
                Phase::Running,
                Phase::Stopping { checkpoint: 1 },
                Phase::Stopping { checkpoint: 2 },
                Phase::Stopped {
                    exit: ServiceExitCode::NO_ERROR
                },
            ]
        );
    }

    #[test]
    fn a_config_error_at_start_goes_straight_to_stopped_with_code_2() {
        let outcome = Err(Failure::usage("config error"));
        let r = run(&[Event::Exited(exit_code(&outcome))]);
        assert_eq!(
            r,
            [Phase::Stopped {
                exit: ServiceExitCode::ServiceSpecific(2)
            }]
        );
        let status = r[0].status();
        assert_eq!(status.current_state, ServiceState::Stopped);
        assert_eq!(status.exit_code, ServiceExitCode::ServiceSpecific(2));
    }

    #[test]
    fn nothing_is_reported_after_stopped() {
        let r = run(&[
            Event::Exited(ServiceExitCode::NO_ERROR),
            Event::Ready,
            Event::Stop,
            Event::Tick,
            Event::Exited(ServiceExitCode::ServiceSpecific(1)),
        ]);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn a_late_ready_does_not_undo_a_stop() {
        let r = run(&[Event::Stop, Event::Ready]);
        assert_eq!(r, [Phase::Stopping { checkpoint: 1 }]);
    }

    #[test]
    fn pending_states_advance_their_checkpoint_and_accept_nothing() {
        let mut phase = Phase::Starting { checkpoint: 1 };
        let mut last = 1;
        for _ in 0..5 {
            phase = phase.next(Event::Tick).expect("advances");
            let s = phase.status();
            assert_eq!(s.current_state, ServiceState::StartPending);
            assert!(s.checkpoint > last);
            assert!(s.controls_accepted.is_empty());
            assert!(s.wait_hint > Duration::ZERO);
            last = s.checkpoint;
        }
        let stopping = Phase::Running.next(Event::Stop).expect("stops");
        assert_eq!(stopping.status().current_state, ServiceState::StopPending);
        assert!(stopping.status().controls_accepted.is_empty());
    }

    #[test]
    fn running_accepts_stop_shutdown_preshutdown_and_paramchange() {
        let s = Phase::Running.status();
        assert_eq!(s.current_state, ServiceState::Running);
        for c in [
            ServiceControlAccept::STOP,
            ServiceControlAccept::SHUTDOWN,
            ServiceControlAccept::PRESHUTDOWN,
            ServiceControlAccept::PARAM_CHANGE,
        ] {
            assert!(s.controls_accepted.contains(c), "{c:?}");
        }
        assert_eq!(s.checkpoint, 0);
    }

    #[test]
    fn errors_become_service_specific_exit_codes() {
        assert_eq!(exit_code(&Ok(())), ServiceExitCode::NO_ERROR);
        assert_eq!(
            exit_code(&Err(Failure::failed("x"))),
            ServiceExitCode::ServiceSpecific(1)
        );
        assert_eq!(
            exit_code(&Err(Failure::usage("x"))),
            ServiceExitCode::ServiceSpecific(2)
        );
    }

    #[test]
    fn service_run_outside_the_scm_says_what_to_do() {
        let f = super::run("warden-unit-test-nonexistent", Path::new("warden.toml"))
            .expect_err("not started by the SCM");
        assert_eq!(f.code, 2, "{}", f.message);
        assert!(f.message.contains("warden up"), "{}", f.message);
    }
}
