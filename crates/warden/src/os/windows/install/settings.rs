//! What warden asks of the SCM for its service: start type, command line, recovery actions,
//! and the settings `CreateService` does not take.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use warden_core::config::Config;
use windows_service::service::{
    Service, ServiceAction, ServiceActionType, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceStartType,
};
use windows_sys::Win32::Foundation::ERROR_INVALID_LEVEL;

use super::super::scm;
use crate::Failure;
use crate::cli::StartType;
use crate::os::InstallOptions;

/// The delays of the SCM's recovery restarts, in seconds; the last one repeats.
const RECOVERY_DELAYS_SECS: [u64; 3] = [1, 5, 30];
/// Past failures are forgotten after a day without one.
const RECOVERY_RESET: Duration = Duration::from_secs(24 * 60 * 60);
/// The time warden gets at system shutdown beyond its own `shutdown_timeout`.
const PRESHUTDOWN_MARGIN: Duration = Duration::from_secs(10);

/// The SCM's recovery actions: restart warden 1 s, 5 s, then 30 s after a failure (the last
/// one repeats), and forget past failures after a day without one.
pub fn recovery_actions() -> ServiceFailureActions {
    ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(RECOVERY_RESET),
        reboot_msg: None,
        command: None,
        actions: Some(
            RECOVERY_DELAYS_SECS
                .into_iter()
                .map(|s| ServiceAction {
                    action_type: ServiceActionType::Restart,
                    delay: Duration::from_secs(s),
                })
                .collect(),
        ),
    }
}

/// The SCM start type and whether the delayed-start flag is set.
pub fn start_type(s: StartType) -> (ServiceStartType, bool) {
    match s {
        StartType::Auto => (ServiceStartType::AutoStart, false),
        StartType::Delayed => (ServiceStartType::AutoStart, true),
        StartType::Manual => (ServiceStartType::OnDemand, false),
        StartType::Disabled => (ServiceStartType::Disabled, false),
    }
}

pub(super) fn start_word(s: StartType) -> &'static str {
    match s {
        StartType::Auto => "auto",
        StartType::Delayed => "delayed",
        StartType::Manual => "manual",
        StartType::Disabled => "disabled",
    }
}

/// The arguments after warden.exe in the service's command line.
pub fn launch_arguments(name: &str, config: &Path) -> Vec<OsString> {
    vec![
        "service-run".into(),
        "--name".into(),
        name.into(),
        "-c".into(),
        config.as_os_str().to_owned(),
    ]
}

/// The settings `CreateService` does not take: description, delayed start, recovery,
/// preshutdown timeout.
pub(super) fn configure(
    service: &Service,
    opts: &InstallOptions,
    delayed: bool,
    config: &Config,
) -> Result<(), Failure> {
    let fail = |what: &str, e: &windows_service::Error| {
        Failure::failed(format!(
            "cannot set the {what} of service \"{}\": {}",
            opts.name,
            scm::describe(e)
        ))
    };
    let description = opts.description.clone().unwrap_or_else(|| {
        format!(
            "Supervised by warden: {}",
            config
                .services
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    service
        .set_description(&description)
        .map_err(|e| fail("description", &e))?;
    // Delayed start, recovery and preshutdown are settings of Windows Vista and later; a
    // system without them (Wine 8 lacks delayed start and the recovery flag) still gets a
    // working service, with a warning.
    let optional = |what: &str, r: windows_service::Result<()>| match r {
        Err(e) if scm::os_code(&e) == Some(ERROR_INVALID_LEVEL) => {
            eprintln!(
                "warden: warning: this system does not support the {what} of a service; skipped"
            );
            Ok(())
        }
        Err(e) => Err(fail(what, &e)),
        Ok(()) => Ok(()),
    };
    if delayed {
        optional("delayed start", service.set_delayed_auto_start(true))?;
    }
    optional(
        "recovery actions",
        service.update_failure_actions(recovery_actions()),
    )?;
    optional(
        "recovery on non-crash failures",
        service.set_failure_actions_on_non_crash_failures(true),
    )?;
    optional(
        "preshutdown timeout",
        service.set_preshutdown_timeout(preshutdown_timeout(config)),
    )?;
    Ok(())
}

/// How long Windows waits for warden at shutdown: its own `shutdown_timeout` plus 10 s to
/// report and exit.
pub fn preshutdown_timeout(config: &Config) -> Duration {
    config
        .warden
        .shutdown_timeout
        .saturating_add(PRESHUTDOWN_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_types_map_to_the_scm() {
        assert_eq!(
            start_type(StartType::Auto),
            (ServiceStartType::AutoStart, false)
        );
        assert_eq!(
            start_type(StartType::Delayed),
            (ServiceStartType::AutoStart, true)
        );
        assert_eq!(
            start_type(StartType::Manual),
            (ServiceStartType::OnDemand, false)
        );
        assert_eq!(
            start_type(StartType::Disabled),
            (ServiceStartType::Disabled, false)
        );
    }

    #[test]
    fn recovery_restarts_after_1_5_30_seconds_and_resets_after_a_day() {
        let r = recovery_actions();
        let delays: Vec<u64> = r
            .actions
            .expect("actions")
            .iter()
            .inspect(|a| assert_eq!(a.action_type, ServiceActionType::Restart))
            .map(|a| a.delay.as_secs())
            .collect();
        assert_eq!(delays, [1, 5, 30]);
        assert_eq!(
            r.reset_period,
            ServiceFailureResetPeriod::After(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn the_service_command_line_runs_service_run() {
        let args = launch_arguments("sync", Path::new(r"C:\ProgramData\warden\sync\warden.toml"));
        assert_eq!(
            args,
            [
                "service-run",
                "--name",
                "sync",
                "-c",
                r"C:\ProgramData\warden\sync\warden.toml"
            ]
        );
    }
}
