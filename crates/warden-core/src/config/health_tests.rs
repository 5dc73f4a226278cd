//! The health and dependency keys: defaults, every form, bounds and positioned errors.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Condition, Config, ConfigError, OnUnhealthy, Probe, load_str};

fn load(text: &str) -> Result<Config, Vec<ConfigError>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warden.toml");
    load_str(text, &path, &BTreeMap::new()).map_err(|e| e.errors)
}

#[track_caller]
fn ok(text: &str) -> Config {
    match load(text) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config: {e:#?}"),
    }
}

/// The single error of `text`, with its line.
#[track_caller]
fn error(text: &str) -> (usize, String, String) {
    let e = load(text).expect_err("expected an error");
    assert_eq!(e.len(), 1, "expected one error: {e:#?}");
    let e = &e[0];
    (
        e.line,
        e.message.clone(),
        e.hint.clone().unwrap_or_default(),
    )
}

const TWO: &str = "[services.db]\ncommand = [\"db\"]\n";

#[test]
fn defaults_are_no_checks_restart_on_unhealthy_and_five_second_samples() {
    let c = ok(TWO);
    let h = &c.services[0].health;
    assert_eq!((h.ready.is_none(), h.health.is_none()), (true, true));
    assert_eq!(h.on_unhealthy, OnUnhealthy::Restart);
    assert!(!h.notify && !h.optional && h.watchdog.is_none() && h.memory_max.is_none());
    assert!(c.services[0].depends_on.is_empty());
    assert_eq!(c.warden.health.sample_interval, Duration::from_secs(5));
    assert_eq!(c.warden.health.http, None);
    assert!(!c.warden.health.metrics_public);
}

