//! Tests of the config: expansion, units, env files, defaults, and every kind of error with
//! its exact place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::expand::expand;
use super::*;

// ---------------------------------------------------------------------------------------
// Helpers

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A temporary directory holding `warden.toml` and whatever else a test writes.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self) -> PathBuf {
        self.dir().join("warden.toml")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir().join(name);
        std::fs::write(&path, text).expect("write fixture file");
        path
    }

    fn load_with(
        &self,
        text: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigErrors> {
        load_str(text, &self.path(), env)
    }

    fn ok(&self, text: &str) -> Config {
        self.ok_with(text, &BTreeMap::new())
    }

    fn ok_with(&self, text: &str, env: &BTreeMap<String, String>) -> Config {
        match self.load_with(text, env) {
            Ok(config) => config,
            Err(e) => panic!("expected a valid config, got:\n{}", render(&e)),
        }
    }

    fn errors(&self, text: &str) -> Vec<ConfigError> {
        self.errors_with(text, &BTreeMap::new())
    }

    fn errors_with(&self, text: &str, env: &BTreeMap<String, String>) -> Vec<ConfigError> {
        match self.load_with(text, env) {
            Ok(config) => panic!("expected errors, got a valid config: {config:#?}"),
            Err(e) => {
                assert_eq!(e.file, self.path());
                e.errors
            }
        }
    }

    /// The single error of `text`.
    fn error(&self, text: &str) -> ConfigError {
        let errors = self.errors(text);
        assert_eq!(
            errors.len(),
            1,
            "expected one error, got:\n{}",
            list(&errors)
        );
        errors.into_iter().next().expect("one error")
    }
}

fn render(e: &ConfigErrors) -> String {
    list(&e.errors)
}

