//! Health end to end, with real programs: readiness (tcp, http, `log_line`), a health check
//! that catches a hung program (SIGSTOP), the systemd variables warden never passes on.

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Daemon, Env, WAIT, show, tc, wait_for, warden_bin};

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn children_never_get_the_hosts_systemd_variables() {
    let vars = [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
    ];
    let mut args: Vec<String> = Vec::new();
    for v in vars {
        args.extend(["\"--env\"".into(), format!("\"{v}\"")]);
    }
    let env = Env::new(&format!(
        "[services.child]\ncommand = [{}, {}, \"--env\", \"KEEP_ME\", \"--sleep\", \"forever\"]\n",
        tc(),
        args.join(", ")
    ));
    // warden started as systemd starts a service, with those variables (the socket absent).
    let mut cmd = Command::new(warden_bin());
    cmd.args(["up", "-d", "-c"])
        .arg(env.config())
        .current_dir(env.dir.path())
        .env("KEEP_ME", "yes");
    for v in vars {
        cmd.env(v, "1");
    }
    cmd.env("NOTIFY_SOCKET", env.path("no-such.sock"));
    let o = cmd.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let d = Daemon { env: &env };
    let lines = env.wait_lines("logs/child.out.log", vars.len() + 1);
    let want: Vec<String> = vars.iter().map(|v| format!("{v} unset")).collect();
    assert_eq!(lines[..vars.len()], want[..]);
    assert_eq!(lines[vars.len()], "KEEP_ME=yes", "the rest is inherited");
    drop(d);
}

#[test]
fn a_log_line_ready_check_keeps_it_starting_until_the_line() {
    let env = Env::new("");
    let go = env.path("go");
    env.write_config(&format!(
        r#"[services.web]
command = ["sh", "-c", "while [ ! -e {go} ]; do sleep 0.02; done; echo 'listening on 8080'; exec sleep 60"]
ready = {{ log_line = "^listening on \\d+$" }}
stop_timeout = "1s"
"#,
        go = go.display()
    ));
    let d = Daemon::up(&env);
    // Past min_uptime (1 s), still starting: only the line makes it up.
    let s = wait_for("web to run 1.5 s", WAIT, || {
        let s = d.service("web");
        (s["uptime_ms"].as_u64()? > 1500).then_some(s)
    });
    assert_eq!(s["state"], "starting", "{s}");
    std::fs::write(&go, "").unwrap();
    let s = d.until_state("web", "running");
    assert_eq!(
        s["health"],
        serde_json::Value::Null,
        "no health check: null"
    );
}

#[test]
fn a_hung_http_server_is_caught_by_its_health_check_and_restarted() {
    if !have("python3") {
        eprintln!("skipped: no python3");
        return;
    }
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let env = Env::new(&format!(
        r#"[services.api]
command = ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
ready = {{ http = "{url}", interval = "100ms", timeout = "500ms" }}
health = {{ http = "{url}", interval = "300ms", timeout = "300ms", retries = 2 }}
stop_timeout = "500ms"
backoff = {{ initial = "100ms" }}
"#
    ));
    let d = Daemon::up(&env);
    // Ready and health probe on their own: wait for both.
    let s = wait_for("api running and healthy", WAIT, || {
        let s = d.service("api");
        (s["health"] == "healthy" && s["state"] == "running").then_some(s)
    });
    let o = env.run(&["status"]);
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    let row = table.lines().find(|l| l.starts_with("api ")).unwrap();
    assert!(row.ends_with("healthy"), "the HEALTH column: {table}");

    let pid = s["pid"].as_i64().unwrap() as i32;
    // SAFETY: a signal to the child this test's warden started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let stopped = std::time::Instant::now();
    let s = wait_for("api restarted", WAIT, || {
        let s = d.service("api");
        (s["restarts"] == 1 && s["pid"].as_i64().is_some_and(|p| p != i64::from(pid))).then_some(s)
    });
    // interval × retries + timeout, plus the 500 ms stop of a stopped process (a kill).
    let took = stopped.elapsed();
    assert!(took < std::time::Duration::from_secs(4), "{took:?}");
    assert_eq!(
        s["last_exit"]["signal"], 9,
        "killed after stop_timeout: {s}"
    );
    common::wait_gone(pid);
    wait_for("api healthy again", WAIT, || {
        (d.service("api")["health"] == "healthy").then_some(())
    });
}

