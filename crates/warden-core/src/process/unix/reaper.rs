//! The one reaper of the process: it owns `waitpid` (see the module docs of `unix`), delivers
//! each registered child's status, and wakes the waiters after every batch of reaps.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::AtomicBool;
#[cfg(target_os = "linux")]
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{errno, lock};
use crate::process::ExitStatus;

/// The global reaper state.
pub(super) struct Reaper {
    /// Children spawned and not yet reaped, with where their status goes. Held during
    /// `Command::spawn` + registration and during the `waitpid` loop (see the module docs).
    pub(super) live: Mutex<HashMap<u32, watch::Sender<Option<ExitStatus>>>>,
    /// Bumped after every batch of reaps that reaped something.
    pub(super) reaped: watch::Sender<u64>,
    /// When warden's children (and followed main processes) started and ended, so that an
    /// orphan can be attributed by its start time (see `follow.rs`).
    pub(super) lifetimes: Mutex<Vec<Lifetime>>,
}

/// The life of one process warden started or followed, in clock ticks since boot (the unit
/// of `/proc/PID/stat`'s start time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lifetime {
    pub(super) pid: u32,
    pub(super) start: u64,
    /// `None` while it runs.
    pub(super) end: Option<u64>,
}

/// How many ended lifetimes are kept at most (the oldest go first).
const MAX_ENDED_LIFETIMES: usize = 1024;

/// Remember that `pid` (warden's child, or a followed main process) started at `start`.
pub(super) fn note_start(pid: u32, start: u64) {
    let mut lives = lock(&reaper().lifetimes);
    lives.retain(|l| l.pid != pid);
    let ended = lives.iter().filter(|l| l.end.is_some()).count();
    if ended >= MAX_ENDED_LIFETIMES
        && let Some(oldest) = lives.iter().position(|l| l.end.is_some())
    {
        lives.remove(oldest);
    }
    lives.push(Lifetime {
        pid,
        start,
        end: None,
    });
}

/// Remember that `pid` ended now.
pub(super) fn note_end(pid: u32) {
    let now = now_ticks();
    for l in lock(&reaper().lifetimes)
        .iter_mut()
        .filter(|l| l.pid == pid && l.end.is_none())
    {
        l.end = Some(now);
    }
}

/// The recorded lifetimes (running and ended).
#[cfg(target_os = "linux")]
pub(super) fn lifetimes() -> Vec<Lifetime> {
    lock(&reaper().lifetimes).clone()
}

/// warden's direct children that it did not spawn (adopted orphans, whose parent died),
/// with their stat; `None` where the kernel has no `children` files. The registered children
/// are left out under one lock before any of their `/proc` entries is read: warden may have
/// 1,000 children, and every service's sampler and stop asks this.
#[cfg(target_os = "linux")]
pub(super) fn unregistered_children() -> Option<Vec<super::procfs::Proc>> {
    let mut pids = super::procfs::own_child_pids()?;
    {
        let live = lock(&reaper().live);
        pids.retain(|pid| !live.contains_key(pid));
    }
    Some(pids.into_iter().filter_map(super::procfs::stat).collect())
}

/// Now, in clock ticks since boot (`CLOCK_BOOTTIME`, the clock of `/proc` start times).
#[cfg(target_os = "linux")]
pub(super) fn now_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|hz| *hz > 0)
        .unwrap_or(100);
    // SAFETY: an all-zero timespec is valid; a valid out pointer.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &raw mut ts) } != 0 {
        return u64::MAX;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    // Rounded up: the kernel truncates a start time, so an end must never come out earlier.
    secs * hz + (nanos * hz).div_ceil(1_000_000_000)
}

#[cfg(not(target_os = "linux"))]
pub(super) fn now_ticks() -> u64 {
    0
}

static REAPER: OnceLock<Reaper> = OnceLock::new();
/// Whether the reaper thread runs; the error text if it could not start.
static REAPER_STARTED: OnceLock<Result<(), String>> = OnceLock::new();
/// Whether warden is a child subreaper (Linux), so that every orphan's death is reported.
pub(super) static SUBREAPER: AtomicBool = AtomicBool::new(false);

pub(super) fn reaper() -> &'static Reaper {
    REAPER.get_or_init(|| Reaper {
        live: Mutex::new(HashMap::new()),
        reaped: watch::Sender::new(0),
        lifetimes: Mutex::new(Vec::new()),
    })
}

