//! `GET /health` and `GET /metrics` end to end: on the `[warden] http` listener (with the
//! TCP API's token rules) and on the control socket, with real services, and the exposition
//! parsed by a real Prometheus text parser (`prometheus_client` from `PyPI`).

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;

use common::{Daemon, Env, WAIT, show, tc, wait_for};

const TOKEN: &str = "metrics-test-token-0123456789";

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An answer: status code and body.
struct Answer {
    code: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// `GET path` over `stream`, with the bearer `token` if given; one request per connection.
fn get<S: Read + Write>(mut stream: S, path: &str, token: Option<&str>) -> Answer {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: warden\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Answer {
        code,
        content_type,
        body: body.to_owned(),
    }
}

fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

fn unix(env: &Env) -> UnixStream {
    let s = UnixStream::connect(env.path(".warden/warden.sock")).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// The venv that `tools/api-check.sh` makes, if it is there.
fn python() -> Option<PathBuf> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/api-check-venv/bin/python3");
    p.exists().then_some(p)
}

/// Parse `text` with `prometheus_client.parser`; every sample as (name, labels, value).
fn parse_exposition(
    python: &PathBuf,
    env: &Env,
    text: &str,
) -> Vec<(String, serde_json::Value, f64)> {
    let file = env.path("metrics.txt");
    std::fs::write(&file, text).unwrap();
    let script = r"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value, fam.type])
print(json.dumps(out))
";
    let o = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the parser refused the text: {}\n{text}",
        show(&o)
    );
    let rows: Vec<(String, serde_json::Value, f64, String)> =
        serde_json::from_slice(&o.stdout).unwrap();
    rows.into_iter().map(|(n, l, v, _)| (n, l, v)).collect()
}

fn sample(
    rows: &[(String, serde_json::Value, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    rows.iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l[*k] == *v))
        .map(|(_, _, v)| *v)
}

