//! Issue 8, section C.7 (the file part): warden's state dir and log files as root, in
//! directories another user might write. Every file is opened without following symlinks,
//! unsafe directories are refused, new ones are private, temporary files are exclusive.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use warden_core::config::LogConfig;
use warden_core::logs::{Reporter, ServiceLogs};
use warden_core::state::{self, StateDir, StateError};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).expect("stat").permissions().mode() & 0o7777
}

fn chmod(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).expect("chmod");
}

/// A root-owned file the attacker wants warden to clobber.
fn victim(dir: &Path) -> PathBuf {
    let v = dir.join("victim");
    fs::write(&v, "precious\n").expect("write victim");
    v
}

fn log_config(dir: &Path) -> LogConfig {
    LogConfig::defaults(dir, "svc")
}

fn reporter() -> Reporter {
    Arc::new(|_: &str| {})
}

/// Open a service's logs; a file that cannot be opened (the service runs anyway, its output
/// held) is an `Err` here with the reason `status` would show.
fn open_logs(cfg: &LogConfig) -> std::io::Result<Arc<ServiceLogs>> {
    let logs = ServiceLogs::open("svc", cfg, reporter());
    match logs.problem() {
        Some(problem) => Err(std::io::Error::other(problem)),
        None => Ok(logs),
    }
}

#[test]
fn lock_file_symlink_is_refused_and_its_target_untouched() {
    let t = tmp();
    let state = t.path().join("state");
    fs::create_dir(&state).expect("mkdir");
    let v = victim(t.path());
    symlink(&v, state.join("warden.lock")).expect("plant");
    let err = StateDir::lock(&state)
        .err()
        .expect("a planted lock symlink is refused");
    let shown = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(shown.contains("symbolic link"), "{shown}");
    assert_eq!(fs::read_to_string(&v).expect("read"), "precious\n");
}

#[test]
fn world_writable_state_dir_is_refused() {
    let t = tmp();
    let state = t.path().join("state");
    fs::create_dir(&state).expect("mkdir");
    chmod(&state, 0o777);
    match StateDir::lock(&state) {
        Err(StateError::Unsafe { path, why }) => {
            assert_eq!(path, fs::canonicalize(&state).expect("canonical"));
            assert!(
                why.contains("writable by others (mode 777) and not sticky"),
                "{why}"
            );
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a world-writable state dir was accepted"),
    }
    // A world-writable parent is just as bad: it lets another user swap the dir.
    let parent = t.path().join("open");
    fs::create_dir(&parent).expect("mkdir");
    chmod(&parent, 0o777);
    assert!(matches!(
        StateDir::lock(&parent.join("state")),
        Err(StateError::Unsafe { .. })
    ));
}

#[test]
fn state_dir_owned_by_another_user_is_refused() {
    let t = tmp();
    let state = t.path().join("state");
    fs::create_dir(&state).expect("mkdir");
    chmod(&state, 0o1777);
    // Needs root (CAP_CHOWN), as warden's runs in CI do; otherwise nothing to show.
    if std::os::unix::fs::chown(&state, Some(4242), None).is_err() {
        eprintln!("skipped: cannot chown (not root)");
        return;
    }
    match StateDir::lock(&state) {
        Err(StateError::Unsafe { why, .. }) => {
            assert!(why.contains("owned by uid 4242"), "{why}");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a dir owned by another user was accepted"),
    }
}

#[test]
fn sticky_dir_owned_by_warden_is_allowed() {
    // Like /tmp: sticky, world-writable, owned by root (or by warden's own user).
    let t = tmp();
    let state = t.path().join("state");
    fs::create_dir(&state).expect("mkdir");
    chmod(&state, 0o1777);
    StateDir::lock(&state).expect("a sticky dir owned by warden's user is fine");
}

#[test]
fn state_dir_is_created_0700_with_private_files() {
    let t = tmp();
    let state = t.path().join("new").join("state");
    let st = StateDir::lock(&state).expect("lock");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("run")), 0o700);
    assert_eq!(
        mode(&state.join("warden.lock")) & 0o077,
        0,
        "lock file is private"
    );
    st.save_hand_stopped(&["a".into()]).expect("save");
    state::write_private(&state.join("api.token"), b"t").expect("token");
    assert_eq!(mode(&state.join("api.token")), 0o600);
}