/// Start the reaper thread once. On Linux it waits in `waitid` for any child to exit; elsewhere
/// it listens for `SIGCHLD`, installed before this returns. Either way no child spawned
/// afterwards can exit unnoticed.
pub(super) fn ensure_reaper() -> io::Result<()> {
    let started = REAPER_STARTED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("warden-reaper".into())
            .spawn(move || run_reaper(&tx));
        match thread {
            Ok(_) => match rx.recv() {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("could not start the reaper: {e}")),
                Err(_) => Err("the reaper thread ended at start".to_owned()),
            },
            Err(e) => Err(format!("could not start the reaper thread: {e}")),
        }
    });
    started.clone().map_err(io::Error::other)
}

/// Bumped (and the reaper woken) after each child is registered: the reaper, finding no
/// child at all, sleeps until this moves.
#[cfg(target_os = "linux")]
static ADDED: (Mutex<u64>, std::sync::Condvar) = (Mutex::new(0), std::sync::Condvar::new());

/// A child was spawned (and registered): wake the reaper if it waits for one.
pub(super) fn child_added() {
    #[cfg(target_os = "linux")]
    {
        *lock(&ADDED.0) += 1;
        ADDED.1.notify_one();
    }
}

/// The reaper thread (Linux): blocked in `waitid(WEXITED | WNOWAIT)` until some child is a
/// zombie, then a [`reap_pass`]. No signal handler, self-pipe or event loop sits between a
/// child's exit and its reap: that was one more thread hop on every restart. With no child
/// at all `waitid` says `ECHILD` at once, so the thread then sleeps until [`child_added`]:
/// the count is read *before* `waitid`, and a spawn bumps it only after its child exists, so
/// a child that appears in between is never missed. `SIGCHLD` is set to its default first:
/// an ignored `SIGCHLD` inherited from warden's parent would make the kernel reap children
/// itself.
#[cfg(target_os = "linux")]
fn run_reaper(started: &std::sync::mpsc::Sender<io::Result<()>>) {
    // SAFETY: sets the disposition of SIGCHLD to its default (no handler of ours is lost).
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let _ = started.send(Ok(()));
    reap_pass();
    loop {
        let seen = *lock(&ADDED.0);
        // SAFETY: an all-zero siginfo_t is valid; WNOWAIT leaves the zombie to `reap_pass`.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc =
            unsafe { libc::waitid(libc::P_ALL, 0, &raw mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 {
            reap_pass();
            continue;
        }
        // No child at all (ECHILD), or an error waitid cannot recover from (never seen):
        // wait for the next spawn rather than spin. EINTR: again.
        if errno() != libc::EINTR {
            let mut added = lock(&ADDED.0);
            while *added == seen {
                added = ADDED
                    .1
                    .wait(added)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
    }
}

/// The reaper thread (macOS and the other Unixes): `SIGCHLD` through tokio's signal driver.
#[cfg(not(target_os = "linux"))]
fn run_reaper(started: &std::sync::mpsc::Sender<io::Result<()>>) {
    // Only the I/O driver (it carries the signal): this runtime has no timers.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            // The receiver waits for this message; nothing else to do with a failure.
            let _ = started.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigchld = match signal(SignalKind::child()) {
            Ok(s) => s,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        let _ = started.send(Ok(()));
        reap_pass();
        while sigchld.recv().await.is_some() {
            reap_pass();
        }
    });
}

/// Reap every child that has exited, deliver the statuses of registered ones, then tell the
/// waiters.
fn reap_pass() {
    let r = reaper();
    let mut any = false;
    {
        let mut live = lock(&r.live);
        loop {
            let mut raw: libc::c_int = 0;
            // SAFETY: plain syscall with a valid out pointer.
            let pid = unsafe { libc::waitpid(-1, &raw mut raw, libc::WNOHANG) };
            if pid > 0 {
                any = true;
                if let Some(tx) = live.remove(&(pid as u32)) {
                    // Its end is known before its status is: whoever wakes on the status
                    // may look for what it left (`Child::find_daemon`).
                    note_end(pid as u32);
                    tx.send_replace(Some(decode_status(raw)));
                }
            } else if pid == 0 || errno() != libc::EINTR {
                break; // 0: children left but none exited; ECHILD: no children.
            }
        }
    }
    if any {
        r.reaped.send_modify(|n| *n = n.wrapping_add(1));
    }
}

fn decode_status(raw: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(raw) {
        ExitStatus::Signal(libc::WTERMSIG(raw))
    } else {
        // WIFEXITED; stopped/continued are never reported since we do not ask for them.
        ExitStatus::Code(libc::WEXITSTATUS(raw))
    }
}

/// The first re-check of [`wait_until`] when deaths may go unreported.
const RECHECK_FIRST: Duration = Duration::from_millis(5);
/// The longest time between two such re-checks.
const RECHECK_MAX: Duration = Duration::from_millis(200);

/// Wait until `done()` holds, re-checking after every reap batch, at most until `deadline`.
/// When `event_driven` is false (some deaths are not reported to warden), also re-check with a
/// backoff from [`RECHECK_FIRST`] (5 ms), doubling up to [`RECHECK_MAX`] (200 ms).
pub(super) async fn wait_until(
    deadline: Instant,
    event_driven: bool,
    mut done: impl FnMut() -> bool,
) -> bool {
    let mut rx = reaper().reaped.subscribe();
    let mut backoff = RECHECK_FIRST;
    loop {
        rx.borrow_and_update();
        if done() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let wake = if event_driven {
            deadline
        } else {
            let at = (now + backoff).min(deadline);
            backoff = (backoff * 2).min(RECHECK_MAX);
            at
        };
        match tokio::time::timeout_at(wake, rx.changed()).await {
            Ok(Ok(())) | Err(_) => {}
            // The sender is a static: it is never dropped. Fall back on the deadline.
            Ok(Err(_)) => tokio::time::sleep_until(wake).await,
        }
    }
}

pub(crate) fn init_supervisor() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain prctl.
        if unsafe {
            libc::prctl(
                libc::PR_SET_CHILD_SUBREAPER,
                1 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        } == -1
        {
            return Err(io::Error::last_os_error());
        }
        SUBREAPER.store(true, Ordering::Relaxed);
        super::oom::lower_own();
    }
    ensure_reaper()
}

/// `true` once warden has no child at all (`waitid` says `ECHILD`), at most `timeout`.
pub(crate) async fn wait_no_children(timeout: Duration) -> bool {
    let deadline = crate::util::deadline_in(timeout);
    if ensure_reaper().is_err() {
        // Nobody reaps: only the current state can be answered.
        return no_children_now();
    }
    wait_until(deadline, true, no_children_now).await
}

fn no_children_now() -> bool {
    // SAFETY: an all-zero siginfo_t is valid; WNOWAIT leaves any zombie for the reaper.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &raw mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    rc == -1 && errno() == libc::ECHILD
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::unregistered_children;

    fn sleeper(dir: &std::path::Path) -> crate::process::SpawnSpec {
        crate::process::SpawnSpec {
            program: "sleep".into(),
            args: vec!["300".into()],
            cwd: dir.to_owned(),
            clear_env: false,
            env: Vec::new(),
            output: crate::process::Output::Null,
            credentials: crate::process::Credentials::default(),
            confinement: None,
        }
    }

    /// The guard of the O(n²) sampling (1,000 services: every sampler read the `/proc` entry
    /// of every child): warden's registered children are never among those read.
    #[tokio::test]
    async fn registered_children_are_not_read_as_orphans() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let children: Vec<_> = (0..3)
            .map(|_| crate::process::spawn(&sleeper(tmp.path())).expect("spawn"))
            .collect();
        let mine: Vec<u32> = children
            .iter()
            .map(super::super::child::Child::pid)
            .collect();
        let own = super::super::procfs::own_child_pids().expect("children files");
        assert!(
            mine.iter().all(|p| own.contains(p)),
            "{mine:?} not in {own:?}"
        );
        let unregistered = unregistered_children().expect("children files");
        assert!(
            unregistered.iter().all(|p| !mine.contains(&p.pid)),
            "registered children read: {mine:?} in {unregistered:?}"
        );
        for mut c in children {
            c.kill_tree().expect("kill");
            assert!(c.wait_tree_gone(std::time::Duration::from_secs(20)).await);
        }
    }
}
