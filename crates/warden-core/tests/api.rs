//! The control API over real sockets: a live engine (services with `autostart = false`, so
//! nothing is spawned) or a fake backend (for log streams), each test in its own temp dir,
//! a timeout around every wait.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{broadcast, mpsc, watch};
use warden_core::api::client::{Client, ClientError};
use warden_core::api::server::{
    ApiContext, ApiServer, Backend, BoxFuture, HEADER_TIMEOUT, LogSource, ROUTES, ServeError,
    serve_tcp, serve_unix,
};
use warden_core::api::transport::MAX_WAITING;
use warden_core::config::{
    Backoff, Config, LogConfig, RestartPolicy, Secret, ServiceConfig, StderrTarget, StopMethod,
    WardenSettings,
};
use warden_core::engine::{Action, Engine, EngineError, Events, Handle, ReloadError, ReloadReport};
use warden_core::logs::{LogLine, Stream};
use warden_core::process::Signal;
use warden_core::proto::{
    ErrorBody, ErrorDetail, FollowItem, ServiceStatus, State, StatusReport, WardenInfo,
};
use warden_core::state::StateDir;

const WAIT: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Poll `f` until it is true, failing after [`WAIT`].
async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------
// A live engine

fn service(name: &str, dir: &Path) -> ServiceConfig {
    ServiceConfig {
        name: name.to_owned(),
        // A program that does not exist: a start fails the same way with any process layer.
        command: vec![dir.join("no-such-program").display().to_string()],
        raw_command: "[\"no-such-program\"]".to_owned(),
        shell: false,
        cwd: dir.to_owned(),
        env: BTreeMap::new(),
        env_file: None,
        inherit_env: true,
        autostart: false,
        restart: RestartPolicy::Never,
        success_codes: vec![0],
        exit_actions: warden_core::config::ExitActions::default(),
        backoff: Backoff::default(),
        start_limit: None,
        stop_signal: Signal::Term,
        stop_timeout: Duration::from_secs(1),
        min_uptime: Duration::ZERO,
        stop_command: None,
        stop_method: vec![StopMethod::Terminate],
        log: LogConfig {
            stdout: dir.join("logs").join(format!("{name}.out.log")),
            stderr: StderrTarget::File(dir.join("logs").join(format!("{name}.err.log"))),
            max_size: 1 << 20,
            keep: 1,
            compress: false,
            timestamps: false,
            encoding: None,
        },
        privileges: warden_core::config::Privileges::default(),
        health: warden_core::config::HealthConfig::default(),
        depends_on: Vec::new(),
        daemonize: warden_core::config::Daemonize::default(),
    }
}

struct Live {
    dir: tempfile::TempDir,
    socket: PathBuf,
    config_path: PathBuf,
    server: Option<ApiServer>,
    handle: Handle,
    shutdown_rx: mpsc::Receiver<()>,
    _kill: watch::Sender<bool>,
}

impl Live {
    /// An engine with services `names` (none started) and the API on `<dir>/warden.sock`.
    async fn start(names: &[&str]) -> Live {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_owned();
        std::fs::create_dir_all(root.join("logs")).expect("log dir");
        let config_path = root.join("warden.toml");
        // The same services as text, so that a reload keeps them.
        let mut text = String::new();
        for n in names {
            text.push_str("[services.");
            text.push_str(n);
            text.push_str(
                "]\ncommand = [\"no-such-program\"]\nautostart = false\nrestart = \"never\"\n",
            );
        }
        std::fs::write(&config_path, text).expect("config");
        let config = Config {
            path: config_path.clone(),
            dir: root.clone(),
            warden: WardenSettings {
                log_dir: root.join("logs"),
                state_dir: root.join("state"),
                socket: None,
                shutdown_timeout: Duration::from_secs(5),
                api: None,
                api_token: None,
                when_all_ended: warden_core::config::WhenAllEnded::Keep,
                log: warden_core::config::WardenLog::default(),
                health: warden_core::config::WardenHealth::default(),
            },
            services: names.iter().map(|n| service(n, &root)).collect(),
            warnings: Vec::new(),
        };
        let state = Arc::new(StateDir::lock(&config.warden.state_dir).expect("state dir"));
        let (kill, kill_rx) = watch::channel(false);
        let engine = Engine::new(config, state, Events::plain(), kill_rx, false);
        let (handle, _task, ready) = engine.spawn();
        within("engine ready", ready).await.expect("engine started");
        let (shutdown_tx, shutdown_rx) = mpsc::channel(1);
        let ctx = Arc::new(ApiContext::new(handle.clone(), shutdown_tx));
        let socket = root.join("warden.sock");
        let server = serve_unix(&socket, ctx).expect("serve");
        Live {
            dir,
            socket,
            config_path,
            server: Some(server),
            handle,
            shutdown_rx,
            _kill: kill,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        unix_request(&self.socket, "GET", path).await
    }

    async fn post(&self, path: &str) -> Answer {
        unix_request(&self.socket, "POST", path).await
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        drop(self.server.take());
        // Best effort: the runtime may already be gone.
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.shutdown().await });
        }
    }
}

// ---------------------------------------------------------------------------------------
// A fake backend for log streams (the real log writer is another module's work)

struct FakeLogs {
    tail: Vec<LogLine>,
    live: broadcast::Sender<LogLine>,
}

impl LogSource for FakeLogs {
    fn tail(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine> {
        let lines: Vec<LogLine> = self
            .tail
            .iter()
            .filter(|l| stream.is_none_or(|s| s == l.stream))
            .cloned()
            .collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }

    fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.live.subscribe()
    }

    fn rotate(&self) -> Vec<(PathBuf, warden_core::logs::Rotation)> {
        vec![(
            PathBuf::from("/fake/web.out.log"),
            warden_core::logs::Rotation::Empty,
        )]
    }
}

struct Fake {
    logs: Arc<FakeLogs>,
}

fn fake_status(name: &str) -> ServiceStatus {
    ServiceStatus {
        pid: Some(4242),
        uptime_ms: Some(10),
        restarts: 1,
        ..ServiceStatus::new(name, State::Running)
    }
}

impl Backend for Fake {
    fn status(&self) -> BoxFuture<'_, Option<StatusReport>> {
        Box::pin(async {
            Some(StatusReport {
                warden: WardenInfo {
                    version: "0".into(),
                    pid: 1,
                    config: "/c".into(),
                    uptime_ms: 0,
                    tracking: warden_core::proto::Tracking::default(),
                },
                services: vec![fake_status("web")],
            })
        })
    }

    fn act<'a>(&'a self, _action: Action, name: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            if name == "web" {
                Ok(())
            } else {
                Err(EngineError::UnknownService {
                    name: name.into(),
                    known: vec!["web".into()],
                })
            }
        })
    }

    fn logs<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn LogSource>, EngineError>> {
        Box::pin(async move {
            if name == "web" {
                Ok(self.logs.clone() as Arc<dyn LogSource>)
            } else {
                Err(EngineError::UnknownService {
                    name: name.into(),
                    known: vec!["web".into()],
                })
            }
        })
    }

    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>> {
        Box::pin(async { Ok(ReloadReport::default()) })
    }

    fn config_in_force(&self) -> Option<Arc<Vec<Arc<warden_core::config::ServiceConfig>>>> {
        None
    }
}

