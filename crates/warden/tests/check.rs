//! `warden check`: exit 0 with a summary, or exit 2 listing every error with its place.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Env, assert_fails, show, warden_bin};

/// `warden check` on `config`: it must fail with exit 2; returns stderr.
fn check_fails(config: &str, needle: &str) -> String {
    let env = Env::new(config);
    assert_fails(&env.run(&["check"]), 2, needle)
}

#[test]
fn a_valid_config_passes_with_a_summary() {
    let env = Env::new(
        "[services.api]\ncommand = [\"sleep\", \"1\"]\n[services.worker]\ncommand = \"sleep 2\"\n",
    );
    let out = env.run(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("OK, 2 services (api, worker)"), "{stdout}");
}

#[test]
fn every_error_is_listed_with_file_line_and_column() {
    let env = Env::new(
        "[services.api]\ncomand = [\"x\"]\n\n[services.web]\ncommand = []\nstop_timeout = \"10 parsecs\"\nstop_signal = \"TERMINATE\"\n",
    );
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = env.config().display().to_string();
    assert!(
        err.contains(&format!("{file}:2:1:")),
        "unknown key at 2:1: {err}"
    );
    assert!(err.contains("did you mean \"command\"?"), "{err}");
    assert!(
        err.contains(&format!("{file}:5:")),
        "empty command on line 5: {err}"
    );
    assert!(
        err.contains(&format!("{file}:6:")),
        "bad duration on line 6: {err}"
    );
    assert!(
        err.contains(&format!("{file}:7:")),
        "bad signal on line 7: {err}"
    );
}

#[test]
fn an_unset_variable_is_named_with_a_hint() {
    let err = check_fails(
        "[services.api]\ncommand = [\"./api\", \"--port\", \"${WARDEN_TEST_SURELY_UNSET_PORT}\"]\n",
        "WARDEN_TEST_SURELY_UNSET_PORT",
    );
    assert!(err.contains(":-"), "shows how to give a default: {err}");
}

#[test]
fn a_missing_file_is_a_config_error() {
    let env = Env::new("");
    std::fs::remove_file(env.config()).unwrap();
    assert_fails(&env.run(&["check"]), 2, "warden.toml");
}

#[test]
fn an_unknown_encoding_is_named_at_its_place() {
    check_fails(
        "[services.api]\ncommand = [\"x\"]\n[services.api.log]\nencoding = \"klingon\"\n",
        ":4:12: encoding: unknown encoding \"klingon\"",
    );
}

#[test]
fn the_example_config_passes() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/warden.toml");
    let o = Command::new(warden_bin())
        .args(["check", "-c"])
        .arg(&example)
        .env_remove("WEB_PORT")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("OK, 3 services (web, worker, flaky)"),
        "{}",
        show(&o)
    );
}
