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
    })
}

/// Start the reaper thread once. It installs the `SIGCHLD` listener before this returns, so no
/// child spawned afterwards can exit unnoticed.
pub(super) fn ensure_reaper() -> io::Result<()> {
    let started = REAPER_STARTED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("warden-reaper".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        // The receiver waits for this message; nothing else to do with a failure.
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    let mut sigchld = match signal(SignalKind::child()) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(()));
                    reap_pass();
                    while sigchld.recv().await.is_some() {
                        reap_pass();
                    }
                });
            });
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
