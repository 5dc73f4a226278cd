//! Unix implementation of the process layer.
//!
//! # How a child is started
//!
//! [`spawn`] builds a `std::process::Command` and runs it with a `pre_exec` hook, except in
//! cgroup mode on Linux, where `fork.rs` creates the child inside its cgroup with `clone3`
//! (same program, arguments, environment and hook; see there why). Between fork and exec the
//! child calls `setsid()` (a new session and process group
//! whose id is the child's pid), on Linux asks for `SIGKILL` when its parent dies
//! (`PR_SET_PDEATHSIG`) and then checks that its parent is still warden, empties its signal
//! mask, resets to default the signals a parent may have ignored (`SIGPIPE` above all), and
//! marks close-on-exec every descriptor but 0, 1 and 2, so that no descriptor warden inherited
//! reaches a service. With [`Output::Joined`](crate::process::Output::Joined), 1 and 2 are
//! both copies of one pipe's write end (std `dup2`s them), so the program's own order of
//! stdout and stderr writes is what warden reads.
//!
//! **Call [`spawn`] on a tokio worker thread or on the main thread, never inside
//! `spawn_blocking`.** Linux delivers the parent-death signal when the *thread* that forked
//! exits, and tokio ends idle blocking-pool threads after a few seconds: a child spawned there
//! would be killed for no reason.
//!
//! # Reaping
//!
//! One reaper, global to the process, owns `waitpid`. It runs on its own thread, so that it
//! keeps working whichever runtime (or how many runtimes, as in tests) the callers use: on
//! Linux blocked in `waitid(WEXITED | WNOWAIT)` until a child has exited, elsewhere with a
//! small current-thread runtime that listens to `SIGCHLD`. Each wake-up runs a
//! `waitpid(-1, WNOHANG)` loop: a registered pid gets its status delivered to its [`Child`];
//! any other pid (an orphan re-parented to warden as a subreaper) is just reaped. After a
//! batch, a generation counter is bumped so that waiters ([`Child::wait_tree_gone`],
//! [`wait_no_children`]) re-check their condition: waiting is event-driven.
//!
//! The registry lock is held both around `Command::spawn` + registration and around the
//! `waitpid` loop. So a child can never be reaped before it is registered (no "unclaimed
//! status" bookkeeping is needed, and a reused pid can never pick up a stale status), and the
//! reaper cannot steal the failed child that `std` itself reaps when `exec` fails.
//! warden's own spawn of cgroup mode (`fork.rs`) clones without the lock, so that two can
//! clone at once: it holds a ticket instead (`reaper::InFlight`), and while any ticket is out
//! the reaper takes only registered children (it looks with `waitid(WNOWAIT)` first), and an
//! unregistered one once the spawns in flight when it saw it have ended. Who asks for the
//! registered children (orphan matching, the final kill) waits for those spawns too
//! (`reaper::registry`).
//!
//! # Platform limits
//!
//! - Linux gets everything: subreaper, parent-death signal, start times from
//!   `/proc/PID/stat` (field 22, clock ticks since boot), adopted-orphan matching through
//!   `/proc/PID/environ`, whole-tree walks through `/proc`.
//! - Elsewhere (macOS, BSDs) there is no subreaper and no `/proc`: `start_time` is 0, a
//!   service is its process group (a daemon that calls `setsid` escapes), `kill_leftovers`
//!   does nothing, `kill_all_descendants` kills the groups of live children only, and
//!   [`Child::wait_tree_gone`] cannot be woken by the death of a group member that is not
//!   warden's child, so it re-checks with a backoff (5 ms doubling up to 200 ms). The same
//!   fallback applies on Linux when [`init_supervisor`] was not called.
//!
//! # Files
//!
//! `spawn.rs` starts a child, `reaper.rs` owns `waitpid`, `child.rs` is the [`Child`] handle,
//! `fork.rs` is the `clone3` spawn of cgroup mode (Linux),
//! `tree.rs` signals and kills its tree (and sweeps leftovers), `pipe.rs` its output,
//! `procfs.rs` reads `/proc` (Linux), `stop.rs` the graceful stop steps. `creds.rs` applies
//! a service's credentials and limits (resolved before the fork, set between fork and exec),
//! `account.rs` reads the user database, `cgroup.rs` gives each service its own cgroup v2
//! (Linux, when warden can manage one): exact tracking, a whole-tree kill, hard limits.

