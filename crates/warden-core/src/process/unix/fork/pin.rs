//! [`Pinned`]: a `vfork`-like child runs on the CPU its parent thread waits on.
//!
//! Why: with `CLONE_VFORK` the parent thread sleeps until the child has called `exec`. The
//! scheduler places a new task when it is created, while the parent still runs, so it often
//! puts the child on the *other* CPU, behind whatever runs there (another worker of
//! warden's, a busy service), and does not move it back when the parent's CPU goes idle a
//! moment later (a CPU that is idle only briefly does not pull work). Measured with
//! `perf sched` while 100 services started on 2 CPUs: the child waited a median of 0.76 ms
//! and up to 6 ms for its first run, the spawning thread (which held the registry lock then,
//! so every other spawn too) all that while, for an `exec` that takes a tenth of it.
//!
//! So the parent thread pins itself to the CPU it is on for the clone. The child inherits
//! that one-CPU set, is queued where its parent is about to sleep, and runs at once; its
//! first act is to take back the parent's original set, so the program it runs is not
//! pinned. The parent takes its set back when the clone returns. A thread that may run on
//! one CPU only, or a set the kernel does not report (more than 1,024 CPUs), is left as it
//! is.

use std::mem::{size_of, zeroed};

/// The calling thread, pinned to its current CPU until this is dropped.
pub(super) struct Pinned {
    original: libc::cpu_set_t,
}

impl Pinned {
    /// Pins the calling thread to the CPU it runs on; `None` (nothing changed) if it may
    /// run on one CPU only, or its set cannot be read or changed.
    pub(super) fn here() -> Option<Pinned> {
        // SAFETY: an all-zero cpu_set_t is an empty set; the calls write within its size.
        unsafe {
            let mut original: libc::cpu_set_t = zeroed();
            if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut original) != 0
                || libc::CPU_COUNT(&original) < 2
            {
                return None;
            }
            let cpu = usize::try_from(libc::sched_getcpu()).ok()?;
            if cpu >= 8 * size_of::<libc::cpu_set_t>() {
                return None;
            }
            let mut one: libc::cpu_set_t = zeroed();
            libc::CPU_SET(cpu, &mut one);
            if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const one) != 0 {
                return None;
            }
            Some(Pinned { original })
        }
    }

    /// The set this thread had before, for the child to take back (see [`release_in_child`]).
    pub(super) fn original(&self) -> libc::cpu_set_t {
        self.original
    }
}

/// The child's side: back to its parent's original set (from [`Pinned::original`]), with the
/// raw system call (async-signal-safe; it changes the calling task only). A failure leaves
/// the child pinned, which costs only speed; there is no one to tell.
///
/// # Safety
///
/// Only in the child between clone and exec, on memory allocated before the clone.
pub(super) unsafe fn release_in_child(original: &libc::cpu_set_t) {
    // SAFETY: reads `original`, changes this task's set only.
    unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            0,
            size_of::<libc::cpu_set_t>(),
            std::ptr::from_ref(original),
        );
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: sets this thread's CPU set back to the one read in `here`.
        unsafe {
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const self.original);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> libc::cpu_set_t {
        // SAFETY: as in `here`.
        unsafe {
            let mut set: libc::cpu_set_t = zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut set),
                0
            );
            set
        }
    }

    #[test]
    fn a_pinned_thread_may_run_on_one_cpu_until_it_lets_go() {
        // A thread of its own: the test harness's threads keep their sets.
        std::thread::spawn(|| {
            let before = current();
            // SAFETY: reads a set.
            let cpus = unsafe { libc::CPU_COUNT(&before) };
            let pinned = Pinned::here();
            if cpus < 2 {
                assert!(pinned.is_none(), "a one-CPU set is left alone");
                return;
            }
            assert!(pinned.is_some());
            // SAFETY: reads a set.
            assert_eq!(unsafe { libc::CPU_COUNT(&current()) }, 1);
            drop(pinned);
            // SAFETY: compares two sets.
            assert!(
                unsafe { libc::CPU_EQUAL(&current(), &before) },
                "the original set is back"
            );
        })
        .join()
        .expect("the pinning thread");
    }
}