#[test]
fn redis_is_ready_by_tcp_and_healthy_by_redis_cli() {
    if !have("redis-server") || !have("redis-cli") {
        eprintln!("skipped: no redis-server or redis-cli");
        return;
    }
    let port = free_port();
    let env = Env::new(&format!(
        r#"[services.db]
command = ["redis-server", "--port", "{port}", "--save", "", "--appendonly", "no"]
ready = {{ tcp = "127.0.0.1:{port}", interval = "100ms" }}
health = {{ exec = ["redis-cli", "-p", "{port}", "ping"], interval = "500ms" }}
"#
    ));
    let d = Daemon::up(&env);
    // Up by its ready check (no min_uptime), healthy by its health check.
    let s = wait_for("db running and healthy", WAIT, || {
        let s = d.service("db");
        (s["health"] == "healthy" && s["state"] == "running").then_some(s)
    });
    assert_eq!(s["restarts"], 0, "{}", env.read(".warden/warden.log"));
    let log = env.read(".warden/warden.log");
    assert!(log.contains("[db] ready (tcp check passed)"), "{log}");
}

#[test]
fn the_issue_config_starts_in_dependency_order_and_stops_dependents_first() {
    if !have("redis-server") || !have("python3") {
        eprintln!("skipped: no redis-server or python3");
        return;
    }
    let (db_port, api_port) = (free_port(), free_port());
    let env = Env::new("");
    let marker = env.path("migrated");
    env.write_config(&format!(
        r#"[services.db]
command = ["redis-server", "--port", "{db_port}", "--save", "", "--appendonly", "no"]
ready = {{ tcp = "127.0.0.1:{db_port}", interval = "100ms" }}

[services.migrate]
command = ["sh", "-c", "sleep 0.5; touch {marker}"]
restart = "never"

[services.api]
command = ["python3", "-m", "http.server", "{api_port}", "--bind", "127.0.0.1"]
depends_on = {{ db = "ready", migrate = "completed" }}
health = {{ http = "http://127.0.0.1:{api_port}/", interval = "200ms", timeout = "1s" }}

[services.worker]
command = [{tc}, "--sleep", "forever"]
depends_on = {{ api = "healthy" }}
"#,
        marker = marker.display(),
        tc = tc()
    ));
    let d = Daemon::up(&env);
    let s = d.service("worker");
    assert_eq!(s["state"], "pending", "{s}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .starts_with("waiting for api ("),
        "{s}"
    );
    let api = d.service("api");
    if api["state"] == "pending" {
        assert!(
            api["reason"].as_str().unwrap().starts_with("waiting for "),
            "{api}"
        );
    }
    d.until_state("worker", "running");
    assert!(marker.exists(), "migrate completed before api started");
    assert_eq!(d.service("migrate")["state"], "exited");
    assert_eq!(d.service("api")["health"], "healthy");
    let o = env.run(&["down"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let log = env.read(".warden/warden.log");
    let at = |who: &str| {
        log.find(&format!("[{who}] stopped"))
            .unwrap_or_else(|| panic!("{who} not stopped:\n{log}"))
    };
    assert!(at("worker") < at("api") && at("api") < at("db"), "{log}");
    drop(d);
}

#[cfg(target_os = "linux")]
#[test]
fn a_growing_child_is_restarted_at_memory_max_and_status_shows_cpu_and_mem() {
    if !have("python3") {
        eprintln!("skipped: no python3");
        return;
    }
    let env = Env::new(
        r#"[warden]
sample_interval = "200ms"

[services.leak]
command = ["python3", "-c", "import time\na = []\nwhile True:\n    a.append(bytearray(8 << 20))\n    time.sleep(0.05)"]
memory_max = "96MiB"
stop_timeout = "1s"

[services.idle]
command = ["sleep", "60"]
"#,
    );
    let d = Daemon::up(&env);
    let s = wait_for("leak restarted", WAIT, || {
        let s = d.service("leak");
        (s["restarts"].as_u64()? >= 1).then_some(s)
    });
    let log = env.read(".warden/warden.log");
    let line = log
        .lines()
        .find(|l| l.contains("[leak] memory limit: "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("MiB > 96MiB"), "{line}");
    let _ = s;
    // The figures of a running service: MEM at once, CPU from the second sample.
    let idle = wait_for("idle's CPU and MEM", WAIT, || {
        let s = d.service("idle");
        (s["cpu_percent"].is_number() && s["memory_bytes"].is_number()).then_some(s)
    });
    assert!(idle["memory_bytes"].as_u64().unwrap() > 100 << 10, "{idle}");
    let o = env.run(&["status"]);
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    let header = table.lines().next().unwrap();
    assert!(
        header.contains(" CPU ") && header.contains(" MEM "),
        "{table}"
    );
    let row = table.lines().find(|l| l.starts_with("idle ")).unwrap();
    assert!(row.contains("MiB") && row.contains('%'), "{table}");
}

/// A Python program that speaks `sd_notify` as under systemd: WATCHDOG=1 pings from the start,
/// READY=1 once `go` exists (at once without it), the pings until `hang` exists.
fn notify_client(dir: &std::path::Path, wait_for_go: bool) -> String {
    let go = if wait_for_go {
        format!(
            "while not os.path.exists({:?}):\n    s.sendto(b'WATCHDOG=1', addr)\n    time.sleep(0.05)\n",
            dir.join("go").display().to_string()
        )
    } else {
        String::new()
    };
    let script = format!(
        "import os, socket, time\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         addr = os.environ['NOTIFY_SOCKET']\n\
         {go}\
         s.sendto(b'STATUS=warming up\\nREADY=1', addr)\n\
         while not os.path.exists({hang:?}):\n    s.sendto(b'WATCHDOG=1', addr)\n    time.sleep(0.1)\n\
         time.sleep(60)\n",
        hang = dir.join("hang").display().to_string()
    );
    format!("[\"python3\", \"-c\", {}]", common::toml_str(&script))
}

#[test]
fn notify_ready_marks_it_up_and_a_missed_watchdog_restarts_it() {
    if !have("python3") {
        eprintln!("skipped: no python3");
        return;
    }
    let env = Env::new("");
    env.write_config(&format!(
        "[services.worker]\ncommand = {}\nnotify = true\nwatchdog = \"1s\"\nstop_timeout = \"1s\"\n",
        notify_client(env.dir.path(), true)
    ));
    let d = Daemon::up(&env);
    // A stranger's READY=1 (this test is outside the service's tree) is ignored.
    let sock = env.path(".warden/notify/worker.sock");
    wait_for("the notify socket", WAIT, || sock.exists().then_some(()));
    let stranger = std::os::unix::net::UnixDatagram::unbound().unwrap();
    stranger.send_to(b"READY=1", &sock).unwrap();
    let s = wait_for("worker to run 1.5 s", WAIT, || {
        let s = d.service("worker");
        (s["uptime_ms"].as_u64()? > 1500).then_some(s)
    });
    assert_eq!(
        s["state"], "starting",
        "a stranger's READY=1 counts for nothing: {s}"
    );
    std::fs::write(env.path("go"), "").unwrap();
    d.until_state("worker", "running");
    // Pings keep it alive well past the watchdog (1 s).
    let s = wait_for("worker to run 3.5 s", WAIT, || {
        let s = d.service("worker");
        (s["uptime_ms"].as_u64()? > 3500).then_some(s)
    });
    assert_eq!(
        (s["restarts"].as_u64(), s["state"].as_str()),
        (Some(0), Some("running"))
    );
    std::fs::write(env.path("hang"), "").unwrap();
    wait_for("the watchdog restart", WAIT, || {
        (d.service("worker")["restarts"] == 1).then_some(())
    });
    let log = env.read(".warden/warden.log");
    assert!(log.contains("[worker] ready (READY=1)"), "{log}");
    assert!(log.contains("[worker] status: warming up"), "{log}");
    assert!(log.contains("[worker] watchdog timeout"), "{log}");
}

#[test]
fn redis_supervised_by_systemd_works_unchanged_under_notify() {
    if !have("redis-server") {
        eprintln!("skipped: no redis-server");
        return;
    }
    let port = free_port();
    let env = Env::new(&format!(
        r#"[services.db]
command = ["redis-server", "--port", "{port}", "--save", "", "--appendonly", "no", "--supervised", "systemd"]
notify = true
"#
    ));
    let d = Daemon::up(&env);
    d.until_state("db", "running");
    let log = env.read(".warden/warden.log");
    assert!(log.contains("[db] ready (READY=1)"), "{log}");
}

#[test]
fn start_starts_what_the_service_needs_first_and_says_so() {
    let env = Env::new(&format!(
        r#"[services.db]
command = [{tc}, "--sleep", "forever"]
autostart = false

[services.migrate]
command = [{tc}, "--print-pid", "--exit", "0"]
restart = "never"
autostart = false

[services.api]
command = [{tc}, "--sleep", "forever"]
depends_on = {{ db = "started", migrate = "completed" }}
autostart = false
"#,
        tc = tc()
    ));
    let d = Daemon::up(&env);
    let o = env.run(&["start", "api"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let pid = d.pid("api").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("api: running (pid {pid}), after starting its dependencies db, migrate\n"),
        "{}",
        show(&o)
    );
    assert_eq!(d.service("migrate")["state"], "exited");
    let db = d.pid("db").unwrap();
    let o = env.run(&["stop", "api"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // What it needs holds already (db runs, migrate completed): nothing more is said or done.
    let o = env.run(&["start", "api"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let pid = d.pid("api").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("api: running (pid {pid})\n"),
        "{}",
        show(&o)
    );
    assert_eq!(d.pid("db"), Some(db), "db was left as it ran");
    assert_eq!(
        env.lines("logs/migrate.out.log").len(),
        1,
        "a migration that completed is not run again"
    );
}

#[test]
fn a_notify_status_line_shows_in_status_json_and_the_reason_column() {
    if !have("python3") {
        eprintln!("skipped: no python3");
        return;
    }
    let env = Env::new("");
    let script = format!(
        "import os, socket, time\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         addr = os.environ['NOTIFY_SOCKET']\n\
         s.sendto(b'STATUS=warming up\\nREADY=1', addr)\n\
         while not os.path.exists({next:?}):\n    time.sleep(0.05)\n\
         s.sendto(b'STATUS=serving 3 clients', addr)\n\
         time.sleep(60)\n",
        next = env.path("next").display().to_string()
    );
    env.write_config(&format!(
        "[services.worker]\ncommand = [\"python3\", \"-c\", {}]\nnotify = true\nstop_timeout = \"1s\"\n",
        common::toml_str(&script)
    ));
    let d = Daemon::up(&env);
    let s = d.until_state("worker", "running");
    assert_eq!(s["status_text"], "warming up", "{s}");
    assert_eq!(s["reason"], serde_json::Value::Null, "{s}");
    let o = env.run(&["status"]);
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    let row = table.lines().find(|l| l.starts_with("worker ")).unwrap();
    assert!(row.ends_with("  warming up"), "{table}");
    std::fs::write(env.path("next"), "").unwrap();
    wait_for("the new STATUS=", WAIT, || {
        (d.service("worker")["status_text"] == "serving 3 clients").then_some(())
    });
    let o = env.run(&["stop", "worker"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = d.service("worker");
    assert_eq!(
        (&s["status_text"], &s["reason"]),
        (
            &serde_json::Value::Null,
            &serde_json::json!("stopped by hand")
        ),
        "the text belongs to the run: {s}"
    );
}

#[test]
fn a_reload_that_adds_a_dependency_makes_the_service_wait_for_it() {
    let db = format!(
        "[services.db]\ncommand = [{tc}, \"--sleep\", \"forever\"]\nautostart = false\n\n",
        tc = tc()
    );
    let api = format!(
        "[services.api]\ncommand = [{tc}, \"--sleep\", \"forever\"]\nstop_timeout = \"2s\"\n",
        tc = tc()
    );
    let env = Env::new(&(db.clone() + &api));
    let d = Daemon::up(&env);
    d.until_state("api", "running");
    env.write_config(&format!("{db}{api}depends_on = {{ db = \"started\" }}\n"));
    let o = env.run(&["reload"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = d.until_state("api", "pending");
    assert_eq!(s["reason"], "waiting for db (stopped)", "{s}");
    let o = env.run(&["start", "db"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    d.until_state("api", "running");
    // The new dependency is in force for a start by hand too.
    let o = env.run(&["stop", "db", "api"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = env.run(&["start", "api"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("after starting its dependency db"),
        "{}",
        show(&o)
    );
}
