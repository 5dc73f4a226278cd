//! Empty service cgroups kept for [`KEEP_FOR`] after their `Child` is gone, so that the
//! next run of the same service (a restart, most often within milliseconds) is created in
//! the same cgroup: a `mkdir` and an `rmdir` of a cgroup (and of its instance's, for a
//! lone service) with their inotify watch were about a quarter of warden's work per
//! restart. What is not taken again in time is removed by the `warden-cgroups` thread,
//! woken by a timer (no polling), and [`release_all`] removes the rest when warden ends.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{TREE, Watch, lock, remove, unwatch};

/// How long an empty cgroup waits for its service's next run.
pub(super) const KEEP_FOR: Duration = Duration::from_secs(1);

struct Parked {
    dir: PathBuf,
    watch: Option<Watch>,
    until: Instant,
}

static PARKED: Mutex<Vec<Parked>> = Mutex::new(Vec::new());

/// Keep the empty cgroup `dir` (with its watch) for its service's next run. Called under
/// the tree lock.
pub(super) fn park(dir: PathBuf, watch: Option<Watch>) {
    lock(&PARKED).push(Parked {
        dir,
        watch,
        until: Instant::now() + KEEP_FOR,
    });
    wake();
}

/// A kept cgroup taken again: its watch goes on.
pub(super) struct Kept {
    pub(super) watch: Option<Watch>,
}

/// The kept cgroup `dir`, if there is one. Called under the tree lock.
pub(super) fn take(dir: &Path) -> Option<Kept> {
    let mut parked = lock(&PARKED);
    let i = parked.iter().position(|p| p.dir == dir)?;
    Some(Kept {
        watch: parked.swap_remove(i).watch,
    })
}

/// Remove the kept cgroups whose time is up (all with `everything`); how long until the
/// next one's is.
pub(super) fn sweep(everything: bool) -> Option<Duration> {
    let _tree = lock(&TREE);
    let now = Instant::now();
    let mut parked = lock(&PARKED);
    parked.retain(|p| {
        if !everything && p.until > now {
            return true;
        }
        // A process got in meanwhile (cannot happen: nothing spawns into a parked cgroup):
        // leave it to the next warden's sweep rather than loop here.
        if remove(&p.dir) {
            unwatch(p.watch);
        }
        false
    });
    parked
        .iter()
        .map(|p| p.until.saturating_duration_since(now))
        .min()
}

/// Remove every kept cgroup now (warden ends).
pub(super) fn release_all() {
    sweep(true);
}

/// An eventfd that wakes the `warden-cgroups` thread to recompute its timer.
pub(super) fn waker() -> Option<libc::c_int> {
    static WAKER: OnceLock<Option<libc::c_int>> = OnceLock::new();
    *WAKER.get_or_init(|| {
        // SAFETY: plain syscall; the descriptor lives as long as warden (never closed).
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        (fd >= 0).then_some(fd)
    })
}

fn wake() {
    if let Some(fd) = waker() {
        let one = 1u64.to_ne_bytes();
        // SAFETY: an 8-byte write to our eventfd; a full counter (EAGAIN) is awake anyway.
        unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
    }
}

/// Empty the eventfd after a wake-up.
pub(super) fn drain_waker(fd: libc::c_int) {
    let mut buf = [0u8; 8];
    // SAFETY: an 8-byte read from our non-blocking eventfd.
    unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
}
