//! `--api HOST:PORT --token-file FILE`: the CLI against a warden's TCP API, as through an
//! SSH tunnel (here on loopback).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::process::{Command, Output};

use common::{Env, WAIT, assert_fails, show, tc, wait_for, warden_bin};

/// A port the OS had free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `warden ARGS` without `-c`, from a directory with no config.
fn remote(args: &[&str]) -> Output {
    Command::new(warden_bin())
        .args(args)
        .current_dir(std::env::temp_dir())
        .env("NO_COLOR", "1")
        .env_remove("WARDEN_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn status_logs_and_restart_work_over_the_tcp_api() {
    let port = free_port();
    let env = Env::new(&format!(
        r#"
[warden]
api = "127.0.0.1:{port}"

[services.web]
command = [{tc}, "--lines", "2", "--sleep", "forever"]
"#,
        tc = tc()
    ));
    let _warden = env.up(&[]);
    let token = env.path(".warden/api.token");
    wait_for("the generated token", WAIT, || token.exists().then_some(()));
    let api = format!("127.0.0.1:{port}");
    let token = token.display().to_string();
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["--api", &api, "--token-file", &token]);
        remote(&args)
    };
    let o = wait_for("web running over --api", WAIT, || {
        let o = with(&["status"]);
        String::from_utf8_lossy(&o.stdout)
            .contains("running")
            .then_some(o)
    });
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("NAME"), "{}", show(&o));
    assert!(!out.contains('\x1b'), "no colour: {}", show(&o));

    let o = wait_for("web's two lines", WAIT, || {
        let o = with(&["logs", "web", "-n", "5"]);
        (String::from_utf8_lossy(&o.stdout).lines().count() == 2).then_some(o)
    });
    assert!(o.status.success(), "{}", show(&o));

    let o = with(&["restart", "web"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("web: running (pid "),
        "{}",
        show(&o)
    );

    // A wrong token is refused; nothing listening is "not running" (3); --api needs a token
    // and excludes -c.
    let wrong = env.path("wrong.token");
    std::fs::write(&wrong, "nope\n").unwrap();
    let o = remote(&[
        "status",
        "--api",
        &api,
        "--token-file",
        &wrong.display().to_string(),
    ]);
    assert_fails(&o, 1, "bearer token");
    let closed = format!("127.0.0.1:{}", free_port());
    let o = remote(&["status", "--api", &closed, "--token-file", &token]);
    assert_fails(&o, 3, "nothing answers on");
    let o = remote(&["status", "--api", &api]);
    assert_fails(&o, 2, "--token-file");
    let o = remote(&[
        "status",
        "--api",
        &api,
        "--token-file",
        &token,
        "-c",
        "x.toml",
    ]);
    assert_fails(&o, 2, "cannot be used with");
}
