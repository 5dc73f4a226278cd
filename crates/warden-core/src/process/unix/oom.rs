//! warden's own `oom_score_adj` (Linux): as root it lowers its own, so that under memory
//! pressure the kernel's OOM killer picks a service before the supervisor that would restart
//! it. A child inherits the value at `fork`; every service gets warden's original value back
//! before its `exec` ([`reset_in_child`]), so that services are not protected along with it.

use std::sync::OnceLock;

/// warden's `oom_score_adj` as root: low, not -1000 (which would make it unkillable, even
/// when warden itself is what leaks).
pub(super) const WARDEN_OOM_SCORE_ADJ: &str = "-900";

const PATH: &str = "/proc/self/oom_score_adj";
/// `PATH` as a C string, for the child between `fork` and `exec`.
const PATH_C: &[u8] = b"/proc/self/oom_score_adj\0";

/// The value warden had before it lowered its own, as written back in each child; unset
/// when warden did not lower it.
static ORIGINAL: OnceLock<Vec<u8>> = OnceLock::new();

/// As root, lower warden's own `oom_score_adj` (best effort: a kernel without the file, or a
/// container that refuses, leaves it as it is).
pub(super) fn lower_own() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || ORIGINAL.get().is_some() {
        return;
    }
    let Ok(original) = std::fs::read(PATH) else {
        return;
    };
    let original: Vec<u8> = original.trim_ascii().to_vec();
    if original.is_empty() || std::fs::write(PATH, WARDEN_OOM_SCORE_ADJ).is_err() {
        return;
    }
    let _ = ORIGINAL.set(original);
}

/// What a child must write back (read before `fork`), if warden lowered its own.
pub(super) fn child_value() -> Option<&'static [u8]> {
    ORIGINAL.get().map(Vec::as_slice)
}

/// In the child, between `fork` and `exec`: write `value` back. Only async-signal-safe
/// calls; a failure leaves the inherited value (the child then is as protected as warden).
///
/// # Safety
/// Call only in the child after `fork`.
pub(super) unsafe fn reset_in_child(value: &[u8]) {
    // SAFETY: open/write/close are async-signal-safe; PATH_C ends with a NUL.
    unsafe {
        let fd = libc::open(PATH_C.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, value.as_ptr().cast(), value.len());
            libc::close(fd);
        }
    }
}