fn log_line(seq: u64, stream: Stream, text: &[u8]) -> LogLine {
    LogLine {
        seq,
        stream,
        at: UNIX_EPOCH + Duration::from_millis(1500),
        bytes: text.to_vec(),
    }
}

struct FakeServer {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    live: broadcast::Sender<LogLine>,
    _server: ApiServer,
}

fn fake_server(capacity: usize) -> FakeServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let (live, _) = broadcast::channel(capacity);
    let tail = vec![
        log_line(1, Stream::Out, b"one"),
        log_line(2, Stream::Err, b"two \xff"),
        log_line(3, Stream::Out, b"three"),
    ];
    let backend = Arc::new(Fake {
        logs: Arc::new(FakeLogs {
            tail,
            live: live.clone(),
        }),
    });
    let (shutdown, _) = mpsc::channel(1);
    let ctx = Arc::new(ApiContext::with_backend(backend, shutdown));
    let socket = dir.path().join("warden.sock");
    let server = serve_unix(&socket, ctx).expect("serve");
    FakeServer {
        _dir: dir,
        socket,
        live,
        _server: server,
    }
}

// ---------------------------------------------------------------------------------------
// Raw HTTP, so the tests see exactly what goes over the wire

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `error` message of an error answer.
    fn error(&self) -> String {
        let v = self.json();
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {v}"))
            .to_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

fn parse_answer(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .expect("status line")
        .split(' ')
        .nth(1)
        .expect("code")
        .parse()
        .expect("number");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    if answer.header("transfer-encoding") == Some("chunked") {
        answer.body = dechunk(&answer.body);
    }
    answer
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).expect("size"), 16)
            .expect("hex");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &[u8]) -> Answer {
    within("an answer", async {
        stream.write_all(request).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        parse_answer(&raw)
    })
    .await
}

fn request_bytes(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: warden\r\nConnection: close\r\n{extra}\r\n")
        .into_bytes()
}

async fn unix_request(socket: &Path, method: &str, path: &str) -> Answer {
    let stream = within("connect", UnixStream::connect(socket))
        .await
        .expect("connect");
    exchange(stream, &request_bytes(method, path, "")).await
}

