//! Issue 8, section A: a property test over the whole path from text to `Config` to the
//! policy functions. Structured TOML (service tables with known and unknown keys, values
//! that are huge numbers, NaN, deeply nested `${...}`, NULs, long names and paths) goes
//! through `load_str`; then every accepted service goes through `after_exit`, the backoff
//! delays and the start limit, with extreme run times and attempt counts.
//!
//! It asserts: no panic (nor stack overflow, which would abort the run); every rejection
//! carries a position (line and column from 1); no error shows a secret planted in `env`
//! values or `api_token`; every accepted value is within the documented limits.
//!
//! The budget is fixed (256 cases, a few seconds) so that `cargo test --workspace` runs it
//! every time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, FileFailurePersistence};
use warden_core::config::{Config, load_str};
use warden_core::policy::{self, RestartHistory};
use warden_core::process::ExitStatus;

const SECRET: &str = "s3cr3t-XYZ";

/// A TOML basic string holding `s` (control characters, NUL included, as `\uXXXX`).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn select(items: &[&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(items.to_vec())
        .prop_map(str::to_owned)
        .boxed()
}

/// `${A:-${A:-...x...}}`, `depth` deep (sometimes left unterminated).
fn nested(depth: usize, closed: bool) -> String {
    let closing = if closed { depth } else { depth / 2 };
    format!(
        "{}x{}",
        "${WARDEN_PROP_UNSET:-".repeat(depth),
        "}".repeat(closing)
    )
}

/// The text of a string value, before quoting.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        // Durations and sizes, from tiny to absurd.
        (
            0u64..5_000,
            select(&[
                "ms", "s", "m", "h", "d", "ns", "us", "", "KiB", "MB", "parsecs"
            ])
        )
            .prop_map(|(n, u)| format!("{n}{u}")),
        select(&[
            "18446744073709551615s",
            "99999999999999999999999999999999999999999d",
            "1.5s",
            "0",
            "24h",
            "25h",
            "365d",
            "366d",
            "1TiB",
            "2TiB",
            "1KiB",
        ]),
        // Words the config knows.
        select(&[
            "always",
            "on-failure",
            "never",
            "TERM",
            "SIGKILL",
            "stdout",
            "utf-16le",
            "ctrl-c",
            "127.0.0.1:0",
            "0.0.0.0:9100",
            "/dev/zero",
            "logs/x.log",
            "true",
        ]),
        // Expansion, well and badly formed, shallow and deep.
        select(&[
            "${HOME}",
            "${WARDEN_PROP_UNSET}",
            "${WARDEN_PROP_UNSET:-d}",
            "${WARDEN_PROP_UNSET:?needed}",
            "${1X}",
            "${",
            "$$",
            "${A:-${B",
        ]),
        (0usize..80, any::<bool>()).prop_map(|(d, closed)| nested(d, closed)),
        // NULs, long strings, anything.
        "[a-z]{0,5}\u{0}[a-z]{0,5}",
        (0usize..400).prop_map(|n| "a".repeat(n)),
        ".{0,24}",
    ]
    .boxed()
}

/// A value of any TOML type, nested a little.
fn value() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        select(&[
            "0",
            "1",
            "-1",
            "1000",
            "1001",
            "4294967295",
            "1e308",
            "-1e308",
            "inf",
            "-inf",
            "nan",
            "0.0",
            "0.5",
            "0.99",
            "1.0",
            "2.0",
            "100.0",
            "100.5",
        ]),
        any::<bool>().prop_map(|b| b.to_string()),
        text().prop_map(|s| quote(&s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z_]{1,8}", inner), 0..4).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", body.join(", "))
            }),
        ]
    })
    .boxed()
}

/// A key of a table: mostly one the config knows, sometimes not.
fn key(known: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        8 => prop::sample::select(known.to_vec()).prop_map(str::to_owned),
        1 => "[a-z_]{1,12}",
    ]
    .boxed()
}

/// `{ k = v, ... }` with the keys of `known` (no key twice, or TOML rejects the table).
fn table(known: &'static [&'static str], values: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop::collection::btree_map(key(known), values, 0..5)
        .prop_map(|kv| {
            let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("{{ {} }}", body.join(", "))
        })
        .boxed()
}

