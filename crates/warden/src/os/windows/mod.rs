//! warden as a real Windows service: the Service Control Manager (SCM) integration.
//!
//! The life cycle, in the order things happen:
//!
//! 1. `warden install NAME -c FILE` (or `-- PROGRAM ARGS...`, which first writes
//!    `%ProgramData%\warden\NAME\warden.toml`; with `--env`, under a DACL of its own)
//!    validates the config, creates the service NAME (then registers the event source
//!    `warden`; a `DOMAIN\user` account gets `SeServiceLogonRight` if it lacks it) whose
//!    command line is
//!    `"<warden.exe>" service-run --name NAME -c "<FILE>"`, with SCM recovery actions
//!    (restart after 1 s, 5 s, 30 s, also for a non-zero exit code) and a preshutdown
//!    timeout of the config's `shutdown_timeout` + 10 s. See [`install`].
//! 2. The SCM starts `warden service-run`, which hands the process over to the SCM's
//!    dispatcher; the service main reports `START_PENDING`, runs the supervisor on a tokio
//!    runtime, reports `RUNNING` once every autostart service had its first start, turns
//!    `STOP`/`SHUTDOWN`/`PRESHUTDOWN` into a graceful stop (`STOP_PENDING` with an advancing
//!    checkpoint) and `PARAMCHANGE` into a reload, and always ends in `STOPPED`, with a
//!    service-specific exit code when it stopped because of an error. See [`service`].
//! 3. `warden uninstall NAME [--purge]` stops the service (bounded wait), deletes it, and
//!    says what it removed and kept (`install/purge.rs`); the event source goes with the last
//!    warden service.
//!
//! Exit codes follow the CLI's: 1 the operation failed (not elevated, already installed,
//! not installed...), 2 usage or config error.

mod acl;
pub mod eventlog;
mod install;
mod registry;
mod scm;
mod service;

pub use scm::{instance_config, scm_action, start_hint};

use std::path::Path;

use super::InstallOptions;
use crate::Failure;

/// Give `to` the DACL of `from` (a config that replaces another keeps who may read it).
pub fn copy_access(from: &Path, to: &Path) -> std::io::Result<()> {
    acl::copy_dacl(from, to)
}

/// `warden install`.
pub fn install(opts: &InstallOptions) -> Result<(), Failure> {
    install::install(opts)
}

/// `warden uninstall`.
pub fn uninstall(name: &str, purge: bool) -> Result<(), Failure> {
    install::uninstall(name, purge)
}

/// `warden service-run` (started by the SCM).
pub fn service_run(name: &str, config: &Path) -> Result<(), Failure> {
    service::run(name, config)
}

/// `warden __ctrl-c PID`: deliver a console Ctrl-C to the console of process `pid` (run in a
/// process of its own by the process layer). Exit 0 when sent; otherwise the helper's code
/// (2 could not attach, 3 could not raise the event), silently.
pub fn ctrl_c(pid: u32) -> Result<(), Failure> {
    match warden_core::process::Child::ctrl_c_helper_main(pid) {
        0 => Ok(()),
        code => Err(Failure::new(u8::try_from(code).unwrap_or(1), "")),
    }
}