fn list(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Assert the place of `e` and that its message contains `message`.
#[track_caller]
fn assert_at(e: &ConfigError, line: usize, col: usize, message: &str) {
    assert_eq!((e.line, e.col), (line, col), "wrong place for error: {e}");
    assert!(
        e.message.contains(message),
        "message {:?} does not contain {message:?}",
        e.message
    );
}

#[track_caller]
fn assert_hint(e: &ConfigError, hint: &str) {
    let got = e.hint.as_deref().unwrap_or_default();
    assert!(got.contains(hint), "hint {got:?} does not contain {hint:?}");
}

const MINIMAL: &str = "[services.web]\ncommand = [\"server\"]\n";

// ---------------------------------------------------------------------------------------
// Expansion

#[test]
fn expand_double_dollar_is_a_literal_dollar() {
    let env = vars(&[("A", "1")]);
    assert_eq!(expand("a$$b", &env).as_deref(), Ok("a$b"));
    assert_eq!(expand("$${A}", &env).as_deref(), Ok("${A}"));
    assert_eq!(expand("$$$$", &env).as_deref(), Ok("$$"));
}

#[test]
fn expand_plain_variable() {
    let env = vars(&[("HOST", "example.org"), ("PORT", "80")]);
    assert_eq!(
        expand("http://${HOST}:${PORT}/", &env).as_deref(),
        Ok("http://example.org:80/")
    );
    assert_eq!(expand("no vars", &env).as_deref(), Ok("no vars"));
}

#[test]
fn expand_colon_dash_defaults_when_unset_or_empty() {
    let env = vars(&[("EMPTY", ""), ("SET", "v")]);
    assert_eq!(expand("${UNSET:-d}", &env).as_deref(), Ok("d"));
    assert_eq!(expand("${EMPTY:-d}", &env).as_deref(), Ok("d"));
    assert_eq!(expand("${SET:-d}", &env).as_deref(), Ok("v"));
    assert_eq!(expand("${UNSET:-}", &env).as_deref(), Ok(""));
}

#[test]
fn expand_dash_defaults_only_when_unset() {
    let env = vars(&[("EMPTY", ""), ("SET", "v")]);
    assert_eq!(expand("${UNSET-d}", &env).as_deref(), Ok("d"));
    assert_eq!(expand("${EMPTY-d}", &env).as_deref(), Ok(""));
    assert_eq!(expand("${SET-d}", &env).as_deref(), Ok("v"));
}

#[test]
fn expand_spring_colon_is_like_colon_dash() {
    let env = vars(&[("EMPTY", ""), ("SET", "v")]);
    assert_eq!(expand("${UNSET:8080}", &env).as_deref(), Ok("8080"));
    assert_eq!(expand("${EMPTY:8080}", &env).as_deref(), Ok("8080"));
    assert_eq!(expand("${SET:8080}", &env).as_deref(), Ok("v"));
}

#[test]
fn expand_colon_question_requires_set_and_not_empty() {
    let env = vars(&[("EMPTY", ""), ("SET", "v")]);
    assert_eq!(expand("${SET:?need it}", &env).as_deref(), Ok("v"));
    for name in ["UNSET", "EMPTY"] {
        let e = expand(&format!("${{{name}:?set the database URL}}"), &env).expect_err("must fail");
        assert!(e.message.contains(name), "{}", e.message);
        assert!(e.message.contains("set the database URL"), "{}", e.message);
    }
}

#[test]
fn expand_question_requires_only_set() {
    let env = vars(&[("EMPTY", "")]);
    assert_eq!(expand("${EMPTY?msg}", &env).as_deref(), Ok(""));
    let e = expand("${UNSET?msg}", &env).expect_err("must fail");
    assert!(e.message.contains("msg"));
}

#[test]
fn expand_nested_defaults() {
    let env = vars(&[("B", "b"), ("A", "a")]);
    assert_eq!(expand("${X:-${Y:-deep}}", &env).as_deref(), Ok("deep"));
    assert_eq!(expand("${X:-${B:-deep}}", &env).as_deref(), Ok("b"));
    assert_eq!(
        expand("${X:-pre-${B}-post}", &env).as_deref(),
        Ok("pre-b-post")
    );
    // A default that is not used is not expanded, so its unset variable is no error.
    assert_eq!(expand("${A:-${MISSING}}", &env).as_deref(), Ok("a"));
    assert_eq!(expand("${X:-${Y:-a}}x}", &env).as_deref(), Ok("ax}"));
}

#[test]
fn expand_unset_variable_is_an_error_with_a_hint() {
    let e = expand("port ${PORT}", &vars(&[])).expect_err("must fail");
    assert!(e.message.contains("\"PORT\""), "{}", e.message);
    assert_eq!(
        e.hint.as_deref(),
        Some("write ${PORT:-default} to give a default")
    );
}

#[test]
fn expand_lone_dollar_stays_literal() {
    let env = vars(&[]);
    assert_eq!(expand("costs $5", &env).as_deref(), Ok("costs $5"));
    assert_eq!(expand("end$", &env).as_deref(), Ok("end$"));
    assert_eq!(expand("$HOME", &env).as_deref(), Ok("$HOME"));
}

#[test]
fn expand_values_from_the_environment_are_not_expanded_again() {
    let env = vars(&[("A", "${B}"), ("B", "no")]);
    assert_eq!(expand("${A}", &env).as_deref(), Ok("${B}"));
}

#[test]
fn expand_rejects_malformed_references() {
    let env = vars(&[("A", "1")]);
    for bad in ["${A", "${}", "${1A}", "${A!x}", "x ${A:-${B}"] {
        assert!(expand(bad, &env).is_err(), "{bad} should be an error");
    }
}

// ---------------------------------------------------------------------------------------
// Durations and sizes

#[test]
fn durations_in_every_accepted_form() {
    let cases = [
        ("250ms", Duration::from_millis(250)),
        ("30s", Duration::from_secs(30)),
        ("5m", Duration::from_secs(300)),
        ("1h", Duration::from_secs(3600)),
        ("1h30m", Duration::from_secs(5400)),
        ("1h 30m", Duration::from_secs(5400)),
        ("0", Duration::ZERO),
        ("0s", Duration::ZERO),
        ("1.5s", Duration::from_millis(1500)),
        ("0.25s", Duration::from_millis(250)),
        ("2d", Duration::from_secs(2 * 86_400)),
        (" 10s ", Duration::from_secs(10)),
    ];
    for (text, want) in cases {
        assert_eq!(parse_duration(text), Some(want), "{text}");
    }
}

#[test]
fn durations_rejected() {
    for text in [
        "", "30", "s", "1x", "-1s", "1..5s", ".5s", "5s3", "ms", "1 h x",
    ] {
        assert_eq!(parse_duration(text), None, "{text:?} should be rejected");
    }
}

#[test]
fn sizes_in_every_accepted_form() {
    let cases = [
        ("10MiB", 10 * 1024 * 1024),
        ("500KB", 500_000),
        ("1KiB", 1024),
        ("7B", 7),
        ("3MB", 3_000_000),
        ("2GB", 2_000_000_000),
        ("1GiB", 1 << 30),
        ("4096", 4096),
        ("1.5KiB", 1536),
        ("10 MiB", 10 * 1024 * 1024),
        ("10mib", 10 * 1024 * 1024),
    ];
    for (text, want) in cases {
        assert_eq!(parse_size(text), Some(want), "{text}");
    }
}

#[test]
fn sizes_rejected() {
    for text in [
        "",
        "MiB",
        "10 parsecs",
        "-1",
        "1.5",
        "99999999999999999999999",
    ] {
        assert_eq!(parse_size(text), None, "{text:?} should be rejected");
    }
}

// ---------------------------------------------------------------------------------------
// Env files

#[test]
fn dotenv_every_form() {
    let text = "\
# a comment
   
PLAIN=value
export EXPORTED=yes
SPACED = around equals  
SINGLE='lit ${X} \\n'
DOUBLE=\"a\\nb \\\"q\\\"\"
COMMENTED=val # trailing comment
HASH=a#b
EMPTY=
QUOTED_COMMENT=\"x\" # comment
";
    let pairs = dotenv::parse(text).expect("valid env file");
    let got: BTreeMap<_, _> = pairs.into_iter().collect();
    let want = vars(&[
        ("PLAIN", "value"),
        ("EXPORTED", "yes"),
        ("SPACED", "around equals"),
        ("SINGLE", "lit ${X} \\n"),
        ("DOUBLE", "a\nb \"q\""),
        ("COMMENTED", "val"),
        ("HASH", "a#b"),
        ("EMPTY", ""),
        ("QUOTED_COMMENT", "x"),
    ]);
    assert_eq!(got, want);
}

#[test]
fn dotenv_errors_name_their_lines() {
    let errors = dotenv::parse("OK=1\nno equals here\nA='open\n1BAD=x\n").expect_err("bad file");
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 4]);
}

// ---------------------------------------------------------------------------------------
// Defaults and values

#[test]
fn every_default_value() {
    let fx = Fixture::new();
    let config = fx.ok(MINIMAL);
    let dir = fx.dir().to_path_buf();
    assert_eq!(config.path, fx.path());
    assert_eq!(config.dir, dir);

    let w = &config.warden;
    assert_eq!(w.log_dir, dir.join("logs"));
    assert_eq!(w.state_dir, dir.join(".warden"));
    assert_eq!(w.shutdown_timeout, Duration::from_secs(60));
    assert_eq!(w.api, None);
    assert_eq!(w.api_token, None);

    assert_eq!(config.services.len(), 1);
    let s = config.service("web").expect("service web");
    assert_eq!(s.name, "web");
    assert_eq!(s.command, ["server"]);
    assert!(!s.shell);
    assert_eq!(s.cwd, dir);
    assert_eq!(s.env, vars(&[("WARDEN_SERVICE", "web")]));
    assert_eq!(s.env_file, None);
    assert!(s.inherit_env);
    assert!(s.autostart);
    assert_eq!(s.restart, RestartPolicy::Always);
    assert_eq!(s.success_codes, [0]);
    assert_eq!(
        s.backoff,
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.1,
            reset_after: Duration::from_secs(30),
        }
    );
    assert_eq!(s.start_limit, None);
    assert_eq!(s.stop_signal, crate::process::Signal::Term);
    assert_eq!(s.stop_timeout, Duration::from_secs(10));
    assert_eq!(s.stop_command, None);
    assert_eq!(
        s.stop_method,
        [
            StopMethod::CtrlC,
            StopMethod::WmClose,
            StopMethod::Terminate
        ]
    );
    assert_eq!(
        s.log,
        LogConfig {
            stdout: dir.join("logs").join("web.out.log"),
            stderr: StderrTarget::File(dir.join("logs").join("web.err.log")),
            max_size: 10 * 1024 * 1024,
            keep: 5,
            compress: false,
            timestamps: false,
            encoding: None,
        }
    );
}

