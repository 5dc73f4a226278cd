//! The probes against real peers: an HTTP server, a listener, a peer that accepts and never
//! answers, a closed port, commands that pass, fail and hang (their tree killed). Every
//! test runs on Windows too (under Wine: tools/wine/test.sh), where the commands are
//! `wchild.exe`'s (`WARDEN_WCHILD`).

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use warden_core::config::{HttpProbe, Probe};
use warden_core::health::{self, ExecEnv};

/// A tiny HTTP server on a free port answering every request with `status`, one thread;
/// each request's head is sent back through the returned channel.
fn http_server(status: u16) -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
            let body = "ok";
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, rx)
}

fn http(port: u16, path: &str) -> HttpProbe {
    HttpProbe {
        url: format!("http://127.0.0.1:{port}{path}"),
        host: "127.0.0.1".into(),
        port,
        path: path.into(),
        method: "GET".into(),
        headers: Vec::new(),
        status: Vec::new(),
    }
}

const T: Duration = Duration::from_secs(2);

fn exec_env() -> ExecEnv {
    ExecEnv {
        cwd: std::env::temp_dir(),
        clear_env: false,
        env: Vec::new(),
        credentials: warden_core::process::Credentials::default(),
    }
}

#[tokio::test]
async fn http_passes_on_2xx_and_3xx_and_fails_on_others_or_unlisted_codes() {
    for (code, ok) in [
        (200, true),
        (204, true),
        (302, true),
        (404, false),
        (503, false),
    ] {
        let (port, _) = http_server(code);
        let r = health::run(&Probe::Http(http(port, "/health")), T, &exec_env()).await;
        assert_eq!(r.is_ok(), ok, "{code}: {r:?}");
        if !ok {
            assert!(r.unwrap_err().ends_with(&format!("status {code}")));
        }
    }
    let (port, _) = http_server(503);
    let mut p = http(port, "/");
    p.status = vec![503];
    assert!(
        health::run(&Probe::Http(p), T, &exec_env()).await.is_ok(),
        "a listed code passes"
    );
    let (port, _) = http_server(200);
    let mut p = http(port, "/");
    p.status = vec![204];
    assert!(
        health::run(&Probe::Http(p), T, &exec_env()).await.is_err(),
        "only the listed codes"
    );
}

#[tokio::test]
async fn http_sends_the_method_path_host_and_headers() {
    let (port, heads) = http_server(200);
    let mut p = http(port, "/ready?x=1");
    p.method = "HEAD".into();
    p.headers = vec![("X-Probe".into(), "yes".into())];
    health::run(&Probe::Http(p), T, &exec_env()).await.unwrap();
    let head = heads.recv_timeout(T).unwrap();
    assert!(head.starts_with("HEAD /ready?x=1 HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
    assert!(head.contains("X-Probe: yes\r\n"), "{head}");
}

#[tokio::test]
async fn a_peer_that_accepts_and_never_answers_fails_at_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The kernel accepts (backlog); nobody ever reads or writes.
    let t0 = Instant::now();
    let timeout = Duration::from_millis(300);
    let r = health::run(&Probe::Http(http(port, "/")), timeout, &exec_env()).await;
    let took = t0.elapsed();
    assert_eq!(r.unwrap_err(), "http: no answer within 300ms");
    assert!(took >= timeout && took < Duration::from_secs(2), "{took:?}");
    drop(listener);
}

#[tokio::test]
async fn tcp_passes_on_a_listener_and_fails_on_a_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    assert!(
        health::run(&Probe::Tcp(addr.clone()), T, &exec_env())
            .await
            .is_ok()
    );
    drop(listener);
    let r = health::run(&Probe::Tcp(addr.clone()), T, &exec_env()).await;
    let e = r.unwrap_err();
    assert!(e.starts_with(&format!("tcp {addr}: ")), "{e}");
}

/// The argv of a program that exits with `code`, without a shell.
fn exits_with(code: u8) -> Vec<String> {
    if cfg!(windows) {
        vec![wchild(), "exit".into(), code.to_string()]
    } else if code == 0 {
        vec!["true".into()]
    } else {
        vec!["sh".into(), "-c".into(), format!("exit {code}")]
    }
}

