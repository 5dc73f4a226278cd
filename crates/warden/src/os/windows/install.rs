//! `warden install` and `warden uninstall`: register and remove the Windows service that
//! runs `warden service-run`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use warden_core::config::{self, Config, ProcessEnv};
use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceDependency,
    ServiceErrorControl, ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo,
    ServiceStartType, ServiceState, ServiceType,
};
use windows_service::service_manager::ServiceManagerAccess;
use windows_sys::Win32::Foundation::ERROR_INVALID_LEVEL;

use super::acl::{self, Access, Sid};
use super::eventlog;
use super::scm::{self, Op, WaitError};
use crate::Failure;
use crate::cli::StartType;
use crate::os::InstallOptions;

/// How long `--now` waits for `RUNNING` and `uninstall` for `STOPPED`.
const WAIT: Duration = Duration::from_secs(60);

/// The SCM's recovery actions: restart warden 1 s, 5 s, then 30 s after a failure (the last
/// one repeats), and forget past failures after a day without one.
pub fn recovery_actions() -> ServiceFailureActions {
    ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 60 * 60)),
        reboot_msg: None,
        command: None,
        actions: Some(
            [1, 5, 30]
                .into_iter()
                .map(|s| ServiceAction {
                    action_type: ServiceActionType::Restart,
                    delay: Duration::from_secs(s),
                })
                .collect(),
        ),
    }
}

/// The account a service runs as (`--user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// `LocalSystem` (the default): full access to the machine.
    LocalSystem,
    /// `NT AUTHORITY\LocalService`: few rights, anonymous on the network.
    LocalService,
    /// `NT AUTHORITY\NetworkService`: few rights, the machine's identity on the network.
    NetworkService,
    /// `NT SERVICE\NAME`: the service's own virtual account (no password).
    Virtual(String),
    /// `DOMAIN\user` or `.\user`, with a password (`--password-file`).
    User(String),
}

impl Account {
    /// Parse `--user`; `service` is the service being installed (for `NT SERVICE\NAME`).
    pub fn parse(user: Option<&str>) -> Account {
        let Some(user) = user.map(str::trim) else {
            return Account::LocalSystem;
        };
        let lower = user.to_ascii_lowercase();
        let bare = lower
            .strip_prefix(r"nt authority\")
            .unwrap_or(lower.as_str());
        match bare {
            "localsystem" | "system" | r".\localsystem" => Account::LocalSystem,
            "localservice" | "local service" => Account::LocalService,
            "networkservice" | "network service" => Account::NetworkService,
            _ if lower.starts_with(r"nt service\") => Account::Virtual(user.to_owned()),
            _ => Account::User(user.to_owned()),
        }
    }

    /// The account name given to the SCM (`None` = `LocalSystem`).
    pub fn scm_name(&self) -> Option<String> {
        match self {
            Account::LocalSystem => None,
            Account::LocalService => Some(r"NT AUTHORITY\LocalService".to_owned()),
            Account::NetworkService => Some(r"NT AUTHORITY\NetworkService".to_owned()),
            Account::Virtual(n) | Account::User(n) => Some(n.clone()),
        }
    }

    /// Whether the SCM needs a password for it.
    pub fn needs_password(&self) -> bool {
        matches!(self, Account::User(_))
    }

    /// Its SID, for ACLs: well-known ones by number (account names are localized), others
    /// by lookup (a virtual account exists once its service does).
    pub fn sid(&self) -> std::io::Result<Sid> {
        match self {
            Account::LocalSystem => Sid::from_string("S-1-5-18"),
            Account::LocalService => Sid::from_string("S-1-5-19"),
            Account::NetworkService => Sid::from_string("S-1-5-20"),
            Account::Virtual(n) | Account::User(n) => Sid::lookup(n),
        }
    }
}

/// A service name warden accepts: what a config's service names may use (it is the name of
/// the generated config's service, of its folder and of its control pipe).
fn check_name(name: &str) -> Result<(), Failure> {
    if !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Ok(())
    } else {
        Err(Failure::new(
            2,
            format!(
                "invalid service name \"{name}\": a service name may use only letters, digits, '_', '.' and '-'"
            ),
        ))
    }
}

/// `%ProgramData%` (`C:\ProgramData` if unset).
fn program_data() -> PathBuf {
    std::env::var_os("ProgramData").map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from)
}

