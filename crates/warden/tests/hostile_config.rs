//! Issue 8, section A, end to end: the configs of the findings are refused by `check` and by
//! a running warden's reload, which stays up and keeps its services.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, assert_fails, show, tc};

fn sleeper() -> String {
    format!(
        "[services.app]\ncommand = [{tc}, \"--sleep\", \"forever\"]\n",
        tc = tc()
    )
}

/// The findings of section A, each as a whole config and the error it must give.
fn hostile() -> Vec<(String, &'static str)> {
    let deep = format!("{}x{}", "${A:-".repeat(6_000), "}".repeat(6_000));
    let deeper = format!("{}x{}", "${A:-".repeat(40_000), "}".repeat(40_000));
    vec![
        (
            format!("{}env = {{ V = \"{deep}\" }}\n", sleeper()),
            "nest 6000 levels deep",
        ),
        (
            format!("{}env = {{ V = \"{deeper}\" }}\n", sleeper()),
            "nest 40000 levels deep",
        ),
        (
            format!(
                "{}backoff = {{ initial = \"18446744073709551615s\", max = \"18446744073709551615s\" }}\n",
                sleeper()
            ),
            "initial: at most \"24h\"",
        ),
        (
            format!("{}backoff = {{ factor = 1e308 }}\n", sleeper()),
            "backoff.factor must be between 1.0 and 100.0",
        ),
        (
            format!(
                "{}log = {{ keep = 4294967295, max_size = \"1KiB\" }}\n",
                sleeper()
            ),
            "keep must be between 1 and 1000",
        ),
        (
            format!("{}env = {{ V = \"a\\u0000b\" }}\n", sleeper()),
            "env.V: contains a NUL byte",
        ),
        (
            format!("[services.{}]\ncommand = \"true\"\n", "n".repeat(300)),
            "the service name is 300 characters long",
        ),
    ]
}

#[test]
fn check_refuses_every_hostile_config_of_the_findings() {
    let env = Env::new("");
    for (config, needle) in hostile() {
        env.write_config(&config);
        assert_fails(&env.run(&["check"]), 2, needle);
    }
}

#[test]
fn reload_of_a_hostile_config_is_refused_and_warden_stays_up() {
    let env = Env::new(&sleeper());
    let o = env.run(&["up", "-d"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let _down = Down(&env, sleeper());
    for (config, needle) in hostile() {
        env.write_config(&config);
        assert_fails(&env.run(&["reload"]), 2, needle);
        let o = env.run(&["status", "app"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "warden died on {needle:?}: {}",
            show(&o)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("running") || out.contains("starting"),
            "{}",
            show(&o)
        );
    }
    env.write_config(&sleeper());
}

/// `warden down` when the test ends, with a good config back in place (`down` reads it).
struct Down<'a>(&'a Env, String);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        self.0.write_config(&self.1);
        let _ = self.0.run(&["down"]);
    }
}