#[test]
// A rooted path replaces the config's dir but keeps its drive on Windows: what the config does.
#[allow(clippy::join_absolute_paths)]
fn every_value_set_explicitly() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.dir().join("work")).expect("mkdir");
    let text = r#"
[warden]
log_dir = "var/log"
state_dir = "/tmp/warden-state"
shutdown_timeout = "2m"
api = "127.0.0.1:9100"

[services."api-1_x.y"]
command = "server --port 80"
cwd = "work"
inherit_env = false
autostart = false
restart = "on-failure"
success_codes = [0, 2, -1]
backoff = { initial = "1s", max = "1m", factor = 1.5, jitter = 0.0, reset_after = "5m" }
start_limit = { count = 3, window = "10s" }
stop_timeout = "250ms"
stop_command = ["server", "--stop"]
stop_method = ["terminate", "ctrl-c"]

[services."api-1_x.y".log]
stdout = "out/api.log"
stderr = "stdout"
max_size = "500KB"
keep = 2
compress = true
timestamps = true
encoding = "utf-16le"
"#;
    let config = fx.ok(text);
    let dir = fx.dir();
    let w = &config.warden;
    assert_eq!(w.log_dir, dir.join("var/log"));
    assert_eq!(w.state_dir, dir.join("/tmp/warden-state"));
    assert_eq!(w.shutdown_timeout, Duration::from_secs(120));
    assert_eq!(w.api, Some("127.0.0.1:9100".parse().expect("addr")));

    let s = config.service("api-1_x.y").expect("service");
    assert_eq!(s.command, ["server", "--port", "80"]);
    assert_eq!(s.cwd, dir.join("work"));
    assert!(!s.inherit_env);
    assert!(!s.autostart);
    assert_eq!(s.restart, RestartPolicy::OnFailure);
    assert_eq!(s.success_codes, [0, 2, -1]);
    assert_eq!(s.backoff.initial, Duration::from_secs(1));
    assert_eq!(s.backoff.max, Duration::from_secs(60));
    assert!((s.backoff.factor - 1.5).abs() < f64::EPSILON);
    assert!(s.backoff.jitter.abs() < f64::EPSILON);
    assert_eq!(s.backoff.reset_after, Duration::from_secs(300));
    assert_eq!(
        s.start_limit,
        Some(StartLimit {
            count: 3,
            window: Duration::from_secs(10)
        })
    );
    assert_eq!(s.stop_timeout, Duration::from_millis(250));
    assert_eq!(
        s.stop_command.as_deref(),
        Some(&["server".to_owned(), "--stop".to_owned()][..])
    );
    assert_eq!(s.stop_method, [StopMethod::Terminate, StopMethod::CtrlC]);
    assert_eq!(s.log.stdout, dir.join("out/api.log"));
    assert_eq!(s.log.stderr, StderrTarget::Stdout);
    assert_eq!(s.log.max_size, 500_000);
    assert_eq!(s.log.keep, 2);
    assert!(s.log.compress);
    assert!(s.log.timestamps);
    assert_eq!(s.log.encoding.as_deref(), Some("utf-16le"));
}

#[test]
// A rooted path replaces the config's dir but keeps its drive on Windows: what the config does.
#[allow(clippy::join_absolute_paths)]
fn log_defaults_follow_log_dir() {
    let fx = Fixture::new();
    let config = fx.ok(&format!("[warden]\nlog_dir = \"/var/log/w\"\n{MINIMAL}"));
    let s = config.service("web").expect("web");
    // A rooted path keeps the drive of the config on Windows.
    let base = fx.dir().join("/var/log/w");
    assert_eq!(s.log.stdout, base.join("web.out.log"));
    assert_eq!(s.log.stderr, StderrTarget::File(base.join("web.err.log")));
}

#[test]
fn services_keep_file_order() {
    let fx = Fixture::new();
    let config = fx.ok(
        "[services.zeta]\ncommand = \"z\"\n[services.alpha]\ncommand = \"a\"\n[services.mid]\ncommand = \"m\"\n",
    );
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
}

#[test]
fn zero_services_is_valid() {
    let fx = Fixture::new();
    assert!(fx.ok("").services.is_empty());
    assert!(fx.ok("[warden]\n").services.is_empty());
    assert!(fx.ok("[services]\n").services.is_empty());
}

#[test]
fn relative_config_path_is_made_absolute() {
    let config = load_str(MINIMAL, Path::new("warden.toml"), &vars(&[])).expect("valid");
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(config.path, cwd.join("warden.toml"));
    assert_eq!(config.dir, cwd);
    assert!(config.service("web").expect("web").cwd.is_absolute());
}

#[test]
fn string_command_is_split_like_a_shell_would() {
    let fx = Fixture::new();
    let text = r#"[services.web]
command = "echo 'hello world' \"a b\" c\\ d plain"
"#;
    let config = fx.ok(text);
    assert_eq!(
        config.service("web").expect("web").command,
        ["echo", "hello world", "a b", "c d", "plain"]
    );
}