#[test]
fn a_check_takes_each_probe_kind_with_its_defaults() {
    let c = ok(r#"
[services.a]
command = ["a"]
ready = { tcp = "127.0.0.1:6390" }
health = { http = "http://localhost:8080/health?x=1", method = "head", headers = { X-Token = "t" }, status = [200, 204] }
[services.b]
command = ["b"]
ready = { log_line = "listening on \\d+" }
health = { exec = ["check", "--quick"], interval = "5s", timeout = "1s", retries = 5, start_period = "20s", success_threshold = 2 }
"#);
    let a = &c.services[0].health;
    let ready = a.ready.as_ref().unwrap();
    assert_eq!(ready.probe, Probe::Tcp("127.0.0.1:6390".into()));
    assert_eq!(
        (
            ready.interval,
            ready.timeout,
            ready.retries,
            ready.start_period,
            ready.success_threshold
        ),
        (
            Duration::from_secs(10),
            Duration::from_secs(2),
            3,
            Duration::ZERO,
            1
        )
    );
    let Probe::Http(http) = &a.health.as_ref().unwrap().probe else {
        panic!("http")
    };
    assert_eq!(
        (http.host.as_str(), http.port, http.path.as_str()),
        ("localhost", 8080, "/health?x=1")
    );
    assert_eq!(http.method, "HEAD");
    assert_eq!(http.headers, vec![("X-Token".to_owned(), "t".to_owned())]);
    assert_eq!(http.status, vec![200, 204]);
    let b = &c.services[1].health;
    assert_eq!(
        b.ready.as_ref().unwrap().probe,
        Probe::LogLine("listening on \\d+".into())
    );
    let h = b.health.as_ref().unwrap();
    assert_eq!(h.probe, Probe::Exec(vec!["check".into(), "--quick".into()]));
    assert_eq!(
        (
            h.interval,
            h.timeout,
            h.retries,
            h.start_period,
            h.success_threshold
        ),
        (
            Duration::from_secs(5),
            Duration::from_secs(1),
            5,
            Duration::from_secs(20),
            2
        )
    );
}

#[test]
fn a_check_needs_exactly_one_probe() {
    let (line, msg, _) = error("[services.a]\ncommand = [\"a\"]\nready = { interval = \"1s\" }\n");
    assert_eq!(line, 3);
    assert!(
        msg.contains("ready needs one of http, tcp, exec or log_line"),
        "{msg}"
    );
    let (line, msg, _) =
        error("[services.a]\ncommand = [\"a\"]\nhealth = { tcp = \"h:1\", exec = [\"x\"] }\n");
    assert_eq!(line, 3);
    assert!(msg.contains("takes one probe"), "{msg}");
}

#[test]
fn log_line_is_for_ready_only_and_must_be_a_valid_regex() {
    let (line, msg, _) =
        error("[services.a]\ncommand = [\"a\"]\n\nhealth = { log_line = \"up\" }\n");
    assert_eq!(line, 4);
    assert!(msg.contains("log_line is a ready check only"), "{msg}");
    let (_, msg, _) = error("[services.a]\ncommand = [\"a\"]\nready = { log_line = \"(\" }\n");
    assert!(msg.contains("log_line: invalid regex"), "{msg}");
}

#[test]
fn probe_targets_and_options_are_checked() {
    let cases = [
        ("ready = { tcp = \"nohost\" }", "expected HOST:PORT"),
        ("ready = { tcp = \"h:0\" }", "expected HOST:PORT"),
        ("ready = { http = \"https://x/\" }", "not an http:// URL"),
        ("ready = { http = \"http://u@x/\" }", "not an http:// URL"),
        (
            "ready = { http = \"http://x/\", method = \"FETCH\" }",
            "unknown HTTP method",
        ),
        (
            "ready = { http = \"http://x/\", status = [99] }",
            "expected an HTTP code",
        ),
        (
            "ready = { http = \"http://x/\", headers = { \"a b\" = \"v\" } }",
            "not a valid HTTP header",
        ),
        (
            "ready = { tcp = \"h:1\", status = [200] }",
            "applies to an http probe only",
        ),
        (
            "ready = { tcp = \"h:1\", interval = \"10ms\" }",
            "interval must be at least 100ms",
        ),
        (
            "ready = { tcp = \"h:1\", timeout = \"2d\" }",
            "timeout: at most",
        ),
        (
            "ready = { tcp = \"h:1\", retries = 0 }",
            "retries must be between 1 and 1000",
        ),
        (
            "ready = { tcp = \"h:1\", success_threshold = 1001 }",
            "success_threshold must be between 1 and 1000",
        ),
        (
            "ready = { tcp = \"h:1\", every = \"1s\" }",
            "unknown key \"every\" in ready",
        ),
        ("on_unhealthy = \"reboot\"", "unknown on_unhealthy"),
        (
            "memory_max = \"1KiB\"",
            "memory_max must be between 1MiB and 1PiB",
        ),
        ("watchdog = \"30s\"", "watchdog needs notify = true"),
    ];
    for (line, want) in cases {
        let text = format!("[services.a]\ncommand = [\"a\"]\n{line}\n");
        let (at, msg, _) = error(&text);
        assert_eq!(at, 3, "{line}: {msg}");
        assert!(
            msg.contains(want),
            "{line}: {msg:?} does not contain {want:?}"
        );
    }
}

#[test]
fn max_memory_restart_hints_memory_max() {
    let (_, msg, hint) = error("[services.a]\ncommand = [\"a\"]\nmax_memory_restart = \"1G\"\n");
    assert!(msg.contains("unknown key \"max_memory_restart\""), "{msg}");
    assert!(
        hint.contains("did you mean \"memory_max\"? \"max_memory_restart\" is PM2's"),
        "{hint}"
    );
}

#[test]
fn notify_watchdog_memory_optional_and_warden_keys() {
    let text = r#"
[warden]
sample_interval = "1s"
http = "127.0.0.1:9101"
metrics_public = true
[services.a]
command = ["a"]
notify = true
watchdog = "30s"
memory_max = "512MiB"
optional = true
on_unhealthy = "ignore"
"#;
    if cfg!(windows) {
        let (_, msg, _) = error(text);
        assert!(msg.contains("Windows does not have"), "{msg}");
        return;
    }
    let c = ok(text);
    let h = &c.services[0].health;
    assert!(h.notify && h.optional && h.gated());
    assert_eq!(h.watchdog, Some(Duration::from_secs(30)));
    assert_eq!(h.memory_max, Some(512 << 20));
    assert_eq!(h.on_unhealthy, OnUnhealthy::Ignore);
    assert_eq!(c.warden.health.sample_interval, Duration::from_secs(1));
    assert_eq!(
        c.warden.health.http,
        Some("127.0.0.1:9101".parse().unwrap())
    );
    assert!(c.warden.health.metrics_public);
    let (line, msg, _) = error("[warden]\nsample_interval = \"2h\"\n");
    assert_eq!(line, 2);
    assert!(msg.contains("at most"), "{msg}");
}

#[test]
fn http_off_loopback_needs_a_token_like_the_api() {
    let (line, msg, hint) = error("[warden]\nhttp = \"0.0.0.0:9101\"\n");
    assert_eq!(line, 2);
    assert!(
        msg.contains("http listens on 0.0.0.0:9101, which is not a loopback address"),
        "{msg}"
    );
    assert!(hint.contains("api_token"), "{hint}");
    let c = ok("[warden]\nhttp = \"0.0.0.0:9101\"\napi_token = \"s3cret-token-of-some-length\"\n");
    assert_eq!(c.warden.health.http, Some("0.0.0.0:9101".parse().unwrap()));
}

#[test]
fn depends_on_takes_a_list_a_table_and_the_long_form() {
    let c = ok(r#"
[services.db]
command = ["db"]
[services.migrate]
command = ["m"]
[services.api]
command = ["api"]
depends_on = { db = { condition = "ready", restart = true }, migrate = "completed" }
[services.worker]
command = ["w"]
depends_on = ["api"]
"#);
    let api = &c.services[2].depends_on;
    assert_eq!(
        api.iter()
            .map(|d| (d.service.as_str(), d.condition, d.restart))
            .collect::<Vec<_>>(),
        vec![
            ("db", Condition::Ready, true),
            ("migrate", Condition::Completed, false)
        ]
    );
    let worker = &c.services[3].depends_on;
    assert_eq!(
        (worker[0].service.as_str(), worker[0].condition),
        ("api", Condition::Started)
    );
    assert_eq!(
        super::start_levels(&c.services),
        vec![
            vec!["db".to_owned(), "migrate".to_owned()],
            vec!["api".to_owned()],
            vec!["worker".to_owned()]
        ]
    );
}

#[test]
fn an_unknown_dependency_or_condition_is_an_error_at_the_key() {
    let (line, msg, hint) = error(&format!(
        "{TWO}[services.api]\ncommand = [\"a\"]\ndepends_on = [\"dbb\"]\n"
    ));
    assert_eq!(line, 5);
    assert!(
        msg.contains("api depends on \"dbb\", which is not a service"),
        "{msg}"
    );
    assert!(hint.contains("did you mean \"db\"?"), "{hint}");
    let (line, msg, _) = error(&format!(
        "{TWO}[services.api]\ncommand = [\"a\"]\ndepends_on = {{ db = \"up\" }}\n"
    ));
    assert_eq!(line, 5);
    assert!(msg.contains("unknown condition \"up\""), "{msg}");
    let (_, msg, _) = error(&format!(
        "{TWO}[services.api]\ncommand = [\"a\"]\ndepends_on = {{ db = {{ restart = true }} }}\n"
    ));
    assert!(msg.contains("depends_on.db needs condition"), "{msg}");
}

#[test]
fn a_cycle_is_one_error_naming_its_services() {
    let text = r#"[services.a]
command = ["a"]
depends_on = ["c"]
[services.b]
command = ["b"]
depends_on = ["a"]
[services.c]
command = ["c"]
depends_on = { b = "ready" }
"#;
    let (line, msg, _) = error(text);
    assert_eq!(line, 3);
    assert!(msg.contains("a cycle: a -> c -> b -> a"), "{msg}");
    let (_, msg, _) = error(&format!(
        "{TWO}[services.api]\ncommand = [\"a\"]\ndepends_on = {{ db = \"healthy\" }}\n"
    ));
    assert!(
        msg.contains("api waits for db to be healthy, but db has no health check"),
        "{msg}"
    );
    let (line, msg, _) = error("[services.a]\ncommand = [\"a\"]\ndepends_on = [\"a\"]\n");
    assert_eq!(line, 3);
    assert!(msg.contains("a depends on itself"), "{msg}");
}