/// A value that is often of the right kind for a number-like key.
fn scalar() -> BoxedStrategy<String> {
    prop_oneof![3 => text().prop_map(|s| quote(&s)), 2 => value()].boxed()
}

const SERVICE_KEYS: &[&str] = &[
    "command",
    "shell",
    "cwd",
    "env",
    "inherit_env",
    "autostart",
    "restart",
    "success_codes",
    "backoff",
    "start_limit",
    "stop_signal",
    "stop_timeout",
    "stop_command",
    "stop_method",
    "log",
    "user",
    "group",
    "umask",
    "nice",
    "oom_score_adjust",
    "no_new_privileges",
    "limits",
    "memory_limit",
    "cpu_max",
];

/// The value of one service key.
fn service_value(k: &str) -> BoxedStrategy<String> {
    match k {
        "backoff" => table(
            &["initial", "max", "factor", "jitter", "reset_after"],
            scalar(),
        ),
        "start_limit" => table(&["count", "window"], scalar()),
        "limits" => table(&["nofile", "nproc", "core", "stack", "nofiles"], scalar()),
        "log" => table(
            &[
                "stdout",
                "stderr",
                "max_size",
                "keep",
                "compress",
                "timestamps",
            ],
            scalar(),
        ),
        "env" => prop::collection::btree_map(
            "[A-Z_]{1,8}",
            prop_oneof![
                3 => text().prop_map(|s| quote(&format!("{SECRET}{s}"))),
                1 => Just("987654321".to_owned()),
                1 => value(),
            ],
            0..4,
        )
        .prop_map(|kv| {
            let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("{{ {} }}", body.join(", "))
        })
        .boxed(),
        "command" | "stop_command" => prop_oneof![
            2 => Just("[\"true\"]".to_owned()),
            1 => prop::collection::vec(text().prop_map(|s| quote(&s)), 0..3)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            1 => text().prop_map(|s| quote(&s)),
        ]
        .boxed(),
        _ => scalar(),
    }
}

/// One `[services.NAME]` table.
fn service() -> BoxedStrategy<String> {
    let name = prop_oneof![
        6 => "[a-z][a-z0-9_.-]{0,10}",
        1 => "[a-z]{60,70}",
        1 => "[a-z]{200,300}",
        1 => "\"[ -~]{0,6}\"",
    ];
    let keys = prop::collection::btree_set(key(SERVICE_KEYS), 0..6);
    (name, keys)
        .prop_flat_map(|(name, keys)| {
            let fields: Vec<BoxedStrategy<String>> = keys
                .into_iter()
                .map(|k| {
                    service_value(&k)
                        .prop_map(move |v| format!("{k} = {v}"))
                        .boxed()
                })
                .collect();
            (Just(name), fields, any::<bool>())
        })
        .prop_map(|(name, fields, with_command)| {
            let mut out = format!("[services.{name}]\n");
            if with_command && !fields.iter().any(|f| f.starts_with("command ")) {
                out.push_str("command = [\"true\"]\n");
            }
            for f in fields {
                out.push_str(&f);
                out.push('\n');
            }
            out
        })
        .boxed()
}

/// An optional `[warden]` table.
fn warden() -> BoxedStrategy<String> {
    let token = text().prop_map(|s| format!("api_token = {}\n", quote(&format!("{SECRET}{s}"))));
    let state_dir = prop_oneof![
        Just(String::new()),
        Just("state_dir = \"st\"\n".to_owned()),
        (100usize..130).prop_map(|n| format!("state_dir = \"{}\"\n", "d".repeat(n))),
    ];
    let timeout = scalar().prop_map(|v| format!("shutdown_timeout = {v}\n"));
    let api = select(&["", "api = \"127.0.0.1:9100\"\n", "api = \"0.0.0.0:9100\"\n"]);
    (
        any::<bool>(),
        prop::option::of(token),
        state_dir,
        prop::option::of(timeout),
        api,
    )
        .prop_map(|(present, token, state_dir, timeout, api)| {
            if !present {
                return String::new();
            }
            format!(
                "[warden]\n{}{state_dir}{}{api}",
                token.unwrap_or_default(),
                timeout.unwrap_or_default()
            )
        })
        .boxed()
}