/// `method path` answers `status` with an `error` message.
async fn error_answer(socket: &Path, method: &str, path: &str, status: u16) -> Answer {
    let a = unix_request(socket, method, path).await;
    assert_eq!(a.status, status, "{method} {path}");
    a.error();
    a
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

const SERVICE_KEYS: &[&str] = &[
    "name",
    "state",
    "pid",
    "uptime_ms",
    "restarts",
    "last_exit",
    "next_start_in_ms",
    "reason",
    "health",
    "cpu_percent",
    "memory_bytes",
    "memory_cgroup_bytes",
    "status_text",
];

// ---------------------------------------------------------------------------------------
// Status

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_has_the_exact_shape() {
    let live = Live::start(&["web", "worker"]).await;
    let a = live.get("/v1/status").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v = a.json();
    assert_eq!(keys(&v), set(&["warden", "services"]));
    assert_eq!(
        keys(&v["warden"]),
        set(&["version", "pid", "config", "uptime_ms", "tracking"])
    );
    assert_eq!(v["warden"]["pid"], std::process::id());
    assert_eq!(
        v["warden"]["config"],
        live.config_path.display().to_string()
    );
    let services = v["services"].as_array().expect("array");
    assert_eq!(services.len(), 2);
    assert_eq!(
        services[0],
        json!({
            "name": "web", "state": "stopped", "pid": null, "uptime_ms": null, "restarts": 0,
            "last_exit": null, "next_start_in_ms": null, "reason": "autostart = false",
            "health": null, "cpu_percent": null, "memory_bytes": null,
            "memory_cgroup_bytes": null, "status_text": null
        })
    );
    assert_eq!(services[1]["name"], "worker");
    assert_eq!(keys(&services[1]), set(SERVICE_KEYS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_filters_by_name_and_rejects_unknown_names() {
    let live = Live::start(&["a", "b", "c"]).await;
    let v = live.get("/v1/status?name=c&name=a").await.json();
    let names: Vec<&str> = v["services"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "c"], "config order");
    let a = live.get("/v1/status?name=a&name=zz").await;
    assert_eq!(a.status, 404);
    assert_eq!(
        a.json(),
        json!({"error": "no service named \"zz\"", "known": ["a", "b", "c"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_service_and_unknown_service() {
    let live = Live::start(&["a", "b"]).await;
    let a = live.get("/v1/services/b").await;
    assert_eq!(a.status, 200);
    assert_eq!(keys(&a.json()), set(SERVICE_KEYS));
    assert_eq!(a.json()["name"], "b");
    for (method, path) in [
        ("GET", "/v1/services/x"),
        ("POST", "/v1/services/x/stop"),
        ("GET", "/v1/services/x/logs"),
    ] {
        let a = unix_request(&live.socket, method, path).await;
        assert_eq!(a.status, 404, "{method} {path}");
        assert_eq!(
            a.json(),
            json!({"error": "no service named \"x\"", "known": ["a", "b"]}),
            "{method} {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paths_methods_and_queries() {
    let live = Live::start(&["a"]).await;
    for path in [
        "/",
        "/v2/status",
        "/v1/nothing",
        "/v1/services/a/kill",
        "/v1/status/",
    ] {
        let a = error_answer(&live.socket, "GET", path, 404).await;
        assert!(a.error().contains("no such path"), "{path}");
    }
    for (method, path, allow) in [
        ("POST", "/v1/status", "GET"),
        ("GET", "/v1/reload", "POST"),
        ("DELETE", "/v1/services/a", "GET"),
    ] {
        let a = error_answer(&live.socket, method, path, 405).await;
        assert_eq!(a.header("allow"), Some(allow));
    }
    for path in [
        "/v1/services/a/logs?n=abc",
        "/v1/services/a/logs?n=-3",
        "/v1/services/a/logs?stream=both",
        "/v1/services/a/logs?follow=maybe",
        "/v1/services/a/logs?lines=3",
        "/v1/status?verbose=1",
        "/v1/services/a?x=1",
    ] {
        error_answer(&live.socket, "GET", path, 400).await;
    }
    error_answer(&live.socket, "POST", "/v1/services/a/stop?wait=later", 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_is_refused() {
    let live = Live::start(&[]).await;
    let stream = UnixStream::connect(&live.socket).await.expect("connect");
    let a = exchange(
        stream,
        &request_bytes("POST", "/v1/reload", "Content-Length: 1000000\r\n"),
    )
    .await;
    assert_eq!(a.status, 413);
    assert!(a.json()["error"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_does_not_block_others() {
    let live = Live::start(&["a"]).await;
    let mut stalled = UnixStream::connect(&live.socket).await.expect("connect");
    stalled
        .write_all(b"GET /v1/sta")
        .await
        .expect("write half a request");
    let mut follower = UnixStream::connect(&live.socket).await.expect("connect");
    follower
        .write_all(&request_bytes("GET", "/v1/services/a/logs?follow=true", ""))
        .await
        .expect("write");
    assert_eq!(live.get("/v1/status").await.status, 200);
    drop((stalled, follower));
}

// ---------------------------------------------------------------------------------------
// Actions, reload, shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_answer_with_the_status_after() {
    let live = Live::start(&["a", "b"]).await;
    // The program does not exist: the start fails, with the reason.
    let a = live.post("/v1/services/a/start").await;
    assert_eq!(a.status, 500);
    let v = a.json();
    assert_eq!(keys(&v), set(&["error", "service", "reason", "status"]));
    assert_eq!(v["service"], "a");
    assert!(
        v["reason"].as_str().expect("reason").contains("start"),
        "{v}"
    );
    assert_eq!(v["status"]["name"], "a");
    assert_ne!(v["status"]["state"], "running");

    let a = live.post("/v1/services/a/stop").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["state"], "stopped");
    assert_eq!(a.json()["reason"], "stopped by hand");

    let a = live.post("/v1/services/b/stop?wait=false").await;
    assert_eq!(a.status, 202);
    assert_eq!(keys(&a.json()), set(SERVICE_KEYS));
    assert_eq!(a.json()["name"], "b");
    let b = &live;
    let deadline = Instant::now() + WAIT;
    loop {
        let v = b.get("/v1/services/b").await.json();
        if v["reason"] == "stopped by hand" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stop without wait never happened: {v}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_an_invalid_config_changes_nothing() {
    let live = Live::start(&["a", "b"]).await;
    let before = live.get("/v1/status").await.json()["services"].clone();
    std::fs::write(&live.config_path, "[services.a\ncommand = = 'x'\n")
        .expect("write a broken config");
    let a = live.post("/v1/reload").await;
    assert_eq!(a.status, 422);
    let v = a.json();
    assert_eq!(v["error"], "config");
    assert_eq!(v["file"], live.config_path.display().to_string());
    assert!(
        v["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .all(Value::is_string),
        "{v}"
    );
    let after = live.get("/v1/status").await.json()["services"].clone();
    let strip = |v: &Value| -> Vec<(Value, Value, Value)> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| (s["name"].clone(), s["state"].clone(), s["reason"].clone()))
            .collect()
    };
    assert_eq!(strip(&before), strip(&after));
}

/// Regression: the config view re-read the file on disk, so it showed edits not reloaded yet
/// and answered 422 while the file had errors. It shows the config in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_view_shows_the_config_in_force_not_the_file_on_disk() {
    let live = Live::start(&["a", "b"]).await;
    let first = live.get("/v1/services/a/config").await;
    assert_eq!(first.status, 200);
    let first = first.json();
    assert_eq!(first["command"], "[\"no-such-program\"]");
    let edited = "[services.a]\ncommand = [\"edited-program\"]\nautostart = false\nrestart = \"never\"\nstop_timeout = \"3s\"\n\
                  [services.b]\ncommand = [\"no-such-program\"]\nautostart = false\nrestart = \"never\"\n\
                  [services.c]\ncommand = [\"no-such-program\"]\nautostart = false\nrestart = \"never\"\n";
    std::fs::write(&live.config_path, edited).expect("edit the config");
    let a = live.get("/v1/services/a/config").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json(), first, "an edit not reloaded yet does not show");
    let c = live.get("/v1/services/c/config").await;
    assert_eq!(c.status, 404, "a service only in the file is not in force");
    assert_eq!(c.json()["known"], serde_json::json!(["a", "b"]));

    std::fs::write(&live.config_path, "[services.a\ncommand = = 'x'\n").expect("break it");
    let a = live.get("/v1/services/a/config").await;
    assert_eq!(a.status, 200, "a file with errors now changes nothing");
    assert_eq!(a.json(), first);

    std::fs::write(&live.config_path, edited).expect("edit the config");
    assert_eq!(live.post("/v1/reload").await.status, 200);
    let a = live.get("/v1/services/a/config").await.json();
    assert_eq!(
        a["command"], "[\"edited-program\"]",
        "the reloaded config is in force"
    );
    assert_eq!(a["stop_timeout_ms"], 3000);
    assert_eq!(live.get("/v1/services/c/config").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_202_then_signals() {
    let mut live = Live::start(&["a"]).await;
    let a = live.post("/v1/shutdown").await;
    assert_eq!(a.status, 202);
    assert_eq!(a.json(), json!({"shutting_down": true}));
    within("the shutdown signal", live.shutdown_rx.recv())
        .await
        .expect("signalled");
    // Asked twice: still accepted.
    assert_eq!(live.post("/v1/shutdown").await.status, 202);
}

// ---------------------------------------------------------------------------------------
// The socket

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_is_private_and_removed_when_the_server_stops() {
    let mut live = Live::start(&[]).await;
    let mode = std::fs::metadata(&live.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let server = live.server.take().expect("server");
    assert_eq!(server.socket_path(), Some(live.socket.as_path()));
    within("stop", server.stop()).await;
    assert!(!live.socket.exists(), "socket removed");
    let err = Client::connect(&live.socket)
        .await
        .err()
        .expect("no server");
    assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("warden.sock");
    // A dead warden's socket: bound, then nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists());
    let ctx = || {
        let backend = Arc::new(Fake {
            logs: Arc::new(FakeLogs {
                tail: Vec::new(),
                live: broadcast::channel(1).0,
            }),
        });
        Arc::new(ApiContext::with_backend(backend, mpsc::channel(1).0))
    };
    let first = serve_unix(&socket, ctx()).expect("stale socket replaced");
    assert_eq!(unix_request(&socket, "GET", "/v1/status").await.status, 200);
    match serve_unix(&socket, ctx()) {
        Err(ServeError::AlreadyListening { path }) => {
            assert_eq!(path, socket);
            let msg = ServeError::AlreadyListening { path }.to_string();
            assert_eq!(
                msg,
                format!("another warden is listening on {}", socket.display())
            );
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a second server took over a live socket"),
    }
    // The refused second server did not remove the first one's socket.
    assert_eq!(unix_request(&socket, "GET", "/v1/status").await.status, 200);
    drop(first);
    assert!(!socket.exists());

    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "data").expect("write");
    assert!(matches!(
        serve_unix(&file, ctx()),
        Err(ServeError::NotASocket { .. })
    ));
    assert_eq!(std::fs::read(&file).expect("kept"), b"data");
}

/// Only root can be another user: a `curl` run as `nobody` gets 403 (the socket is opened up
/// to everyone first, so the peer check is what refuses it). Skipped when not root or
/// without curl; `peer_allowed` is unit-tested in the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_gets_403() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        || !Path::new("/usr/bin/curl").exists()
        || !Path::new("/usr/bin/setpriv").exists()
    {
        eprintln!("skipped: needs root, /usr/bin/curl and /usr/bin/setpriv");
        return;
    }
    let live = Live::start(&["a"]).await;
    std::fs::set_permissions(live.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    std::fs::set_permissions(&live.socket, std::fs::Permissions::from_mode(0o666))
        .expect("chmod socket");
    // Through warden's own spawn: its reaper owns waitpid in this process, so a std
    // `Command::output` here could lose its child's status to it.
    let spec = warden_core::process::SpawnSpec {
        program: "/usr/bin/setpriv".into(),
        args: [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/curl",
            "-s",
            "--max-time",
            "5",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
        ]
        .iter()
        .map(Into::into)
        .chain([
            live.socket.clone().into_os_string(),
            "http://warden/v1/status".into(),
        ])
        .collect(),
        cwd: std::env::temp_dir(),
        clear_env: false,
        env: Vec::new(),
        output: warden_core::process::Output::Separate,
        credentials: warden_core::process::Credentials::default(),
        confinement: None,
    };
    let mut child = warden_core::process::spawn(&spec).expect("run curl");
    let mut stdout = child.take_stdout().expect("stdout");
    let mut text = String::new();
    within(
        "curl's output",
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text),
    )
    .await
    .expect("read");
    within("curl to exit", child.wait()).await;
    let (body, code) = text.rsplit_once('\n').expect("code line");
    assert_eq!(code, "403", "curl: {text}");
    let v: Value = serde_json::from_str(body).expect("json");
    assert!(v["error"].as_str().expect("error").contains("root"), "{v}");
    // Root itself is let in.
    assert_eq!(live.get("/v1/status").await.status, 200);
}

// ---------------------------------------------------------------------------------------
// TCP with a token

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_needs_the_bearer_token() {
    let backend = Arc::new(Fake {
        logs: Arc::new(FakeLogs {
            tail: Vec::new(),
            live: broadcast::channel(1).0,
        }),
    });
    let ctx = Arc::new(ApiContext::with_backend(backend, mpsc::channel(1).0));
    let token = Secret("tok-3f9a".into());
    assert!(matches!(
        serve_tcp(
            "127.0.0.1:0".parse().expect("addr"),
            Secret(String::new()),
            ctx.clone()
        )
        .await,
        Err(ServeError::EmptyToken)
    ));
    let server = serve_tcp("127.0.0.1:0".parse().expect("addr"), token.clone(), ctx)
        .await
        .expect("serve");
    let addr = server.local_addr().expect("tcp addr");
    let ask = |auth: &'static str| async move {
        let stream = TcpStream::connect(addr).await.expect("connect");
        exchange(stream, &request_bytes("GET", "/v1/status", auth)).await
    };
    for auth in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: Bearer tok-3f9\r\n",
        "Authorization: Bearer tok-3f9a2\r\n",
        "Authorization: tok-3f9a\r\n",
        "Authorization: Basic tok-3f9a\r\n",
    ] {
        let a = ask(auth).await;
        assert_eq!(a.status, 401, "{auth:?}");
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
        assert!(a.json()["error"].is_string());
    }
    // Even an unknown path is 401 without the token: nothing is revealed.
    let stream = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(
        exchange(stream, &request_bytes("GET", "/nowhere", ""))
            .await
            .status,
        401
    );
    let a = ask("Authorization: Bearer tok-3f9a\r\n").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["services"][0]["name"], "web");

    let mut client = Client::connect_tcp(addr, token).await.expect("client");
    assert_eq!(client.status(&[]).await.expect("status").services.len(), 1);
    let mut wrong = Client::connect_tcp(addr, Secret("nope".into()))
        .await
        .expect("client");
    assert!(matches!(
        wrong.status(&[]).await,
        Err(ClientError::Api { status: 401, .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Logs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_without_follow() {
    let fake = fake_server(16);
    let a = unix_request(&fake.socket, "GET", "/v1/services/web/logs?n=2").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json(),
        json!({"lines": [
            {"seq": 2, "stream": "err", "at": "1970-01-01T00:00:01.500Z", "line": "two \u{fffd}"},
            {"seq": 3, "stream": "out", "at": "1970-01-01T00:00:01.500Z", "line": "three"},
        ]})
    );
    let v = unix_request(&fake.socket, "GET", "/v1/services/web/logs?stream=out")
        .await
        .json();
    assert_eq!(v["lines"].as_array().expect("lines").len(), 2);
    let mut client = Client::connect(&fake.socket).await.expect("client");
    let lines = client
        .logs("web", 100, Some(Stream::Err))
        .await
        .expect("logs");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].line, "two \u{fffd}");
    let err = client.logs("nope", 1, None).await.expect_err("unknown");
    match err {
        ClientError::Api { status, body } => {
            assert_eq!(status, 404);
            assert_eq!(body, ErrorBody::unknown_service("nope", vec!["web".into()]));
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Read from a raw follow connection until `n` NDJSON objects arrived.
async fn read_items(stream: &mut UnixStream, buf: &mut Vec<u8>, n: usize) -> Vec<Value> {
    within("follow lines", async {
        loop {
            let body = dechunk_partial(buf);
            let items: Vec<Value> = body
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).expect("json line"))
                .collect();
            if items.len() >= n {
                return items;
            }
            let mut chunk = [0u8; 4096];
            let got = stream.read(&mut chunk).await.expect("read");
            assert!(got > 0, "the stream ended early");
            buf.extend_from_slice(&chunk[..got]);
        }
    })
    .await
}

/// The body of a chunked answer received so far (complete chunks only).
fn dechunk_partial(raw: &[u8]) -> Vec<u8> {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Vec::new();
    };
    let mut data = &raw[split + 4..];
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let Ok(size) = usize::from_str_radix(&String::from_utf8_lossy(&data[..eol]), 16) else {
            break;
        };
        if size == 0 || data.len() < eol + 2 + size + 2 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_hangs_up_ends_its_stream_task() {
    let fake = fake_server(16);
    let mut stream = UnixStream::connect(&fake.socket).await.expect("connect");
    stream
        .write_all(&request_bytes(
            "GET",
            "/v1/services/web/logs?n=2&follow=true",
            "",
        ))
        .await
        .expect("write");
    let mut buf = Vec::new();
    let items = read_items(&mut stream, &mut buf, 2).await;
    let head = String::from_utf8_lossy(&buf);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/x-ndjson"),
        "{head}"
    );
    assert_eq!(items[0]["seq"], 2);
    assert_eq!(items[1]["seq"], 3);
    assert_eq!(fake.live.receiver_count(), 1, "the stream task listens");
    // A live line arrives; an already-sent one (seq 3) is not repeated.
    fake.live
        .send(log_line(3, Stream::Out, b"three"))
        .expect("send");
    fake.live
        .send(log_line(4, Stream::Out, b"four"))
        .expect("send");
    let items = read_items(&mut stream, &mut buf, 3).await;
    assert_eq!(
        items[2],
        json!({"seq": 4, "stream": "out", "at": "1970-01-01T00:00:01.500Z", "line": "four"})
    );
    // Hang up while no line is coming: the task must notice and end.
    drop(stream);
    wait_until("the stream task to end", || fake.live.receiver_count() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_follower_gets_dropped_counts_and_never_blocks_the_service() {
    let fake = fake_server(8);
    let mut follower = Client::connect(&fake.socket)
        .await
        .expect("client")
        .follow_logs("web", 0, None)
        .await
        .expect("follow");
    wait_until("the stream task to subscribe", || {
        fake.live.receiver_count() == 1
    })
    .await;
    // The follower does not read: far more than every buffer on the way holds. Sending
    // never waits for it.
    let big = vec![b'x'; 16 * 1024];
    let started = Instant::now();
    for seq in 1..=2000 {
        fake.live
            .send(log_line(seq, Stream::Out, &big))
            .expect("send");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "sending was slowed down"
    );
    let mut dropped = 0;
    let mut last = 0;
    while last < 2000 {
        match within("next item", follower.next())
            .await
            .expect("item")
            .expect("open")
        {
            FollowItem::Dropped { dropped: n } => dropped += n,
            FollowItem::Line(l) => {
                assert!(l.seq > last, "in order");
                last = l.seq;
            }
        }
    }
    assert!(dropped > 0, "a slow follower must see a dropped count");
    drop(follower);
    wait_until("the stream task to end", || fake.live.receiver_count() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_follows_backlog_then_live_lines() {
    let fake = fake_server(16);
    let client = Client::connect(&fake.socket).await.expect("client");
    let mut follower = client
        .follow_logs("web", 10, Some(Stream::Out))
        .await
        .expect("follow");
    let mut seqs = Vec::new();
    for _ in 0..2 {
        match within("backlog", follower.next()).await.expect("item") {
            Some(FollowItem::Line(l)) => seqs.push(l.seq),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seqs, [1, 3]);
    fake.live
        .send(log_line(4, Stream::Err, b"filtered"))
        .expect("send");
    fake.live
        .send(log_line(5, Stream::Out, b"five"))
        .expect("send");
    match within("live line", follower.next()).await.expect("item") {
        Some(FollowItem::Line(l)) => assert_eq!((l.seq, l.line.as_str()), (5, "five")),
        other => panic!("unexpected {other:?}"),
    }
    let err = client
        .follow_logs("nope", 1, None)
        .await
        .err()
        .expect("unknown service");
    assert!(
        matches!(err, ClientError::Api { status: 404, .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The client against a live engine

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_round_trip() {
    let mut live = Live::start(&["a", "b"]).await;
    let mut client = Client::connect(&live.socket).await.expect("client");
    let report = client.status(&[]).await.expect("status");
    assert_eq!(
        report
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(
        client.status(&["b"]).await.expect("status").services.len(),
        1
    );
    assert!(matches!(
        client.status(&["zz"]).await,
        Err(ClientError::Api { status: 404, .. })
    ));
    assert_eq!(
        client.service("a").await.expect("service").state,
        State::Stopped
    );
    let stopped = client.act("b", Action::Stop, true).await.expect("stop");
    assert_eq!(
        (stopped.state, stopped.reason.as_deref()),
        (State::Stopped, Some("stopped by hand"))
    );
    match client.act("a", Action::Start, true).await {
        Err(ClientError::Api {
            status: 500,
            body:
                ErrorBody {
                    error,
                    detail: ErrorDetail::Failed { service, .. },
                },
        }) => {
            assert!(error.starts_with("a: "), "{error}");
            assert_eq!(service, "a");
        }
        other => panic!("a start of a missing program: {other:?}"),
    }
    assert_eq!(
        client
            .act("b", Action::Restart, false)
            .await
            .expect("accepted")
            .name,
        "b"
    );
    // "a" never ran: the answer is a well-formed, empty list.
    assert_eq!(client.logs("a", 10, None).await.expect("logs"), []);
    std::fs::write(&live.config_path, "not = [valid").expect("write");
    assert!(matches!(client.reload().await, Err(ClientError::Config(_))));
    client.shutdown().await.expect("shutdown");
    within("the shutdown signal", live.shutdown_rx.recv())
        .await
        .expect("signalled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_says_not_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("warden.sock");
    let err = Client::connect(&socket)
        .await
        .err()
        .expect("no socket file");
    assert!(
        matches!(&err, ClientError::NotRunning { path } if *path == socket),
        "{err:?}"
    );
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    let err = Client::connect(&socket)
        .await
        .err()
        .expect("nobody listens");
    assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
    assert!(err.to_string().contains("warden is not running"));
}

// ---------------------------------------------------------------------------------------
// docs/api.yaml matches the server

/// The `paths:` of an `OpenAPI` file by text matching: `  /path:` lines and their
/// `    method:` lines.
fn documented_routes(yaml: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let mut in_paths = false;
    let mut path: Option<String> = None;
    for line in yaml.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = Some(format!("/{p}"));
        } else if let Some(m) = line.strip_prefix("    ").and_then(|m| m.strip_suffix(':'))
            && ["get", "post", "put", "delete", "patch"].contains(&m)
        {
            routes.insert((
                m.to_ascii_uppercase(),
                path.clone().expect("a method under a path"),
            ));
        }
    }
    routes
}

/// `required: [a, b]` of each schema under `components: schemas:`.
fn documented_required(yaml: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let mut in_schemas = false;
    let mut schema: Option<String> = None;
    for line in yaml.lines() {
        if line.starts_with("  ") && !line.starts_with("   ") {
            in_schemas = line == "  schemas:";
            continue;
        }
        if !in_schemas {
            continue;
        }
        if let Some(name) = line.strip_prefix("    ").and_then(|n| n.strip_suffix(':')) {
            if !name.starts_with(' ') {
                schema = Some(name.to_owned());
            }
        } else if let Some(list) = line
            .strip_prefix("      required: [")
            .and_then(|l| l.strip_suffix(']'))
        {
            let names = list.split(',').map(|s| s.trim().to_owned()).collect();
            out.insert(schema.clone().expect("a schema"), names);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_yaml_describes_every_route_and_shape() {
    let yaml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.yaml"))
            .expect("docs/api.yaml");
    let documented = documented_routes(&yaml);
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented, served,
        "docs/api.yaml and the server's routes differ"
    );
    let required = documented_required(&yaml);
    for schema in [
        "StatusReport",
        "WardenInfo",
        "ServiceStatus",
        "LastExit",
        "ReloadReport",
        "LogLine",
        "Error",
    ] {
        assert!(required.contains_key(schema), "schema {schema} missing");
    }
    let shape = |name: &str| {
        required
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("schema {name}"))
    };

    let live = Live::start(&["a", "b"]).await;
    for (method, template) in &documented {
        let path = template.replace("{name}", "a");
        let a = unix_request(&live.socket, method, &path).await;
        assert!(
            a.status != 404 && a.status != 405,
            "{method} {path}: {}",
            a.status
        );
        if template == "/metrics" {
            // Prometheus text, not JSON (parsed by a real parser in crates/warden/tests/metrics.rs).
            assert_eq!(a.status, 200, "GET /metrics");
            let text = String::from_utf8_lossy(&a.body);
            assert!(text.contains("warden_service_up{service=\"a\"}"), "{text}");
            continue;
        }
        let v = a.json();
        let expected = match (method.as_str(), template.as_str(), a.status) {
            ("GET", "/health", 200 | 503) => {
                for s in v["services"].as_object().expect("services").values() {
                    assert_eq!(keys(s), set(&["state", "health", "counted"]), "{v}");
                }
                shape("HealthReport")
            }
            ("GET", "/v1/status", 200) => {
                assert_eq!(keys(&v["warden"]), shape("WardenInfo"));
                for s in v["services"].as_array().expect("services") {
                    assert_eq!(keys(s), shape("ServiceStatus"));
                }
                shape("StatusReport")
            }
            ("POST", "/v1/rotate" | "/v1/services/{name}/rotate", 200) => {
                let files = v["files"].as_array().expect("files");
                // stdout's and stderr's file of a, or of a and b.
                let want = if template == "/v1/rotate" { 4 } else { 2 };
                assert_eq!(files.len(), want, "{v}");
                for f in files {
                    assert_eq!(keys(f), shape("RotatedFile"));
                    assert_eq!(f["outcome"], "empty", "{v}");
                }
                shape("RotateReport")
            }
            ("GET", "/v1/services/{name}", 200) | ("POST", _, 200 | 202)
                if template.starts_with("/v1/services/") =>
            {
                shape("ServiceStatus")
            }
            ("POST", _, 500) if template.starts_with("/v1/services/") => shape("ActionFailed"),
            ("GET", "/v1/services/{name}/logs", 200) => {
                for l in v["lines"].as_array().expect("lines") {
                    assert_eq!(keys(l), shape("LogLine"));
                }
                shape("LogsResponse")
            }
            ("GET", "/v1/services/{name}/config", 200) => {
                assert_eq!(keys(&v["backoff"]), shape("BackoffView"));
                assert_eq!(keys(&v["log"]), shape("LogView"));
                shape("ServiceConfigView")
            }
            ("POST", "/v1/reload", 200) => shape("ReloadReport"),
            ("POST", "/v1/reload", 422) => shape("ConfigErrors"),
            ("POST", "/v1/shutdown", 202) => set(&["shutting_down"]),
            other => panic!("unexpected answer {other:?}: {v}"),
        };
        assert_eq!(keys(&v), expected, "{method} {path}");
    }
    // Every error shape has `error`.
    for (name, fields) in &required {
        if ["Error", "UnknownService", "ActionFailed", "ConfigErrors"].contains(&name.as_str()) {
            assert!(fields.contains("error"), "{name}");
        }
    }
    let v = live.get("/v1/services/zz").await.json();
    assert_eq!(keys(&v), shape("UnknownService"));
    let v = live.get("/v1/nowhere").await.json();
    assert_eq!(keys(&v), shape("Error"));
}

// ---------------------------------------------------------------------------------------
// Hardening (issue 8)

fn fake_ctx() -> Arc<ApiContext> {
    let backend = Arc::new(Fake {
        logs: Arc::new(FakeLogs {
            tail: Vec::new(),
            live: broadcast::channel(1).0,
        }),
    });
    Arc::new(ApiContext::with_backend(backend, mpsc::channel(1).0))
}

/// E.13: auth schemes are case-insensitive (RFC 9110 11.1): `bearer`, `BEARER` work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e13_lowercase_bearer_is_accepted() {
    let server = serve_tcp(
        "127.0.0.1:0".parse().expect("addr"),
        Secret("tok-e13".into()),
        fake_ctx(),
    )
    .await
    .expect("serve");
    let addr = server.local_addr().expect("tcp addr");
    for auth in [
        "Authorization: bearer tok-e13\r\n",
        "Authorization: BEARER tok-e13\r\n",
        "Authorization: bEaReR  tok-e13\r\n",
    ] {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let a = exchange(stream, &request_bytes("GET", "/v1/status", auth)).await;
        assert_eq!(a.status, 200, "{auth:?}");
    }
    let stream = TcpStream::connect(addr).await.expect("connect");
    let a = exchange(
        stream,
        &request_bytes("GET", "/v1/status", "Authorization: bearer nope\r\n"),
    )
    .await;
    assert_eq!(a.status, 401);
}

/// C.7 (client): a socket file of another user is not trusted, even if it answers. Needs
/// root (to give the file away); `peer_allowed` is unit-tested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c7_the_client_refuses_a_socket_of_another_user() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let fake = fake_server(4);
    Client::connect(&fake.socket)
        .await
        .expect("root's own socket is trusted")
        .status(&[])
        .await
        .expect("status");
    std::os::unix::fs::lchown(&fake.socket, Some(65534), Some(65534)).expect("chown");
    let err = Client::connect(&fake.socket)
        .await
        .err()
        .expect("a socket of uid 65534 is refused");
    assert!(
        matches!(&err, ClientError::Untrusted { path, owner: 65534, own: 0 } if *path == fake.socket),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&fake.socket.display().to_string()) && msg.contains("uid 65534"),
        "{msg}"
    );
}

/// E.12: what the HTTP layer refuses (malformed, oversized, late heads) is answered with a
/// JSON `error` like every other 4xx; HEAD is answered like GET, without a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e12_answers_of_the_http_layer_carry_a_json_error() {
    let fake = fake_server(4);
    let ask = |raw: Vec<u8>| {
        let socket = fake.socket.clone();
        async move {
            let stream = within("connect", UnixStream::connect(&socket))
                .await
                .expect("connect");
            exchange(stream, &raw).await
        }
    };
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /v1/status HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET /v1/status HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET /v1/status HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET /v1/status HTTP/7.0\r\n\r\n",
    ] {
        let a = ask(raw.to_vec()).await;
        assert_eq!(a.status, 400, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert!(a.error().contains("malformed"), "{}", a.error());
    }
    let big = format!(
        "GET /v1/status HTTP/1.1\r\nHost: warden\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    let a = ask(big.into_bytes()).await;
    assert_eq!(a.status, 431);
    assert!(a.error().contains("larger than"), "{}", a.error());
    let many = "X-Many: v\r\n".repeat(200);
    let a = ask(format!("GET /v1/status HTTP/1.1\r\n{many}\r\n").into_bytes()).await;
    assert_eq!(a.status, 431);
    a.error();

    // HEAD: the headers GET would get, no body (RFC 9110 9.3.2 forbids one).
    let a = ask(request_bytes("HEAD", "/v1/status", "")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert!(a.body.is_empty());
    let a = ask(request_bytes("HEAD", "/v1/reload", "")).await;
    assert_eq!(a.status, 405);
    assert_eq!(a.header("allow"), Some("POST"));
    assert_eq!(a.header("content-type"), Some("application/json"));

    // A head that never completes: 408 with a JSON error after the head timeout.
    let mut stream = UnixStream::connect(&fake.socket).await.expect("connect");
    let started = Instant::now();
    stream.write_all(b"GET /v1/sta").await.expect("write");
    let mut raw = Vec::new();
    within("the 408", stream.read_to_end(&mut raw))
        .await
        .expect("read");
    let a = parse_answer(&raw);
    assert_eq!(a.status, 408);
    assert!(a.error().contains("did not arrive"), "{}", a.error());
    let waited = started.elapsed();
    assert!(
        waited + Duration::from_millis(50) >= HEADER_TIMEOUT,
        "{waited:?}"
    );
}

/// B.6: more idle connections without a token than the server has places for do not lock an
/// authorized client out; the idle ones that make room are told why, with a JSON 503.
/// (Before: at 512 connections, every new one was closed unanswered.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b6_idle_connections_without_a_token_do_not_lock_out_an_authorized_client() {
    let _turn = LOAD_TURN.lock().await;
    let server = serve_tcp(
        "127.0.0.1:0".parse().expect("addr"),
        Secret("tok-b6".into()),
        fake_ctx(),
    )
    .await
    .expect("serve");
    let addr = server.local_addr().expect("tcp addr");
    raise_nofile(2 * MAX_WAITING as u64 + 1024);
    let mut idle = Vec::new();
    // More than the old limit of all connections (512), and than the waiting pool.
    for _ in 0..MAX_WAITING + 10 {
        idle.push(
            within("connect", TcpStream::connect(addr))
                .await
                .expect("connect"),
        );
    }
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.expect("connect");
    let a = exchange(
        stream,
        &request_bytes("GET", "/v1/status", "Authorization: Bearer tok-b6\r\n"),
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The oldest idle connection made room, and was told so.
    let a = exchange(idle.remove(0), b"").await;
    assert_eq!(a.status, 503);
    assert!(a.error().contains("try again"), "{}", a.error());
    // One that asks without a token is answered at once.
    let a = exchange(
        idle.pop().expect("one"),
        &request_bytes("GET", "/v1/status", ""),
    )
    .await;
    assert_eq!(a.status, 401);
}

// ---------------------------------------------------------------------------------------
// Load: the server in a child process, the clients here
//
// The child is this test binary, run again for `load_server_child` only: the same library
// code as the real `warden` (an engine with a real service, the API on TCP and a Unix
// socket), in a process of its own, so that its RSS is the server's alone. (The real binary
// is another crate's and is not built for warden-core's tests.)

const LOAD_CHILD: &str = "WARDEN_API_LOAD_CHILD";
const LOAD_SCRIPT: &str = "WARDEN_API_LOAD_SCRIPT";
const LOAD_TOKEN: &str = "tok-load-7c1e";
/// About 700 lines of 2,000 bytes (plus a newline) a second: 1.4 MB/s, to each follower.
const FLOOD: &str = "l=$(printf '%02000d' 0); while :; do \
    for i in 1 2 3 4 5 6 7 8 9 10; do echo \"$l\"; done; sleep 0.01; done";

/// The server half of the load tests (they run it in a child process); without its
/// environment variable it does nothing.
#[test]
#[ignore = "the server half of the load tests, which run it in a child process"]
fn load_server_child() {
    let Ok(dir) = std::env::var(LOAD_CHILD) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let root = PathBuf::from(dir);
        std::fs::create_dir_all(root.join("logs")).expect("log dir");
        let script = std::env::var(LOAD_SCRIPT).unwrap_or_else(|_| FLOOD.to_owned());
        let mut flood = service("flood", &root);
        flood.command = vec!["/bin/sh".into(), "-c".into(), script];
        flood.autostart = true;
        let config = Config {
            path: root.join("warden.toml"),
            dir: root.clone(),
            warden: WardenSettings {
                log_dir: root.join("logs"),
                state_dir: root.join("state"),
                shutdown_timeout: Duration::from_secs(5),
                api: None,
                api_token: None,
                when_all_ended: warden_core::config::WhenAllEnded::Keep,
                log: warden_core::config::WardenLog::default(),
                socket: None,
                health: warden_core::config::WardenHealth::default(),
            },
            services: vec![flood],
            warnings: Vec::new(),
        };
        let state = Arc::new(StateDir::lock(&config.warden.state_dir).expect("state dir"));
        let (_kill, kill_rx) = watch::channel(false);
        let events = Events::plain();
        let (handle, _task, ready) = Engine::new(config, state, events, kill_rx, false).spawn();
        within("engine ready", ready).await.expect("engine started");
        let ctx = Arc::new(ApiContext::new(handle, mpsc::channel(1).0));
        let tcp = serve_tcp(
            "127.0.0.1:0".parse().expect("addr"),
            Secret(LOAD_TOKEN.into()),
            ctx.clone(),
        )
        .await
        .expect("serve tcp");
        let _unix = serve_unix(&root.join("warden.sock"), ctx).expect("serve unix");
        println!("READY {}", tcp.local_addr().expect("addr"));
        // The parent kills this process (and it dies with the parent); a bound anyway.
        tokio::time::sleep(Duration::from_secs(180)).await;
    });
}

/// The load tests take turns: each measures latency and memory under a load of its own.
static LOAD_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct LoadServer {
    dir: tempfile::TempDir,
    child: warden_core::process::Child,
    addr: std::net::SocketAddr,
}

impl LoadServer {
    /// The server, its service running `script` (default [`FLOOD`]).
    async fn start(script: Option<&str>) -> LoadServer {
        let dir = tempfile::tempdir().expect("tempdir");
        // Through warden's own spawn: its reaper owns waitpid in this process.
        let spec = warden_core::process::SpawnSpec {
            program: std::env::current_exe().expect("test binary").into(),
            args: [
                "--exact",
                "load_server_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ]
            .iter()
            .map(Into::into)
            .collect(),
            cwd: dir.path().to_owned(),
            clear_env: false,
            env: [(LOAD_CHILD.into(), dir.path().as_os_str().to_owned())]
                .into_iter()
                .chain(script.map(|s| (LOAD_SCRIPT.into(), s.into())))
                .collect(),
            output: warden_core::process::Output::Separate,
            credentials: warden_core::process::Credentials::default(),
            confinement: None,
        };
        let mut child = warden_core::process::spawn(&spec).expect("run the server child");
        let stdout = child.take_stdout().expect("stdout");
        let mut stderr = child.take_stderr().expect("stderr");
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        });
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let addr = within("the child to listen", async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .expect("read")
                    .expect("the child ended before it listened");
                // libtest prints `test load_server_child ... ` first, on the same line.
                if let Some((_, addr)) = line.split_once("READY ") {
                    return addr.trim().parse().expect("an address");
                }
            }
        })
        .await;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        LoadServer { dir, child, addr }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("warden.sock")
    }

    /// The child's resident memory, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.pid()))
            .expect("the child's status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kb * 1024
    }

    /// An authorized `GET /v1/status` on a new connection: its status and how long it took.
    async fn status(&self) -> (u16, Duration) {
        let started = Instant::now();
        let stream = within("connect", TcpStream::connect(self.addr))
            .await
            .expect("connect");
        let auth = format!("Authorization: Bearer {LOAD_TOKEN}\r\n");
        let a = exchange(stream, &request_bytes("GET", "/v1/status", &auth)).await;
        (a.status, started.elapsed())
    }
}

impl Drop for LoadServer {
    fn drop(&mut self) {
        let _ = self.child.kill_tree();
    }
}

const MIB: u64 = 1 << 20;

/// Follow `flood` over TCP and count: returns a task's handle that yields the highest
/// sequence number seen so far through `seen`.
fn count_lines(
    addr: std::net::SocketAddr,
) -> (
    Arc<std::sync::atomic::AtomicU64>,
    tokio::task::JoinHandle<()>,
) {
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let client = Client::connect_tcp(addr, Secret(LOAD_TOKEN.into()))
            .await
            .expect("client");
        let mut follower = client.follow_logs("flood", 0, None).await.expect("follow");
        while let Ok(Some(item)) = follower.next().await {
            if let FollowItem::Line(l) = item {
                out.fetch_max(l.seq, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    (seen, task)
}

/// Wait until the counting follower saw line `seq`, sampling the child's RSS on the way;
/// returns the highest RSS seen.
async fn run_until(server: &LoadServer, seen: &std::sync::atomic::AtomicU64, seq: u64) -> u64 {
    let mut peak = server.rss();
    let deadline = Instant::now() + 6 * WAIT;
    loop {
        let now = seen.load(std::sync::atomic::Ordering::Relaxed);
        if now >= seq {
            return peak.max(server.rss());
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for line {seq} of the flood; at {now}; RSS peak {} MiB",
            peak / MIB
        );
        peak = peak.max(server.rss());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// B.5: 100 followers that never read, on a service printing 2 KB lines (1.4 MB/s):
/// the server's memory stays within 32 MiB of what it was before them (each follower may
/// cost about `FOLLOW_BUDGET` plus the HTTP library's write buffer, some 80 KiB; before the
/// fix each held up to 64 chunks of 64 KiB), and comes back when they leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b5_stalled_followers_do_not_grow_warden_memory() {
    let _turn = LOAD_TURN.lock().await;
    let server = LoadServer::start(None).await;
    let (seen, reader) = count_lines(server.addr);
    let warm = run_until(&server, &seen, 1_000).await;
    let before = server.rss();
    let mut stalled = Vec::new();
    for _ in 0..100 {
        let mut s = UnixStream::connect(server.socket()).await.expect("connect");
        s.write_all(&request_bytes(
            "GET",
            "/v1/services/flood/logs?n=1000&follow=true",
            "",
        ))
        .await
        .expect("write");
        stalled.push(s);
    }
    // 6 MB more output: far more than every buffer between warden and a follower holds.
    let start = seen.load(std::sync::atomic::Ordering::Relaxed);
    let peak = run_until(&server, &seen, start + 3_000).await;
    eprintln!(
        "RSS warm {} MiB, before {} MiB, peak {} MiB",
        warm / MIB,
        before / MIB,
        peak / MIB
    );
    assert!(
        peak < before + 32 * MIB,
        "100 stalled followers grew warden from {} MiB to {} MiB",
        before / MIB,
        peak / MIB
    );
    drop(stalled);
    let after = run_until(&server, &seen, start + 3_500).await;
    assert!(after < before + 20 * MIB, "after: {} MiB", after / MIB);
    reader.abort();
}

/// Let this process (and the server child, which inherits it) have `n` open files.
fn raise_nofile(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim), 0);
        if lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim), 0);
        }
    }
    assert!(
        lim.rlim_cur >= n,
        "RLIMIT_NOFILE is {} (hard); {n} needed",
        lim.rlim_max
    );
}

/// Connects without a token and sends nothing; when the server closes the connection
/// (to make room, or at the head timeout), comes back a second later.
async fn idle_client(addr: std::net::SocketAddr, connected: Arc<std::sync::atomic::AtomicUsize>) {
    let mut first = true;
    loop {
        let c = TcpStream::connect(addr).await;
        if let Err(e) = &c {
            eprintln!("DEBUG idle connect: {e}");
        }
        if let Ok(mut s) = c {
            if std::mem::take(&mut first) {
                connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Slowloris: a request head, one header line every half second, never the end; comes
/// back a second after the server closes it.
async fn slow_client(addr: std::net::SocketAddr, connected: Arc<std::sync::atomic::AtomicUsize>) {
    let mut first = true;
    loop {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            if std::mem::take(&mut first) {
                connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let mut buf = [0u8; 512];
            if s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: w\r\n")
                .await
                .is_ok()
            {
                loop {
                    tokio::select! {
                        _ = s.read(&mut buf) => break,
                        () = tokio::time::sleep(Duration::from_millis(500)) => {
                            if s.write_all(b"X-Slow: 1\r\n").await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// An authorized follower that never reads a byte and never leaves.
async fn stalled_follower(
    addr: std::net::SocketAddr,
    connected: Arc<std::sync::atomic::AtomicUsize>,
) {
    let auth = format!("Authorization: Bearer {LOAD_TOKEN}\r\n");
    let request = request_bytes("GET", "/v1/services/flood/logs?n=1000&follow=true", &auth);
    loop {
        if let Ok(mut s) = TcpStream::connect(addr).await
            && s.write_all(&request).await.is_ok()
        {
            connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// B.6 and B.5 together: 1,000 idle connections without a token, 1,000 slowloris clients
/// and 1,000 followers that never read, all at once, the first two kinds coming back a
/// second after they are closed. An authorized `status` keeps answering fast, and the
/// server's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b6_a_thousand_hostile_clients_of_each_kind_do_not_slow_status() {
    let _turn = LOAD_TURN.lock().await;
    raise_nofile(8192);
    // 100 lines of 200 bytes a second: the followers' backlog (1,000 lines) fills what the
    // OS buffers for each, so they are stalled from the start. (The cost of a flood to
    // stalled followers is `b5_...`'s business; encoding it 256 times over would only
    // measure how fast this debug build is.)
    let server = LoadServer::start(Some(
        "l=$(printf '%0200d' 0); while :; do echo \"$l\"; sleep 0.01; done",
    ))
    .await;
    let (seen, reader) = count_lines(server.addr);
    run_until(&server, &seen, 100).await;
    let before = server.rss();
    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut hostile = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        hostile.spawn(idle_client(server.addr, connected.clone()));
        hostile.spawn(slow_client(server.addr, connected.clone()));
        hostile.spawn(stalled_follower(server.addr, connected.clone()));
    }
    let deadline = Instant::now() + 3 * WAIT;
    while connected.load(std::sync::atomic::Ordering::Relaxed) < 3000 {
        assert!(
            Instant::now() < deadline,
            "only {} hostile clients got in",
            connected.load(std::sync::atomic::Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Some 8 seconds under attack: past the head timeout, so slowloris clients come back.
    let mut times = Vec::new();
    let mut peak = server.rss();
    for _ in 0..80 {
        let (status, took) = server.status().await;
        assert_eq!(status, 200);
        times.push(took);
        peak = peak.max(server.rss());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hostile.abort_all();
    reader.abort();
    times.sort();
    let median = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    let worst = times[times.len() - 1];
    eprintln!(
        "status under attack: median {median:?}, p90 {p90:?}, worst {worst:?}; RSS before {} MiB, peak {} MiB",
        before / MIB,
        peak / MIB
    );
    // Latency figures belong to the chaos suite (scenario 7 measures the 100 ms target on a
    // release build). Here, a debug build sharing 2 CPUs with 3,000 hostile clients (and
    // whatever else runs) must not be starved: the median stays well under a second, and
    // no answer takes anywhere near the client's own timeout.
    assert!(median < Duration::from_millis(250), "median {median:?}");
    assert!(
        worst < Duration::from_secs(10),
        "worst {worst:?} (p90 {p90:?})"
    );
    assert!(
        peak < before + 64 * MIB,
        "from {} MiB to {} MiB",
        before / MIB,
        peak / MIB
    );
}

/// E.11: the spec says `n` is any integer >= 0; a huge one was 400, now it means "all".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e11_a_huge_n_is_clamped_not_refused() {
    let fake = fake_server(4);
    let a = unix_request(
        &fake.socket,
        "GET",
        "/v1/services/web/logs?n=99165581001148894230842703872",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["lines"].as_array().expect("lines").len(), 3);
}

/// E.11: `docs/api.yaml` is YAML that a YAML parser reads: no plain scalar holds `": "`
/// (the bug: `description: Each as "FILE:LINE:COL: message"` unquoted). The full check
/// with an `OpenAPI` validator is `tools/api-check.sh`.
#[test]
fn e11_api_yaml_has_no_unquoted_colon_in_a_plain_scalar() {
    let yaml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.yaml"))
            .expect("docs/api.yaml");
    // Inside a block scalar (`key: |` or `key: >-`), text is text.
    let mut block: Option<usize> = None;
    for (i, line) in yaml.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        if let Some(b) = block {
            if line.trim().is_empty() || indent > b {
                continue;
            }
            block = None;
        }
        let Some((_, value)) = line.trim_start().split_once(": ") else {
            continue;
        };
        if value.starts_with(['|', '>']) {
            block = Some(indent);
            continue;
        }
        let plain = !value.starts_with(['"', '\'', '[', '{']);
        assert!(
            !(plain && value.contains(": ")),
            "docs/api.yaml:{}: a plain value with \": \": {line}",
            i + 1
        );
    }
}
