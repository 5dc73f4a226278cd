//! End-to-end tests of `warden install` and `warden uninstall` on Linux (issue 11, section
//! 1), with the real binary: the units `--print` writes pass `systemd-analyze verify`; the
//! install and uninstall paths run against a stand-in `systemctl` on `PATH` that records
//! its arguments, with every system path under a test root (`WARDEN_INSTALL_ROOT`, test
//! only); and `warden up` speaks `sd_notify` to a `NOTIFY_SOCKET` of the test's own.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use common::{WAIT, assert_fails, show, tc, test_child, wait_for, warden_bin};

/// One test's world: a root for the system paths, a home, a runtime dir, and a `PATH`
/// whose `systemctl` records its arguments in `systemctl.log`.
struct World {
    dir: tempfile::TempDir,
    /// Extra environment for every command.
    env: Vec<(String, String)>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("warden-install-")
            .tempdir()
            .unwrap();
        for d in ["root", "home", "xdg", "bin"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        fs::set_permissions(dir.path().join("xdg"), fs::Permissions::from_mode(0o700)).unwrap();
        let log = dir.path().join("systemctl.log");
        let script = format!(
            "#!/bin/sh\n\
             echo \"$*\" >> '{}'\n\
             case \"$*\" in\n\
             *show-environment*) exit \"${{FAKE_USER_BUS_EXIT:-0}}\" ;;\n\
             *start*) exit \"${{FAKE_START_EXIT:-0}}\" ;;\n\
             esac\n\
             exit 0\n",
            log.display()
        );
        let systemctl = dir.path().join("bin/systemctl");
        fs::write(&systemctl, script).unwrap();
        fs::set_permissions(&systemctl, fs::Permissions::from_mode(0o755)).unwrap();
        World {
            dir,
            env: Vec::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A path under the test root (`/etc/...` becomes `ROOT/etc/...`).
    fn sys(&self, abs: &str) -> PathBuf {
        self.path("root").join(abs.trim_start_matches('/'))
    }

    fn home(&self, rel: &str) -> PathBuf {
        self.path("home").join(rel)
    }

    /// Pretend systemd runs (`/run/systemd/system` exists).
    fn with_systemd(self) -> World {
        fs::create_dir_all(self.sys("/run/systemd/system")).unwrap();
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(warden_bin());
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("WARDEN_INSTALL_ROOT", self.path("root"))
            .env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("xdg"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WARDEN_CONFIG")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run; assert exit 0; return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(0), "warden {args:?}: {}", show(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// What the stand-in systemctl was asked, one call per line.
    fn systemctl_calls(&self) -> Vec<String> {
        fs::read_to_string(self.path("systemctl.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn clear_calls(&self) {
        let _ = fs::remove_file(self.path("systemctl.log"));
    }
}

/// Every file and symlink under `dir` (not folders).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.map(Result::unwrap) {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// `systemd-analyze [--user] verify` of `unit` (written as `warden-NAME.service` in a
/// folder of its own): it must exit 0 and say nothing about the unit.
fn verify(world: &World, name: &str, unit: &str, user: bool) {
    let dir = world.path(&format!("verify-{name}-{user}"));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("warden-{name}.service"));
    fs::write(&file, unit).unwrap();
    let mut cmd = Command::new("systemd-analyze");
    if user {
        cmd.arg("--user");
    }
    let out = cmd
        .arg("verify")
        .arg(&file)
        .env("XDG_RUNTIME_DIR", world.path("xdg"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-analyze ({e}): the unit checks need it; install it with `apt-get install -y systemd` (.ci/run does)"
            )
        });
    let err = String::from_utf8_lossy(&out.stderr);
    let about_ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(&*file.to_string_lossy()) || l.contains("warden-"))
        .collect();
    assert!(
        out.status.success() && about_ours.is_empty(),
        "systemd-analyze verify rejected the unit:\n{}\n--- unit ---\n{unit}",
        show(&out)
    );
}

fn child_args() -> Vec<String> {
    vec![
        test_child().display().to_string(),
        "--sleep".into(),
        "forever".into(),
    ]
}

fn write_config(world: &World, rel: &str, extra: &str) -> PathBuf {
    let path = world.path(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(
        &path,
        format!(
            "[warden]\nshutdown_timeout = \"20s\"\n\n[services.api]\ncommand = [{}, \"--sleep\", \"forever\"]\n{extra}",
            tc()
        ),
    )
    .unwrap();
    path
}

#[test]
fn printed_units_pass_systemd_analyze_verify() {
    let w = World::new();
    let child = child_args();
    let quick: Vec<&str> = child.iter().map(String::as_str).collect();

    let mut args = vec!["install", "sync", "--print", "--"];
    args.extend(&quick);
    let unit = w.ok(&args);
    for want in [
        "Type=notify",
        "KillMode=mixed",
        "Delegate=yes",
        "Restart=on-failure",
        "WatchdogSec=30",
        "LimitNOFILE=65536",
        "TimeoutStopSec=75",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.lines().any(|l| l == want), "{want} missing:\n{unit}");
    }
    let exec = format!(
        "ExecStart={} up -c {}",
        warden_bin().display(),
        w.sys("/etc/warden/sync/warden.toml").display()
    );
    assert!(unit.contains(&exec), "{exec} missing:\n{unit}");
    assert!(
        files_under(&w.path("root")).is_empty(),
        "--print wrote files"
    );
    verify(&w, "sync", &unit, false);

    let config = write_config(&w, "apps/warden.toml", "");
    let c = config.to_str().unwrap();
    let unit = w.ok(&[
        "install",
        "apps",
        "--print",
        "-c",
        c,
        "--harden",
        "--user",
        "daemon",
        "--depends-on",
        "network-online.target",
        "--description",
        "the apps",
    ]);
    for want in [
        "ProtectSystem=full",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "ProtectHome=read-only",
        "RestrictSUIDSGID=yes",
        "User=daemon",
        "Requires=network-online.target",
        "Description=the apps",
        "TimeoutStopSec=35",
    ] {
        assert!(unit.lines().any(|l| l == want), "{want} missing:\n{unit}");
    }
    assert!(unit.contains(&format!("up -c {c}")), "{unit}");
    verify(&w, "apps", &unit, false);

    let unit = w.ok(&["install", "dev", "--print", "--scope", "user", "-c", c]);
    assert!(unit.contains("WantedBy=default.target"), "{unit}");
    verify(&w, "dev", &unit, true);

    let mut args = vec![
        "install", "devq", "--print", "--scope", "user", "--harden", "--",
    ];
    args.extend(&quick);
    let unit = w.ok(&args);
    verify(&w, "devq", &unit, true);
}

#[test]
fn install_and_purge_leave_no_file_behind() {
    let w = World::new().with_systemd();
    let child = child_args();
    let mut args = vec!["install", "sync", "--"];
    args.extend(child.iter().map(String::as_str));
    let out = w.ok(&args);
    let config = w.sys("/etc/warden/sync/warden.toml");
    assert_eq!(
        out,
        format!(
            "installed systemd unit warden-sync.service (enabled); config {}\n",
            config.display()
        )
    );
    assert_eq!(
        w.systemctl_calls(),
        ["daemon-reload", "enable warden-sync.service"]
    );
    let unit_file = w.sys("/etc/systemd/system/warden-sync.service");
    let unit = fs::read_to_string(&unit_file).unwrap();
    assert!(unit.contains("Type=notify"), "{unit}");
    let text = fs::read_to_string(&config).unwrap();
    for want in [
        format!(
            "log_dir = {:?}",
            w.sys("/var/log/warden/sync").display().to_string()
        ),
        format!(
            "state_dir = {:?}",
            w.sys("/var/lib/warden/sync").display().to_string()
        ),
        format!(
            "socket = {:?}",
            w.sys("/run/warden/sync/warden.sock").display().to_string()
        ),
    ] {
        assert!(text.contains(&want), "{want} missing:\n{text}");
    }
    assert!(w.sys("/var/log/warden/sync").is_dir());
    assert!(w.sys("/var/lib/warden/sync").is_dir());

    // A second install of the same name is refused, and changes nothing.
    let before = files_under(&w.path("root"));
    let o = w.run(&args);
    assert_fails(&o, 1, "warden-sync.service is installed already");
    assert_eq!(files_under(&w.path("root")), before);

    // -n finds the instance: not running yet (exit 3, its socket named), then running.
    let o = w.run(&["status", "-n", "sync"]);
    assert_fails(
        &o,
        3,
        &w.sys("/run/warden/sync/warden.sock").display().to_string(),
    );
    let mut up = w
        .command(&["up", "-c", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_for("warden status -n sync", WAIT, || {
        let o = w.run(&["status", "-n", "sync"]);
        (o.status.code() == Some(0)).then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert!(
        status.contains("sync") && (status.contains("running") || status.contains("starting")),
        "{status}"
    );
    let mode = |p: PathBuf| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(w.sys("/run/warden/sync")),
        0o700,
        "the socket's folder"
    );
    assert_eq!(mode(w.sys("/run/warden")), 0o755);
    w.ok(&["down", "-n", "sync"]);
    let code = wait_for("warden up to exit", WAIT, || up.try_wait().unwrap());
    assert_eq!(code.code(), Some(0));
    assert!(
        w.sys("/var/lib/warden/sync/stopped.json").exists()
            || w.sys("/var/lib/warden/sync/warden.lock").exists()
    );

    w.clear_calls();
    let out = w.ok(&["uninstall", "sync", "--purge"]);
    assert_eq!(
        w.systemctl_calls(),
        [
            "stop warden-sync.service",
            "disable warden-sync.service",
            "daemon-reload"
        ]
    );
    for gone in [
        unit_file.clone(),
        config.clone(),
        w.sys("/var/log/warden/sync"),
        w.sys("/var/lib/warden/sync"),
    ] {
        assert!(
            out.contains(&format!("removed {}", gone.display())),
            "{out}"
        );
        assert!(!gone.exists(), "{} is left", gone.display());
    }
    assert_eq!(files_under(&w.path("root")), Vec::<PathBuf>::new(), "{out}");
    assert!(!w.sys("/etc/warden").exists() && !w.sys("/var/lib/warden").exists());

    let o = w.run(&["uninstall", "sync"]);
    assert_fails(&o, 1, "warden-sync.service is not installed");
}

#[test]
fn a_config_install_points_at_the_file_and_uninstall_keeps_it() {
    let w = World::new().with_systemd();
    let config = write_config(&w, "apps/warden.toml", "");
    let c = config.to_str().unwrap();
    let out = w.ok(&[
        "install", "apps", "-c", c, "--start", "manual", "--now", "--user", "daemon",
    ]);
    assert!(
        out.starts_with(&format!(
            "installed systemd unit warden-apps.service (not enabled: `systemctl start` starts it); config {c}\n"
        )),
        "{out}"
    );
    assert!(out.contains("warden-apps.service is running"), "{out}");
    assert_eq!(
        w.systemctl_calls(),
        ["daemon-reload", "start warden-apps.service"]
    );
    let pointer = w.sys("/etc/warden/apps/warden.toml");
    assert_eq!(fs::read_link(&pointer).unwrap(), config);
    let unit = fs::read_to_string(w.sys("/etc/systemd/system/warden-apps.service")).unwrap();
    assert!(
        unit.contains("User=daemon") && !unit.contains("StateDirectory"),
        "{unit}"
    );

    let out = w.ok(&["uninstall", "apps", "--purge"]);
    assert!(
        out.contains(&format!("kept {c} (the config given to `install -c`)")),
        "{out}"
    );
    assert!(config.exists());
    assert_eq!(files_under(&w.path("root")), Vec::<PathBuf>::new(), "{out}");
}

#[test]
fn uninstall_without_purge_or_without_systemd_keeps_config_logs_and_state() {
    let w = World::new().with_systemd();
    let child = child_args();
    let mut args = vec!["install", "sync", "--"];
    args.extend(child.iter().map(String::as_str));
    w.ok(&args);
    fs::remove_dir_all(w.sys("/run/systemd")).unwrap();
    w.clear_calls();
    let o = w.run(&["uninstall", "sync"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("removing the files only"), "{}", show(&o));
    assert!(w.systemctl_calls().is_empty());
    let out = String::from_utf8_lossy(&o.stdout);
    let config = w.sys("/etc/warden/sync/warden.toml");
    for kept in [
        &config,
        &w.sys("/var/log/warden/sync"),
        &w.sys("/var/lib/warden/sync"),
    ] {
        assert!(kept.exists(), "{}", kept.display());
        assert!(
            out.contains(&format!("kept {} (`--purge` removes it)", kept.display())),
            "{out}"
        );
    }
    assert!(!w.sys("/etc/systemd/system/warden-sync.service").exists());
    // Installing again over the kept generated config works.
    fs::create_dir_all(w.sys("/run/systemd/system")).unwrap();
    w.ok(&args);
}

#[test]
fn a_config_written_at_the_instance_path_is_run_in_place_and_never_removed() {
    let w = World::new().with_systemd();
    let own = w.sys("/etc/warden/mine/warden.toml");
    fs::create_dir_all(own.parent().unwrap()).unwrap();
    let text = fs::read_to_string(write_config(&w, "tmp.toml", "")).unwrap();
    fs::write(&own, text).unwrap();
    w.ok(&["install", "mine", "-c", own.to_str().unwrap()]);
    assert!(!fs::symlink_metadata(&own).unwrap().file_type().is_symlink());
    let out = w.ok(&["uninstall", "mine", "--purge"]);
    assert!(
        out.contains(&format!("kept {} (not written by install)", own.display())),
        "{out}"
    );
    assert!(own.exists());
}

#[test]
fn a_failed_start_leaves_the_unit_installed_and_says_where_to_look() {
    let mut w = World::new().with_systemd();
    w.env.push(("FAKE_START_EXIT".into(), "1".into()));
    let config = write_config(&w, "apps/warden.toml", "");
    let o = w.run(&["install", "apps", "-c", config.to_str().unwrap(), "--now"]);
    assert_fails(&o, 1, "journalctl -u warden-apps.service");
    assert!(w.sys("/etc/systemd/system/warden-apps.service").exists());
}

#[test]
fn user_scope_installs_under_home_and_purges_it() {
    let w = World::new();
    let child = child_args();
    let mut args = vec!["install", "--scope", "user", "dev", "--"];
    args.extend(child.iter().map(String::as_str));
    let out = w.ok(&args);
    let config = w.home(".config/warden/dev/warden.toml");
    assert!(
        out.contains(&format!("config {}", config.display())),
        "{out}"
    );
    assert_eq!(
        w.systemctl_calls(),
        [
            "--user show-environment",
            "--user daemon-reload",
            "--user enable warden-dev.service"
        ]
    );
    let unit = w.home(".config/systemd/user/warden-dev.service");
    assert!(unit.exists());
    let text = fs::read_to_string(&config).unwrap();
    let socket = w.path("xdg/warden/dev/warden.sock");
    assert!(
        text.contains(&format!("socket = {:?}", socket.display().to_string())),
        "{text}"
    );
    assert!(w.home(".local/state/warden/dev/logs").is_dir());
    assert!(files_under(&w.path("root")).is_empty());

    // -n looks in the user scope after the system one.
    let o = w.run(&["status", "-n", "dev"]);
    assert_fails(&o, 3, &socket.display().to_string());

    w.clear_calls();
    let out = w.ok(&["uninstall", "dev", "--purge"]);
    assert_eq!(
        w.systemctl_calls(),
        [
            "--user show-environment",
            "--user stop warden-dev.service",
            "--user disable warden-dev.service",
            "--user daemon-reload"
        ]
    );
    assert!(!config.exists() && !unit.exists(), "{out}");
    assert!(!w.home(".local/state/warden/dev").exists(), "{out}");
    assert!(!w.home(".config/warden").exists(), "{out}");
}

#[test]
fn without_a_service_manager_install_refuses_with_exit_1_and_writes_nothing() {
    let w = World::new(); // no /run/systemd/system under the root
    let config = write_config(&w, "apps/warden.toml", "");
    let o = w.run(&["install", "apps", "-c", config.to_str().unwrap()]);
    let err = assert_fails(&o, 1, "systemd is not running on this machine");
    assert!(err.contains("--print"), "{err}");
    assert!(files_under(&w.path("root")).is_empty());
    assert!(w.systemctl_calls().is_empty());

    let mut w = w;
    w.env.push(("FAKE_USER_BUS_EXIT".into(), "1".into()));
    let o = w.run(&[
        "install",
        "apps",
        "--scope",
        "user",
        "-c",
        config.to_str().unwrap(),
    ]);
    assert_fails(&o, 1, "cannot reach your systemd user manager");
    assert!(files_under(&w.path("home")).is_empty());
}

#[test]
fn bad_options_are_usage_errors_that_name_the_option() {
    let w = World::new().with_systemd();
    let config = write_config(&w, "apps/warden.toml", "");
    let c = config.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["install", "a", "-c", c, "--start", "delayed"],
            "--start delayed",
        ),
        (
            vec!["install", "a", "-c", c, "--start", "disabled"],
            "--start disabled",
        ),
        (
            vec![
                "install", "a", "-c", c, "--scope", "user", "--user", "daemon",
            ],
            "--user is for --scope system",
        ),
        (
            vec!["install", "a", "-c", c, "--user", "no-such-user-w"],
            "no such account",
        ),
        (
            vec!["install", "a", "-c", c, "--display-name", "x"],
            "--display-name",
        ),
        (
            vec!["install", "a", "-c", c, "--depends-on", "a b"],
            "--depends-on",
        ),
        (
            vec!["install", "a", "-c", c, "--description", "two\nlines"],
            "--description",
        ),
        (vec!["install", "a", "-c", c, "--", "x"], "not both"),
        (vec!["install", "a"], "what should the service run?"),
        (vec!["install", "a b", "-c", c], "invalid service name"),
        (
            vec!["install", "a", "--", "no-such-program-w"],
            "program not found",
        ),
        (
            vec!["status", "-n", "nothing-here"],
            "no installed instance \"nothing-here\"",
        ),
    ] {
        let o = w.run(&args);
        assert_fails(&o, 2, needle);
    }
    // A config error is the same exit 2 as `warden check`, before anything is written.
    let bad = w.path("bad.toml");
    fs::write(&bad, "[services.x]\ncomand = \"y\"\n").unwrap();
    let o = w.run(&["install", "a", "-c", bad.to_str().unwrap()]);
    assert_fails(&o, 2, "did you mean \"command\"?");
    assert!(files_under(&w.path("root")).is_empty());
    assert!(w.systemctl_calls().is_empty());
}

#[test]
fn a_service_user_other_than_the_install_user_is_refused() {
    let w = World::new().with_systemd();
    let config = write_config(&w, "apps/warden.toml", "user = \"root\"\n");
    let o = w.run(&[
        "install",
        "apps",
        "-c",
        config.to_str().unwrap(),
        "--user",
        "daemon",
    ]);
    let err = assert_fails(&o, 2, "service \"api\" has user = \"root\"");
    assert!(
        err.contains("only root can start a service as another user"),
        "{err}"
    );
    assert!(files_under(&w.path("root")).is_empty());
}

/// Receive datagrams until one satisfies `done`, or fail after the deadline.
fn receive_until(sock: &UnixDatagram, got: &mut Vec<String>, mut done: impl FnMut(&str) -> bool) {
    let deadline = Instant::now() + WAIT;
    let mut buf = vec![0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; messages so far: {got:?}");
        sock.set_read_timeout(Some(left)).unwrap();
        let Ok(n) = sock.recv(&mut buf) else {
            panic!("no message in time; messages so far: {got:?}");
        };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let finished = done(&msg);
        got.push(msg);
        if finished {
            return;
        }
    }
}

#[test]
fn warden_up_tells_its_notify_socket_ready_watchdog_and_stopping_in_order() {
    let w = World::new();
    let started = w.path("started");
    let env_out = w.path("logs/api.out.log");
    let config = w.path("warden.toml");
    fs::write(
        &config,
        format!(
            "[services.api]\ncommand = [{tc}, \"--touch\", {s:?}, \"--env\", \"NOTIFY_SOCKET\", \"--env\", \"WATCHDOG_USEC\", \"--sleep\", \"forever\"]\n",
            tc = tc(),
            s = started.display().to_string()
        ),
    )
    .unwrap();
    let sock_path = w.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut up = w
        .command(&["up", "-c", config.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .env("WATCHDOG_PID", "") // unset-like: the pings are for whoever reads them
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    receive_until(&sock, &mut got, |m| m.starts_with("READY=1"));
    // By READY=1 the service has been started (it has a pid) and warden answers.
    let o = w.run(&["status", "--json", "-c", config.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        report["services"][0]["pid"].is_u64(),
        "READY=1 came before the service started: {report}; {got:?}"
    );
    wait_for("the service to run", WAIT, || {
        started.exists().then_some(())
    });
    assert!(
        got.last()
            .unwrap()
            .contains("STATUS=supervising 1 service(s)"),
        "{got:?}"
    );
    // Two pings at half of 200 ms.
    let mut pings = 0;
    receive_until(&sock, &mut got, |m| {
        if m == "WATCHDOG=1" {
            pings += 1;
        }
        pings >= 2
    });
    // The service did not inherit warden's notify socket.
    let lines = wait_for("the service's env lines", WAIT, || {
        let t = fs::read_to_string(&env_out).unwrap_or_default();
        (t.lines().count() >= 2).then_some(t)
    });
    assert!(
        lines.contains("NOTIFY_SOCKET unset") && lines.contains("WATCHDOG_USEC unset"),
        "{lines}"
    );

    unsafe {
        libc::kill(up.id() as i32, libc::SIGTERM);
    }
    receive_until(&sock, &mut got, |m| m.starts_with("STOPPING=1"));
    let status = wait_for("warden to exit", WAIT, || up.try_wait().unwrap());
    assert_eq!(status.code(), Some(0), "{got:?}");
    let ready = got.iter().position(|m| m.starts_with("READY=1")).unwrap();
    let stopping = got
        .iter()
        .position(|m| m.starts_with("STOPPING=1"))
        .unwrap();
    assert!(
        ready < stopping && got.iter().filter(|m| m.starts_with("READY")).count() == 1,
        "{got:?}"
    );
}

/// Kills (and reaps) a `warden up` the test started, however the test ends.
struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// An editor for `warden edit`: a script that runs `sed -i EXPR` on the file it is given.
fn editor(w: &World, tag: &str, script: &str) -> String {
    let path = w.path(&format!("bin/edit-{tag}"));
    fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

// Issue 9, section 5: the quick form's --env and --cwd, `warden set` and `warden edit` on an
// installed instance (checked; nothing changes on an error; the running instance reloads),
// and `warden start -n NAME` / the hint of `status -n NAME` for an installed, stopped one.
#[test]
fn quick_form_env_and_cwd_then_set_and_edit_reload_the_running_instance() {
    let w = World::new().with_systemd();
    let work = w.path("work dir");
    fs::create_dir_all(&work).unwrap();
    let child = test_child().display().to_string();
    let secret = "s3cr3t-value";
    let env_arg = format!("TOKEN={secret}");
    let args = [
        "install",
        "sync",
        "--env",
        &env_arg,
        "--cwd",
        work.to_str().unwrap(),
        "--",
        &child,
        "--env",
        "TOKEN",
        "--cwd",
        "--sleep",
        "forever",
    ];
    let o = w.run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        !show(&o).contains(secret),
        "the secret was printed: {}",
        show(&o)
    );
    let config = w.sys("/etc/warden/sync/warden.toml");
    let text = fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!("env = {{ \"TOKEN\" = \"{secret}\" }}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("cwd = {:?}", work.display().to_string())),
        "{text}"
    );
    assert_eq!(
        fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600,
        "a config with --env values is private"
    );

    // Installed, not running: the hint names the OS service, and `start -n` starts it.
    let o = w.run(&["status", "-n", "sync"]);
    assert_fails(
        &o,
        3,
        "start it with `warden start -n sync` (or `systemctl start warden-sync.service`)",
    );
    assert!(!show(&o).contains("warden up -d"), "{}", show(&o));
    w.clear_calls();
    assert_eq!(
        w.ok(&["start", "-n", "sync"]),
        "warden-sync.service: running\n"
    );
    assert_eq!(w.systemctl_calls(), ["start warden-sync.service"]);
    w.clear_calls();
    assert_eq!(
        w.ok(&["stop", "-n", "sync"]),
        "warden-sync.service: stopped\n"
    );
    assert_eq!(w.systemctl_calls(), ["stop warden-sync.service"]);
    assert_fails(
        &w.run(&["start", "-n", "nope"]),
        1,
        "warden-nope.service is not installed",
    );

    // `set` while it is not running: written, applied at the next start.
    let out = w.ok(&["set", "-n", "sync", "restart", "on-failure"]);
    assert_eq!(
        out,
        format!(
            "set services.sync.restart in {}\nsync is not running; the change applies when it starts (`warden start -n sync`)\n",
            config.display()
        )
    );
    let text = fs::read_to_string(&config).unwrap();
    assert!(text.contains("restart = \"on-failure\""), "{text}");
    // A bad value changes nothing (exit 2, the error at its line).
    let o = w.run(&["set", "-n", "sync", "restart", "sometimes"]);
    let err = assert_fails(&o, 2, "restart");
    assert!(err.contains("was not changed"), "{err}");
    assert_eq!(fs::read_to_string(&config).unwrap(), text);
    assert_fails(
        &w.run(&["set", "-n", "sync", "services.other.restart", "never"]),
        2,
        "no service \"other\"",
    );

    let up = Up(w
        .command(&["up", "-c", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let log = w.sys("/var/log/warden/sync/sync.out.log");
    let seen = wait_for("the child's env and cwd", WAIT, || {
        let t = fs::read_to_string(&log).unwrap_or_default();
        t.contains(&work.display().to_string()).then_some(t)
    });
    assert!(seen.contains(&format!("TOKEN={secret}")), "{seen}");

    // `set` on the running instance reloads it; the new value reaches the child, and is
    // never printed.
    let o = w.run(&["set", "-n", "sync", "env.TOKEN", "second-value"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let said = show(&o);
    assert!(said.contains("set services.sync.env.TOKEN in"), "{said}");
    assert!(said.contains("reloaded:"), "{said}");
    assert!(!said.contains("second-value"), "{said}");
    wait_for("the reloaded child's env", WAIT, || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("TOKEN=second-value")
            .then_some(())
    });

    // `edit`: a valid edit is saved and reloaded; an invalid one changes nothing.
    let good = editor(
        &w,
        "good",
        r#"sed -i 's/restart = "on-failure"/restart = "always"/' "$1""#,
    );
    let o = w
        .command(&["edit", "-n", "sync"])
        .env("EDITOR", &good)
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(&format!("saved {}\nreloaded:", config.display())),
        "{}",
        show(&o)
    );
    let text = fs::read_to_string(&config).unwrap();
    assert!(text.contains("restart = \"always\""), "{text}");
    assert_eq!(
        fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let bad = editor(&w, "bad", r#"echo 'bogus_key = 1' >> "$1""#);
    let o = w
        .command(&["edit", "-n", "sync"])
        .env("EDITOR", &bad)
        .env_remove("VISUAL")
        .output()
        .unwrap();
    let err = assert_fails(&o, 2, "bogus_key");
    assert!(err.contains("your edit is kept in"), "{err}");
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        text,
        "nothing applied"
    );

    w.ok(&["down", "-n", "sync"]);
    let mut up = up;
    let code = wait_for("warden up to exit", WAIT, || up.0.try_wait().unwrap());
    assert_eq!(code.code(), Some(0));
}
