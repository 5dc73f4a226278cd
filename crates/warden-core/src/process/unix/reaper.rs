//! The one reaper of the process: it owns `waitpid` (see the module docs of `unix`), delivers
//! each registered child's status, and wakes the waiters after every batch of reaps.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::AtomicBool;
#[cfg(target_os = "linux")]
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{errno, lock};
use crate::process::ExitStatus;

/// The global reaper state.
pub(super) struct Reaper {
    /// The registry: held during std's `Command::spawn` + registration and during the
    /// `waitpid` loop (see the module docs). Readers that must see every child of warden's
    /// take it with [`registry`].
    pub(super) live: Mutex<Registry>,
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

/// Who is warden's child, and the spawns about to add one.
///
/// A spawn on warden's own path (`fork.rs`, cgroup mode) does not hold the lock while it
/// clones: it takes an [`InFlight`] ticket first and registers its child with the ticket's
/// end, so two spawns can clone at once (see `fork::LANE_COUNT`). Meanwhile a child of warden's
/// may exist that is not registered yet: the reaper then takes only registered children, and
/// an unregistered one once every spawn that was in flight when it saw it has ended; and
/// whoever asks who warden's children are waits for those spawns too ([`registry`]).
#[derive(Default)]
pub(super) struct Registry {
    /// Children spawned (and processes followed) and not yet reaped, with where their status
    /// goes.
    pub(super) children: HashMap<u32, watch::Sender<Option<ExitStatus>>>,
    /// The tickets of the spawns between their clone and their registration.
    in_flight: Vec<u64>,
    /// The next ticket.
    next_ticket: u64,
}

impl Registry {
    /// Have all spawns with a ticket below `ticket` ended?
    fn settled_before(&self, ticket: u64) -> bool {
        self.in_flight.iter().all(|t| *t >= ticket)
    }
}

/// Woken whenever a spawn in flight ends.
static SETTLED: std::sync::Condvar = std::sync::Condvar::new();

/// Wait (releasing the lock) until every spawn with a ticket below `ticket` has ended.
fn wait_settled(
    mut live: MutexGuard<'static, Registry>,
    ticket: u64,
) -> MutexGuard<'static, Registry> {
    while !live.settled_before(ticket) {
        live = SETTLED.wait(live).unwrap_or_else(PoisonError::into_inner);
    }
    live
}

/// The registry once every spawn in flight now has registered its child: every process
/// warden has spawned so far is in `children` (until it is reaped).
pub(super) fn registry() -> MutexGuard<'static, Registry> {
    let live = lock(&reaper().live);
    let now = live.next_ticket;
    wait_settled(live, now)
}

/// A spawn between its clone and its registration (see [`Registry`]). Dropping it ends the
/// spawn with nothing registered.
#[cfg(target_os = "linux")]
pub(super) struct InFlight {
    ticket: u64,
}

#[cfg(target_os = "linux")]
impl InFlight {
    pub(super) fn begin() -> InFlight {
        let mut live = lock(&reaper().live);
        let ticket = live.next_ticket;
        live.next_ticket += 1;
        live.in_flight.push(ticket);
        InFlight { ticket }
    }

    /// End the spawn: the registry, for the child to be registered before it is released.
    pub(super) fn end(self) -> MutexGuard<'static, Registry> {
        let live = self.remove();
        std::mem::forget(self);
        live
    }

    fn remove(&self) -> MutexGuard<'static, Registry> {
        let mut live = lock(&reaper().live);
        live.in_flight.retain(|t| *t != self.ticket);
        // The waiters re-check once the lock is theirs, after the registration.
        SETTLED.notify_all();
        live
    }
}

