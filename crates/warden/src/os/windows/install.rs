//! `warden install` and `warden uninstall`: register and remove the Windows service that
//! runs `warden service-run`.
//!
//! `account.rs` is `--user`, `quick.rs` the quick form's generated config, `settings.rs` what
//! the SCM is told (start type, command line, recovery, preshutdown).

mod account;
mod logon_right;
mod purge;
mod quick;
mod settings;

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use warden_core::config::{self, Config, ProcessEnv};
use windows_service::service::{
    Service, ServiceAccess, ServiceDependency, ServiceErrorControl, ServiceInfo, ServiceState,
    ServiceType,
};
use windows_service::service_manager::ServiceManagerAccess;

use super::acl::{self, Access};
use super::eventlog;
use super::scm::{self, Op, WaitError};
use crate::Failure;
use crate::os::InstallOptions;
use crate::os::quick::Extras;
use account::Account;
use quick::{check_name, write_quick_config};
use settings::{configure, launch_arguments, start_type, start_word};

/// A usage or config error: exit 2.
fn usage(message: impl Into<String>) -> Failure {
    Failure::usage(message)
}

/// How long `--now` waits for `RUNNING` and `uninstall` for `STOPPED`.
const WAIT: Duration = Duration::from_secs(60);

/// Load and validate a config: exit 2 with every error, as `warden check`; its warnings (a
/// program not found) are printed and do not stop the install.
fn load(path: &Path) -> Result<Config, Failure> {
    let config =
        config::load(path, &ProcessEnv).map_err(|e| crate::commands::config_failure(&e))?;
    crate::commands::warn_all(&config);
    Ok(config)
}

pub fn install(opts: &InstallOptions) -> Result<(), Failure> {
    let name = opts.name.as_str();
    check_name(name)?;
    match (&opts.config, opts.program.is_empty()) {
        (Some(_), false) => {
            return Err(usage(
                "give either -c FILE or the program after `--`, not both",
            ));
        }
        (None, true) => {
            return Err(usage(format!(
                "what should the service run? `warden install {name} -c FILE` or `warden install {name} -- PROGRAM ARGS...`"
            )));
        }
        _ => {}
    }
    let extras = Extras::parse(&opts.env, opts.cwd.as_deref(), !opts.program.is_empty())?;
    let account = Account::parse(opts.user.as_deref());
    let password = match (&opts.password_file, account.needs_password()) {
        (Some(file), true) => Some(read_password(file)?),
        (None, true) => {
            return Err(usage(format!(
                "--user {}: a user account needs --password-file FILE",
                opts.user.as_deref().unwrap_or_default()
            )));
        }
        (Some(_), false) => {
            return Err(usage(
                "--password-file is only for a DOMAIN\\user account; built-in and virtual accounts have no password",
            ));
        }
        (None, false) => None,
    };
    let exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("cannot find warden.exe's own path: {e}")))?;

    let manager = scm::open_manager(
        "install",
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )?;
    // Before writing anything: a second install must not overwrite the first one's config.
    if manager
        .open_service(name, ServiceAccess::QUERY_STATUS)
        .is_ok()
    {
        return Err(Failure::failed(format!(
            "service \"{name}\" already exists"
        )));
    }

    let config_path = match &opts.config {
        Some(c) => std::path::absolute(c).map_err(|e| usage(format!("{}: {e}", c.display())))?,
        None => write_quick_config(name, &opts.program, &extras)?,
    };
    let config = load(&config_path)?;

    let (start, delayed) = start_type(opts.start);
    let info = ServiceInfo {
        name: name.into(),
        display_name: opts
            .display_name
            .clone()
            .unwrap_or_else(|| format!("{name} (warden)"))
            .into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: start,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe.clone(),
        launch_arguments: launch_arguments(name, &config_path),
        dependencies: opts
            .depends_on
            .iter()
            .map(|d| ServiceDependency::Service(d.into()))
            .collect(),
        account_name: account.scm_name().map(OsString::from),
        account_password: password.map(OsString::from),
    };
    let service = manager
        .create_service(
            &info,
            ServiceAccess::QUERY_STATUS
                | ServiceAccess::CHANGE_CONFIG
                | ServiceAccess::START
                | ServiceAccess::DELETE,
        )
        .map_err(|e| scm::failure_of(Op::Create, "install", name, &e))?;

    // After the service exists: an uninstall meanwhile sees it and keeps the source.
    if let Err(e) = eventlog::register_source(&exe) {
        eprintln!("warden: warning: cannot register the event source \"warden\": {e}");
    }
    let configured =
        configure(&service, opts, delayed, &config).and_then(|()| grant_access(&account, &config));
    if let Err(f) = configured {
        // Leave nothing half-installed.
        let _ = service.delete();
        return Err(f);
    }
    println!(
        "installed service \"{name}\" (start: {}); config {}",
        start_word(opts.start),
        config_path.display()
    );
    grant_logon_right(&account);

    if opts.now {
        start_and_wait(&service, name, &config)?;
    }
    Ok(())
}
/// A `DOMAIN\user` account needs the right to log on as a service: grant it when missing,
/// and say so (see `logon_right.rs`). A failure is a warning: the service is installed,
/// and the right may be managed elsewhere (a domain's group policy).
fn grant_logon_right(account: &Account) {
    let Account::User(user) = account else {
        return;
    };
    let done = account.sid().and_then(|sid| {
        let policy = logon_right::Policy::open()?;
        logon_right::ensure(&policy, &sid)
    });
    match done {
        Ok(logon_right::Outcome::Granted) => println!(
            "granted {user} the right to log on as a service ({})",
            logon_right::RIGHT
        ),
        Ok(logon_right::Outcome::Had) => {}
        Err(e) => eprintln!(
            "warden: warning: cannot give {user} the right to log on as a service ({}): {e}; the service cannot start until it has it (Local Security Policy, User Rights Assignment, \"Log on as a service\")",
            logon_right::RIGHT
        ),
    }
}

