//! Integration with the OS's service manager. Windows: the SCM (install, uninstall, service
//! mode, the event log). Elsewhere these commands say what to use instead.

#[cfg(not(windows))]
use std::path::Path;

#[cfg(not(windows))]
use crate::Failure;

#[cfg(windows)]
pub mod windows;

/// `warden install`'s options, as parsed.
pub use crate::cli::InstallArgs as InstallOptions;

#[cfg(not(windows))]
fn windows_only(what: &str) -> Failure {
    Failure::usage(format!(
        "`warden {what}` manages Windows services; on this system run `warden up -d`, or start `warden up` from your init system (a systemd unit with ExecStart=warden up -c FILE)"
    ))
}

#[cfg(not(windows))]
pub fn install(_opts: &InstallOptions) -> Result<(), Failure> {
    Err(windows_only("install"))
}

#[cfg(not(windows))]
pub fn uninstall(_name: &str, _purge: bool) -> Result<(), Failure> {
    Err(windows_only("uninstall"))
}

#[cfg(not(windows))]
pub fn service_run(_name: &str, _config: &Path) -> Result<(), Failure> {
    Err(windows_only("service-run"))
}

#[cfg(not(windows))]
pub fn ctrl_c(_pid: u32) -> Result<(), Failure> {
    Err(windows_only("__ctrl-c"))
}

#[cfg(windows)]
pub use windows::{ctrl_c, install, scm_action, service_run, uninstall};
