//! Small helpers around the SCM: opening it, turning its error codes into the messages
//! people read, waiting for a service to reach a state; and `warden start|stop|restart -n
//! NAME` with no service names, which acts on the installed service itself.

use std::time::{Duration, Instant};

use warden_core::engine::Action;
use windows_service::service::{Service, ServiceAccess, ServiceState, ServiceStatus};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_DUPLICATE_SERVICE_NAME, ERROR_INVALID_NAME,
    ERROR_SERVICE_DOES_NOT_EXIST, ERROR_SERVICE_EXISTS, ERROR_SERVICE_MARKED_FOR_DELETE,
};

use crate::Failure;

/// The Win32 error code inside a `windows-service` error, if it carries one.
pub fn os_code(e: &windows_service::Error) -> Option<u32> {
    match e {
        windows_service::Error::Winapi(io) => io.raw_os_error().map(|c| c as u32),
        _ => None,
    }
}

/// The message for an error of `windows-service`: the OS error's text, or the crate's.
pub fn describe(e: &windows_service::Error) -> String {
    match e {
        windows_service::Error::Winapi(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// What was being done when the SCM said no; decides the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Opening the SCM itself (with the rights the command needs).
    OpenManager,
    /// Creating the service.
    Create,
    /// Opening an existing service.
    Open,
}

/// Map an SCM error code to the failure warden reports. `command` is `install` or
/// `uninstall`; `name` the service.
pub fn failure(op: Op, command: &str, name: &str, code: Option<u32>, text: &str) -> Failure {
    match (op, code) {
        (_, Some(ERROR_ACCESS_DENIED)) => Failure::failed(format!(
            "warden {command} needs an elevated (Administrator) prompt"
        )),
        (Op::Create, Some(ERROR_SERVICE_EXISTS)) => {
            Failure::failed(format!("service \"{name}\" already exists"))
        }
        (Op::Create, Some(ERROR_DUPLICATE_SERVICE_NAME)) => Failure::failed(format!(
            "service \"{name}\": another service already uses this name or display name"
        )),
        (Op::Create, Some(ERROR_SERVICE_MARKED_FOR_DELETE)) => Failure::failed(format!(
            "service \"{name}\" is being deleted; close the programs that hold it open (services.msc) and try again"
        )),
        (_, Some(ERROR_INVALID_NAME)) => Failure::usage(format!("invalid service name \"{name}\"")),
        (Op::Open, Some(ERROR_SERVICE_DOES_NOT_EXIST)) => {
            Failure::failed(format!("service \"{name}\" is not installed"))
        }
        (Op::OpenManager, _) => {
            Failure::failed(format!("cannot open the service control manager: {text}"))
        }
        (Op::Create, _) => Failure::failed(format!("cannot create service \"{name}\": {text}")),
        (Op::Open, _) => Failure::failed(format!("cannot open service \"{name}\": {text}")),
    }
}

/// [`failure`] for an error of `windows-service`.
pub fn failure_of(op: Op, command: &str, name: &str, e: &windows_service::Error) -> Failure {
    failure(op, command, name, os_code(e), &describe(e))
}

/// Open the local SCM with `access`, mapping "access denied" to the elevation message.
pub fn open_manager(
    command: &str,
    access: ServiceManagerAccess,
) -> Result<ServiceManager, Failure> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(|e| failure_of(Op::OpenManager, command, "", &e))
}

/// Poll the service's status until it is `want`, it is `STOPPED` when that was not wanted
/// (returned as `Err(status)`), or `timeout` passed (`Ok(None)`). The SCM's only
/// notification (`NotifyServiceStatusChange`) needs an alertable wait on the calling thread
/// and is not wrapped by `windows-service`; `sc` and NSSM poll too. So this polls, with a
/// backoff from 50 ms to 500 ms: quick for a fast service, cheap for a slow one.
pub fn wait_for(
    service: &Service,
    want: ServiceState,
    timeout: Duration,
) -> Result<Option<ServiceStatus>, WaitError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        let status = service.query_status().map_err(WaitError::Query)?;
        if status.current_state == want {
            return Ok(Some(status));
        }
        if status.current_state == ServiceState::Stopped {
            return Err(WaitError::Stopped(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Why [`wait_for`] gave up early.
#[derive(Debug)]
pub enum WaitError {
    Query(windows_service::Error),
    /// The service stopped (its exit code is in the status).
    Stopped(ServiceStatus),
}

/// How long `warden start|stop|restart -n NAME` waits for the service to get there.
const ACTION_WAIT: Duration = Duration::from_secs(120);

/// Wait until the service is `want`, as a [`Failure`] that names the service otherwise.
fn reach(service: &Service, want: ServiceState, name: &str) -> Result<(), Failure> {
    match wait_for(service, want, ACTION_WAIT) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Failure::failed(format!(
            "service \"{name}\" did not reach {want:?} within {}s",
            ACTION_WAIT.as_secs()
        ))),
        Err(WaitError::Stopped(status)) => Err(Failure::failed(format!(
            "service \"{name}\" stopped while starting (exit code {:?})",
            status.exit_code
        ))),
        Err(WaitError::Query(e)) => Err(Failure::failed(format!(
            "cannot query service \"{name}\": {}",
            describe(&e)
        ))),
    }
}

/// `warden start|stop|restart -n NAME`: act on the Windows service `name` and wait until it
/// got there.
pub fn scm_action(name: &str, action: Action) -> Result<(), Failure> {
    let command = match action {
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Restart => "restart",
    };
    let manager = open_manager(command, ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            name,
            ServiceAccess::QUERY_STATUS | ServiceAccess::START | ServiceAccess::STOP,
        )
        .map_err(|e| failure_of(Op::Open, command, name, &e))?;
    if matches!(action, Action::Stop | Action::Restart) {
        let state = service
            .query_status()
            .map_err(|e| {
                Failure::failed(format!("cannot query service \"{name}\": {}", describe(&e)))
            })?
            .current_state;
        if state != ServiceState::Stopped {
            service.stop().map_err(|e| {
                Failure::failed(format!("cannot stop service \"{name}\": {}", describe(&e)))
            })?;
            reach(&service, ServiceState::Stopped, name)?;
        }
        crate::commands::say(&format!("service \"{name}\": stopped\n"))?;
    }
    if matches!(action, Action::Start | Action::Restart) {
        service.start::<&str>(&[]).map_err(|e| {
            Failure::failed(format!("cannot start service \"{name}\": {}", describe(&e)))
        })?;
        reach(&service, ServiceState::Running, name)?;
        crate::commands::say(&format!("service \"{name}\": running\n"))?;
    }
    Ok(())
}

/// The config of the installed service `name`: the `-c` argument of its command line
/// (`"warden.exe" service-run --name NAME -c "FILE"`), for `-n NAME`.
pub fn instance_config(name: &str) -> Result<std::path::PathBuf, Failure> {
    crate::os::quick::check_name(name)?;
    let manager = open_manager("find", ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(name, ServiceAccess::QUERY_CONFIG)
        .map_err(|e| match os_code(&e) {
            Some(ERROR_SERVICE_DOES_NOT_EXIST) => Failure::usage(format!(
                "no installed instance \"{name}\" (no such Windows service); `warden install {name} ...` installs one"
            )),
            _ => failure_of(Op::Open, "find", name, &e),
        })?;
    let cfg = service.query_config().map_err(|e| {
        Failure::failed(format!(
            "cannot read the configuration of service \"{name}\": {}",
            describe(&e)
        ))
    })?;
    let command = cfg.executable_path.to_string_lossy().into_owned();
    config_of_command_line(&command).ok_or_else(|| {
        Failure::usage(format!(
            "service \"{name}\" was not installed by warden (it runs {command})"
        ))
    })
}

/// For an installed service that does not answer: how to start it.
pub fn start_hint(name: &str) -> Option<String> {
    let manager =
        ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).ok()?;
    manager
        .open_service(name, ServiceAccess::QUERY_STATUS)
        .ok()?;
    Some(format!(
        "start it with `warden start -n {name}` (or `sc start {name}`)"
    ))
}

/// The `-c FILE` of a `warden service-run` command line.
pub fn config_of_command_line(command: &str) -> Option<std::path::PathBuf> {
    if !command.contains(" service-run ") {
        return None;
    }
    let (_, rest) = command.rsplit_once(" -c ")?;
    let rest = rest.trim();
    let path = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(rest);
    (!path.is_empty()).then(|| std::path::PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_is_read_from_the_service_command_line() {
        assert_eq!(
            config_of_command_line(
                r#""C:\Program Files\warden\warden.exe" service-run --name sync -c "C:\Program Data\w.toml""#
            ),
            Some(r"C:\Program Data\w.toml".into())
        );
        assert_eq!(
            config_of_command_line(r"C:\w\warden.exe service-run --name a -c C:\a.toml"),
            Some(r"C:\a.toml".into())
        );
        assert_eq!(config_of_command_line(r"C:\other.exe -c x"), None);
    }

    #[test]
    fn access_denied_asks_for_an_elevated_prompt() {
        for op in [Op::OpenManager, Op::Create, Op::Open] {
            let f = failure(op, "install", "sync", Some(ERROR_ACCESS_DENIED), "denied");
            assert_eq!(f.code, 1);
            assert_eq!(
                f.message,
                "warden install needs an elevated (Administrator) prompt"
            );
        }
        let f = failure(Op::Open, "uninstall", "sync", Some(ERROR_ACCESS_DENIED), "");
        assert_eq!(
            f.message,
            "warden uninstall needs an elevated (Administrator) prompt"
        );
    }

    #[test]
    fn an_existing_service_is_named() {
        let f = failure(
            Op::Create,
            "install",
            "sync",
            Some(ERROR_SERVICE_EXISTS),
            "",
        );
        assert_eq!(
            (f.code, f.message.as_str()),
            (1, "service \"sync\" already exists")
        );
    }

    #[test]
    fn a_missing_service_is_not_installed() {
        let f = failure(
            Op::Open,
            "uninstall",
            "nope",
            Some(ERROR_SERVICE_DOES_NOT_EXIST),
            "",
        );
        assert_eq!(
            (f.code, f.message.as_str()),
            (1, "service \"nope\" is not installed")
        );
    }

    #[test]
    fn other_errors_keep_the_os_text() {
        let f = failure(Op::Create, "install", "sync", Some(5_000), "boom");
        assert_eq!(f.message, "cannot create service \"sync\": boom");
    }
}
