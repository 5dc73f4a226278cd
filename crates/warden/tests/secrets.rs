//! Issue 8, section D: no secret in any message. A secret is planted in `env`, in an
//! `env_file` and in `api_token`; every config error path that can be provoked (check,
//! `up -d`, reload through the CLI, `POST /v1/reload`, SIGHUP into `warden.log`) is, and
//! every output channel is searched for it.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

use common::{Env, WAIT, show, tc, wait_for};

const SECRET: &str = "s3cr3t-XYZ";
const PIN: &str = "987654321";

/// Assert that no output of `what` holds a secret.
#[track_caller]
fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the secret:\n{text}");
    assert!(!text.contains(PIN), "{what} shows the PIN:\n{text}");
    assert!(
        !text.contains("3cr3t"),
        "{what} shows part of the secret:\n{text}"
    );
}

fn good_config() -> String {
    format!(
        "[services.app]\ncommand = [{tc}, \"--sleep\", \"forever\"]\n\
         env = {{ DB_PASSWORD = \"{SECRET}\" }}\nenv_file = \"good.env\"\n",
        tc = tc()
    )
}

/// Every way a secret value can be wrong.
fn bad_config() -> String {
    let deep = format!("{}{SECRET}{}", "${A:-".repeat(40), "}".repeat(40));
    format!(
        "[warden]\napi_token = \"{SECRET}${{\"\n\
         [services.app]\ncommand = [{tc}, \"--sleep\", \"forever\"]\n\
         env_file = \"bad.env\"\n\
         [services.app.env]\n\
         DB_PASSWORD = \"{SECRET}${{\"\n\
         DB_PIN = {PIN}\n\
         DB_REF = \"${{9{SECRET}}}\"\n\
         DB_NUL = \"{SECRET}\\u0000\"\n\
         DB_DEEP = \"{deep}\"\n",
        tc = tc(),
    )
}

const BAD_ENV: &str = "s3cr3t-XYZ\nBAD KEY s3cr3t-XYZ=1\nA=\"s3cr3t-XYZ\" s3cr3t-XYZ\n\
                       B='s3cr3t-XYZ\nC=\"s3cr3t-XYZ\nD=s3cr3t-XYZ\0\n";

fn setup() -> Env {
    let env = Env::new(&good_config());
    std::fs::write(env.path("good.env"), format!("API_KEY={SECRET}\n")).unwrap();
    std::fs::write(env.path("bad.env"), BAD_ENV).unwrap();
    std::fs::write(env.path("token"), format!("{SECRET}\0x\n")).unwrap();
    env
}

/// The errors of the bad config name each key and the env file's lines.
#[track_caller]
fn assert_names_the_keys(what: &str, text: &str) {
    for needle in [
        "api_token",
        "env.DB_PASSWORD",
        "env.DB_PIN",
        "quote the value: DB_PIN = \"...\"",
        "bad.env\", line 1",
        "line 2",
        "line 3",
        "line 4",
        "line 5",
        "line 6",
    ] {
        assert!(text.contains(needle), "{what} lacks {needle:?}:\n{text}");
    }
}

/// `POST /v1/reload` on the control socket; returns the status line and the body.
fn post_reload(env: &Env) -> (String, String) {
    let mut s = UnixStream::connect(env.path(".warden/warden.sock")).unwrap();
    s.write_all(
        b"POST /v1/reload HTTP/1.1\r\nHost: warden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[test]
fn no_secret_in_any_message_of_any_config_error() {
    let env = setup();
    let good = env.read("warden.toml");

    // `check` and `up -d` on the bad config.
    env.write_config(&bad_config());
    let o = env.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert_clean("check", &show(&o));
    assert_names_the_keys("check", &String::from_utf8_lossy(&o.stderr));
    let o = env.run(&["up", "-d"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert_clean("up -d", &show(&o));

    // The token file variant.
    env.write_config(&format!("[warden]\napi_token_file = \"token\"\n{good}"));
    let o = env.run(&["check"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert_clean("check (api_token_file)", &show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("api_token_file: contains a NUL byte"));

    // A running warden with a secret in its (good) config.
    env.write_config(&good);
    let o = env.run(&["up", "-d"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let _down = Down(&env, good.clone());
    let o = env.run(&["status", "--json"]);
    assert_clean("status --json", &show(&o));
    let pid = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["warden"]["pid"]
        .as_i64()
        .unwrap() as i32;
    assert_clean("status", &show(&env.run(&["status"])));

    // Reload through the CLI, through the API, and by SIGHUP.
    env.write_config(&bad_config());
    let o = env.run(&["reload"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert_clean("reload", &show(&o));
    assert_names_the_keys("reload", &String::from_utf8_lossy(&o.stderr));
    let (status, body) = post_reload(&env);
    assert!(status.contains(" 422 "), "{status}\n{body}");
    assert_clean("POST /v1/reload", &body);
    assert!(body.contains("env.DB_PASSWORD"), "{body}");
    let refused = |log: &str| log.matches("reload refused").count();
    let before = refused(&env.read(".warden/warden.log"));
    unsafe {
        libc::kill(pid, libc::SIGHUP);
    }
    let log = wait_for(
        "the SIGHUP reload to be refused in warden.log",
        WAIT,
        || {
            let log = env.read(".warden/warden.log");
            (refused(&log) > before).then_some(log)
        },
    );
    assert_clean("warden.log", &log);
    assert!(log.contains("env.DB_PASSWORD"), "{log}");
    let mode = std::fs::metadata(env.path(".warden/warden.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "warden.log is private");

    // Nothing else in the state dir shows it either.
    for entry in walk(&env.path(".warden")) {
        let data = std::fs::read(&entry).unwrap_or_default();
        assert_clean(
            &entry.display().to_string(),
            &String::from_utf8_lossy(&data),
        );
    }
}

/// Every regular file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(walk(&e.path()));
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    out
}

/// `warden down` when the test ends, with a good config back in place (`down` reads it).
struct Down<'a>(&'a Env, String);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        self.0.write_config(&self.1);
        let _ = self.0.run(&["down"]);
    }
}