fn document() -> BoxedStrategy<String> {
    (warden(), prop::collection::vec(service(), 0..4))
        .prop_map(|(w, services)| format!("{w}{}", services.concat()))
        .boxed()
}

/// Every accepted config is within the documented limits, and the policy functions are
/// total on it (with extreme run times and attempt counts).
fn exercise(config: &Config) {
    let day = Duration::from_secs(86_400);
    assert!(config.warden.shutdown_timeout <= day);
    for s in &config.services {
        assert!(s.name.len() <= 64, "{}", s.name);
        assert!(s.stop_timeout <= day);
        assert!(s.backoff.initial <= day && s.backoff.max <= day);
        assert!(s.backoff.reset_after <= 365 * day);
        assert!((1.0..=100.0).contains(&s.backoff.factor));
        assert!((0.0..1.0).contains(&s.backoff.jitter));
        assert!((1..=1000).contains(&s.log.keep));
        assert!((1024..=1 << 40).contains(&s.log.max_size));
        assert!(s.command.iter().all(|a| !a.contains('\0')));
        assert!(s.env.values().all(|v| !v.contains('\0')));
        if let Some(limit) = s.start_limit {
            assert!((1..=1000).contains(&limit.count));
            assert!(limit.window <= 365 * day);
        }
        let now = Instant::now();
        let mut history = RestartHistory::default();
        for (i, ran) in [Duration::ZERO, s.backoff.reset_after, Duration::MAX]
            .into_iter()
            .enumerate()
        {
            for status in [None, Some(ExitStatus::Code(1)), Some(ExitStatus::Signal(9))] {
                let r = [0.0, 0.5, 0.999_999][i];
                let decision = policy::after_exit(
                    s.restart,
                    &s.success_codes,
                    &s.backoff,
                    &mut history,
                    status,
                    ran,
                    r,
                );
                if let policy::AfterExit::Restart { delay, .. } = decision {
                    assert!(delay <= s.backoff.max.mul_f64(2.0));
                    assert!(warden_core::util::instant_after(now, delay) >= now);
                }
            }
        }
        for n in [1, 2, 30, 1_000, u32::MAX] {
            let d = policy::backoff_delay(&s.backoff, n, 0.999_999);
            assert!(d <= s.backoff.max.mul_f64(2.0));
        }
        let window = s.start_limit.map_or(Duration::ZERO, |l| l.window);
        for t in [
            now,
            now,
            warden_core::util::instant_after(now, window),
            warden_core::util::instant_after(now, Duration::MAX),
        ] {
            let _ = history.record_start(s.start_limit, t);
        }
        history.reset();
    }
}

proptest! {
    #![proptest_config(RunnerConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..RunnerConfig::default()
    })]

    #[test]
    fn any_config_text_loads_or_fails_with_positions_and_the_policy_is_total(doc in document()) {
        let path = Path::new("/nonexistent/warden-prop/warden.toml");
        match load_str(&doc, path, &BTreeMap::new()) {
            Ok(config) => exercise(&config),
            Err(e) => {
                prop_assert!(!e.errors.is_empty());
                for err in &e.errors {
                    prop_assert!(err.line >= 1 && err.col >= 1, "no position: {err}\n{doc}");
                    let shown = err.to_string();
                    prop_assert!(!shown.contains(SECRET), "a secret in: {shown}\n{doc}");
                }
            }
        }
    }

    #[test]
    fn mutated_config_text_loads_or_fails_with_positions(
        doc in document(),
        cuts in prop::collection::vec((any::<prop::sample::Index>(), ".{0,3}"), 0..4),
    ) {
        // Random edits of a structured document: cut strings and tables, stray quotes.
        let mut doc = doc;
        for (at, insert) in cuts {
            if doc.is_empty() {
                break;
            }
            let mut i = at.index(doc.len());
            while !doc.is_char_boundary(i) {
                i -= 1;
            }
            doc.insert_str(i, &insert);
        }
        let path = Path::new("/nonexistent/warden-prop/warden.toml");
        match load_str(&doc, path, &BTreeMap::new()) {
            Ok(config) => exercise(&config),
            Err(e) => {
                for err in &e.errors {
                    prop_assert!(err.line >= 1 && err.col >= 1, "no position: {err}\n{doc}");
                }
            }
        }
    }
}