#[test]
fn array_command_is_taken_as_is() {
    let fx = Fixture::new();
    let config = fx.ok("[services.web]\ncommand = [\"echo\", \"a b\", \"'q'\", \"$$x\"]\n");
    assert_eq!(
        config.service("web").expect("web").command,
        ["echo", "a b", "'q'", "$x"]
    );
}

#[test]
fn shell_true_wraps_the_string_in_a_shell() {
    let fx = Fixture::new();
    let config = fx.ok("[services.web]\ncommand = \"echo a | tr a b && exit 3\"\nshell = true\n");
    let s = config.service("web").expect("web");
    assert!(s.shell);
    let expected = if cfg!(windows) {
        ["cmd", "/C", "echo a | tr a b && exit 3"]
    } else {
        ["sh", "-c", "echo a | tr a b && exit 3"]
    };
    assert_eq!(s.command, expected);
}

#[test]
fn shell_true_with_an_array_command_is_an_error() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\nshell = true\ncommand = [\"a\"]\n");
    assert_at(&e, 3, 11, "shell = true needs a string, found array");
}

#[test]
fn env_file_is_merged_under_env() {
    let fx = Fixture::new();
    let env_path = fx.write(
        "app.env",
        "# shared\nexport A=from-file\nB='file b'\nC=\"only in file\"\n",
    );
    let text = r#"[services.web]
command = "x"
env_file = "app.env"
env = { B = "from-table", D = "${HOME_DIR:-/home}" }
"#;
    let config = fx.ok(text);
    let s = config.service("web").expect("web");
    assert_eq!(s.env_file.as_deref(), Some(env_path.as_path()));
    assert_eq!(
        s.env,
        vars(&[
            ("A", "from-file"),
            ("B", "from-table"),
            ("C", "only in file"),
            ("D", "/home"),
            ("WARDEN_SERVICE", "web"),
        ])
    );
}

#[test]
fn warden_service_is_always_set_and_wins() {
    let fx = Fixture::new();
    let config = fx.ok(
        "[services.one]\ncommand = \"x\"\n[services.two]\ncommand = \"x\"\n[services.two.env]\nWARDEN_SERVICE = \"fake\"\nK = \"v\"\n",
    );
    assert_eq!(
        config.service("one").expect("one").env,
        vars(&[("WARDEN_SERVICE", "one")])
    );
    assert_eq!(
        config.service("two").expect("two").env,
        vars(&[("K", "v"), ("WARDEN_SERVICE", "two")])
    );
    let child_env = config.service("one").expect("one").child_env();
    assert!(child_env.contains(&("WARDEN_SERVICE".into(), "one".into())));
}

// It sets stop_signal, which Windows rejects (tested on its own there).
#[cfg(unix)]
#[test]
fn expansion_applies_to_every_string_value() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.dir().join("data")).expect("mkdir");
    let env = vars(&[
        ("BIN", "/usr/bin/app"),
        ("PORT", "8080"),
        ("SUB", "data"),
        ("TIMEOUT", "3s"),
    ]);
    let text = r#"[warden]
log_dir = "${LOGS:-logs2}"
[services.web]
command = ["${BIN}", "--port=${PORT}", "$$HOME"]
cwd = "${SUB}"
stop_timeout = "${TIMEOUT}"
stop_signal = "${SIG:-INT}"
env = { PORT = "${PORT}", URL = "http://localhost:${PORT}" }
log = { max_size = "${MAX:-1KiB}" }
"#;
    let config = fx.ok_with(text, &env);
    let s = config.service("web").expect("web");
    assert_eq!(s.command, ["/usr/bin/app", "--port=8080", "$HOME"]);
    assert_eq!(s.cwd, fx.dir().join("data"));
    assert_eq!(s.stop_timeout, Duration::from_secs(3));
    assert_eq!(s.env["URL"], "http://localhost:8080");
    assert_eq!(s.log.max_size, 1024);
    assert_eq!(config.warden.log_dir, fx.dir().join("logs2"));
    assert_eq!(s.stop_signal, crate::process::Signal::Int);
}

// Windows rejects stop_signal (tested on its own there).
#[cfg(unix)]
#[test]
fn signals_accept_the_sig_form() {
    let fx = Fixture::new();
    for (text, want) in [
        ("QUIT", crate::process::Signal::Quit),
        ("SIGUSR1", crate::process::Signal::Usr1),
        ("hup", crate::process::Signal::Hup),
    ] {
        let config = fx.ok(&format!("{MINIMAL}stop_signal = \"{text}\"\n"));
        assert_eq!(config.service("web").expect("web").stop_signal, want);
    }
}

#[test]
fn api_token_file_is_read_and_trimmed() {
    let fx = Fixture::new();
    fx.write("token", "  s3cret\n\n");
    let config = fx.ok("[warden]\napi = \"0.0.0.0:9100\"\napi_token_file = \"token\"\n");
    assert_eq!(config.warden.api_token, Some(Secret("s3cret".into())));
    assert_eq!(
        format!("{:?}", config.warden.api_token),
        "Some(Secret(***))"
    );
}

#[test]
fn api_on_loopback_needs_no_token() {
    let fx = Fixture::new();
    let config = fx.ok("[warden]\napi = \"[::1]:9100\"\n");
    assert_eq!(config.warden.api, Some("[::1]:9100".parse().expect("addr")));
}

#[test]
fn api_token_inline_is_accepted() {
    let fx = Fixture::new();
    let env = vars(&[("TOKEN", "abc")]);
    let config = fx.ok_with(
        "[warden]\napi = \"10.0.0.1:80\"\napi_token = \"${TOKEN}\"\n",
        &env,
    );
    assert_eq!(config.warden.api_token, Some(Secret("abc".into())));
}

// ---------------------------------------------------------------------------------------
// Errors, each at its exact place

