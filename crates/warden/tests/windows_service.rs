//! warden as a Windows service, end to end: `warden install`, the SCM starting
//! `warden service-run`, controls (stop, paramchange), recovery-relevant exit codes,
//! `warden uninstall`. Needs the right to create services (an elevated prompt on Windows;
//! any Wine prefix). Run under Wine by `tools/wine/winsvc-test.sh`.
//!
//! Each test uses its own service name (`wt-TAG-PID`) and temp dir, so they run in
//! parallel; a guard uninstalls the service whatever happens. The one exception is
//! `service_run_outside_the_scm_exits_2`: see [`SCM_PIPE`].

#![cfg(windows)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use windows_service::service::{ServiceAccess, ServiceExitCode, ServiceState, ServiceStatus};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_sys::Win32::Foundation::{CloseHandle, WAIT_TIMEOUT};
use windows_sys::Win32::System::Services::{
    ControlService, SERVICE_CONTROL_PARAMCHANGE, SERVICE_STATUS,
};
use windows_sys::Win32::System::Threading::{
    OpenProcess, PROCESS_SYNCHRONIZE, WaitForSingleObject,
};

const DEADLINE: Duration = Duration::from_secs(30);

/// Wine's `StartServiceCtrlDispatcher` connects to the control pipe of the service the SCM
/// started last (`\\.\pipe\net\NtControlPipeN`) without checking that the caller is that
/// service's process, as Windows does. A `warden service-run` started by hand while the SCM
/// waits for another service would take that service's pipe, and both tests fail (seen in
/// CI). So the tests that start services hold this shared, and the hand-started one holds
/// it alone.
static SCM_PIPE: RwLock<()> = RwLock::new(());

fn starts_services() -> RwLockReadGuard<'static, ()> {
    SCM_PIPE.read().unwrap_or_else(PoisonError::into_inner)
}

fn warden() -> PathBuf {
    std::path::absolute(env!("CARGO_BIN_EXE_warden")).expect("absolute warden.exe")
}

/// test-child.exe, built next to warden.exe (`cargo build -p test-child`).
fn test_child() -> PathBuf {
    let p = warden().with_file_name("test-child.exe");
    assert!(
        p.is_file(),
        "{} missing: cargo build -p test-child --target x86_64-pc-windows-gnu",
        p.display()
    );
    p
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(warden())
        .args(args)
        .output()
        .expect("run warden");
    eprintln!(
        "$ warden {}\n  exit {:?}\n  stdout: {}\n  stderr: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Uninstalls the service (with `--purge`) when the test ends, however it ends.
struct Installed(String);

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new(warden())
            .args(["uninstall", &self.0, "--purge"])
            .output();
    }
}

fn name(tag: &str) -> String {
    format!("wt-{tag}-{}", std::process::id())
}

fn program_data() -> PathBuf {
    std::env::var_os("ProgramData").map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from)
}

fn manager() -> ServiceManager {
    ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT).expect("open SCM")
}

fn status(name: &str) -> Option<ServiceStatus> {
    query(name).ok()
}

/// The service's status, or why the SCM did not give it.
fn query(name: &str) -> Result<ServiceStatus, windows_service::Error> {
    manager()
        .open_service(name, ServiceAccess::QUERY_STATUS)?
        .query_status()
}

