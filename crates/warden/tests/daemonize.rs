//! Programs that daemonize: the launcher forks the real server and exits. With `pid_file`
//! warden follows the file's process; without it, it adopts what the launcher left (Linux:
//! warden is a child subreaper). Tested with test-child's double fork (its daemon clears its
//! environment, as nginx's master does) and with real nginx in both of its modes. The nginx
//! tests skip, saying so, only when nginx is not installed.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{Daemon, Env, WAIT, alive, path_str, show, tc, toml_str, wait_for, wait_gone};

/// `warden up -d`; the pid of the warden it started.
fn up_detached(env: &Env) -> i32 {
    let o = env.run(&["up", "-d"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    out.split("(pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {out:?}"))
}

fn warden_log(env: &Env) -> String {
    env.read(".warden/warden.log")
}

/// Wait until warden's log says `needle`.
fn wait_log(env: &Env, needle: &str) -> String {
    wait_for(&format!("{needle:?} in warden.log"), WAIT, || {
        let log = warden_log(env);
        log.contains(needle).then_some(log)
    })
}

fn kill9(pid: i32) {
    // SAFETY: plain syscall on a pid this test started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// A test-child launcher whose daemon double-forks away, clears its environment, writes its
/// pid to `d.pid` and on SIGTERM writes `term` to `term`; the launcher then exits 0.
fn double_fork_service(env: &Env, extra: &str) -> String {
    format!(
        "[services.d]\ncommand = [{tc}, \"--daemon-clear-env\", \"--daemon-arg\", \"--on-term-write\", \"--daemon-arg\", {term}, \"--double-fork\", {pid}]\nmin_uptime = \"500ms\"\nstop_timeout = \"10s\"\n{extra}\n",
        tc = tc(),
        term = path_str(&env.path("term")),
        pid = path_str(&env.path("d.pid")),
    )
}

#[test]
fn a_double_forked_daemon_is_adopted_shown_and_stopped_gracefully() {
    let env = Env::new("");
    env.write_config(&double_fork_service(&env, "restart = \"always\""));
    let d = Daemon::up(&env);
    let daemon = env.wait_pid("d.pid");
    let s = wait_for("d to follow its daemon", WAIT, || {
        let s = d.service("d");
        (s["state"] == "running" && s["pid"] == daemon).then_some(s)
    });
    assert_eq!(s["restarts"], 0, "not relaunched: {s}");
    wait_log(&env, &format!("daemonized: following pid {daemon}"));
    let o = env.run(&["stop", "d"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(env.read("term"), "term", "stopped by its stop signal");
    assert!(!alive(daemon), "gone after stop");
}

#[test]
fn a_pid_file_names_the_main_process_and_its_exit_follows_restart_never() {
    let env = Env::new("");
    let pid_file = path_str(&env.path("d.pid"));
    env.write_config(&double_fork_service(
        &env,
        &format!("restart = \"never\"\npid_file = {pid_file}"),
    ));
    let d = Daemon::up(&env);
    let daemon = env.wait_pid("d.pid");
    wait_for("d to run its pid file's process", WAIT, || {
        let s = d.service("d");
        (s["state"] == "running" && s["pid"] == daemon).then_some(())
    });
    wait_log(&env, &format!("daemonized: following pid {daemon} (from "));
    // SAFETY: plain syscall on the daemon this test started.
    unsafe {
        libc::kill(daemon, libc::SIGTERM);
    }
    let s = d.until_state("d", "exited");
    assert_eq!(s["last_exit"]["code"], 0, "{s}");
}

#[test]
fn an_adopted_daemon_is_ended_by_the_next_up_after_warden_was_killed() {
    let env = Env::new("");
    env.write_config(&double_fork_service(&env, ""));
    let warden = up_detached(&env);
    let daemon = env.wait_pid("d.pid");
    wait_log(&env, &format!("daemonized: following pid {daemon}"));
    kill9(warden);
    wait_gone(warden);
    assert!(alive(daemon), "the daemon outlives a killed warden");
    let record = wait_for("the main process in the record", WAIT, || {
        let r = env.read(".warden/run/svc-d.json");
        r.contains("\"main\"").then_some(r)
    });
    assert!(record.contains(&format!("\"pid\":{daemon}")), "{record}");
    std::fs::remove_file(env.path("d.pid")).unwrap();
    let _d = Daemon::up(&env);
    wait_gone(daemon);
}

#[test]
fn daemon_false_relaunches_a_launcher_that_exits_0() {
    let env = Env::new("");
    env.write_config(&double_fork_service(
        &env,
        "daemon = false\nrestart = \"never\"",
    ));
    let d = Daemon::up(&env);
    let daemon = env.wait_pid("d.pid");
    d.until_state("d", "exited");
    assert!(!warden_log(&env).contains("daemonized"));
    wait_gone(daemon);
}

#[test]
fn stop_command_output_goes_to_the_log_and_a_failure_sends_the_stop_signal_at_once() {
    let env = Env::new("");
    env.write_config(&format!(
        "[services.s]\ncommand = [{tc}, \"--on-term-write\", {term}, \"--sleep\", \"forever\"]\nstop_command = [\"sh\", \"-c\", \"echo oops >&2; exit 4\"]\nstop_timeout = \"30s\"\nmin_uptime = \"0s\"\n",
        tc = tc(),
        term = path_str(&env.path("term")),
    ));
    let d = Daemon::up(&env);
    d.until_state("s", "running");
    let t0 = std::time::Instant::now();
    let o = env.run(&["stop", "s"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(env.read("term"), "term", "the stop signal followed");
    wait_log(
        &env,
        "stop_command exited with code 4; sending the stop signal now",
    );
    let err_log = env.read("logs/s.err.log");
    assert!(
        err_log.contains("[warden] stop_command: oops"),
        "{err_log:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Real nginx

fn nginx_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx's config in the test's dir: its own pid file, error log (at `notice`, so that a
/// graceful stop is logged) and temp dirs, on a free port.
fn nginx_conf(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n\
         events {{ worker_connections 64; }}\nhttp {{\n  client_body_temp_path {d}/tmp/body;\n  \
         proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  \
         uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n  access_log off;\n  \
         server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n",
        port = free_port()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// `nginx -g 'daemon off;'`: the spawned process is the master.
    Foreground,
    /// nginx's default: the launcher forks the master and exits; `pid_file` names it.
    PidFile,
    /// The default mode without `pid_file`: the master is adopted.
    Adopted,
}

/// The acceptance of issue 9 with real nginx under `restart = "always"`: it runs once and
/// status shows the master's pid; a stop is graceful (nginx logs its shutdown); it is gone
/// after `down`, and after a SIGKILL of warden plus the next `up`.
fn nginx_under_warden(mode: Mode) {
    let Some(nginx) = nginx_bin() else {
        eprintln!("skipped: nginx is not installed (apt-get install nginx-light)");
        return;
    };
    let env = Env::new("");
    let dir = env.dir.path();
    let conf = nginx_conf(dir);
    let mut cmd = vec![
        nginx.display().to_string(),
        "-p".into(),
        format!("{}/", dir.display()),
        "-e".into(),
        dir.join("error.log").display().to_string(),
        "-c".into(),
        conf.display().to_string(),
    ];
    if mode == Mode::Foreground {
        cmd.extend(["-g".into(), "daemon off;".into()]);
    }
    let argv: Vec<String> = cmd.iter().map(|a| toml_str(a)).collect();
    let pid_file = if mode == Mode::PidFile {
        format!("pid_file = {}\n", path_str(&dir.join("nginx.pid")))
    } else {
        String::new()
    };
    env.write_config(&format!(
        "[services.web]\ncommand = [{}]\nrestart = \"always\"\nstop_signal = \"QUIT\"\nstop_timeout = \"10s\"\n{pid_file}",
        argv.join(", ")
    ));
    let master = |d: &Daemon| -> i32 {
        wait_for("nginx's master to run", WAIT, || {
            let s = d.service("web");
            let pid = s["pid"].as_i64()? as i32;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (s["state"] == "running"
                && String::from_utf8_lossy(&cmdline).contains("master process"))
            .then_some(pid)
        })
    };
    // nginx logs a graceful stop at `notice`: the master got SIGQUIT, and it exited.
    let graceful = |m: i32| {
        let log = env.read("error.log");
        log.contains(&format!("{m}#{m}: signal 3 (SIGQUIT) received"))
            && log.contains(&format!("{m}#{m}: exit\n"))
    };

    let d = Daemon::up(&env);
    let first = master(&d);
    if mode != Mode::Foreground {
        assert_eq!(
            env.wait_pid("nginx.pid"),
            first,
            "status shows the master's pid"
        );
    }
    let s = d.service("web");
    assert_eq!(s["restarts"], 0, "runs once: {s}");
    // The figures are of the master's tree, also once warden follows it (the launcher's pid
    // is gone: sampled by it, MEM stayed "-").
    let mem = wait_for("MEM of nginx's tree", WAIT, || {
        d.service("web")["memory_bytes"].as_u64().filter(|m| *m > 0)
    });
    assert!(
        mem > 1 << 20,
        "nginx's master and worker use more than 1 MiB: {mem}"
    );
    let errors = env.read("error.log");
    assert!(!errors.contains("bind() failed"), "{errors}");

    // A graceful stop: nginx logs its shutdown; nothing is left.
    let o = env.run(&["stop", "web"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(!alive(first), "the master is gone after stop");
    assert!(graceful(first), "{}", env.read("error.log"));
    assert!(
        !env.path("nginx.pid").exists(),
        "nginx removed its pid file"
    );

    // Gone after `down`, gracefully too.
    let o = env.run(&["start", "web"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\nwarden.log:\n{}\nerror.log:\n{}",
        show(&o),
        warden_log(&env),
        env.read("error.log")
    );
    let second = master(&d);
    drop(d);
    wait_gone(second);
    assert!(graceful(second), "{}", env.read("error.log"));

    // After a SIGKILL of warden, the next `up` ends what is left before starting anew.
    let warden = up_detached(&env);
    let d = Daemon { env: &env };
    let third = master(&d);
    kill9(warden);
    wait_gone(warden);
    let _ = std::fs::remove_file(env.path("nginx.pid"));
    let _d = Daemon::up(&env);
    wait_gone(third);
    let fourth = master(&d);
    assert_ne!(fourth, third);
    std::mem::forget(d);
}

#[test]
fn nginx_in_the_foreground_runs_once_and_stops_gracefully() {
    nginx_under_warden(Mode::Foreground);
}

#[test]
fn nginx_daemonized_with_pid_file_runs_once_stops_gracefully_and_is_ended_after_a_kill() {
    nginx_under_warden(Mode::PidFile);
}

#[test]
fn nginx_daemonized_without_pid_file_is_adopted_stops_gracefully_and_is_ended_after_a_kill() {
    nginx_under_warden(Mode::Adopted);
}