#[test]
fn unreadable_file_is_one_error_at_line_zero() {
    let fx = Fixture::new();
    let missing = fx.dir().join("nope.toml");
    let e = load(&missing, &vars(&[])).expect_err("missing file");
    assert_eq!(e.file, missing);
    assert_eq!(e.errors.len(), 1);
    assert_eq!((e.errors[0].line, e.errors[0].col), (0, 0));
    assert!(e.errors[0].message.contains("cannot read"));
    assert!(!e.errors[0].to_string().contains(":0:"));
}

#[test]
fn load_reads_the_file() {
    let fx = Fixture::new();
    fx.write("warden.toml", MINIMAL);
    let config = load(&fx.path(), &vars(&[])).expect("valid");
    assert_eq!(config.services.len(), 1);
}

#[test]
fn toml_syntax_error_has_its_position() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"a\"\nshell = \n");
    assert_at(&e, 3, 9, "invalid TOML");
    assert!(!e.message.contains('\n'));
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"a\"\ncommand = \"b\"\n");
    assert_at(&e, 3, 1, "duplicate key");
}

#[test]
fn unknown_service_key_has_a_did_you_mean_hint() {
    let fx = Fixture::new();
    let errors = fx.errors("[services.web]\ncomand = \"a\"\n");
    // "comand" is unknown, and so the service has no command.
    assert_eq!(errors.len(), 2, "{}", list(&errors));
    assert_at(&errors[0], 1, 11, "has no command");
    assert_at(&errors[1], 2, 1, "unknown key \"comand\" in [services.web]");
    assert_eq!(errors[1].hint.as_deref(), Some("did you mean \"command\"?"));
    assert_eq!(
        errors[1].to_string(),
        format!(
            "{}:2:1: unknown key \"comand\" in [services.web] (did you mean \"command\"?)",
            fx.path().display()
        )
    );
}

#[test]
fn unknown_keys_at_every_level() {
    let fx = Fixture::new();
    let text = r#"servces = 1
[warden]
log_dri = "x"
[services.web]
command = "a"
backoff = { inital = "1s" }
start_limit = { count = 1, window = "1s", windw = "2s" }
[services.web.log]
stdot = "x"
"#;
    let errors = fx.errors(text);
    assert_eq!(errors.len(), 5, "{}", list(&errors));
    assert_at(&errors[0], 1, 1, "\"servces\"");
    assert_hint(&errors[0], "did you mean \"services\"?");
    assert_at(&errors[1], 3, 1, "\"log_dri\"");
    assert_hint(&errors[1], "did you mean \"log_dir\"?");
    assert_at(&errors[2], 6, 13, "\"inital\"");
    assert_hint(&errors[2], "did you mean \"initial\"?");
    assert_at(&errors[3], 7, 43, "\"windw\"");
    assert_hint(&errors[3], "did you mean \"window\"?");
    assert_at(&errors[4], 9, 1, "\"stdot\"");
    assert_hint(&errors[4], "did you mean \"stdout\"?");
}

#[test]
fn unknown_key_far_from_any_lists_the_valid_ones() {
    let fx = Fixture::new();
    let e = fx.error("[warden]\nxyzzy = 1\n");
    assert_at(&e, 2, 1, "unknown key \"xyzzy\"");
    assert_hint(&e, "expected one of: log_dir, state_dir");
}

#[test]
fn wrong_type_names_what_was_expected_and_found() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = 42\n");
    assert_at(
        &e,
        2,
        11,
        "expected a string or an array of strings, found integer",
    );
}

#[test]
fn wrong_type_inside_an_array_points_at_the_element() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = [\"a\", 2]\n");
    assert_at(&e, 2, 17, "found an array with an integer in it");
}

#[test]
fn wrong_types_of_other_keys() {
    let fx = Fixture::new();
    let text = "[services.web]\ncommand = \"a\"\nautostart = \"yes\"\nenv = { PORT = 8080 }\nsuccess_codes = 0\n";
    let errors = fx.errors(text);
    assert_eq!(errors.len(), 3, "{}", list(&errors));
    assert_at(&errors[0], 3, 13, "expected a boolean");
    assert_at(
        &errors[1],
        4,
        16,
        "env.PORT: expected a string, found integer",
    );
    assert_hint(&errors[1], "quote the value: PORT = \"...\"");
    assert_at(
        &errors[2],
        5,
        17,
        "expected an array of integers, found integer",
    );
}

#[test]
fn bad_duration() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"a\"\nstop_timeout = \"10 sec\"\n");
    assert_at(
        &e,
        3,
        16,
        "stop_timeout: expected a duration like \"30s\" or \"250ms\", found \"10 sec\"",
    );
}

#[test]
fn integer_duration_is_rejected_with_a_hint() {
    let fx = Fixture::new();
    let e = fx.error("[warden]\nshutdown_timeout = 10\n");
    assert_at(&e, 2, 20, "expected a duration like \"30s\"");
    assert_hint(&e, "write \"10s\"");
}

#[test]
fn bad_size() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"a\"\nlog.max_size = \"10 parsecs\"\n");
    assert_at(&e, 3, 16, "max_size: expected a size like \"10MiB\"");
}

#[test]
fn zero_size_and_zero_keep_are_rejected() {
    let fx = Fixture::new();
    let errors = fx.errors("[services.web]\ncommand = \"a\"\nlog = { max_size = 0, keep = 0 }\n");
    assert_eq!(errors.len(), 2, "{}", list(&errors));
    assert_at(&errors[0], 3, 20, "max_size must be between 1KiB and 1TiB");
    assert_at(&errors[1], 3, 30, "keep must be between 1 and 1000");
}