/// Poll the SCM until `name` is in state `want`. A query that fails is asked again until the
/// deadline: under load, Wine's SCM has been seen to fail one (the service existed before and
/// after); the last error is in the message if the deadline passes.
fn wait_state(name: &str, want: ServiceState) -> ServiceStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let seen = query(name);
        if let Ok(s) = &seen
            && s.current_state == want
        {
            return s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {} after {DEADLINE:?}, wanted {want:?}",
            match &seen {
                Ok(s) => format!("still {:?}", s.current_state),
                Err(e) => format!("no status ({e})"),
            }
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until `f` holds for the contents of `path` (missing = empty).
fn wait_file(path: &Path, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let t = std::fs::read_to_string(path).unwrap_or_default();
        if f(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no {what} after {DEADLINE:?}; it has:\n{t}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alive(pid: u32) -> bool {
    // SAFETY: plain calls; the handle is closed below.
    unsafe {
        let h = OpenProcess(PROCESS_SYNCHRONIZE, 0, pid);
        if h.is_null() {
            return false;
        }
        let r = WaitForSingleObject(h, 0);
        CloseHandle(h);
        r == WAIT_TIMEOUT
    }
}

fn start(name: &str) {
    let svc = manager()
        .open_service(name, ServiceAccess::START)
        .expect("open service");
    svc.start::<&str>(&[]).expect("start service");
}

fn stop(name: &str) {
    let svc = manager()
        .open_service(name, ServiceAccess::STOP)
        .expect("open service");
    svc.stop().expect("stop service");
}

fn paramchange(name: &str) {
    let svc = manager()
        .open_service(name, ServiceAccess::PAUSE_CONTINUE)
        .expect("open service");
    // SAFETY: a valid service handle; a zeroed status buffer to fill.
    let ok = unsafe {
        let mut st: SERVICE_STATUS = std::mem::zeroed();
        // windows-service uses windows-sys 0.52, whose SC_HANDLE is an isize.
        ControlService(
            svc.raw_handle() as *mut std::ffi::c_void,
            SERVICE_CONTROL_PARAMCHANGE,
            &raw mut st,
        )
    };
    assert_ne!(ok, 0, "paramchange: {}", std::io::Error::last_os_error());
}

#[test]
fn quick_install_runs_reloads_stops_and_uninstalls() {
    let _scm = starts_services();
    let name = name("quick");
    let child = test_child();
    let child = child.to_string_lossy();
    let out = run(&[
        "install",
        &name,
        "--",
        &child,
        "--print-pid",
        "--sleep",
        "forever",
    ]);
    let _guard = Installed(name.clone());
    assert_eq!(out.status.code(), Some(0));
    let dir = program_data().join("warden").join(&name);
    let config = dir.join("warden.toml");
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "installed service \"{name}\" (start: auto); config {}",
            config.display()
        )
    );

    // A second install of the same name is refused, and leaves the config alone.
    let before = std::fs::read_to_string(&config).expect("config written");
    let again = run(&["install", &name, "--", &child]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains(&format!("service \"{name}\" already exists")),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&config).expect("config"), before);

    start(&name);
    wait_state(&name, ServiceState::Running);
    let out_log = dir.join("logs").join(format!("{name}.out.log"));
    let pid_line = wait_file(&out_log, "pid line", |t| t.ends_with('\n'));
    let pid: u32 = pid_line.trim().parse().expect("a pid");
    assert!(alive(pid), "the child {pid} runs");

    let warden_log = dir.join("state").join("warden.log");
    wait_file(&warden_log, "supervising line", |t| {
        t.contains("supervising 1 service")
    });
    paramchange(&name);
    wait_file(&warden_log, "reload after PARAMCHANGE", |t| {
        t.contains("reloaded:")
    });

    stop(&name);
    let stopped = wait_state(&name, ServiceState::Stopped);
    assert_eq!(stopped.exit_code, ServiceExitCode::NO_ERROR);
    assert!(!alive(pid), "the child {pid} was stopped with the service");
    wait_file(&warden_log, "all services stopped", |t| {
        t.contains("all services stopped")
    });

    let out = run(&["uninstall", &name, "--purge"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(status(&name).is_none(), "the service is gone");
    assert!(!dir.exists(), "--purge removed {}", dir.display());
    let out = run(&["uninstall", &name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&format!("service \"{name}\" is not installed")));
}

#[test]
fn config_install_now_restarts_a_crashing_child() {
    let _scm = starts_services();
    let name = name("crash");
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("warden.toml");
    let child = test_child();
    std::fs::write(
        &config,
        format!(
            "[services.crash]\ncommand = [{:?}, \"--sleep\", \"200ms\", \"--exit\", \"1\"]\nrestart = \"on-failure\"\nbackoff = {{ initial = \"100ms\", max = \"200ms\" }}\n",
            child.to_string_lossy()
        ),
    )
    .expect("write config");
    let cfg = config.to_string_lossy();
    let out = run(&["install", &name, "-c", &cfg, "--start", "manual", "--now"]);
    let _guard = Installed(name.clone());
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "installed service \"{name}\" (start: manual); config {}",
            config.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("is running"), "{stdout}");
    assert_eq!(
        status(&name).map(|s| s.current_state),
        Some(ServiceState::Running)
    );
    let log = tmp.path().join(".warden").join("warden.log");
    wait_file(&log, "three starts", |t| {
        t.matches("started (pid").count() >= 3
    });
    let out = run(&["uninstall", &name]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_config_error_at_start_stops_with_service_specific_code_2() {
    let _scm = starts_services();
    let name = name("badcfg");
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("warden.toml");
    let state = tmp.path().join("its state");
    let child = test_child();
    let warden = format!("[warden]\nstate_dir = {:?}\n", state.to_string_lossy());
    std::fs::write(
        &config,
        format!(
            "{warden}[services.ok]\ncommand = [{:?}, \"--sleep\", \"forever\"]\n",
            child.to_string_lossy()
        ),
    )
    .expect("write config");
    let out = run(&[
        "install",
        &name,
        "-c",
        &config.to_string_lossy(),
        "--start",
        "manual",
    ]);
    let _guard = Installed(name.clone());
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(
        &config,
        format!("{warden}[services.ok]\ncomand = [\"x\"]\n"),
    )
    .expect("break config");
    start(&name);
    let s = wait_state(&name, ServiceState::Stopped);
    assert_eq!(s.exit_code, ServiceExitCode::ServiceSpecific(2));
    // In the instance's own warden.log (its configured state dir), each line timestamped.
    let log = wait_file(&state.join("warden.log"), "error", |t| {
        t.contains("was not started")
    });
    assert!(
        log.contains("config error") && log.contains("comand"),
        "{log}"
    );
    assert!(!log.contains("nothing was changed"), "{log}");
    for line in log.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with("20") && line.contains("Z [warden] "),
            "not a timestamped event line: {line}"
        );
    }
    assert!(
        !tmp.path().join(".warden").exists(),
        "nothing goes to the default state dir"
    );
}

#[test]
fn install_with_a_bad_config_exits_2_and_creates_nothing() {
    let name = name("invalid");
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("warden.toml");
    std::fs::write(&config, "[services.x]\ncomand = [\"x\"]\n").expect("write config");
    let out = run(&["install", &name, "-c", &config.to_string_lossy()]);
    let _guard = Installed(name.clone());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("comand"), "{err}");
    assert!(status(&name).is_none());
}

