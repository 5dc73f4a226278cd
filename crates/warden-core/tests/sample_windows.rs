//! Resource samples through the Job Object, against real processes (run under Wine by
//! `tools/wine/test.sh`, or natively on Windows): `wchild.exe` (tools/wine/wchild.c) spins,
//! allocates, and starts a process that allocates too.
#![cfg(windows)]
#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use warden_core::process::{self, Child, Output, SpawnSpec, TreeSample};

/// Every wait in these tests is bounded by this (Wine starts processes slowly).
const DEADLINE: Duration = Duration::from_secs(30);
/// What `wchild alloc` touches, per process.
const ALLOC_MIB: u64 = 64;

fn wspec(args: &[&str], cwd: &Path) -> SpawnSpec {
    let wchild = std::env::var_os("WARDEN_WCHILD")
        .expect("WARDEN_WCHILD must name wchild.exe (tools/wine/test.sh builds it and sets it)");
    SpawnSpec {
        program: PathBuf::from(wchild).into_os_string(),
        args: args.iter().map(OsString::from).collect(),
        cwd: cwd.to_owned(),
        clear_env: false,
        env: Vec::new(),
        output: Output::Separate,
        credentials: process::Credentials::default(),
        confinement: None,
    }
}

/// Read the child's stdout until `count` lines equal to `line` came.
async fn expect_lines(child: &mut Child, line: &str, count: usize) {
    let mut lines = BufReader::new(child.take_stdout().unwrap()).lines();
    let mut seen = 0;
    tokio::time::timeout(DEADLINE, async {
        while seen < count {
            let got = lines
                .next_line()
                .await
                .unwrap()
                .expect("stdout ended early");
            assert_ne!(got.trim_end(), "alloc failed");
            if got.trim_end() == line {
                seen += 1;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{seen} of {count} {line:?} lines in time"));
}

/// Sample `pid` until `done` holds for a sample, at most [`DEADLINE`]; the last sample.
async fn sample_until(pid: u32, what: &str, done: impl Fn(&TreeSample) -> bool) -> TreeSample {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last = None;
    loop {
        last = process::sample_tree(pid).or(last);
        if last.as_ref().is_some_and(&done) {
            return last.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}; last sample {last:?}"
        );
        // The figures change with no event to wait on: sample again shortly.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Is this Wine? (A Wine prefix has the key `HKLM\Software\Wine`.) Wine 8 leaves the
/// job's CPU times at 0.
fn under_wine() -> bool {
    use windows_sys::Win32::System::Registry::{
        HKEY, HKEY_LOCAL_MACHINE, KEY_READ, RegCloseKey, RegOpenKeyExW,
    };
    let name: Vec<u16> = "Software\\Wine".encode_utf16().chain([0]).collect();
    let mut key: HKEY = std::ptr::null_mut();
    // SAFETY: a NUL-terminated name and a valid out-pointer; the key is closed below.
    unsafe {
        if RegOpenKeyExW(HKEY_LOCAL_MACHINE, name.as_ptr(), 0, KEY_READ, &raw mut key) != 0 {
            return false;
        }
        RegCloseKey(key);
    }
    true
}

async fn end(mut child: Child) {
    child.kill_tree().unwrap();
    assert!(
        child.wait_tree_gone(DEADLINE).await,
        "the job did not empty"
    );
}

#[tokio::test]
async fn memory_is_the_working_sets_summed_over_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let idle = process::spawn(&wspec(&["sleep", "60000"], dir.path())).unwrap();
    let base = sample_until(idle.pid(), "an idle sample", |s| s.rss_bytes > 0).await;
    assert!(base.rss_bytes < ALLOC_MIB << 20, "idle: {base:?}");

    // Two processes (the main one and the one it starts), each touching 64 MiB.
    let mut child = process::spawn(&wspec(&["alloc-tree", "64", "60000"], dir.path())).unwrap();
    expect_lines(&mut child, "allocated", 2).await;
    let s = sample_until(child.pid(), "the tree's memory", |s| {
        s.rss_bytes >= 2 * (ALLOC_MIB << 20)
    })
    .await;
    assert!(s.processes >= 2, "{s:?}");
    assert!(
        s.rss_bytes > base.rss_bytes + (ALLOC_MIB << 20),
        "{s:?} vs {base:?}"
    );
    end(child).await;
    end(idle).await;
}

#[tokio::test]
async fn cpu_is_the_jobs_user_and_kernel_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = process::spawn(&wspec(&["busy", "20000"], dir.path())).unwrap();
    expect_lines(&mut child, "busy", 1).await;
    let first = sample_until(child.pid(), "a first sample", |_| true).await;
    if under_wine() {
        // Wine 8 fills only the process counts of JobObjectBasicAccountingInformation:
        // the job's CPU time stays 0 however busy it is (the arithmetic is unit-tested in
        // process::sampling). If a later Wine fills it in, this says so.
        let s = sample_until(child.pid(), "a sample with memory", |s| s.rss_bytes > 0).await;
        assert_eq!(
            (first.cpu_seconds, s.cpu_seconds),
            (0.0, 0.0),
            "Wine now fills the job's CPU times: make this test check they rise"
        );
    } else {
        let s = sample_until(child.pid(), "half a second of CPU", |s| {
            s.cpu_seconds >= first.cpu_seconds + 0.5
        })
        .await;
        assert!(s.cpu_seconds < 60.0, "{s:?}");
    }
    end(child).await;
}

#[tokio::test]
async fn a_job_is_sampled_only_while_its_child_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let child = process::spawn(&wspec(&["sleep", "60000"], dir.path())).unwrap();
    let pid = child.pid();
    sample_until(pid, "a sample", |s| s.processes >= 1).await;
    end(child).await;
    // The child is dropped: its job is closed, and the pid names nothing of warden's.
    assert_eq!(process::sample_tree(pid), None);
}

#[tokio::test]
async fn a_followed_main_process_names_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = process::spawn(&wspec(&["grandchild", "60000"], dir.path())).unwrap();
    let launcher = child.pid();
    let mut lines = BufReader::new(child.take_stdout().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let grandchild: u32 = line.trim_end()["grandchild ".len()..].parse().unwrap();
    child.follow(grandchild).unwrap();
    let s = sample_until(grandchild, "the followed tree", |s| s.processes >= 2).await;
    assert!(s.rss_bytes > 0, "{s:?}");
    assert_eq!(process::sample_tree(launcher), None);
    end(child).await;
}