#[test]
fn unknown_encoding_is_rejected_and_known_ones_kept() {
    let fx = Fixture::new();
    let e = fx.error(&format!("{MINIMAL}log.encoding = \"klingon\"\n"));
    assert_at(&e, 3, 16, "encoding: unknown encoding \"klingon\"");
    assert!(e.message.contains("\"utf-16le\""), "{}", e.message);
    let e = fx.error(&format!("{MINIMAL}log.encoding = \"\"\n"));
    assert_at(&e, 3, 16, "encoding is empty");
    for name in ["utf-8", "UTF-16LE", "latin1", "cp1252"] {
        let config = fx.ok(&format!("{MINIMAL}log.encoding = \"{name}\"\n"));
        let log = &config.service("web").expect("web").log;
        assert_eq!(log.encoding.as_deref(), Some(name));
    }
}

#[test]
fn integer_size_is_bytes() {
    let fx = Fixture::new();
    let config = fx.ok(&format!("{MINIMAL}log.max_size = 4096\n"));
    assert_eq!(config.service("web").expect("web").log.max_size, 4096);
}

#[cfg(unix)]
#[test]
fn unknown_signal_lists_the_valid_ones() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"a\"\nstop_signal = \"SIGTREM\"\n");
    assert_at(&e, 3, 15, "unknown signal \"SIGTREM\"");
    assert_hint(&e, "did you mean \"TERM\"?");
    assert_hint(&e, "valid signals: INT, TERM, HUP, QUIT, KILL, USR1, USR2");
}

#[cfg(windows)]
#[test]
fn stop_signal_is_an_error_on_windows() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"a\"\nstop_signal = \"TERM\"\n");
    assert_at(
        &e,
        3,
        1,
        "stop_signal has no meaning on Windows; use stop_method",
    );
}

#[test]
fn empty_commands() {
    let fx = Fixture::new();
    let text = "[services.a]\ncommand = \"\"\n[services.b]\ncommand = []\n[services.c]\ncommand = \"  \"\nshell = true\n[services.d]\ncommand = [\"\", \"x\"]\n[services.e]\ncommand = \"a\"\nstop_command = []\n";
    let errors = fx.errors(text);
    assert_eq!(errors.len(), 5, "{}", list(&errors));
    assert_at(&errors[0], 2, 11, "command is empty");
    assert_at(&errors[1], 4, 11, "command is empty");
    assert_at(&errors[2], 6, 11, "command is empty");
    assert_at(&errors[3], 9, 11, "the program name is empty");
    assert_at(&errors[4], 12, 16, "stop_command is empty");
}

#[test]
fn unbalanced_quotes_in_a_command() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"echo 'oops\"\n");
    assert_at(&e, 2, 11, "cannot split into words");
}

#[test]
fn missing_command() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\nautostart = true\n");
    assert_at(&e, 1, 11, "service \"web\" has no command");
}

#[test]
fn missing_cwd_names_the_resolved_path() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"a\"\ncwd = \"nowhere\"\n");
    let resolved = fx.dir().join("nowhere");
    assert_at(
        &e,
        3,
        7,
        &format!("cwd \"{}\" does not exist", resolved.display()),
    );
}

#[test]
fn cwd_that_is_a_file_is_rejected() {
    let fx = Fixture::new();
    fx.write("file", "");
    let e = fx.error("[services.web]\ncommand = \"a\"\ncwd = \"file\"\n");
    assert_at(&e, 3, 7, "is not a directory");
}

#[test]
fn missing_env_file_names_the_resolved_path() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"a\"\nenv_file = \"sub/.env\"\n");
    let resolved = fx.dir().join("sub").join(".env");
    assert_at(
        &e,
        3,
        12,
        &format!("env_file \"{}\" does not exist", resolved.display()),
    );
}

#[test]
fn bad_env_file_lines_are_reported_at_env_file() {
    let fx = Fixture::new();
    fx.write("bad.env", "A=1\nnot a pair\n");
    let e = fx.error("[services.web]\ncommand = \"a\"\nenv_file = \"bad.env\"\n");
    assert_at(&e, 3, 12, "line 2: expected KEY=VALUE");
}

#[test]
fn unset_variable_error_has_its_place_and_hint() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = [\"serve\", \"--port\", \"${PORT}\"]\n");
    assert_at(&e, 2, 31, "environment variable \"PORT\" is not set");
    assert_eq!(
        e.hint.as_deref(),
        Some("write ${PORT:-default} to give a default")
    );
}

#[test]
fn required_variable_shows_its_message() {
    let fx = Fixture::new();
    let e = fx.error(
        "[services.web]\ncommand = \"a\"\nenv.DB = \"${DB_URL:?set DB_URL to the database}\"\n",
    );
    assert_at(&e, 3, 10, "set DB_URL to the database");
}

#[test]
fn bad_service_names() {
    let fx = Fixture::new();
    let errors =
        fx.errors("[services.\"my app\"]\ncommand = \"a\"\n[services.\"\"]\ncommand = \"a\"\n");
    assert_eq!(errors.len(), 2, "{}", list(&errors));
    assert_at(&errors[0], 1, 11, "invalid service name \"my app\"");
    assert_hint(&errors[0], "letters, digits");
    assert_at(&errors[1], 3, 11, "invalid service name \"\"");
}

#[test]
fn service_that_is_not_a_table() {
    let fx = Fixture::new();
    let e = fx.error("services.web = \"run me\"\n");
    assert_at(&e, 1, 16, "services.web: expected a table, found string");
}

#[test]
fn array_of_tables_for_services_is_rejected() {
    let fx = Fixture::new();
    let e = fx.error("[[services]]\ncommand = \"a\"\n");
    assert_at(&e, 1, 3, "found array of tables");
}

