//! Issue 8, section A: a config that `warden check` accepts never crashes or hangs the
//! daemon. One regression test per finding, through the public API only (text or file to
//! `Config`, then the policy functions), each in its own temp dir.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use warden_core::config::{
    Backoff, Config, ConfigError, ConfigErrors, RestartPolicy, load, load_str,
};
use warden_core::policy::{self, RestartHistory};
use warden_core::process::ExitStatus;

/// How long a load may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(20);

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn config(&self) -> PathBuf {
        self.path("warden.toml")
    }

    fn load(&self, text: &str) -> Result<Config, ConfigErrors> {
        load_str(text, &self.config(), &BTreeMap::new())
    }

    /// The errors of `text`; panics if it loads.
    fn errors(&self, text: &str) -> Vec<ConfigError> {
        match self.load(text) {
            Ok(_) => panic!("expected errors, the config was accepted:\n{text:.300}"),
            Err(e) => e.errors,
        }
    }
}

fn has(errors: &[ConfigError], line: usize, col: usize, needle: &str) -> bool {
    errors
        .iter()
        .any(|e| e.line == line && e.col == col && e.message.contains(needle))
}

#[track_caller]
fn assert_has(errors: &[ConfigError], line: usize, col: usize, needle: &str) {
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        has(errors, line, col, needle),
        "no error {needle:?} at {line}:{col} in:\n{}",
        list.join("\n")
    );
}

/// Run `f` on a thread with a small stack (like a tokio worker, smaller still), and fail
/// (instead of hanging) if it does not return within [`HANG`].
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn");
    rx.recv_timeout(HANG)
        .expect("the load hung (or its thread died)")
}

fn service(body: &str) -> String {
    format!("[services.web]\ncommand = [\"true\"]\n{body}")
}

// ---------------------------------------------------------------------------------------
// Finding 1: deep nesting overflowed the stack.

#[test]
fn deeply_nested_defaults_are_an_error_not_a_stack_overflow() {
    let depth = 6_000;
    let value = format!("{}x{}", "${A:-".repeat(depth), "}".repeat(depth));
    let text = service(&format!("env = {{ V = \"{value}\" }}\n"));
    let fx = Fixture::new();
    let path = fx.config();
    let errors = on_small_stack(move || load_str(&text, &path, &BTreeMap::new()))
        .expect_err("6000 levels of ${...} must be refused");
    assert_has(&errors.errors, 3, 13, "nest 6000 levels deep");
    // A little nesting still works.
    let ok = fx
        .load(&service("env = { V = \"${A:-${B:-${C:-deep}}}\" }\n"))
        .expect("3 levels are fine");
    assert_eq!(ok.services[0].env["V"], "deep");
}