mod account;
#[cfg(target_os = "linux")]
mod cgroup;
mod child;
mod creds;
mod follow;
#[cfg(target_os = "linux")]
mod fork;
mod notify; // health: the sd_notify socket
#[cfg(target_os = "linux")]
mod oom;
#[cfg(target_os = "linux")]
mod pages;
mod pipe;
#[cfg(target_os = "linux")]
mod procfs;
mod reaper;
mod sample; // health: resource samples
#[cfg(target_os = "macos")]
mod sample_macos;
mod spawn;
mod stop;
mod tree;
mod watch;

use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub(super) use account::{lookup_account, lookup_group};
#[cfg(target_os = "linux")]
pub(super) use cgroup::{service_of_pid, tracking};
pub use child::Child;
pub(super) use creds::{raise_fd_limit, resource_supported};
pub use notify::NotifySocket;
pub(super) use notify::in_tree;
pub use pipe::OutputPipe;
pub(super) use reaper::{init_supervisor, wait_no_children};
pub(super) use sample::{release_free_heap, sample_own, sample_tree};
pub(super) use spawn::spawn;
pub(super) use stop::stop_steps;
pub(super) use tree::{kill_all_descendants, kill_leftovers};
pub use watch::DirWatch;

#[cfg(not(target_os = "linux"))]
pub(super) fn tracking() -> super::Tracking {
    super::Tracking::ProcessGroup {
        reason: "cgroups are Linux-only".to_owned(),
    }
}

/// See [`crate::process::release_startup_pages`].
pub(super) fn release_startup_pages() {
    #[cfg(target_os = "linux")]
    pages::release_startup_pages();
}

/// See [`crate::process::release_settled_pages`].
pub(super) fn release_settled_pages() {
    #[cfg(target_os = "linux")]
    pages::release_settled_pages();
}

/// See [`crate::process::release_cgroups`].
pub(super) fn release_cgroups() {
    #[cfg(target_os = "linux")]
    cgroup::release_kept();
}

#[cfg(not(target_os = "linux"))]
pub(super) fn service_of_pid(_pid: u32, _instance: &str) -> Option<String> {
    None
}

use super::Signal;

/// The variable the engine sets to the warden instance id in every service's environment.
const INSTANCE_VAR: &[u8] = b"WARDEN_INSTANCE";
/// The variable the engine sets to the service name in every service's environment.
const SERVICE_VAR: &[u8] = b"WARDEN_SERVICE";

/// Lock a mutex, ignoring poisoning: the protected maps stay consistent at every step.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn signal_number(sig: Signal) -> libc::c_int {
    match sig {
        Signal::Int => libc::SIGINT,
        Signal::Term => libc::SIGTERM,
        Signal::Hup => libc::SIGHUP,
        Signal::Quit => libc::SIGQUIT,
        Signal::Kill => libc::SIGKILL,
        Signal::Usr1 => libc::SIGUSR1,
        Signal::Usr2 => libc::SIGUSR2,
    }
}

const SIGNAL_NAMES: &[(libc::c_int, &str)] = &[
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGILL, "ILL"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGABRT, "ABRT"),
    (libc::SIGBUS, "BUS"),
    (libc::SIGFPE, "FPE"),
    (libc::SIGKILL, "KILL"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGSEGV, "SEGV"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGPIPE, "PIPE"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGCHLD, "CHLD"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGSTOP, "STOP"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGTTIN, "TTIN"),
    (libc::SIGTTOU, "TTOU"),
    (libc::SIGURG, "URG"),
    (libc::SIGXCPU, "XCPU"),
    (libc::SIGXFSZ, "XFSZ"),
    (libc::SIGVTALRM, "VTALRM"),
    (libc::SIGPROF, "PROF"),
    (libc::SIGWINCH, "WINCH"),
    (libc::SIGIO, "IO"),
    (libc::SIGSYS, "SYS"),
];

/// `"TERM"` for 15, and so on; `None` for a number this OS does not name.
pub(super) fn signal_name(num: i32) -> Option<&'static str> {
    SIGNAL_NAMES
        .iter()
        .find(|(n, _)| *n == num)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGTERM), Some("TERM"));
        assert_eq!(signal_name(libc::SIGKILL), Some("KILL"));
        assert_eq!(signal_name(0), None);
    }
}
