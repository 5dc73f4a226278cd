//! The probes against real peers: an HTTP server, a listener, a peer that accepts and never
//! answers, a closed port, commands that pass, fail and hang (their tree killed).

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

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_passes_on_exit_0_fails_otherwise_and_a_hang_is_killed_with_its_tree() {
    warden_core::process::init_supervisor().unwrap();
    let argv = |a: &[&str]| Probe::Exec(a.iter().map(|s| (*s).to_owned()).collect());
    assert!(health::run(&argv(&["true"]), T, &exec_env()).await.is_ok());
    let e = health::run(&argv(&["false"]), T, &exec_env())
        .await
        .unwrap_err();
    assert_eq!(e, "exec: exited with code 1");
    let e = health::run(&argv(&["/no/such/program"]), T, &exec_env())
        .await
        .unwrap_err();
    assert!(e.starts_with("exec: "), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("grandchild");
    let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
    let t0 = Instant::now();
    let e = health::run(
        &argv(&["sh", "-c", &script]),
        Duration::from_millis(500),
        &exec_env(),
    )
    .await
    .unwrap_err();
    assert_eq!(e, "exec: no exit within 500ms");
    assert!(t0.elapsed() < Duration::from_secs(5));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: kill with signal 0 only checks that the pid exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        assert!(
            Instant::now() < deadline,
            "grandchild {pid} survived the probe's timeout"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
