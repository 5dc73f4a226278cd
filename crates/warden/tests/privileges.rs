//! End-to-end tests of least privilege and cgroups (Linux, run as root): `user`, `group`,
//! `umask`, `nice`, `oom_score_adjust`, `no_new_privileges` and `limits` as the child sees
//! them in `/proc`, with users the tests create and remove; a warden that is not root;
//! probes and `stop_command` of a `user = "nobody"` service as nobody;
//! a process that escaped its group and cleared its environment, stopped through its
//! service's cgroup; the cgroups removed after a stop.
//!
//! A test that needs root says so and returns when it is not root; a cgroup test says why
//! and returns when this machine gives no cgroup v2 subtree to manage.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Daemon, Env, WAIT, alive, show, tc, wait_for, wait_gone};

fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// Returns `false` (and says why) when the test cannot run here.
fn need_root(test: &str) -> bool {
    if !is_root() {
        println!("skipped {test}: it creates users and must run as root");
    }
    is_root()
}

/// A system user (and a group it is a supplementary member of), removed when dropped.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    extra_group: String,
    extra_gid: u32,
    /// The home directory the account names (not created).
    home: String,
}

/// The tests of this file change the user database one at a time (each of `useradd`,
/// `userdel`, ... also takes the system's lock, against other processes).
static USERDB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn userdb() -> std::sync::MutexGuard<'static, ()> {
    USERDB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn run_ok(cmd: &mut Command) {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", show(&o));
}

impl TestUser {
    fn new() -> TestUser {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("wardentest{}x{n}", std::process::id());
        let extra_group = format!("wardentg{}x{n}", std::process::id());
        let _db = userdb();
        run_ok(Command::new("groupadd").args(["--system", &extra_group]));
        run_ok(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/bin/sh",
            "--groups",
            &extra_group,
            &name,
        ]));
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let extra_gid = {
            let o = Command::new("getent")
                .args(["group", &extra_group])
                .output()
                .unwrap();
            let line = String::from_utf8_lossy(&o.stdout).into_owned();
            line.split(':').nth(2).unwrap().trim().parse().unwrap()
        };
        let home = {
            let o = Command::new("getent")
                .args(["passwd", &name])
                .output()
                .unwrap();
            let line = String::from_utf8_lossy(&o.stdout).into_owned();
            line.split(':').nth(5).unwrap().to_owned()
        };
        TestUser {
            home,
            uid: id("-u"),
            gid: id("-g"),
            name,
            extra_group,
            extra_gid,
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _db = userdb();
        let _ = Command::new("userdel").arg(&self.name).output();
        let _ = Command::new("groupdel").arg(&self.extra_group).output();
    }
}

/// `Key:\tvalue` lines of `/proc/PID/status`.
fn proc_status(pid: i64, key: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

/// `(soft, hard)` of a line of `/proc/PID/limits`, such as `"Max open files"`.
fn proc_limit(pid: i64, what: &str) -> (String, String) {
    let text = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no {what:?} in /proc/{pid}/limits:\n{text}"));
    let mut cells = line[what.len()..].split_whitespace();
    (
        cells.next().unwrap().to_owned(),
        cells.next().unwrap().to_owned(),
    )
}

/// Field 19 of `/proc/PID/stat`: the nice value.
fn proc_nice(pid: i64) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(") ").unwrap();
    rest.split_whitespace().nth(16).unwrap().parse().unwrap()
}

fn running_pid(d: &Daemon<'_>, name: &str) -> i64 {
    d.until_state(name, "running")["pid"].as_i64().unwrap()
}

