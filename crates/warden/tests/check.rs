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

const MISSING: &str = "warden-test-surely-missing-program";

#[test]
fn a_missing_program_is_a_warning_with_its_place_and_exit_0() {
    let env = Env::new(&format!(
        "[services.web]\nrestart = \"never\"\ncommand = \"{MISSING} --port 80\"\nstop_command = [\"{MISSING}-stop\"]\n"
    ));
    let o = env.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let file = env.config().display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:3:1: warning: command: program \"{MISSING}\" is not found on PATH ("
        )),
        "{}",
        show(&o)
    );
    assert!(
        err.contains(&format!(
            "{file}:4:1: warning: stop_command: program \"{MISSING}-stop\" is not found on PATH"
        )),
        "{}",
        show(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("OK, 1 service (web); 2 warnings"),
        "{}",
        show(&o)
    );
}

#[test]
fn strict_turns_warnings_into_errors() {
    let env = Env::new(&format!("[services.web]\ncommand = [\"{MISSING}\"]\n"));
    let o = env.run(&["check", "--strict"]);
    let err = assert_fails(
        &o,
        2,
        "warden: 1 error(s) (warnings are errors with --strict)",
    );
    let file = env.config().display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:2:1: command: program \"{MISSING}\" is not found on PATH"
        )),
        "{err}"
    );
    assert!(!err.contains("nothing was changed"), "{err}");
    // Without warnings, --strict passes.
    env.write_config("[services.web]\ncommand = [\"sh\", \"-c\", \"true\"]\n");
    let o = env.run(&["check", "--strict"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(o.stderr.is_empty(), "{}", show(&o));
}

#[test]
fn check_ends_with_the_count_of_errors_as_it_changes_nothing() {
    let err = check_fails("[services.api]\ncomand = [\"x\"]\n", "warden: 2 error(s)");
    assert_eq!(err.lines().last(), Some("warden: 2 error(s)"), "{err}");
    assert!(!err.contains("nothing was changed"), "{err}");
}

#[test]
fn an_unknown_key_of_supervisord_hints_at_warden_s_own() {
    let err = check_fails(
        "[services.api]\ncommand = [\"sh\"]\nautorestart = true\n",
        ":3:1: unknown key \"autorestart\" in [services.api]",
    );
    assert!(
        err.contains("(did you mean \"restart\"? \"autorestart\" is supervisord's name for it)"),
        "{err}"
    );
}

/// `warden down` when the test ends.
#[cfg(unix)]
struct Down<'a>(&'a Env);

#[cfg(unix)]
impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["down"]);
    }
}

#[cfg(unix)]
#[test]
fn reload_with_a_missing_program_still_reloads_and_shows_the_warning() {
    let sleeper = format!(
        "[services.a]\ncommand = [{}, \"--sleep\", \"forever\"]\n",
        common::tc()
    );
    let env = Env::new(&sleeper);
    let o = env.run(&["up", "-d"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let _down = Down(&env);
    env.write_config(&format!(
        "{sleeper}[services.ghost]\ncommand = [\"{MISSING}\"]\nautostart = false\n"
    ));
    let o = env.run(&["reload"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("reloaded: added ghost; 1 unchanged"),
        "{}",
        show(&o)
    );
    let file = env.config().display().to_string();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!(
            "{file}:4:1: warning: command: program \"{MISSING}\" is not found on PATH"
        )),
        "{}",
        show(&o)
    );
    let o = env.run(&["status", "--json"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"ghost\""),
        "{}",
        show(&o)
    );
    // warden's own log has it too.
    let log = env.read(".warden/warden.log");
    assert!(
        log.contains(&format!("[warden] {file}:4:1: warning: command: program")),
        "{log}"
    );
}

#[cfg(unix)]
#[test]
fn up_prints_the_warning_as_a_warden_event_and_starts_the_rest() {
    let env = Env::new(&format!(
        "[services.a]\ncommand = [{}, \"--sleep\", \"forever\"]\n[services.ghost]\ncommand = [\"{MISSING}\"]\nrestart = \"never\"\n",
        common::tc()
    ));
    let mut w = env.up(&[]);
    let file = env.config().display().to_string();
    let err = w.wait_stderr("[warden] supervising");
    assert!(
        err.contains(&format!(
            "[warden] {file}:4:1: warning: command: program \"{MISSING}\" is not found on PATH"
        )),
        "{err}"
    );
    assert!(err.contains("[a] started"), "{err}");
}