#[cfg(target_os = "linux")]
impl Drop for InFlight {
    fn drop(&mut self) {
        drop(self.remove());
    }
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
        let live = registry();
        pids.retain(|pid| !live.children.contains_key(pid));
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
        live: Mutex::new(Registry::default()),
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
/// waiters. While spawns are in flight, only registered children are taken, and an
/// unregistered one once the spawns in flight when it was seen have ended (it is then not
/// theirs: an orphan warden adopted).
fn reap_pass() {
    let r = reaper();
    let mut any = false;
    {
        let mut live = lock(&r.live);
        // An unregistered child seen exited while spawns were in flight, and the first
        // ticket not issued then.
        let mut doubtful: Option<(u32, u64)> = None;
        loop {
            // Any exited child, or, while spawns are in flight, one known to be taken.
            let target = if live.in_flight.is_empty() {
                -1
            } else {
                let Some(pid) = peek_exited() else { break };
                let proven = doubtful.is_some_and(|(p, t)| p == pid && live.settled_before(t));
                if !live.children.contains_key(&pid) && !proven {
                    let issued = live.next_ticket;
                    doubtful = Some((pid, issued));
                    #[cfg(test)]
                    HELD_BACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    live = wait_settled(live, issued);
                    continue;
                }
                pid as libc::pid_t
            };
            let mut raw: libc::c_int = 0;
            // SAFETY: plain syscall with a valid out pointer.
            let got = unsafe { libc::waitpid(target, &raw mut raw, libc::WNOHANG) };
            if got > 0 {
                any = true;
                deliver(&mut live, got as u32, raw);
            } else if target == -1 && (got == 0 || errno() != libc::EINTR) {
                break; // 0: children left but none exited; ECHILD: no children.
            }
            // Otherwise (EINTR, or the one child taken by its spawn meanwhile): look again.
        }
    }
    if any {
        r.reaped.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// How many times the reaper left an unregistered child for the spawns in flight.
#[cfg(test)]
static HELD_BACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Hand a reaped child's status to whoever waits for it.
fn deliver(live: &mut Registry, pid: u32, raw: libc::c_int) {
    if let Some(tx) = live.children.remove(&pid) {
        // Its end is known before its status is: whoever wakes on the status may look for
        // what it left (`Child::find_daemon`).
        note_end(pid);
        tx.send_replace(Some(decode_status(raw)));
    }
}

/// `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)`: what it found about an exited child, which
/// stays unreaped (again on `EINTR`), or the errno (`ECHILD`: no child at all).
fn peek() -> Result<libc::siginfo_t, i32> {
    loop {
        // SAFETY: an all-zero siginfo_t is valid; a valid out pointer; WNOWAIT reaps nothing.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &raw mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(info);
        }
        match errno() {
            libc::EINTR => {}
            e => return Err(e),
        }
    }
}

/// A child that has exited, left unreaped; `None` if there is none (or no child at all).
#[cfg(target_os = "linux")]
fn peek_exited() -> Option<u32> {
    let info = peek().ok()?;
    // SAFETY: waitid filled a child's siginfo (si_pid 0: none has exited).
    let pid = unsafe { info.si_pid() };
    u32::try_from(pid).ok().filter(|p| *p > 0)
}

/// Spawns are never in flight outside Linux (no `fork.rs` path there).
#[cfg(not(target_os = "linux"))]
fn peek_exited() -> Option<u32> {
    None
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
    matches!(peek(), Err(libc::ECHILD))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::{HELD_BACK, InFlight, ensure_reaper, unregistered_children};
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    /// A forked child of this process that exits at once with `code`, left a zombie.
    fn zombie(code: i32) -> u32 {
        // SAFETY: the child only calls `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::_exit(code) };
        }
        assert!(pid > 0, "fork");
        pid as u32
    }

    /// Poll until `done` holds, for at most 20 s.
    fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::yield_now();
        }
    }

    fn exists(pid: u32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    /// While a spawn is between its clone and its registration, a child that exits is not
    /// reaped before it is registered (its status would be lost), and an orphan's zombie is
    /// reaped once the spawn has ended.
    #[tokio::test]
    async fn a_child_that_exits_before_its_spawn_registered_it_keeps_its_status() {
        ensure_reaper().expect("reaper");
        let ticket = InFlight::begin();
        let held = HELD_BACK.load(Ordering::Relaxed);
        let mine = zombie(7);
        let orphan = zombie(0);
        until("the reaper to hold a zombie back", || {
            HELD_BACK.load(Ordering::Relaxed) > held
        });
        assert!(exists(mine) && exists(orphan), "neither was reaped");
        let (tx, mut status) = tokio::sync::watch::channel(None);
        ticket.end().children.insert(mine, tx);
        let got = tokio::time::timeout(Duration::from_secs(20), status.wait_for(Option::is_some))
            .await
            .expect("the status arrives")
            .expect("the sender lives")
            .expect("some");
        assert_eq!(got, crate::process::ExitStatus::Code(7));
        until("the orphan to be reaped", || !exists(orphan));
    }

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