#[test]
fn install_as_local_service_records_the_account() {
    let name = name("account");
    let child = test_child();
    let out = run(&[
        "install",
        &name,
        "--user",
        "LocalService",
        "--start",
        "delayed",
        "--depends-on",
        "RpcSs",
        "--display-name",
        "Account test",
        "--",
        &child.to_string_lossy(),
    ]);
    let _guard = Installed(name.clone());
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("(start: delayed)"));
    let svc = manager()
        .open_service(&name, ServiceAccess::QUERY_CONFIG)
        .expect("open");
    let cfg = svc.query_config().expect("config");
    assert_eq!(
        cfg.account_name.map(|a| a.to_string_lossy().to_lowercase()),
        Some(r"nt authority\localservice".to_owned())
    );
    assert_eq!(cfg.display_name.to_string_lossy(), "Account test");
    let command = cfg.executable_path.to_string_lossy().into_owned();
    assert!(
        command.contains(&format!("service-run --name {name} -c ")),
        "{command}"
    );
    drop(svc);
    let out = run(&["uninstall", &name, "--purge"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn service_run_outside_the_scm_exits_2() {
    let _alone = SCM_PIPE.write().unwrap_or_else(PoisonError::into_inner);
    let out = run(&["service-run", "--name", "wt-none", "-c", "warden.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("warden up"));
}

#[test]
fn uninstall_of_an_unknown_service_exits_1() {
    let out = run(&["uninstall", &name("missing")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not installed"));
}

/// `wchild.exe` (tools/wine/wchild.c), as a Windows path in `WARDEN_WCHILD`.
fn wchild() -> String {
    std::env::var("WARDEN_WCHILD")
        .expect("WARDEN_WCHILD: the path of wchild.exe (tools/wine/winsvc-test.sh sets it)")
}

fn toml(p: &Path) -> String {
    format!("{:?}", p.to_string_lossy())
}

// Issue 9, section 5: a console program that needs 7 s to clean up after Ctrl-C, under
// `stop_timeout = "10s"` and the default stop_method (ctrl-c, wm-close, terminate): it has
// no window, so WM_CLOSE takes none of the time, and after Ctrl-C warden waits until the
// stop_timeout deadline (the engine's timing is unit-tested in engine/tests_stop.rs).
#[test]
fn a_console_program_that_needs_7s_to_stop_stops_gracefully_under_stop_timeout_10s() {
    let _scm = starts_services();
    let name = name("slow");
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("warden.toml");
    let marker = tmp.path().join("marker.txt");
    std::fs::write(
        &config,
        format!(
            "[warden]\nlog_dir = {}\nstate_dir = {}\n\n[services.slow]\ncommand = [{:?}, \"ctrlc\", {}, \"7000\"]\nstop_timeout = \"10s\"\n",
            toml(&tmp.path().join("logs")),
            toml(&tmp.path().join("state")),
            wchild(),
            toml(&marker),
        ),
    )
    .expect("write config");
    let out = run(&[
        "install",
        &name,
        "-c",
        &config.to_string_lossy(),
        "--start",
        "manual",
    ]);
    let _guard = Installed(name.clone());
    assert_eq!(out.status.code(), Some(0));
    start(&name);
    wait_state(&name, ServiceState::Running);
    wait_file(
        &tmp.path().join("logs").join("slow.out.log"),
        "ready",
        |t| t.contains("ready"),
    );
    let t0 = Instant::now();
    stop(&name);
    let stopped = wait_state(&name, ServiceState::Stopped);
    let took = t0.elapsed();
    let log =
        std::fs::read_to_string(tmp.path().join("state").join("warden.log")).expect("warden.log");
    assert_eq!(stopped.exit_code, ServiceExitCode::NO_ERROR, "{log}");
    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker"),
        "got ctrl-c, cleaned up",
        "the program finished its cleanup; warden.log:\n{log}"
    );
    assert!(
        took >= Duration::from_secs(7),
        "stopped after {took:?}; {log}"
    );
    assert!(!log.contains("did not stop within"), "{log}");
    assert!(log.contains("[slow] stopped (pid"), "{log}");
}

// Issue 9, section 5: a `restart = "never"` program that exits, with
// `when_all_ended = "stop"`, takes the Windows service to STOPPED: with a service-specific
// exit code when it failed, without one when it succeeded.
#[test]
fn when_all_ended_stop_takes_the_service_to_stopped_with_its_exit_code() {
    let _scm = starts_services();
    let child = test_child();
    for (tag, code, want) in [
        ("endfail", 3, ServiceExitCode::ServiceSpecific(1)),
        ("endok", 0, ServiceExitCode::NO_ERROR),
    ] {
        let name = name(tag);
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = tmp.path().join("warden.toml");
        std::fs::write(
            &config,
            format!(
                "[warden]\nwhen_all_ended = \"stop\"\n\n[services.job]\ncommand = [{:?}, \"--sleep\", \"1500ms\", \"--exit\", \"{code}\"]\nrestart = \"never\"\n",
                child.to_string_lossy()
            ),
        )
        .expect("write config");
        let out = run(&[
            "install",
            &name,
            "-c",
            &config.to_string_lossy(),
            "--start",
            "manual",
        ]);
        let _guard = Installed(name.clone());
        assert_eq!(out.status.code(), Some(0));
        start(&name);
        let s = wait_state(&name, ServiceState::Stopped);
        assert_eq!(s.exit_code, want, "{tag}");
        let log = wait_file(
            &tmp.path().join(".warden").join("warden.log"),
            "the end",
            |t| t.contains("every service ended"),
        );
        if code != 0 {
            assert!(log.contains("failed: job"), "{log}");
        }
    }
}

// Issue 9, section 5 (NSSM's habits): the quick form's --env and --cwd, then `warden set`
// and `warden edit` on the installed service, reloaded over its pipe.
#[test]
fn quick_install_with_env_and_cwd_then_set_and_edit_reload_it() {
    let _scm = starts_services();
    let name = name("setedit");
    let tmp = tempfile::tempdir().expect("tempdir");
    let child = test_child();
    let cwd = tmp.path().to_string_lossy().into_owned();
    let out = run(&[
        "install",
        &name,
        "--env",
        "TOKEN=s3cr3t",
        "--cwd",
        &cwd,
        "--",
        &child.to_string_lossy(),
        "--env",
        "TOKEN",
        "--cwd",
        "--sleep",
        "forever",
    ]);
    let _guard = Installed(name.clone());
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("s3cr3t") && !text(&out.stderr).contains("s3cr3t"));
    let dir = program_data().join("warden").join(&name);
    let config = dir.join("warden.toml");

    // Not running: `status -n` names `warden start -n`; `set` writes and says so.
    let o = run(&["status", "-n", &name]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).contains(&format!(
            "start it with `warden start -n {name}` (or `sc start {name}`)"
        )),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["set", "-n", &name, "stop_timeout", "5s"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("is not running; the change applies when it starts"));
    let o = run(&["set", "-n", &name, "restart", "sometimes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("was not changed"));

    let o = run(&["start", "-n", &name]);
    assert_eq!(o.status.code(), Some(0));
    let log = dir.join("logs").join(format!("{name}.out.log"));
    let seen = wait_file(&log, "env and cwd", |t| t.contains(&cwd));
    assert!(seen.contains("TOKEN=s3cr3t"), "{seen}");

    let o = run(&["set", "-n", &name, "env.TOKEN", "second"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("reloaded:"), "{}", text(&o.stdout));
    assert!(!text(&o.stdout).contains("second"));
    wait_file(&log, "the new env", |t| t.contains("TOKEN=second"));

    // `edit` with an editor that breaks the file: reported, nothing applied.
    let before = std::fs::read_to_string(&config).expect("config");
    let bat = tmp.path().join("bad-edit.bat");
    std::fs::write(&bat, "@echo off\r\necho bogus_key = 1 >> %1\r\n").expect("write editor");
    let o = Command::new(warden())
        .args(["edit", "-n", &name])
        .env("EDITOR", &bat)
        .env_remove("VISUAL")
        .output()
        .expect("run warden edit");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("bogus_key"), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&config).expect("config"), before);
    stop(&name);
    wait_state(&name, ServiceState::Stopped);
}

// Issue 9, section 5: `uninstall --purge` says what it removed and what it kept, and the
// event source goes with the last warden service. Alone, so that no other test's service
// counts as "another warden service".
#[test]
fn uninstall_reports_what_it_removed_and_kept_and_the_last_one_removes_the_event_source() {
    let _alone = SCM_PIPE.write().unwrap_or_else(PoisonError::into_inner);
    let child = test_child();
    let child = child.to_string_lossy();
    let quick = name("purgeq");
    let out = run(&["install", &quick, "--", &child]);
    let _g1 = Installed(quick.clone());
    assert_eq!(out.status.code(), Some(0));
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("warden.toml");
    std::fs::write(&config, format!("[services.a]\ncommand = [{child:?}]\n")).expect("config");
    std::fs::create_dir_all(tmp.path().join("logs")).expect("logs");
    let own = name("purgec");
    let out = run(&[
        "install",
        &own,
        "-c",
        &config.to_string_lossy(),
        "--start",
        "manual",
    ]);
    let _g2 = Installed(own.clone());
    assert_eq!(out.status.code(), Some(0));

    let out = run(&["uninstall", &own, "--purge"]);
    assert_eq!(out.status.code(), Some(0));
    let said = text(&out.stdout);
    assert!(
        said.starts_with(&format!("uninstalled service \"{own}\"\n")),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "kept {} (the config given to `install -c`)",
            config.display()
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "kept {} (its logs)",
            tmp.path().join("logs").display()
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "kept the event log source \"warden\" (used by {quick})"
        )),
        "{said}"
    );
    assert!(config.exists());

    let out = run(&["uninstall", &quick, "--purge"]);
    assert_eq!(out.status.code(), Some(0));
    let said = text(&out.stdout);
    let dir = program_data().join("warden").join(&quick);
    assert!(
        said.contains(&format!(
            "removed {} (the generated config, logs and state)",
            dir.display()
        )),
        "{said}"
    );
    assert!(
        said.contains("removed the event log source \"warden\" (no warden service is left)"),
        "{said}"
    );
    let key = Command::new("reg")
        .args([
            "query",
            r"HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\warden",
        ])
        .output()
        .expect("run reg");
    assert!(!key.status.success(), "the source's key is gone");
}

// Issue 11, section 4: `--user DOMAIN\user` is given "log on as a service" when it lacks it,
// and install says so. Wine's LSA keeps no account rights: LsaEnumerateAccountRights never
// lists one and LsaAddAccountRights succeeds, so every install says "granted" (the decision
// itself is unit-tested in os::windows::install::logon_right).
#[test]
fn install_as_a_user_account_grants_the_right_to_log_on_as_a_service() {
    let name = name("logon");
    let user = format!(r".\{}", std::env::var("USERNAME").expect("USERNAME"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let password = tmp.path().join("password.txt");
    std::fs::write(&password, "not-a-real-password\r\n").expect("password file");
    let out = run(&[
        "install",
        &name,
        "--user",
        &user,
        "--password-file",
        &password.to_string_lossy(),
        "--start",
        "manual",
        "--",
        &test_child().to_string_lossy(),
    ]);
    let _guard = Installed(name.clone());
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains(&format!(
            "granted {user} the right to log on as a service (SeServiceLogonRight)"
        )),
        "{}",
        text(&out.stdout)
    );
    assert!(!text(&out.stdout).contains("not-a-real-password"));
    let svc = manager()
        .open_service(&name, ServiceAccess::QUERY_CONFIG)
        .expect("open");
    let account = svc.query_config().expect("config").account_name;
    assert_eq!(
        account.map(|a| a.to_string_lossy().to_lowercase()),
        Some(user.to_lowercase())
    );
}