#[test]
fn planted_state_files_are_not_read_through_symlinks() {
    let t = tmp();
    let state = t.path().join("state");
    let st = StateDir::lock(&state).expect("lock");
    let elsewhere = t.path().join("elsewhere.json");
    fs::write(&elsewhere, r#"["db"]"#).expect("write");
    symlink(&elsewhere, state.join("stopped.json")).expect("plant");
    assert!(
        st.hand_stopped().is_empty(),
        "a symlinked stopped.json is not read"
    );
    // A FIFO among the records never blocks the read.
    let fifo = state.join("run").join("svc-x.json");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(ok.success());
    let (tx, rx) = mpsc::channel();
    let dir = state.clone();
    drop(st);
    std::thread::spawn(move || {
        let st = StateDir::lock(&dir).expect("lock");
        let _ = tx.send(st.recorded_groups().len());
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(20))
            .expect("recorded_groups hung"),
        0
    );
}

#[test]
fn atomic_write_never_writes_through_a_planted_temp_name() {
    let t = tmp();
    let dir = t.path().join("state");
    fs::create_dir(&dir).expect("mkdir");
    let v = victim(t.path());
    let pid = std::process::id();
    // Every temporary name this process could use next, and the old fixed one.
    symlink(&v, dir.join(format!(".f.json.tmp.{pid}"))).expect("plant");
    for seq in 0..256 {
        symlink(&v, dir.join(format!(".f.json.tmp.{pid}.{seq}"))).expect("plant");
    }
    state::write_atomic(&dir.join("f.json"), b"new").expect("write");
    assert_eq!(fs::read_to_string(&v).expect("read"), "precious\n");
    assert_eq!(fs::read(dir.join("f.json")).expect("read"), b"new");
    // And a symlink planted at the final name is replaced, not written through.
    symlink(&v, dir.join("g.json")).expect("plant");
    state::write_private(&dir.join("g.json"), b"mine").expect("write");
    assert_eq!(fs::read_to_string(&v).expect("read"), "precious\n");
    assert!(
        !fs::symlink_metadata(dir.join("g.json"))
            .expect("stat")
            .file_type()
            .is_symlink()
    );
}

#[test]
fn warden_log_is_0600_and_never_a_symlink() {
    let t = tmp();
    let log = t.path().join("warden.log");
    drop(state::open_private_log(&log).expect("create"));
    assert_eq!(mode(&log), 0o600);
    // An older warden's 0644 log is narrowed.
    chmod(&log, 0o644);
    drop(state::open_private_log(&log).expect("open"));
    assert_eq!(mode(&log), 0o600);
    let v = victim(t.path());
    let link = t.path().join("link.log");
    symlink(&v, &link).expect("plant");
    assert!(state::open_private_log(&link).is_err());
    assert_eq!(fs::read_to_string(&v).expect("read"), "precious\n");
}

#[test]
fn service_log_symlink_is_refused_and_its_target_untouched() {
    let t = tmp();
    let logs = t.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    let v = victim(t.path());
    let cfg = log_config(&logs);
    symlink(&v, &cfg.stdout).expect("plant");
    let err = open_logs(&cfg)
        .err()
        .expect("a planted log symlink is refused");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(
        err.to_string().contains("svc.out.log"),
        "names the file: {err}"
    );
    assert_eq!(fs::read_to_string(&v).expect("read"), "precious\n");
}

#[test]
fn world_writable_log_dir_is_refused() {
    let t = tmp();
    let logs = t.path().join("logs");
    fs::create_dir(&logs).expect("mkdir");
    chmod(&logs, 0o777);
    let err = open_logs(&log_config(&logs)).err().expect("refused");
    assert!(err.to_string().contains("writable by others"), "{err}");
    chmod(&logs, 0o1777);
    open_logs(&log_config(&logs)).expect("sticky and owned by warden's user is fine");
}

#[test]
fn log_dir_is_created_0750_and_files_0640() {
    let t = tmp();
    let logs = t.path().join("new").join("logs");
    let cfg = log_config(&logs);
    let _l = open_logs(&cfg).expect("open");
    assert_eq!(mode(&logs), 0o750);
    assert_eq!(mode(&cfg.stdout), 0o640);
}