/// Let a non-`LocalSystem` account read the config and write the logs and state.
fn grant_access(account: &Account, config: &Config) -> Result<(), Failure> {
    if *account == Account::LocalSystem {
        return Ok(());
    }
    let who = account.scm_name().unwrap_or_default();
    let sid = account
        .sid()
        .map_err(|e| Failure::failed(format!("cannot find the account {who}: {e}")))?;
    let mut grants = vec![(config.path.clone(), Access::Read)];
    for dir in [&config.warden.log_dir, &config.warden.state_dir] {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::failed(format!("cannot create {}: {e}", dir.display())))?;
        grants.push((dir.clone(), Access::Modify));
    }
    for (path, access) in grants {
        acl::grant(&path, &sid, access).map_err(|e| {
            Failure::failed(format!(
                "cannot give {who} access to {}: {e}",
                path.display()
            ))
        })?;
    }
    Ok(())
}

fn read_password(file: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| usage(format!("--password-file {}: {e}", file.display())))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn start_and_wait(service: &Service, name: &str, config: &Config) -> Result<(), Failure> {
    service.start::<&str>(&[]).map_err(|e| {
        Failure::failed(format!(
            "installed, but cannot start service \"{name}\": {}",
            scm::describe(&e)
        ))
    })?;
    match scm::wait_for(service, ServiceState::Running, WAIT) {
        Ok(Some(_)) => {
            println!("service \"{name}\" is running");
            Ok(())
        }
        Ok(None) => Err(Failure::failed(format!(
            "service \"{name}\" did not reach RUNNING within {}s; see {}",
            WAIT.as_secs(),
            config.warden.state_dir.join("warden.log").display()
        ))),
        Err(WaitError::Stopped(status)) => Err(Failure::failed(format!(
            "service \"{name}\" stopped while starting (exit code {:?}); see {}",
            status.exit_code,
            config.warden.state_dir.join("warden.log").display()
        ))),
        Err(WaitError::Query(e)) => Err(Failure::failed(format!(
            "cannot query service \"{name}\": {}",
            scm::describe(&e)
        ))),
    }
}

pub fn uninstall(name: &str, purge: bool) -> Result<(), Failure> {
    let manager = scm::open_manager("uninstall", ServiceManagerAccess::CONNECT)?;
    let service = manager
        .open_service(
            name,
            ServiceAccess::QUERY_STATUS
                | ServiceAccess::QUERY_CONFIG
                | ServiceAccess::STOP
                | ServiceAccess::DELETE,
        )
        .map_err(|e| scm::failure_of(Op::Open, "uninstall", name, &e))?;
    let cfg = service.query_config().map_err(|e| {
        Failure::failed(format!(
            "cannot read the configuration of service \"{name}\": {}",
            scm::describe(&e)
        ))
    })?;
    let command = cfg.executable_path.to_string_lossy().into_owned();
    if !command.contains("service-run") {
        return Err(Failure::failed(format!(
            "service \"{name}\" was not installed by warden (it runs {command}); use `sc delete {name}`"
        )));
    }

    let status = service.query_status().map_err(|e| {
        Failure::failed(format!(
            "cannot query service \"{name}\": {}",
            scm::describe(&e)
        ))
    })?;
    if status.current_state != ServiceState::Stopped {
        let stop = if status.current_state == ServiceState::StopPending {
            Ok(())
        } else {
            service.stop().map(drop)
        };
        if let Err(e) = stop {
            // The SCM cannot reach the process (it crashed, or Wine lost it): delete anyway;
            // Windows removes a running service once it stops.
            eprintln!(
                "warden: warning: cannot stop service \"{name}\" ({}); deleting it anyway",
                scm::describe(&e)
            );
        } else {
            match scm::wait_for(&service, ServiceState::Stopped, WAIT) {
                Ok(Some(_)) | Err(WaitError::Stopped(_)) => {}
                Ok(None) => {
                    return Err(Failure::failed(format!(
                        "service \"{name}\" did not stop within {}s; nothing was deleted",
                        WAIT.as_secs()
                    )));
                }
                Err(WaitError::Query(e)) => {
                    return Err(Failure::failed(format!(
                        "cannot query service \"{name}\": {}",
                        scm::describe(&e)
                    )));
                }
            }
        }
    }
    service.delete().map_err(|e| {
        Failure::failed(format!(
            "cannot delete service \"{name}\": {}",
            scm::describe(&e)
        ))
    })?;
    drop(service);
    let config = scm::config_of_command_line(&command);
    let report = purge::purge(name, config.as_deref(), purge);
    println!("uninstalled service \"{name}\"");
    print!("{}", report?.text());
    Ok(())
}