/// The argv of a program that starts a grandchild, writes its pid to `pid_file` and waits
/// for it (60 s): a hanging probe with a tree.
fn hangs_with_a_grandchild(pid_file: &std::path::Path) -> Vec<String> {
    if cfg!(windows) {
        // cmd only redirects wchild's output ("grandchild PID") to the file.
        let line = format!("{} grandchild 60000 > {}", wchild(), pid_file.display());
        vec!["cmd".into(), "/C".into(), line]
    } else {
        let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
        vec!["sh".into(), "-c".into(), script]
    }
}

/// `wchild.exe` (tools/wine/wchild.c) as a Windows path, from `WARDEN_WCHILD`
/// (tools/wine/test.sh sets it).
fn wchild() -> String {
    std::env::var("WARDEN_WCHILD")
        .expect("WARDEN_WCHILD must name wchild.exe (tools/wine/test.sh builds it and sets it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_passes_on_exit_0_fails_otherwise_and_a_hang_is_killed_with_its_tree() {
    warden_core::process::init_supervisor().unwrap();
    assert!(
        health::run(&Probe::Exec(exits_with(0)), T, &exec_env())
            .await
            .is_ok()
    );
    let e = health::run(&Probe::Exec(exits_with(3)), T, &exec_env())
        .await
        .unwrap_err();
    assert_eq!(e, "exec: exited with code 3");
    let e = health::run(
        &Probe::Exec(vec!["/no/such/program".into()]),
        T,
        &exec_env(),
    )
    .await
    .unwrap_err();
    assert!(e.starts_with("exec: "), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild");
    let t0 = Instant::now();
    let e = health::run(
        &Probe::Exec(hangs_with_a_grandchild(&pid_file)),
        Duration::from_millis(1500),
        &exec_env(),
    )
    .await
    .unwrap_err();
    assert_eq!(e, "exec: no exit within 1.5s");
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    let text = std::fs::read_to_string(&pid_file).unwrap();
    let pid: u32 = text
        .trim()
        .trim_start_matches("grandchild ")
        .parse()
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::pid_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "grandchild {pid} survived the probe's timeout"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Regression (chaos scenario 10): an exec probe dropped before its end (the engine bounds
/// the whole probe by the same timeout, which fired first; or the run ended and its probe
/// task was aborted) left its process running, so a hanging probe piled up one process per
/// interval. Its tree is killed when the probe is dropped.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_probe_dropped_before_its_end_has_its_tree_killed() {
    warden_core::process::init_supervisor().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (own, gc) = (dir.path().join("own"), dir.path().join("grandchild"));
    let script = format!(
        "echo $$ > {}.tmp && mv {0}.tmp {0}; sleep 60 & echo $! > {}.tmp && mv {1}.tmp {1}; wait",
        own.display(),
        gc.display()
    );
    let probe = Probe::Exec(vec!["sh".into(), "-c".into(), script]);
    let task =
        tokio::spawn(
            async move { health::run(&probe, Duration::from_secs(120), &exec_env()).await },
        );
    let read = |p: &std::path::Path| -> Option<i32> {
        std::fs::read_to_string(p).ok()?.trim().parse().ok()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let pids = loop {
        if let (Some(a), Some(b)) = (read(&own), read(&gc)) {
            break [a, b];
        }
        assert!(Instant::now() < deadline, "the probe did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let deadline = Instant::now() + Duration::from_secs(10);
    for pid in pids {
        // SAFETY: kill with signal 0 only checks that the pid exists.
        while unsafe { libc::kill(pid, 0) } == 0 {
            assert!(
                Instant::now() < deadline,
                "{pid} outlived the dropped probe"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Is a process with this pid still running?
mod common {
    #[cfg(unix)]
    pub fn pid_alive(pid: u32) -> bool {
        let pid = i32::try_from(pid).unwrap();
        // SAFETY: kill with signal 0 only checks that the pid exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    /// `OpenProcess` + a zero wait.
    #[cfg(windows)]
    pub fn pid_alive(pid: u32) -> bool {
        use windows_sys::Win32::Foundation::{CloseHandle, WAIT_TIMEOUT};
        use windows_sys::Win32::System::Threading::{
            OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE,
            WaitForSingleObject,
        };
        // SAFETY: plain calls; the handle is closed below.
        unsafe {
            let h = OpenProcess(
                PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
                0,
                pid,
            );
            if h.is_null() {
                return false;
            }
            let running = WaitForSingleObject(h, 0) == WAIT_TIMEOUT;
            CloseHandle(h);
            running
        }
    }
}
