//! Issue 11: warden as PID 1 of a container, tested in a real PID namespace (`unshare --pid
//! --fork --mount-proc`, as root): it reaps every zombie (the orphans of a service
//! included), turns SIGTERM and SIGINT into a graceful shutdown bounded by
//! `shutdown_timeout`, and exits 0 after a clean stop, 1 when `exit_actions` stopped it.
//! Where the namespace cannot be made (not root, no user namespaces), each test says why and
//! does nothing.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, WAIT, tc, wait_for};

/// Why a PID namespace cannot be made here, if it cannot.
fn no_namespace() -> Option<String> {
    match Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "unshare --pid --fork --mount-proc failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run unshare: {e}")),
    }
}

/// `warden up` as PID 1 of a new PID namespace (and a mount namespace with its own /proc).
struct Pid1 {
    unshare: Option<Child>,
    /// warden's pid as seen from here (it is 1 inside).
    host_pid: i32,
    err_path: std::path::PathBuf,
}

impl Pid1 {
    fn start(env: &Env) -> Pid1 {
        let err_path = env.path("warden.err");
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc"])
            .arg(common::warden_bin())
            .arg("up")
            .arg("-c")
            .arg(env.config())
            .current_dir(env.dir.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(fs::File::create(env.path("warden.out")).unwrap())
            .stderr(fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let parent = unshare.id();
        let host_pid = wait_for("warden under unshare", WAIT, || {
            let kids = fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
            kids.split_whitespace().next()?.parse().ok()
        });
        assert_eq!(
            ns_pids(host_pid).last(),
            Some(&1),
            "warden is PID 1 in its namespace"
        );
        Pid1 {
            unshare: Some(unshare),
            host_pid,
            err_path,
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err_path).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2).
        unsafe {
            libc::kill(self.host_pid, sig);
        }
    }

    /// Wait for warden (and so `unshare`) to exit; its exit code.
    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.unshare.as_mut().unwrap();
        let status = wait_for("warden to exit", timeout, || child.try_wait().unwrap());
        self.unshare = None;
        status.code()
    }

    /// Every process of the namespace as its own /proc shows it: `(pid, state, ppid)`.
    fn processes_inside(&self) -> Vec<(i32, char, i32)> {
        let o = Command::new("nsenter")
            .args(["-t", &self.host_pid.to_string(), "-p", "-m", "--"])
            // A process may end between the glob and the read: `cat` then fails for it alone.
            .args(["sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null; exit 0"])
            .output()
            .unwrap();
        assert!(o.status.success(), "nsenter: {o:?}");
        let seen: Vec<(i32, char, i32)> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|stat| {
                let (head, rest) = stat.rsplit_once(") ")?;
                let pid = head.split_whitespace().next()?.parse().ok()?;
                let mut f = rest.split_whitespace();
                let state = f.next()?.chars().next()?;
                let ppid = f.next()?.parse().ok()?;
                Some((pid, state, ppid))
            })
            .collect();
        assert!(
            seen.iter().any(|&(pid, _, _)| pid == 1),
            "the namespace's /proc shows PID 1: {o:?}"
        );
        seen
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        if let Some(mut c) = self.unshare.take() {
            // SIGKILL of PID 1 ends the whole namespace.
            self.signal(libc::SIGKILL);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `NSpid` of a process: its pid in each namespace, outermost first.
fn ns_pids(host_pid: i32) -> Vec<i32> {
    let status = fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The pid seen from here of the process that is `inner` in `warden`'s namespace.
fn host_pid_of(warden: i32, inner: i32) -> Option<i32> {
    let ns = fs::read_link(format!("/proc/{warden}/ns/pid")).ok()?;
    fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&p| {
            fs::read_link(format!("/proc/{p}/ns/pid")).ok().as_ref() == Some(&ns)
                && ns_pids(p).last() == Some(&inner)
        })
}

#[test]
fn as_pid_1_warden_reaps_a_services_orphans_and_stops_gracefully_on_sigterm() {
    if let Some(why) = no_namespace() {
        eprintln!("skipped: {why}");
        return;
    }
    let env = Env::new(&format!(
        r#"
[services.forker]
command = [{tc}, "--double-fork", "daemon.pid", "--on-term-write", "term.txt", "--ready-file", "forker.pid", "--sleep", "forever"]
min_uptime = "0s"
"#,
        tc = tc()
    ));
    let mut w = Pid1::start(&env);
    env.wait_pid("forker.pid");
    // The double-forked daemon: its launcher's child exited, so it is warden's (PID 1's).
    let inner = env.wait_pid("daemon.pid");
    let daemon = wait_for("the daemon's pid here", WAIT, || {
        host_pid_of(w.host_pid, inner)
    });
    let seen = w.processes_inside();
    assert!(
        seen.iter()
            .any(|&(pid, state, ppid)| pid == inner && ppid == 1 && state != 'Z'),
        "the daemon lives, a child of PID 1: {seen:?}"
    );
    // It dies: no zombie may remain in the namespace.
    // SAFETY: plain kill(2).
    unsafe {
        libc::kill(daemon, libc::SIGKILL);
    }
    wait_for("the daemon to be reaped", WAIT, || {
        let seen = w.processes_inside();
        (!seen.iter().any(|&(pid, _, _)| pid == inner)).then_some(())
    });
    let zombies: Vec<_> = w
        .processes_inside()
        .into_iter()
        .filter(|&(_, state, _)| state == 'Z')
        .collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    // SIGTERM: a graceful stop (the service got its stop signal), then exit 0.
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(WAIT), Some(0), "{}", w.stderr());
    assert_eq!(env.read("term.txt"), "term", "{}", w.stderr());
    assert!(
        w.stderr().contains("all services stopped"),
        "{}",
        w.stderr()
    );
}

#[test]
fn as_pid_1_sigint_stops_within_shutdown_timeout() {
    if let Some(why) = no_namespace() {
        eprintln!("skipped: {why}");
        return;
    }
    let env = Env::new(&format!(
        r#"
[warden]
shutdown_timeout = "1s"

[services.stubborn]
command = [{tc}, "--ignore-term", "--ready-file", "stubborn.pid", "--sleep", "forever"]
stop_timeout = "1h"
"#,
        tc = tc()
    ));
    let mut w = Pid1::start(&env);
    env.wait_pid("stubborn.pid");
    let asked = Instant::now();
    w.signal(libc::SIGINT);
    assert_eq!(w.wait_exit(WAIT), Some(0), "{}", w.stderr());
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "stopped after {took:?}, not within shutdown_timeout (1s): {}",
        w.stderr()
    );
    assert!(
        w.stderr()
            .contains("shutdown_timeout passed; killing every service now"),
        "{}",
        w.stderr()
    );
}

#[test]
fn as_pid_1_an_exit_action_stop_warden_exits_1() {
    if let Some(why) = no_namespace() {
        eprintln!("skipped: {why}");
        return;
    }
    let env = Env::new(&format!(
        r#"
[services.main]
command = [{tc}, "--ready-file", "main.pid", "--sleep", "300ms", "--exit", "3"]
exit_actions = {{ 3 = "stop-warden" }}

[services.helper]
command = [{tc}, "--sleep", "forever"]
"#,
        tc = tc()
    ));
    let mut w = Pid1::start(&env);
    env.wait_pid("main.pid");
    assert_eq!(w.wait_exit(WAIT), Some(1), "{}", w.stderr());
    assert!(
        w.stderr()
            .contains("main exited with code 3; its exit_actions stop warden"),
        "{}",
        w.stderr()
    );
}
