//! A `ready = { log_line = "regex" }` check with real processes through the engine, on every
//! OS (under Wine: tools/wine/test.sh, with `wchild.exe` from `WARDEN_WCHILD`): a service is
//! `starting` until a line of its output matches, then `running`; one whose output never
//! matches fails its start at `start_timeout`, with the reason.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use warden_core::config::{self, Env};
use warden_core::engine::{Engine, Events, Handle};
use warden_core::proto::{ServiceStatus, State};
use warden_core::state::StateDir;

struct NoEnv;

impl Env for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

/// The argv (as TOML) of a program that writes "starting", then `grandchild PID` (Windows:
/// `wchild grandchild`) or "listening on 4242" (Unix), then runs 60 s.
fn talker() -> String {
    if cfg!(windows) {
        let wchild = std::env::var("WARDEN_WCHILD")
            .expect("WARDEN_WCHILD must name wchild.exe (tools/wine/test.sh sets it)");
        format!("[{wchild:?}, \"grandchild\", \"60000\"]")
    } else {
        "[\"sh\", \"-c\", \"echo starting; echo listening on 4242; exec sleep 60\"]".into()
    }
}

/// The line [`talker`] writes once it is ready, as a regex.
const READY: &str = if cfg!(windows) {
    "^grandchild [0-9]+$"
} else {
    "^listening on [0-9]+$"
};

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.to_string_lossy())
}

async fn status(handle: &Handle, name: &str) -> ServiceStatus {
    let report = handle.status().await.unwrap();
    report
        .services
        .into_iter()
        .find(|s| s.name == name)
        .unwrap()
}

/// Poll `name`'s status until `f` holds, at most `within`.
async fn until(
    handle: &Handle,
    name: &str,
    within: Duration,
    f: impl Fn(&ServiceStatus) -> bool,
) -> ServiceStatus {
    let deadline = Instant::now() + within;
    loop {
        let s = status(handle, name).await;
        if f(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{name}: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// stop_timeout = 2s: on Windows this test binary is not warden, so it cannot be the
// `__ctrl-c` helper (process_windows.rs hooks it in) and the stops end by the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_line_ready_check_marks_the_service_up_on_the_matching_line_and_only_then() {
    warden_core::process::init_supervisor().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[warden]\nlog_dir = {logs}\nstate_dir = {state}\n\n\
         [services.ready]\ncommand = {cmd}\nrestart = \"never\"\nmin_uptime = \"30s\"\n\
         stop_timeout = \"2s\"\n\
         ready = {{ log_line = {ready:?} }}\n\n\
         [services.never]\ncommand = {cmd}\nrestart = \"never\"\nstart_timeout = \"5s\"\n\
         stop_timeout = \"2s\"\n\
         ready = {{ log_line = \"^no such line$\" }}\n",
        logs = toml_path(&dir.path().join("logs")),
        state = toml_path(&dir.path().join("state")),
        cmd = talker(),
        ready = READY,
    );
    let path = dir.path().join("warden.toml");
    std::fs::write(&path, &text).unwrap();
    let cfg = config::load_str(&text, &path, &NoEnv).unwrap_or_else(|e| panic!("{:?}", e.errors));
    let state = Arc::new(StateDir::lock(&cfg.warden.state_dir).unwrap());
    let (_kill, kill_rx) = watch::channel(false);
    let (handle, task, started) = Engine::new(cfg, state, Events::plain(), kill_rx, false).spawn();
    tokio::time::timeout(Duration::from_secs(20), started)
        .await
        .unwrap()
        .unwrap();

    // min_uptime = 30s: running this early can only come from the matching line.
    let t0 = Instant::now();
    let up = until(&handle, "ready", Duration::from_secs(20), |s| {
        s.state == State::Running
    })
    .await;
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(up.pid.is_some(), "{up:?}");
    // The other one, whose output never matches, is still starting, then fails its start.
    let s = status(&handle, "never").await;
    assert_eq!(s.state, State::Starting, "{s:?}");
    let s = until(&handle, "never", Duration::from_secs(30), |s| {
        !matches!(s.state, State::Starting | State::Stopping)
    })
    .await;
    let reason = s.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("not up within 5"), "{s:?}");
    assert_eq!(status(&handle, "ready").await.state, State::Running);

    tokio::time::timeout(Duration::from_secs(30), handle.shutdown())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap();
}
