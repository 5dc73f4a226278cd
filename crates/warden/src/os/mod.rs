//! Integration with the OS's service manager. Windows: the SCM (install, uninstall, service
//! mode, the event log). Linux: systemd units; macOS: launchd jobs (`unix/`), and the
//! `sd_notify` messages warden sends when systemd runs it.

#[cfg(not(windows))]
use std::path::Path;

use crate::Failure;
use crate::cli::Scope;

pub mod quick;
// Used by the Windows service; tested on every OS.
#[cfg(any(windows, test))]
mod state_dir;
#[cfg(unix)]
pub mod unix;
#[cfg(windows)]
pub mod windows;

#[cfg(windows)]
pub use state_dir::state_dir_despite_errors;

/// First thing in `main`, before any thread: glibc's malloc keeps one arena (its main heap)
/// instead of one per thread that allocates (up to 8 per CPU). A supervisor's threads
/// allocate little and rarely at once; each extra arena kept its own free pages, about
/// 100 KiB of idle memory per arena. Elsewhere the allocator is left as it is.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unix::tune_allocator();
}

/// `warden install`'s options, as parsed.
pub use crate::cli::InstallArgs as InstallOptions;

/// `warden install`.
pub fn install(opts: &InstallOptions) -> Result<(), Failure> {
    #[cfg(windows)]
    {
        let unix_only = if opts.scope == Scope::User {
            Some("--scope user")
        } else if opts.harden {
            Some("--harden")
        } else if opts.print {
            Some("--print")
        } else {
            None
        };
        if let Some(flag) = unix_only {
            return Err(Failure::usage(format!(
                "{flag} is for systemd and launchd; a Windows service is system-wide and has no unit file"
            )));
        }
        windows::install(opts)
    }
    #[cfg(unix)]
    {
        unix::install(opts)
    }
}

/// `warden uninstall`.
pub fn uninstall(name: &str, purge: bool, scope: Option<Scope>) -> Result<(), Failure> {
    #[cfg(windows)]
    {
        if scope.is_some() {
            return Err(Failure::usage(
                "--scope is for systemd and launchd; a Windows service is system-wide",
            ));
        }
        windows::uninstall(name, purge)
    }
    #[cfg(unix)]
    {
        unix::uninstall(name, purge, scope)
    }
}

#[cfg(not(windows))]
pub fn service_run(_name: &str, _config: &Path) -> Result<(), Failure> {
    Err(Failure::usage(
        "`warden service-run` is started by the Windows Service Control Manager; here, `warden install` makes systemd or launchd run `warden up`",
    ))
}

#[cfg(not(windows))]
pub fn ctrl_c(_pid: u32) -> Result<(), Failure> {
    Err(Failure::usage(
        "`warden __ctrl-c` delivers a Windows console Ctrl-C; it has no meaning here",
    ))
}

#[cfg(windows)]
pub use windows::{ctrl_c, scm_action, service_run};

/// The config file of the installed instance `name` (`-n NAME`): on Windows the `-c` of
/// its service's command line, elsewhere what `install` wrote (see `unix::instance_config`).
pub fn instance_config(name: &str) -> Result<std::path::PathBuf, Failure> {
    #[cfg(windows)]
    {
        windows::instance_config(name)
    }
    #[cfg(unix)]
    {
        unix::instance_config(name)
    }
}

/// `warden start|stop|restart -n NAME` with no service names: act on the installed OS
/// service itself (the SCM on Windows, systemd or launchd elsewhere) and wait for it.
pub fn service_action(name: &str, action: warden_core::engine::Action) -> Result<(), Failure> {
    #[cfg(windows)]
    {
        windows::scm_action(name, action)
    }
    #[cfg(unix)]
    {
        unix::service_action(name, action)
    }
}

/// For an installed instance that does not answer: how to start it (`None` when `name`
/// is not installed).
pub fn start_hint(name: &str) -> Option<String> {
    #[cfg(windows)]
    {
        windows::start_hint(name)
    }
    #[cfg(unix)]
    {
        unix::start_hint(name)
    }
}