#[test]
fn health_turns_503_for_a_crashing_service_and_back_when_it_is_stopped_by_hand() {
    let port = free_port();
    let env = Env::new(&format!(
        r#"[warden]
http = "127.0.0.1:{port}"
api_token = "{TOKEN}"

[services.web]
command = [{tc}, "--sleep", "forever"]
min_uptime = "0s"

[services.extra]
command = [{tc}, "--exit", "1"]
optional = true
backoff = {{ initial = "50ms", max = "50ms" }}

[services.job]
command = [{tc}, "--exit", "0"]
restart = "never"

[services.crash]
command = [{tc}, "--exit", "2"]
autostart = false
backoff = {{ initial = "50ms", max = "50ms" }}
"#,
        tc = tc()
    ));
    let d = Daemon::up(&env);
    d.until_state("job", "exited");
    d.until_state("web", "running");
    // Without a token: the optional one crashes, the job is done, crash was never started.
    let h = wait_for("/health 200", WAIT, || {
        let a = get(tcp(port), "/health", None);
        (a.code == 200).then_some(a)
    });
    let body = h.json();
    assert_eq!(body["status"], "healthy", "{body}");
    assert!(body["uptime_ms"].as_u64().is_some(), "{body}");
    assert_eq!(body["services"]["web"]["state"], "running");
    assert_eq!(body["services"]["web"]["health"], serde_json::Value::Null);
    assert_eq!(body["services"]["web"]["counted"], true);
    for name in ["extra", "job", "crash"] {
        assert_eq!(body["services"][name]["counted"], false, "{name}: {body}");
    }
    // Names and states only.
    assert!(
        !h.body.contains("pid") && !h.body.contains("reason"),
        "{}",
        h.body
    );

    // A counted service that crashes: 503, on the socket too.
    let o = env.run(&["start", "--no-wait", "crash"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let a = wait_for("/health 503", WAIT, || {
        let a = get(tcp(port), "/health", None);
        (a.code == 503).then_some(a)
    });
    let body = a.json();
    assert_eq!(body["status"], "unhealthy", "{body}");
    let state = body["services"]["crash"]["state"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        ["backoff", "starting", "failed"].contains(&state.as_str()),
        "{body}"
    );
    let crash_state = d.service("crash")["state"].clone();
    assert_ne!(crash_state, "running");

    // Stopped by hand: not counted any more.
    let o = env.run(&["stop", "crash"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let a = get(unix(&env), "/health", None);
    assert_eq!(a.code, 200, "{}", a.body);
    assert_eq!(a.json()["services"]["crash"]["state"], "stopped");
    drop(d);
}

#[test]
fn metrics_need_the_token_and_parse_with_the_values_of_status() {
    let port = free_port();
    let counter = Env::new("");
    let count = counter.path("runs");
    let env = Env::new(&format!(
        r#"[warden]
http = "127.0.0.1:{port}"
api_token = "{TOKEN}"

[services.web]
command = [{tc}, "--lines", "3", "--sleep", "forever"]
min_uptime = "0s"
health = {{ tcp = "127.0.0.1:{port}", interval = "100ms" }}

[services.flaky]
command = ["sh", "-c", "n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}; [ $n -ge 3 ] && exec sleep 60; exit 1"]
restart = "on-failure"
min_uptime = "0s"
stop_timeout = "1s"
backoff = {{ initial = "50ms", max = "50ms" }}
"#,
        tc = tc(),
        count = count.display()
    ));
    let d = Daemon::up(&env);
    wait_for("flaky to run a third time", WAIT, || {
        let s = d.service("flaky");
        (s["state"] == "running" && s["restarts"] == 2).then_some(())
    });
    wait_for("web to be healthy", WAIT, || {
        (d.service("web")["health"] == "healthy").then_some(())
    });
    env.wait_lines("logs/web.out.log", 3);

    // The token rules of the TCP API, except /health.
    let a = get(tcp(port), "/metrics", None);
    assert_eq!(a.code, 401, "{}", a.body);
    let a = get(tcp(port), "/metrics", Some("wrong"));
    assert_eq!(a.code, 401, "{}", a.body);
    assert_eq!(get(tcp(port), "/health", None).code, 200);
    // This listener serves /health and /metrics only, even with the token.
    assert_eq!(get(tcp(port), "/v1/status", Some(TOKEN)).code, 404);

    let a = get(tcp(port), "/metrics", Some(TOKEN));
    assert_eq!(a.code, 200, "{}", a.body);
    assert!(
        a.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        a.content_type
    );
    let status = d.status();
    let Some(py) = python() else {
        println!(
            "skipped the parser check: target/api-check-venv is absent (run tools/api-check.sh)"
        );
        drop(d);
        return;
    };
    let rows = parse_exposition(&py, &env, &a.body);
    let restarts = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "flaky")
        .unwrap()["restarts"]
        .as_f64()
        .unwrap();
    assert!((restarts - 2.0).abs() < f64::EPSILON, "{restarts}");
    assert_eq!(
        sample(
            &rows,
            "warden_service_restarts_total",
            &[("service", "flaky")]
        ),
        Some(restarts)
    );
    assert_eq!(
        sample(&rows, "warden_service_up", &[("service", "web")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &rows,
            "warden_service_state",
            &[("service", "web"), ("state", "running")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &rows,
            "warden_service_state",
            &[("service", "web"), ("state", "failed")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&rows, "warden_service_health", &[("service", "web")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&rows, "warden_service_health", &[("service", "flaky")]),
        None,
        "no check"
    );
    // Three numbered lines on stdout, nothing on stderr.
    let out_bytes = std::fs::metadata(env.path("logs/web.out.log"))
        .unwrap()
        .len() as f64;
    let logged = sample(
        &rows,
        "warden_log_bytes_total",
        &[("service", "web"), ("stream", "out")],
    )
    .unwrap();
    assert!(
        logged > 0.0 && logged <= out_bytes,
        "{logged} of {out_bytes}"
    );
    assert_eq!(
        sample(
            &rows,
            "warden_log_bytes_total",
            &[("service", "web"), ("stream", "err")]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &rows,
            "warden_log_dropped_bytes_total",
            &[("service", "web")]
        ),
        Some(0.0)
    );
    let probes = sample(
        &rows,
        "warden_service_probe_duration_seconds_count",
        &[("service", "web")],
    )
    .unwrap();
    assert!(probes >= 1.0, "{probes}");
    let inf = sample(
        &rows,
        "warden_service_probe_duration_seconds_bucket",
        &[("service", "web"), ("le", "+Inf")],
    );
    assert_eq!(inf, Some(probes));
    assert!(sample(&rows, "process_open_fds", &[]).unwrap() >= 3.0);
    assert!(sample(&rows, "process_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert!(sample(&rows, "process_cpu_seconds_total", &[]).is_some());
    let start = sample(&rows, "process_start_time_seconds", &[]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        start > now - 600.0 && start <= now + 1.0,
        "{start} vs {now}"
    );

    // A metrics read asks the samplers for figures: memory and CPU appear.
    let rows = wait_for("the samplers to report", WAIT, || {
        let a = get(unix(&env), "/metrics", None);
        assert_eq!(a.code, 200, "the socket needs no token");
        let rows = parse_exposition(&py, &env, &a.body);
        (sample(&rows, "warden_service_memory_bytes", &[("service", "web")]).is_some())
            .then_some(rows)
    });
    assert!(sample(&rows, "warden_service_memory_bytes", &[("service", "web")]).unwrap() > 0.0);
    assert!(
        sample(
            &rows,
            "warden_service_cpu_seconds_total",
            &[("service", "web")]
        )
        .is_some()
    );
    drop(d);
}

#[test]
fn metrics_public_serves_metrics_without_the_token_and_curl_works_on_the_socket() {
    let port = free_port();
    let env = Env::new(&format!(
        r#"[warden]
http = "127.0.0.1:{port}"
metrics_public = true

[services.web]
command = [{tc}, "--sleep", "forever"]
min_uptime = "0s"
"#,
        tc = tc()
    ));
    let d = Daemon::up(&env);
    d.until_state("web", "running");
    let a = get(tcp(port), "/metrics", None);
    assert_eq!(a.code, 200, "{}", a.body);
    assert!(
        a.body.contains("warden_service_up{service=\"web\"} 1\n"),
        "{}",
        a.body
    );
    // The token is still needed for anything else: this listener has nothing else.
    assert_eq!(get(tcp(port), "/v1/status", None).code, 401);
    let have_curl = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_curl {
        println!("skipped the curl check: curl is not installed");
        drop(d);
        return;
    }
    let sock = env.path(".warden/warden.sock");
    for (path, needle) in [
        ("/health", "\"status\":\"healthy\""),
        ("/metrics", "# TYPE warden_service_up gauge"),
    ] {
        let o = Command::new("curl")
            .args(["-sS", "--max-time", "10", "--unix-socket"])
            .arg(&sock)
            .arg(format!("http://warden{path}"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", show(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(needle), "{path}: {text}");
    }
    drop(d);
}