#[test]
fn many_errors_are_reported_at_once_in_file_order() {
    let fx = Fixture::new();
    let text = r#"[warden]
shutdown_timeout = "forever"

[services.b]
command = ["ok"]
stop_signal = "NOPE"
restart = "sometimes"

[services.a]
command = 7
log = { keep = "five" }
"#;
    let errors = fx.errors(text);
    let places: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.col)).collect();
    if cfg!(windows) {
        assert_eq!(places, [(2, 20), (6, 1), (7, 11), (10, 11), (11, 16)]);
    } else {
        assert_eq!(places, [(2, 20), (6, 15), (7, 11), (10, 11), (11, 16)]);
    }
    assert!(
        errors[2]
            .message
            .contains("unknown restart policy \"sometimes\"")
    );
    assert_hint(
        &errors[2],
        "expected one of \"always\", \"on-failure\", \"never\"",
    );
}

#[test]
fn api_on_non_loopback_without_token_is_rejected() {
    let fx = Fixture::new();
    let e = fx.error("[warden]\napi = \"0.0.0.0:9100\"\n");
    assert_at(&e, 2, 7, "not a loopback address");
    assert_hint(&e, "api_token");
}

#[test]
fn api_bad_address() {
    let fx = Fixture::new();
    let e = fx.error("[warden]\napi = \"localhost\"\n");
    assert_at(
        &e,
        2,
        7,
        "expected a socket address like \"127.0.0.1:9100\"",
    );
}

#[test]
fn api_token_and_token_file_together_are_rejected() {
    let fx = Fixture::new();
    fx.write("token", "t");
    let e = fx.error("[warden]\napi_token = \"t\"\napi_token_file = \"token\"\n");
    assert_at(&e, 3, 1, "api_token and api_token_file are both set");
}

#[test]
fn missing_or_empty_token_file() {
    let fx = Fixture::new();
    let e = fx.error("[warden]\napi_token_file = \"missing\"\n");
    assert_at(&e, 2, 18, "cannot be read");
    fx.write("blank", " \n");
    let e = fx.error("[warden]\napi_token_file = \"blank\"\n");
    assert_at(&e, 2, 18, "the token is empty");
}

#[test]
fn backoff_limits() {
    let fx = Fixture::new();
    let text = "[services.web]\ncommand = \"a\"\n[services.web.backoff]\ninitial = \"1m\"\nmax = \"1s\"\nfactor = 0.5\njitter = 1\n";
    let errors = fx.errors(text);
    assert_eq!(errors.len(), 3, "{}", list(&errors));
    assert_at(
        &errors[0],
        4,
        11,
        "backoff.initial (1m) is greater than backoff.max (1s)",
    );
    assert_at(&errors[1], 6, 10, "factor must be between 1.0 and 100.0");
    assert_at(
        &errors[2],
        7,
        10,
        "jitter must be at least 0 and less than 1",
    );
}

#[test]
fn backoff_factor_may_be_an_integer() {
    let fx = Fixture::new();
    let config = fx.ok(&format!("{MINIMAL}backoff = {{ factor = 3 }}\n"));
    let b = config.service("web").expect("web").backoff;
    assert!((b.factor - 3.0).abs() < f64::EPSILON);
    assert_eq!(b.initial, Duration::from_millis(100));
}

#[test]
fn start_limit_needs_both_keys_and_a_positive_count() {
    let fx = Fixture::new();
    let errors = fx.errors(&format!(
        "{MINIMAL}start_limit = {{ count = 3 }}\n[services.b]\ncommand = \"b\"\nstart_limit = {{ count = 0, window = \"1s\" }}\n"
    ));
    assert_eq!(errors.len(), 2, "{}", list(&errors));
    assert_at(&errors[0], 3, 1, "start_limit needs window");
    assert_at(&errors[1], 6, 25, "count must be between 1 and 1000");
}

#[test]
fn stop_method_values() {
    let fx = Fixture::new();
    let e = fx.error(&format!(
        "{MINIMAL}stop_method = [\"ctrl-c\", \"wm_close\"]\n"
    ));
    assert_at(&e, 3, 15, "unknown stop method \"wm_close\"");
    assert_hint(&e, "did you mean \"wm-close\"?");
    let e = fx.error(&format!("{MINIMAL}stop_method = []\n"));
    assert_at(&e, 3, 15, "stop_method is empty");
}

#[test]
fn errors_in_inline_and_dotted_tables_point_inside_them() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"a\"\nlog.keep = \"x\"\n");
    assert_at(&e, 3, 12, "keep: expected an integer, found string");
}

#[test]
fn columns_count_characters_not_bytes() {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"a\"\nenv = { \"é\" = \"x\", B = 1 }\n");
    assert_at(&e, 3, 24, "env.B");
}

