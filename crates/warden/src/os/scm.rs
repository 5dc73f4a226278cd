//! `warden start|stop|restart -n NAME` with no service names: act on the installed Windows
//! service itself, through the Service Control Manager.

use std::time::{Duration, Instant};

use warden_core::engine::Action;
use windows_service::service::{ServiceAccess, ServiceState};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};

use crate::Failure;

fn wait_for(
    service: &windows_service::service::Service,
    want: ServiceState,
    name: &str,
) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut pause = Duration::from_millis(50);
    loop {
        let status = service
            .query_status()
            .map_err(|e| Failure::failed(format!("cannot query service \"{name}\": {e}")))?;
        if status.current_state == want {
            return Ok(());
        }
        if status.current_state == ServiceState::Stopped && want == ServiceState::Running {
            return Err(Failure::failed(format!(
                "service \"{name}\" stopped while starting (exit code {:?})",
                status.exit_code
            )));
        }
        if Instant::now() > deadline {
            return Err(Failure::failed(format!(
                "service \"{name}\" is still {:?} after 120s",
                status.current_state
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Start, stop or restart the Windows service `name` and wait until it got there.
pub fn scm_action(name: &str, action: Action) -> Result<(), Failure> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| Failure::failed(format!("cannot connect to the service manager: {e}")))?;
    let service = manager
        .open_service(
            name,
            ServiceAccess::QUERY_STATUS | ServiceAccess::START | ServiceAccess::STOP,
        )
        .map_err(|e| {
            Failure::failed(format!(
                "cannot open service \"{name}\" (is it installed? see `warden install`): {e}"
            ))
        })?;
    if matches!(action, Action::Stop | Action::Restart) {
        let state = service
            .query_status()
            .map_err(|e| Failure::failed(e.to_string()))?
            .current_state;
        if state != ServiceState::Stopped {
            service
                .stop()
                .map_err(|e| Failure::failed(format!("cannot stop service \"{name}\": {e}")))?;
            wait_for(&service, ServiceState::Stopped, name)?;
        }
        println!("service \"{name}\": stopped");
    }
    if matches!(action, Action::Start | Action::Restart) {
        service
            .start::<&str>(&[])
            .map_err(|e| Failure::failed(format!("cannot start service \"{name}\": {e}")))?;
        wait_for(&service, ServiceState::Running, name)?;
        println!("service \"{name}\": running");
    }
    Ok(())
}