#[test]
fn deeply_nested_arrays_are_an_error_before_parsing() {
    // toml_edit stops at 80 levels, but 79 levels of its recursion overflow a small stack.
    let depth = 79;
    let text = service(&format!(
        "success_codes = {}0{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    ));
    let fx = Fixture::new();
    let path = fx.config();
    let errors = on_small_stack(move || load_str(&text, &path, &BTreeMap::new()))
        .expect_err("79 levels of arrays must be refused");
    assert_has(&errors.errors, 3, 49, "nest deeper than 32");
}

#[test]
fn expansion_that_grows_past_1mib_is_an_error() {
    let big = "x".repeat(64 << 10);
    let env: BTreeMap<String, String> = [("BIG".to_owned(), big)].into();
    let text = service(&format!("env = {{ V = \"{}\" }}\n", "${BIG}".repeat(20)));
    let fx = Fixture::new();
    let e = load_str(&text, &fx.config(), &env).expect_err("20 × 64 KiB is too long");
    assert_has(&e.errors, 3, 13, "longer than 1048576 bytes once expanded");
    let text = service(&format!("env = {{ V = \"{}\" }}\n", "${BIG}".repeat(15)));
    load_str(&text, &fx.config(), &env).expect("15 × 64 KiB is fine");
}

#[test]
fn brackets_in_strings_and_comments_do_not_count_as_nesting() {
    let many = "[{".repeat(100);
    let text = format!(
        "# {many}\n[services.web]\ncommand = [\"echo\", \"{many}\", '{many}', \"\\\"{many}\"]\n\
         stop_command = \"\"\"\n{many}\"\"\" # {many}\n\
         env = {{ A = '\'\'{many}\'\'' }}\n"
    );
    let fx = Fixture::new();
    let config = fx.load(&text).expect("brackets inside strings are text");
    assert_eq!(config.services[0].command[1], many);
}

// ---------------------------------------------------------------------------------------
// Finding 2: huge durations and factors panicked in the backoff computation.

#[test]
fn huge_durations_are_rejected_at_their_place() {
    let fx = Fixture::new();
    let errors = fx.errors(&service(
        "backoff = { initial = \"18446744073709551615s\", max = \"18446744073709551615s\" }\n\
         stop_timeout = \"400d\"\n\
         start_limit = { count = 5, window = \"10000d\" }\n\
         [warden]\nshutdown_timeout = \"25h\"\n",
    ));
    assert_has(&errors, 3, 23, "initial: at most \"24h\"");
    assert_has(&errors, 3, 54, "max: at most \"24h\"");
    assert_has(&errors, 4, 16, "stop_timeout: at most \"24h\"");
    assert_has(&errors, 5, 37, "window: at most \"365d\"");
    assert_has(&errors, 7, 20, "shutdown_timeout: at most \"24h\"");
}

#[test]
fn huge_backoff_factor_is_rejected() {
    let fx = Fixture::new();
    for factor in ["1e308", "inf", "nan", "101.0"] {
        let errors = fx.errors(&service(&format!("backoff = {{ factor = {factor} }}\n")));
        assert_has(
            &errors,
            3,
            22,
            "backoff.factor must be between 1.0 and 100.0",
        );
    }
}

#[test]
fn backoff_delay_never_panics_on_extreme_values() {
    // Values no config can hold any more; the policy must still be total.
    let b = Backoff {
        initial: Duration::MAX,
        max: Duration::MAX,
        factor: f64::MAX,
        jitter: 0.999,
        reset_after: Duration::MAX,
    };
    for n in [1, 2, 1_000, u32::MAX] {
        for r in [0.0, 0.5, 0.999_999] {
            let d = policy::backoff_delay(&b, n, r);
            assert!(d <= Duration::MAX);
        }
    }
    let mut history = RestartHistory::default();
    let decision = policy::after_exit(
        RestartPolicy::Always,
        &[0],
        &b,
        &mut history,
        Some(ExitStatus::Code(1)),
        Duration::ZERO,
        0.999,
    );
    assert!(matches!(decision, policy::AfterExit::Restart { .. }));
    // The deadline of such a delay does not overflow `Instant` either.
    let now = Instant::now();
    assert!(warden_core::util::instant_after(now, Duration::MAX) >= now);
}

// ---------------------------------------------------------------------------------------
// Finding 3: a huge keep made each rotation loop over billions of renames.

#[test]
fn keep_above_1000_is_rejected() {
    let fx = Fixture::new();
    let errors = fx.errors(&service(
        "log = { keep = 4294967295, max_size = 1 }\nstart_limit = { count = 4294967295, window = \"1s\" }\n",
    ));
    assert_has(&errors, 3, 16, "keep must be between 1 and 1000");
    assert_has(&errors, 3, 39, "max_size must be between 1KiB and 1TiB");
    assert_has(&errors, 4, 25, "count must be between 1 and 1000");
    let ok = fx
        .load(&service("log = { keep = 1000, max_size = \"1KiB\" }\n"))
        .expect("the bounds themselves are fine");
    assert_eq!(ok.services[0].log.keep, 1000);
}

// ---------------------------------------------------------------------------------------
// Finding 4: strings that can never work passed `check`.

#[test]
fn nul_bytes_in_paths_commands_and_env_are_rejected() {
    let fx = Fixture::new();
    let errors = fx.errors(
        "[services.web]\n\
         command = [\"true\", \"a\\u0000b\"]\n\
         cwd = \"x\\u0000\"\n\
         env = { K = \"v\\u0000\" }\n\
         stop_command = \"kill\\u0000\"\n\
         log = { stdout = \"o\\u0000.log\", stderr = \"e\\u0000.log\" }\n\
         [services.sh]\nshell = true\ncommand = \"echo \\u0000\"\n\
         [warden]\nstate_dir = \"s\\u0000\"\nlog_dir = \"l\\u0000\"\n",
    );
    assert_has(&errors, 2, 11, "command: contains a NUL byte");
    assert_has(&errors, 3, 7, "cwd: contains a NUL byte");
    assert_has(&errors, 4, 13, "env.K: contains a NUL byte");
    assert_has(&errors, 5, 16, "stop_command: contains a NUL byte");
    assert_has(&errors, 6, 18, "stdout: contains a NUL byte");
    assert_has(&errors, 6, 42, "stderr: contains a NUL byte");
    assert_has(&errors, 9, 11, "command: contains a NUL byte");
    assert_has(&errors, 11, 13, "state_dir: contains a NUL byte");
    assert_has(&errors, 12, 11, "log_dir: contains a NUL byte");
}

#[test]
fn nul_byte_in_an_env_file_value_is_rejected() {
    let fx = Fixture::new();
    std::fs::write(fx.path("web.env"), b"A=1\nB=x\0y\n").expect("write env file");
    let errors = fx.errors(&service("env_file = \"web.env\"\n"));
    assert_has(&errors, 3, 12, "line 2: the value of B contains a NUL byte");
}

#[test]
fn service_names_longer_than_64_are_rejected() {
    let fx = Fixture::new();
    let long = "a".repeat(300);
    let errors = fx.errors(&format!("[services.{long}]\ncommand = \"true\"\n"));
    assert_has(&errors, 1, 11, "the service name is 300 characters long");
    let name = "b".repeat(64);
    fx.load(&format!("[services.{name}]\ncommand = \"true\"\n"))
        .expect("64 characters are fine");
}

#[cfg(unix)]
#[test]
fn socket_path_longer_than_sockaddr_un_is_rejected() {
    let fx = Fixture::new();
    let deep = fx.path(&"d".repeat(120));
    let errors = fx.errors(&format!(
        "[warden]\nstate_dir = {:?}\n",
        deep.display().to_string()
    ));
    assert_has(&errors, 2, 13, "a Unix socket path holds at most");
    // Without [warden], the default state dir next to a deeply placed config.
    let config = deep.join("warden.toml");
    let e = load_str("", &config, &BTreeMap::new()).expect_err("default state dir too long");
    assert_has(&e.errors, 1, 1, "a Unix socket path holds at most");
}

#[cfg(unix)]
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo failed");
}

/// Load `text` from a real file in `fx`, failing (not hanging) after [`HANG`].
fn load_file(fx: &Fixture, text: &str) -> Result<Config, ConfigErrors> {
    std::fs::write(fx.config(), text).expect("write config");
    let path = fx.config();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(load(&path, &BTreeMap::new()));
    });
    rx.recv_timeout(HANG).expect("the load hung")
}