#[test]
fn a_service_runs_as_its_user_with_the_accounts_groups_and_environment() {
    if !need_root("a_service_runs_as_its_user...") {
        return;
    }
    let user = TestUser::new();
    let env = Env::new("");
    // A dir the user may write, for what its stop_command leaves (the test's dir: only
    // traversed).
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let drop_dir = env.path("drop");
    fs::create_dir(&drop_dir).unwrap();
    fs::set_permissions(&drop_dir, fs::Permissions::from_mode(0o1777)).unwrap();
    env.write_config(&format!(
        r#"
[services.app]
command = [{tc}, "--env", "HOME", "--env", "USER", "--env", "LOGNAME", "--env", "SHELL", "--sleep", "forever"]
user = "{user}"
min_uptime = "0s"
stop_command = ["sh", "-c", "touch {stopped} && kill -TERM $WARDEN_PID"]
"#,
        tc = tc(),
        user = user.name,
        stopped = drop_dir.join("stopped").display(),
    ));
    let d = Daemon::up(&env);
    let pid = running_pid(&d, "app");
    let u = user.uid;
    let g = user.gid;
    assert_eq!(proc_status(pid, "Uid"), format!("{u}\t{u}\t{u}\t{u}"));
    assert_eq!(proc_status(pid, "Gid"), format!("{g}\t{g}\t{g}\t{g}"));
    let mut groups: Vec<u32> = proc_status(pid, "Groups")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort_unstable();
    let mut expected = vec![user.gid, user.extra_gid];
    expected.sort_unstable();
    expected.dedup();
    assert_eq!(
        groups, expected,
        "initgroups: the primary and the supplementary group"
    );
    let lines = env.wait_lines("logs/app.out.log", 4);
    assert_eq!(
        lines,
        [
            format!("HOME={}", user.home),
            format!("USER={}", user.name),
            format!("LOGNAME={}", user.name),
            "SHELL=/bin/sh".to_owned(),
        ],
        "the account's environment"
    );
    // The logs and the state dir stay warden's (root's): the child only has the pipes.
    for p in ["logs", "logs/app.out.log", "logs/app.err.log", ".warden"] {
        let m = fs::metadata(env.path(p)).unwrap();
        assert_eq!(m.uid(), 0, "{p} is owned by root");
        assert_eq!(m.mode() & 0o002, 0, "{p} is not writable by others");
    }
    // The stop_command runs as the user too.
    let o = env.run(&["stop", "app"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let stopped = drop_dir.join("stopped");
    let owner = wait_for("the stop_command's file", WAIT, || {
        fs::metadata(&stopped).ok().map(|m| (m.uid(), m.gid()))
    });
    assert_eq!(owner, (user.uid, user.gid), "stop_command ran as the user");
    let log = wait_for("the stop in warden.log", WAIT, || {
        let log = env.read(".warden/warden.log");
        log.contains("[app] stopped (pid").then_some(log)
    });
    assert!(
        !log.contains("did not stop within"),
        "the stop_command's signal ended it: {log}"
    );
    wait_gone(pid as i32);
}

#[test]
fn limits_umask_nice_oom_and_no_new_privileges_reach_the_child() {
    if !need_root("limits_umask_nice_oom...") {
        return;
    }
    let env = Env::new(&format!(
        r#"
[services.tight]
command = [{tc}, "--sleep", "forever"]
min_uptime = "0s"
umask = "0027"
nice = 7
oom_score_adjust = 321
no_new_privileges = true
limits = {{ nofile = 1234, core = 0, nproc = 512, stack = "unlimited", memlock = "4KiB" }}

[services.plain]
command = [{tc}, "--sleep", "forever"]
min_uptime = "0s"
"#,
        tc = tc()
    ));
    // warden starts with a soft descriptor limit below its hard one: it raises its own, and
    // gives the original back to its children.
    let hard = proc_limit(i64::from(std::process::id()), "Max open files").1;
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 512 && exec \"$0\" up -d -c \"$1\"")
        .arg(common::warden_bin())
        .arg(env.config())
        .current_dir(env.dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let d = Daemon { env: &env };
    let tight = running_pid(&d, "tight");
    let plain = running_pid(&d, "plain");
    let warden = d.status()["warden"]["pid"].as_i64().unwrap();

    assert_eq!(proc_status(tight, "Umask"), "0027");
    assert_eq!(proc_status(tight, "NoNewPrivs"), "1");
    assert_eq!(proc_nice(tight), 7);
    assert_eq!(
        fs::read_to_string(format!("/proc/{tight}/oom_score_adj"))
            .unwrap()
            .trim(),
        "321"
    );
    let both = |s: &str| (s.to_owned(), s.to_owned());
    assert_eq!(proc_limit(tight, "Max open files"), both("1234"));
    assert_eq!(proc_limit(tight, "Max core file size"), both("0"));
    assert_eq!(proc_limit(tight, "Max processes"), both("512"));
    assert_eq!(proc_limit(tight, "Max stack size"), both("unlimited"));
    assert_eq!(proc_limit(tight, "Max locked memory"), both("4096"));

    assert_eq!(
        proc_limit(warden, "Max open files"),
        (hard.clone(), hard.clone()),
        "warden raised its soft limit to the hard one"
    );
    assert_eq!(
        proc_limit(plain, "Max open files"),
        ("512".to_owned(), hard),
        "a child without limits gets warden's original soft limit"
    );
    assert_eq!(proc_status(plain, "NoNewPrivs"), "0");
    assert_eq!(proc_nice(plain), proc_nice(warden));
}

#[test]
fn an_unknown_user_or_group_is_a_config_error_at_its_line() {
    let env = Env::new(&format!(
        r#"[services.a]
command = [{tc}]
user = "no-such-user-wardentest"

[services.b]
command = [{tc}]
group = "no-such-group-wardentest"
umask = "0999"
limits = {{ nofiles = 10, core = -1 }}
cpu_max = "50"
memory_limit = "12KiB"
"#,
        tc = tc()
    ));
    let o = env.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let file = env.config().display().to_string();
    for expected in [
        format!("{file}:3:8: unknown user \"no-such-user-wardentest\""),
        format!("{file}:7:9: unknown group \"no-such-group-wardentest\""),
        format!("{file}:8:9: umask: expected an octal mask"),
        format!("{file}:9:12: unknown key \"nofiles\" in limits (did you mean \"nofile\"?)"),
        format!("{file}:9:33: limits.core must be between 0 and 4611686018427387904, found -1"),
        format!("{file}:10:11: cpu_max: expected a percentage like \"50%\", found \"50\""),
        format!("{file}:11:16: memory_limit must be between 1MiB and 1PiB"),
    ] {
        assert!(err.contains(&expected), "expected {expected:?} in:\n{err}");
    }
}

/// Run the warden binary as `user`, in `dir`.
fn warden_as(user: &TestUser, dir: &Path, args: &[&str]) -> Output {
    Command::new(common::warden_bin())
        .args(args)
        .arg("-c")
        .arg(dir.join("warden.toml"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .uid(user.uid)
        .gid(user.gid)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `warden down` as `user` when dropped.
struct DownAs<'a> {
    user: &'a TestUser,
    dir: &'a Path,
}

impl Drop for DownAs<'_> {
    fn drop(&mut self) {
        let _ = warden_as(self.user, self.dir, &["down"]);
    }
}

#[test]
fn warden_not_root_fails_only_the_service_that_asks_for_another_user() {
    if !need_root("warden_not_root_fails_only...") {
        return;
    }
    let user = TestUser::new();
    let env = Env::new(&format!(
        r#"
[services.other]
command = [{tc}, "--sleep", "forever"]
user = "root"

[services.greedy]
command = [{tc}, "--sleep", "forever"]
limits = {{ nofile = 1073741824 }}

[services.plain]
command = [{tc}, "--sleep", "forever"]
min_uptime = "0s"
"#,
        tc = tc()
    ));
    let dir = env.dir.path();
    std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid)).unwrap();
    std::os::unix::fs::chown(env.config(), Some(user.uid), Some(user.gid)).unwrap();
    let o = warden_as(&user, dir, &["up", "-d"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // Brought down even if an assertion fails, before the user is removed.
    let _down = DownAs { user: &user, dir };
    let status = || -> serde_json::Value {
        let o = warden_as(&user, dir, &["status", "--json"]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let service = |v: &serde_json::Value, name: &str| {
        v["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap()
    };
    let v = wait_for("other and greedy failed, plain running", WAIT, || {
        let v = status();
        (service(&v, "other")["state"] == "failed"
            && service(&v, "greedy")["state"] == "failed"
            && service(&v, "plain")["state"] == "running")
            .then_some(v)
    });
    let greedy = service(&v, "greedy")["reason"].as_str().unwrap().to_owned();
    assert!(
        greedy.contains("limits.nofile = 1073741824 is above warden's hard limit"),
        "{greedy}"
    );
    let reason = service(&v, "other")["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.contains("runs as user \"root\" (uid 0)")
            && reason.contains("only root can switch users"),
        "{reason}"
    );
    assert_eq!(service(&v, "other")["restarts"], 0, "not retried");
    assert_eq!(
        v["warden"]["tracking"], "process-group",
        "a warden that is not root manages no cgroup here"
    );
    let o = warden_as(&user, dir, &["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).ends_with(
            "\n\ntracking: process-group (no cgroups: memory_limit and cpu_max not enforced)\n"
        ),
        "the text says the mode too: {}",
        show(&o)
    );
    let plain = service(&v, "plain")["pid"].as_i64().unwrap();
    assert_eq!(
        proc_status(plain, "Uid").split('\t').next(),
        Some(&*user.uid.to_string())
    );
    let o = warden_as(&user, dir, &["down"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    wait_gone(plain as i32);
}

/// Where this test process could make a cgroup v2 (as warden will): `Err` with the reason.
fn cgroup_probe() -> Result<PathBuf, String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let mount = mountinfo
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .ok_or("no cgroup v2 hierarchy in /proc/self/mountinfo")?;
    let own = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no 0:: line in /proc/self/cgroup")?;
    let dir = mount.join(own.trim_start_matches('/'));
    let probe = dir.join(format!("wardentest-probe-{}", std::process::id()));
    fs::create_dir(&probe)
        .map_err(|e| format!("cannot create a cgroup in {}: {e}", dir.display()))?;
    fs::remove_dir(&probe).unwrap();
    Ok(mount)
}

/// The cgroup directory of `pid`, under the v2 `mount`.
fn cgroup_of(mount: &Path, pid: i64) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    mount.join(rel.trim_start_matches('/'))
}

#[test]
fn a_process_that_left_its_group_and_cleared_its_environment_is_stopped_via_the_cgroup() {
    let mount = match cgroup_probe() {
        Ok(m) => m,
        Err(reason) => {
            println!("skipped: no cgroup v2 subtree to manage: {reason}");
            return;
        }
    };
    let env = Env::new("");
    let pid_file = env.path("escaped.pid");
    // `env -i` clears the environment (no WARDEN_INSTANCE to find it by), `setsid` leaves
    // the process group, and its parent exits at once (it is re-parented to warden).
    let script = format!(
        "env -i /bin/sh -c 'setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > {}'; exec sleep 1000",
        pid_file.display()
    );
    env.write_config(&format!(
        r#"
[services.escaper]
shell = true
command = {script}
min_uptime = "0s"

[services.other]
command = [{tc}, "--sleep", "forever"]
min_uptime = "0s"
"#,
        script = common::toml_str(&script),
        tc = tc()
    ));
    let d = Daemon::up(&env);
    assert_eq!(d.status()["warden"]["tracking"], "cgroup");
    let o = env.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .ends_with("\n\ntracking: cgroup (exact: each service in its own cgroup)\n"),
        "the text says the mode too: {}",
        show(&o)
    );
    let main = running_pid(&d, "escaper");
    let escaped = env.wait_pid("escaped.pid");
    let cg = cgroup_of(&mount, main);
    assert_eq!(cg.file_name().unwrap(), "escaper.service");
    assert_eq!(
        cgroup_of(&mount, i64::from(escaped)),
        cg,
        "the escaped one is in it too"
    );
    let environ = fs::read(format!("/proc/{escaped}/environ")).unwrap();
    assert!(
        !String::from_utf8_lossy(&environ).contains("WARDEN_"),
        "its environment carries no marker"
    );
    let stat = fs::read_to_string(format!("/proc/{escaped}/stat")).unwrap();
    let pgrp: i64 = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(pgrp, main, "it left the service's process group");
    let instance = cg.parent().unwrap().to_path_buf();
    let other_cg = cgroup_of(&mount, running_pid(&d, "other"));
    assert_eq!(other_cg.parent(), Some(instance.as_path()));

    let o = env.run(&["stop", "escaper"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    wait_gone(escaped);
    assert!(!alive(main as i32));
    // Kept a second for a next run of the service (a restart is created in it), then gone.
    wait_for("the service's cgroup removed after its stop", WAIT, || {
        (!cg.exists()).then_some(())
    });
    assert!(other_cg.exists());

    let o = env.run(&["down"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        !instance.exists(),
        "the instance's cgroup is removed at the end"
    );
}

#[test]
fn memory_limit_and_cpu_max_are_written_or_the_missing_controller_is_named() {
    if let Err(reason) = cgroup_probe() {
        println!("skipped: no cgroup v2 subtree to manage: {reason}");
        return;
    }
    let env = Env::new(&format!(
        r#"
[services.capped]
command = [{tc}, "--sleep", "forever"]
min_uptime = "0s"
memory_limit = "64MiB"
cpu_max = "50%"
"#,
        tc = tc()
    ));
    let mut w = env.up(&[]);
    let err = w.wait_stderr("[capped] started");
    let pid = wait_for("capped's pid", WAIT, || {
        let o = env.run(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v["services"][0]["pid"].as_i64()
    });
    let mount = cgroup_probe().unwrap();
    let cg = cgroup_of(&mount, pid);
    let offered = fs::read_to_string(cg.join("cgroup.controllers")).unwrap();
    for (controller, file, value, key) in [
        ("memory", "memory.max", "67108864", "memory_limit"),
        ("cpu", "cpu.max", "50000 100000", "cpu_max"),
    ] {
        if offered.split_whitespace().any(|c| c == controller) {
            assert_eq!(fs::read_to_string(cg.join(file)).unwrap().trim(), value);
        } else {
            // These machines: the v2 hierarchy has no memory or cpu controller.
            assert!(
                err.contains(&format!(
                    "[capped] {key} is not applied: the {controller} controller is not available to {}",
                    cg.display()
                )),
                "{err}"
            );
        }
    }
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(WAIT), Some(0));
    assert!(!cg.exists());
}

/// The uid of `nobody`, from the account database.
fn nobody_uid() -> u32 {
    let o = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    assert!(o.status.success(), "id -u nobody: {}", show(&o));
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

#[test]
fn a_nobody_service_runs_its_ready_and_health_checks_and_its_stop_command_as_nobody() {
    if !need_root("a_nobody_service_runs_its_checks...") {
        return;
    }
    let nobody = nobody_uid();
    let env = Env::new("");
    // The test's dir is only traversed by nobody; the records go into a dir of nobody's own
    // (mode 0700), so each program that writes there is nobody or root, and what it writes
    // (`id -u`) says which.
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let rec = env.path("records");
    fs::create_dir(&rec).unwrap();
    std::os::unix::fs::chown(&rec, Some(nobody), None).unwrap();
    fs::set_permissions(&rec, fs::Permissions::from_mode(0o700)).unwrap();
    let record = |what: &str| format!("id -u >> {}", rec.join(what).display());
    // Each check and the stop_command is a program (`sh -c` as argv), not warden's shell.
    env.write_config(&format!(
        r#"
[services.app]
command = [{tc}, "--sleep", "forever"]
user = "nobody"
ready = {{ exec = ["sh", "-c", {ready}], interval = "100ms" }}
health = {{ exec = ["sh", "-c", {health}], interval = "100ms" }}
stop_command = ["sh", "-c", {stop}]
"#,
        tc = tc(),
        ready = common::toml_str(&record("ready")),
        health = common::toml_str(&record("health")),
        stop = common::toml_str(&format!("{} && kill -TERM $WARDEN_PID", record("stop"))),
    ));
    let d = Daemon::up(&env);
    let pid = running_pid(&d, "app");
    assert_eq!(
        proc_status(pid, "Uid").split('\t').next(),
        Some(&*nobody.to_string()),
        "the service runs as nobody"
    );
    let read = |what: &str| fs::read_to_string(rec.join(what)).unwrap_or_default();
    // Two health probes at least, and the health shown.
    wait_for("two health probes and healthy", WAIT, || {
        (read("health").lines().count() >= 2 && d.service("app")["health"] == "healthy")
            .then_some(())
    });
    let o = env.run(&["stop", "app"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    wait_gone(pid as i32);
    let log = env.read(".warden/warden.log");
    assert!(
        !log.contains("did not stop within"),
        "the stop_command's signal ended it: {log}"
    );
    for what in ["ready", "health", "stop"] {
        let text = read(what);
        let uids: Vec<&str> = text.lines().collect();
        assert!(
            !uids.is_empty(),
            "the {what} program ran and recorded its uid"
        );
        assert!(
            uids.iter().all(|u| *u == nobody.to_string()),
            "every {what} run is nobody ({nobody}): {uids:?}"
        );
        let m = fs::metadata(rec.join(what)).unwrap();
        assert_eq!(m.uid(), nobody, "the {what} record was created by nobody");
    }
}

/// `GET PATH` over warden's socket (curl), the body.
fn get_over_socket(env: &Env, path: &str) -> String {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--unix-socket"])
        .arg(env.path(".warden/warden.sock"))
        .arg(format!("http://warden{path}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "curl {path}: {}", show(&o));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn in_a_cgroup_the_cpu_figure_is_the_cgroups_and_keeps_what_ended_processes_used() {
    let mount = match cgroup_probe() {
        Ok(m) => m,
        Err(reason) => {
            println!("skipped: no cgroup v2 subtree to manage: {reason}");
            return;
        }
    };
    let env = Env::new("");
    let done = env.path("burnt");
    // A subshell spins until its CPU limit of 1 s ends it (SIGXCPU); then the service only
    // sleeps. Summed over the live processes its CPU time would be about 0 now.
    let script = format!(
        "(ulimit -c 0; ulimit -t 1; while :; do :; done); : > {}; exec {} --sleep forever",
        done.display(),
        test_child_path()
    );
    env.write_config(&format!(
        r#"
[warden]
sample_interval = "200ms"

[services.busy]
command = ["sh", "-c", {script}]
min_uptime = "0s"
"#,
        script = common::toml_str(&script),
    ));
    let d = Daemon::up(&env);
    let pid = running_pid(&d, "busy");
    wait_for("the burner to end", Duration::from_secs(60), || {
        done.exists().then_some(())
    });
    let cg = cgroup_of(&mount, pid);
    assert_eq!(cg.file_name().unwrap(), "busy.service");
    let cpu = wait_for("busy's CPU seconds in /metrics", WAIT, || {
        let body = get_over_socket(&env, "/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix("warden_service_cpu_seconds_total{service=\"busy\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| *v > 0.0)
    });
    assert!(
        cpu >= 0.5,
        "the ended burner's second (cpu.stat usage_usec) is counted: {cpu}"
    );
    // Beside the summed RSS, the cgroup's memory.current where the memory controller is
    // (not on these machines: then null and the plain figure).
    let has_memory = cg.join("memory.current").exists();
    let s = wait_for("busy's memory sample", WAIT, || {
        let s = d.service("busy");
        s["memory_bytes"].is_u64().then_some(s)
    });
    assert_eq!(s["memory_cgroup_bytes"].is_u64(), has_memory, "{s}");
    assert_eq!(s["memory_cgroup_bytes"].is_null(), !has_memory, "{s}");
    let o = env.run(&["status"]);
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    let row = table.lines().find(|l| l.starts_with("busy ")).unwrap();
    assert_eq!(row.contains(" (cg "), has_memory, "{table}");
}

fn test_child_path() -> String {
    common::test_child().display().to_string()
}

/// A cgroup the test makes (as systemd makes a unit's with `Delegate=yes`), removed with
/// what warden left in it (its leaf, once warden is gone) when dropped.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let leaf = self.0.join("supervisor");
        let deadline = std::time::Instant::now() + WAIT;
        // Empty once warden (brought down before this drop) has exited.
        while leaf.exists() && fs::remove_dir(&leaf).is_err() {
            if std::time::Instant::now() > deadline {
                eprintln!("cannot remove {}", leaf.display());
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = fs::remove_dir(&self.0);
    }
}

#[test]
fn in_a_delegated_cgroup_warden_moves_into_a_leaf_and_its_services_go_beside_it() {
    let mount = match cgroup_probe() {
        Ok(m) => m,
        Err(reason) => {
            println!("skipped: no cgroup v2 subtree to manage: {reason}");
            return;
        }
    };
    let own = cgroup_of(&mount, i64::from(std::process::id()));
    let unit = TestCgroup(own.join(format!("wardentest-unit-{}", std::process::id())));
    fs::create_dir(&unit.0).unwrap();
    let env = Env::new(&format!(
        r#"
[services.app]
command = [{tc}, "--sleep", "forever"]
min_uptime = "0s"
"#,
        tc = tc()
    ));
    // warden starts inside the unit's cgroup, as under systemd: the shell moves itself in,
    // and `up -d`'s daemon inherits it.
    let o = Command::new("sh")
        .arg("-c")
        .arg("echo 0 > \"$2/cgroup.procs\" && exec \"$0\" up -d -c \"$1\"")
        .arg(common::warden_bin())
        .arg(env.config())
        .arg(&unit.0)
        .current_dir(env.dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let d = Daemon { env: &env };
    let status = d.status();
    assert_eq!(status["warden"]["tracking"], "cgroup");
    let warden = status["warden"]["pid"].as_i64().unwrap();
    assert_eq!(
        cgroup_of(&mount, warden),
        unit.0.join("supervisor"),
        "warden moved itself into a leaf of its cgroup"
    );
    let app = cgroup_of(&mount, running_pid(&d, "app"));
    assert_eq!(app.file_name().unwrap(), "app.service");
    let instance = app.parent().unwrap().to_path_buf();
    assert_eq!(
        instance.parent(),
        Some(unit.0.as_path()),
        "the services' cgroups are beside warden's leaf"
    );
    assert!(
        instance
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("warden-")
    );
    assert_eq!(
        fs::read_to_string(unit.0.join("cgroup.procs"))
            .unwrap()
            .trim(),
        "",
        "no process is left in the delegated cgroup itself, so it may enable controllers"
    );
    let o = env.run(&["down"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    wait_gone(warden as i32);
    assert!(!instance.exists(), "the instance's cgroup is removed");
}