#[test]
fn edit_distance_counts_swaps_as_one() {
    use super::diag::{closest, edit_distance};
    assert_eq!(edit_distance("command", "command"), 0);
    assert_eq!(edit_distance("comand", "command"), 1);
    assert_eq!(edit_distance("TREM", "TERM"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(closest("resatrt", &["restart", "cwd"]), Some("restart"));
    assert_eq!(closest("xyz", &["restart", "cwd"]), None);
}

// ---------------------------------------------------------------------------------------
// Warnings: a program that is not there

/// Every path holds an executable, except those listed as missing.
struct AllBut(Vec<PathBuf>);

impl programs::Programs for AllBut {
    fn probe(&self, path: &Path) -> programs::Probe {
        if self.0.iter().any(|p| p == path) {
            programs::Probe::Missing
        } else {
            programs::Probe::Executable
        }
    }
}

#[test]
#[cfg(unix)] // Unix program paths
fn a_missing_program_is_a_warning_at_the_command_key() {
    let fx = Fixture::new();
    let text = "[services.web]\nrestart = \"never\"\n  command = [\"/opt/web/run\", \"-v\"]\nstop_command = \"/opt/web/stop now\"\n[services.ok]\ncommand = \"/opt/ok\"\n";
    let missing = AllBut(vec!["/opt/web/run".into(), "/opt/web/stop".into()]);
    let config = parse::load_text(text, &fx.path(), &BTreeMap::new(), &missing)
        .expect("a warning leaves the config valid");
    assert_eq!(config.services.len(), 2);
    let w: Vec<&ConfigError> = config.warnings.iter().map(|w| &w.0).collect();
    assert_eq!(w.len(), 2, "{:?}", config.warnings);
    assert_at(
        w[0],
        3,
        3,
        "command: program \"/opt/web/run\" does not exist",
    );
    assert_at(
        w[1],
        4,
        1,
        "stop_command: program \"/opt/web/stop\" does not exist",
    );
    assert_eq!(
        config.warnings[0].to_string(),
        format!(
            "{}:3:3: warning: command: program \"/opt/web/run\" does not exist",
            fx.path().display()
        )
    );
}

#[test]
fn a_config_with_errors_carries_no_warnings_but_its_errors() {
    let fx = Fixture::new();
    let text = "[services.web]\ncommand = \"/opt/none\"\nstop_timeout = \"soon\"\n";
    let missing = AllBut(vec!["/opt/none".into()]);
    let e = parse::load_text(text, &fx.path(), &BTreeMap::new(), &missing)
        .expect_err("stop_timeout is an error");
    assert_eq!(e.errors.len(), 1, "{}", render(&e));
    assert_at(&e.errors[0], 3, 16, "stop_timeout");
}

#[cfg(unix)]
#[test]
fn the_real_lookup_needs_a_regular_executable_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let fx = Fixture::new();
    fx.write("plain", "#!/bin/sh\n");
    let exe = fx.write("exe", "#!/bin/sh\n");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::create_dir(fx.dir().join("bin")).expect("mkdir");
    let text = "[services.a]\ncommand = \"./plain\"\n[services.b]\ncommand = \"./exe\"\n\
                [services.c]\ncommand = \"bin\"\nenv = { PATH = \".\" }\n\
                [services.d]\ncommand = \"./nothing\"\n[services.e]\ncommand = \"exe\"\nenv = { PATH = \"/nonexistent:.\" }\n";
    let config = fx.ok(text);
    let w: Vec<&ConfigError> = config.warnings.iter().map(|w| &w.0).collect();
    assert_eq!(w.len(), 3, "{:?}", config.warnings);
    assert_at(w[0], 2, 1, "command: program \"./plain\" at ");
    assert_eq!(
        w[0].hint.as_deref(),
        Some(format!("chmod +x {}", fx.dir().join("plain").display()).as_str())
    );
    assert_at(w[1], 6, 1, "command: program \"bin\" is not found on PATH");
    assert_at(w[2], 9, 1, "command: program \"./nothing\" does not exist");
}

// ---------------------------------------------------------------------------------------
// Hints for other tools' keys

#[test]
fn other_tools_keys_hint_at_warden_s_own() {
    let fx = Fixture::new();
    for (foreign, ours) in [
        ("autorestart", "restart"),
        ("stopwaitsecs", "stop_timeout"),
        ("environment", "env"),
        ("directory", "cwd"),
    ] {
        let errors = fx.errors(&format!(
            "[services.web]\ncommand = \"/bin/sh\"\n{foreign} = 1\n"
        ));
        assert_eq!(errors.len(), 1, "{}", list(&errors));
        assert_at(&errors[0], 3, 1, &format!("unknown key \"{foreign}\""));
        assert_eq!(
            errors[0].hint.as_deref(),
            Some(
                format!("did you mean \"{ours}\"? \"{foreign}\" is supervisord's name for it")
                    .as_str()
            ),
        );
    }
}

/// An entry of the table hints only at a key the parser knows: `min_uptime`, `pid_file` and
/// `memory_max` do not exist yet, so `startsecs`, `pidfile` and `max_memory_restart` get the
/// ordinary hint until they land.
#[test]
fn a_foreign_key_hints_only_at_a_key_that_exists() {
    let fx = Fixture::new();
    for (foreign, ours, _) in diag::FOREIGN_KEYS {
        let errors = fx.errors(&format!(
            "[services.web]\ncommand = \"/bin/sh\"\n{foreign} = 1\n"
        ));
        let hint = errors[0].hint.clone().unwrap_or_default();
        let known = service_keys().iter().any(|k| k == ours);
        assert_eq!(
            hint.contains(&format!("did you mean \"{ours}\"?")),
            known,
            "{foreign} -> {ours}: {hint}"
        );
    }
    // Outside a service, `environment` is not `env`'s place: no such hint.
    let e = fx.error("[warden]\nenvironment = 1\n");
    assert!(!e.hint.unwrap_or_default().contains("\"env\""));
}

/// The keys of `[services.NAME]`, read from the error for a key that is near none of them.
fn service_keys() -> Vec<String> {
    let fx = Fixture::new();
    let e = fx.error("[services.web]\ncommand = \"/bin/sh\"\nzzzzzzzzzzzzzzzz = 1\n");
    e.hint
        .unwrap_or_default()
        .trim_start_matches("expected one of: ")
        .split(", ")
        .map(str::to_owned)
        .collect()
}

#[test]
#[cfg(unix)]
fn socket_is_a_path_relative_to_the_config_and_defaults_to_none() {
    let fx = Fixture::new();
    assert_eq!(fx.ok(MINIMAL).warden.socket, None);
    let config = fx.ok(&format!("[warden]\nsocket = \"run/w.sock\"\n{MINIMAL}"));
    assert_eq!(config.warden.socket, Some(fx.dir().join("run/w.sock")));
    let e = fx.error(&format!("[warden]\nsocket = \"\"\n{MINIMAL}"));
    assert_at(&e, 2, 10, "socket");
}

#[test]
#[cfg(unix)]
fn a_socket_too_long_for_sockaddr_un_is_an_error_at_the_socket_key() {
    let fx = Fixture::new();
    let long = format!("/tmp/{}/w.sock", "s".repeat(120));
    let e = fx.error(&format!("[warden]\nsocket = \"{long}\"\n{MINIMAL}"));
    assert_at(&e, 2, 10, "the control socket");
    assert_hint(&e, "set [warden] socket to a shorter path");
}
