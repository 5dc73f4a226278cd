//! Shared helpers for the end-to-end tests: a unique directory per test, the real `warden`
//! binary, the flag-driven `test-child`, and deadline polling (never fixed sleeps).
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(20);

/// The `warden` binary under test.
pub fn warden_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_warden"))
}

/// The `test-child` binary, built once per test run.
pub fn test_child() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = warden_bin().parent().unwrap().to_path_buf();
        let exe = dir.join(format!("test-child{}", std::env::consts::EXE_SUFFIX));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "test-child"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build -p test-child");
        assert!(status.success(), "cargo build -p test-child failed");
        assert!(exe.exists(), "test-child not found at {}", exe.display());
        exe
    })
    .clone()
}

/// `test-child` as a TOML string, for configs.
pub fn tc() -> String {
    toml_str(&test_child().display().to_string())
}

/// A TOML basic string literal.
pub fn toml_str(s: &str) -> String {
    format!("{s:?}")
}

/// Poll `f` until it returns `Some`, or panic with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A finished command's exit status, stdout and stderr, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Assert that a command exited with `code` and said `needle` on stderr; returns stderr.
pub fn assert_fails(o: &Output, code: i32, needle: &str) -> String {
    assert_eq!(o.status.code(), Some(code), "{}", show(o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains(needle),
        "expected {needle:?} on stderr: {}",
        show(o)
    );
    err
}

/// A test's own directory with a config in it.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new(config: &str) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("warden-e2e-")
            .tempdir()
            .unwrap();
        fs::write(dir.path().join("warden.toml"), config).unwrap();
        Env { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config(&self) -> PathBuf {
        self.path("warden.toml")
    }

    pub fn write_config(&self, config: &str) {
        fs::write(self.config(), config).unwrap();
    }

    /// Run `warden ARGS -c warden.toml` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(warden_bin())
            .args(args)
            .arg("-c")
            .arg(self.config())
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// Start `warden up` in the background, its stderr into `warden.err`.
    pub fn up(&self, extra: &[&str]) -> Warden {
        self.up_with(extra, |_| {})
    }

    /// [`Env::up`], with the command changed by `configure` first.
    pub fn up_with(&self, extra: &[&str], configure: impl FnOnce(&mut Command)) -> Warden {
        let err = fs::File::create(self.path("warden.err")).unwrap();
        let out = fs::File::create(self.path("warden.out")).unwrap();
        let mut cmd = Command::new(warden_bin());
        cmd.arg("up")
            .args(extra)
            .arg("-c")
            .arg(self.config())
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        configure(&mut cmd);
        let child = cmd.spawn().unwrap();
        Warden {
            child: Some(child),
            err_path: self.path("warden.err"),
            out_path: self.path("warden.out"),
        }
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// Lines of a file (empty if it does not exist yet).
    pub fn lines(&self, rel: &str) -> Vec<String> {
        self.read(rel).lines().map(str::to_owned).collect()
    }

    /// Wait until file `rel` has at least `n` lines; return them.
    pub fn wait_lines(&self, rel: &str, n: usize) -> Vec<String> {
        wait_for(&format!("{n} lines in {rel}"), WAIT, || {
            let l = self.lines(rel);
            (l.len() >= n).then_some(l)
        })
    }

    /// Wait until file `rel` exists and holds a pid; return it.
    pub fn wait_pid(&self, rel: &str) -> i32 {
        wait_for(&format!("a pid in {rel}"), WAIT, || {
            self.read(rel).trim().lines().last()?.trim().parse().ok()
        })
    }
}

/// A running `warden up`.
pub struct Warden {
    pub child: Option<Child>,
    pub err_path: PathBuf,
    pub out_path: PathBuf,
}

impl Warden {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err_path).unwrap_or_default()
    }

    /// warden's stdout (lossy: services may write invalid UTF-8).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.out_path).unwrap_or_default()).into_owned()
    }

    /// Wait until warden's stderr contains `needle` `times` times.
    pub fn wait_stderr_n(&mut self, needle: &str, times: usize) -> String {
        let err_path = self.err_path.clone();
        let mut exited = None;

        wait_for(
            &format!("{times}× {needle:?} on warden's stderr"),
            WAIT,
            || {
                let s = fs::read_to_string(&err_path).unwrap_or_default();
                if s.matches(needle).count() >= times {
                    return Some(s);
                }
                if exited.is_none() {
                    exited = self
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten());
                }
                assert!(
                    exited.is_none(),
                    "warden exited ({exited:?}) before printing {needle:?}; stderr:\n{s}"
                );
                None
            },
        )
    }

    pub fn wait_stderr(&mut self, needle: &str) -> String {
        self.wait_stderr_n(needle, 1)
    }

    #[cfg(unix)]
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Wait for warden to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut().unwrap();
        let status = wait_for("warden to exit", timeout, || child.try_wait().unwrap());
        self.child = None;
        status.code()
    }
}

impl Drop for Warden {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            #[cfg(unix)]
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Is a process with this pid alive (and not a zombie)? A killed multi-threaded process
/// shows its leader as a zombie while its other threads are still on their way out (and its
/// socket still open): it is gone only once the zombie is its last thread. (Here PID 1 does
/// not reap, so the zombie of a daemon whose parent exited stays.)
#[cfg(unix)]
pub fn alive(pid: i32) -> bool {
    if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        let state = field("State:");
        let dead = state.starts_with('Z') || state.starts_with('X');
        return !dead || field("Threads:") != "1";
    }
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Wait until `pid` is gone.
#[cfg(unix)]
pub fn wait_gone(pid: i32) {
    wait_for(&format!("pid {pid} to be gone"), WAIT, || {
        (!alive(pid)).then_some(())
    });
}

/// The children of `pid` that are zombies.
#[cfg(target_os = "linux")]
pub fn zombie_children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] == "Z" && fields[1] == pid.to_string() {
            out.push(p);
        }
    }
    out
}

pub fn path_str(p: &Path) -> String {
    toml_str(&p.display().to_string())
}

/// A detached warden, brought down when the test ends.
pub struct Daemon<'a> {
    pub env: &'a Env,
}

impl<'a> Daemon<'a> {
    pub fn up(env: &'a Env) -> Daemon<'a> {
        let o = env.run(&["up", "-d"]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("warden is running (pid "),
            "{}",
            show(&o)
        );
        Daemon { env }
    }

    pub fn status(&self) -> serde_json::Value {
        let o = self.env.run(&["status", "--json"]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    pub fn service(&self, name: &str) -> serde_json::Value {
        self.status()["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap()
    }

    /// Wait until `name` is in `state` (a service is `starting` until it ran `min_uptime`).
    pub fn until_state(&self, name: &str, state: &str) -> serde_json::Value {
        wait_for(&format!("{name} to be {state}"), WAIT, || {
            let s = self.service(name);
            (s["state"] == state).then_some(s)
        })
    }

    pub fn pid(&self, name: &str) -> Option<i64> {
        self.service(name)["pid"].as_i64()
    }
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        let _ = self.env.run(&["down"]);
    }
}