#[cfg(unix)]
#[test]
fn env_file_and_token_file_that_are_fifos_are_errors_not_hangs() {
    let fx = Fixture::new();
    mkfifo(&fx.path("web.env"));
    mkfifo(&fx.path("token"));
    let text = format!(
        "[warden]\napi_token_file = \"token\"\n{}",
        service("env_file = \"web.env\"\n")
    );
    let errors = load_file(&fx, &text)
        .expect_err("FIFOs must be refused")
        .errors;
    assert_has(&errors, 2, 18, "it is a FIFO, not a regular file");
    assert_has(&errors, 5, 12, "it is a FIFO, not a regular file");
}

#[cfg(unix)]
#[test]
fn env_file_and_token_file_that_are_devices_are_errors() {
    let fx = Fixture::new();
    let text = format!(
        "[warden]\napi_token_file = \"/dev/zero\"\n{}",
        service("env_file = \"/dev/zero\"\n")
    );
    let errors = load_file(&fx, &text)
        .expect_err("devices must be refused")
        .errors;
    assert_has(&errors, 2, 18, "it is a device, not a regular file");
    assert_has(&errors, 5, 12, "it is a device, not a regular file");
}

#[test]
fn env_file_and_token_file_over_their_size_cap_are_errors() {
    let fx = Fixture::new();
    let mut big = String::new();
    while big.len() <= 1 << 20 {
        big.push_str("KEY=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
    }
    std::fs::write(fx.path("web.env"), &big).expect("write env file");
    std::fs::write(fx.path("token"), "t".repeat(65 << 10)).expect("write token");
    let text = format!(
        "[warden]\napi_token_file = \"token\"\n{}",
        service("env_file = \"web.env\"\n")
    );
    let errors = load_file(&fx, &text).expect_err("too big").errors;
    assert_has(&errors, 2, 18, "it is larger than 65536 bytes");
    assert_has(&errors, 5, 12, "it is larger than 1048576 bytes");
}

#[cfg(unix)]
#[test]
fn log_path_that_is_a_symlink_is_a_config_error() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.path("logs")).expect("mkdir");
    std::os::unix::fs::symlink("/dev/stdout", fx.path("logs/out.log")).expect("symlink");
    let errors = fx.errors(&service("log = { stdout = \"logs/out.log\" }\n"));
    assert_has(
        &errors,
        3,
        18,
        "is a symbolic link, which warden never follows",
    );
}

#[cfg(unix)]
#[test]
fn state_dir_and_log_dir_another_user_can_write_are_config_errors() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let open = fx.path("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let errors = fx.errors(&format!(
        "[warden]\nstate_dir = \"open/state\"\nlog_dir = \"open/logs\"\n{}{}",
        service(""),
        "[services.two]\ncommand = \"true\"\n"
    ));
    assert_has(
        &errors,
        2,
        13,
        "writable by others (mode 777) and not sticky",
    );
    assert_has(&errors, 4, 11, "log.stdout: ");
    assert_eq!(
        errors.len(),
        2,
        "the shared log dir is reported once: {errors:?}"
    );
}

#[test]
fn invalid_utf8_config_names_line_and_column() {
    let fx = Fixture::new();
    std::fs::write(fx.config(), b"[services.web]\ncommand = \"ab\xff\"\n").expect("write");
    let e = load(&fx.config(), &BTreeMap::new()).expect_err("invalid UTF-8");
    assert_eq!(e.errors.len(), 1);
    assert_has(&e.errors, 2, 14, "invalid UTF-8");
}

#[test]
fn config_file_over_1mib_is_rejected() {
    let fx = Fixture::new();
    let mut text = service("");
    text.push_str(&"# padding padding padding padding padding padding padding\n".repeat(20_000));
    let e = load_file(&fx, &text).expect_err("too big");
    assert_eq!(e.errors.len(), 1);
    assert!(
        e.errors[0].message.contains("larger than 1048576 bytes"),
        "{}",
        e.errors[0]
    );
}