/// `%ProgramData%\warden\NAME`: the quick form's config, logs and state.
pub fn instance_dir(name: &str) -> PathBuf {
    program_data().join("warden").join(name)
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The config of `warden install NAME -- PROGRAM ARGS...`: one service NAME running the
/// program (absolute) in its folder, with logs and state under `dir`.
pub fn quick_config(name: &str, program: &Path, args: &[String], dir: &Path) -> String {
    let mut command = vec![toml_str(&program.to_string_lossy())];
    command.extend(args.iter().map(|a| toml_str(a)));
    let cwd = program.parent().unwrap_or(dir);
    format!(
        "# Written by `warden install {name}`; edit it, then `sc control {name} paramchange`\n\
         # (or `warden reload -n {name}`) applies the change.\n\
         \n\
         [warden]\n\
         log_dir = {}\n\
         state_dir = {}\n\
         \n\
         [services.{name}]\n\
         command = [{}]\n\
         cwd = {}\n",
        toml_str(&dir.join("logs").to_string_lossy()),
        toml_str(&dir.join("state").to_string_lossy()),
        command.join(", "),
        toml_str(&cwd.to_string_lossy()),
    )
}

/// The program of the quick form as an absolute path: a path as given (made absolute), a
/// bare name searched in `PATH` with `PATHEXT` (the service will not have the installing
/// user's `PATH`).
fn resolve_program(program: &str) -> Result<PathBuf, Failure> {
    let p = Path::new(program);
    let not_found = || Failure::new(2, format!("program not found: {program}"));
    if p.components().count() > 1 || p.is_absolute() {
        let abs = std::path::absolute(p).map_err(|_| not_found())?;
        return if abs.is_file() {
            Ok(abs)
        } else {
            Err(not_found())
        };
    }
    let exts: Vec<String> = std::env::var("PATHEXT")
        .unwrap_or_else(|_| ".COM;.EXE;.BAT;.CMD".to_owned())
        .split(';')
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    let mut dirs = vec![std::env::current_dir().unwrap_or_default()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    for dir in dirs {
        let plain = dir.join(p);
        if p.extension().is_some() && plain.is_file() {
            return Ok(plain);
        }
        for ext in &exts {
            let mut name = OsString::from(p.as_os_str());
            name.push(ext);
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(not_found())
}

/// Load and validate a config: exit 2 with every error, as `warden check`.
fn load(path: &Path) -> Result<Config, Failure> {
    config::load(path, &ProcessEnv).map_err(|e| crate::commands::config_failure(&e))
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

fn start_word(s: StartType) -> &'static str {
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

pub fn install(opts: &InstallOptions) -> Result<(), Failure> {
    let name = opts.name.as_str();
    check_name(name)?;
    match (&opts.config, opts.program.is_empty()) {
        (Some(_), false) => {
            return Err(Failure::new(
                2,
                "give either -c FILE or the program after `--`, not both",
            ));
        }
        (None, true) => {
            return Err(Failure::new(
                2,
                format!(
                    "what should the service run? `warden install {name} -c FILE` or `warden install {name} -- PROGRAM ARGS...`"
                ),
            ));
        }
        _ => {}
    }
    let account = Account::parse(opts.user.as_deref());
    let password = match (&opts.password_file, account.needs_password()) {
        (Some(file), true) => Some(read_password(file)?),
        (None, true) => {
            return Err(Failure::new(
                2,
                format!(
                    "--user {}: a user account needs --password-file FILE",
                    opts.user.as_deref().unwrap_or_default()
                ),
            ));
        }
        (Some(_), false) => {
            return Err(Failure::new(
                2,
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
        Some(c) => {
            std::path::absolute(c).map_err(|e| Failure::new(2, format!("{}: {e}", c.display())))?
        }
        None => write_quick_config(name, &opts.program)?,
    };
    let config = load(&config_path)?;

    if let Err(e) = eventlog::register_source(&exe) {
        eprintln!("warden: warning: cannot register the event source \"warden\": {e}");
    }

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

    if opts.now {
        start_and_wait(&service, name, &config)?;
    }
    Ok(())
}

/// The settings `CreateService` does not take: description, delayed start, recovery,
/// preshutdown timeout.
fn configure(
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
        .saturating_add(Duration::from_secs(10))
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
        .map_err(|e| Failure::new(2, format!("--password-file {}: {e}", file.display())))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn write_quick_config(name: &str, program: &[String]) -> Result<PathBuf, Failure> {
    let Some((prog, args)) = program.split_first() else {
        return Err(Failure::new(2, "no program given after `--`"));
    };
    let prog = resolve_program(prog)?;
    let dir = instance_dir(name);
    std::fs::create_dir_all(dir.join("logs"))
        .map_err(|e| Failure::failed(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join("warden.toml");
    let text = quick_config(name, &prog, args, &dir);
    // A partial file, then a rename: a failed write never leaves half a config.
    let partial = dir.join("warden.toml.partial");
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
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
    let mut msg = format!("uninstalled service \"{name}\"");
    if purge {
        let dir = instance_dir(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                let _ = write!(msg, "; removed {}", dir.display());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                println!("{msg}");
                return Err(Failure::failed(format!(
                    "cannot remove {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    println!("{msg}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_to_scm_names() {
        let name = |u: Option<&str>| Account::parse(u).scm_name();
        assert_eq!(name(None), None);
        assert_eq!(name(Some("LocalSystem")), None);
        assert_eq!(
            name(Some("LocalService")).as_deref(),
            Some(r"NT AUTHORITY\LocalService")
        );
        assert_eq!(
            name(Some(r"NT AUTHORITY\NetworkService")).as_deref(),
            Some(r"NT AUTHORITY\NetworkService")
        );
        assert_eq!(
            Account::parse(Some(r"NT SERVICE\sync")),
            Account::Virtual(r"NT SERVICE\sync".into())
        );
        assert_eq!(
            Account::parse(Some(r"CORP\svc-sync")),
            Account::User(r"CORP\svc-sync".into())
        );
        assert!(Account::parse(Some(r".\bob")).needs_password());
        assert!(!Account::parse(Some(r"NT SERVICE\sync")).needs_password());
    }

    #[test]
    fn built_in_accounts_have_well_known_sids() {
        assert_eq!(
            Account::LocalService
                .sid()
                .and_then(|s| s.to_string_sid())
                .expect("sid"),
            "S-1-5-19"
        );
        assert_eq!(
            Account::NetworkService
                .sid()
                .and_then(|s| s.to_string_sid())
                .expect("sid"),
            "S-1-5-20"
        );
    }

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
    fn names_are_checked() {
        assert!(check_name("sync").is_ok());
        assert!(check_name("my-app_2.0").is_ok());
        for bad in ["", "my app", r"a\b", "a/b"] {
            assert_eq!(check_name(bad).expect_err(bad).code, 2);
        }
    }

    #[test]
    fn quick_config_is_a_valid_config() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("warden").join("sync");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let prog = tmp.path().join("bin dir").join("sync.exe");
        std::fs::create_dir_all(tmp.path().join("bin dir")).expect("mkdir");
        let text = quick_config(
            "sync",
            &prog,
            &["--flag".into(), r#"quote " and \ back"#.into()],
            &dir,
        );
        let path = dir.join("warden.toml");
        std::fs::write(&path, &text).expect("write");
        let config = config::load(&path, &ProcessEnv).expect("valid config");
        assert_eq!(config.warden.log_dir, dir.join("logs"));
        assert_eq!(config.warden.state_dir, dir.join("state"));
        let svc = config.service("sync").expect("service");
        assert_eq!(
            svc.command,
            [
                prog.to_string_lossy().into_owned(),
                "--flag".to_owned(),
                r#"quote " and \ back"#.to_owned()
            ]
        );
        assert_eq!(svc.cwd, tmp.path().join("bin dir"));
    }

    #[test]
    fn quick_config_writes_windows_paths_escaped() {
        let text = quick_config(
            "sync",
            Path::new(r"C:\Tools\sync.exe"),
            &[],
            Path::new(r"C:\ProgramData\warden\sync"),
        );
        assert!(
            text.contains(r#"log_dir = "C:\\ProgramData\\warden\\sync\\logs""#),
            "{text}"
        );
        assert!(
            text.contains(r#"command = ["C:\\Tools\\sync.exe"]"#),
            "{text}"
        );
        assert!(text.contains(r#"cwd = "C:\\Tools""#), "{text}");
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
