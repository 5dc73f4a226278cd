//! Resource samples on macOS, through libproc:
//! - the tree: the main process, the members of its process group (`proc_listpgrppids`; a
//!   child leads its own group, and a member that was orphaned to launchd keeps it), and,
//!   transitively, their children (`proc_listchildpids`), walked by
//!   [`walk_tree`](crate::process::sampling::walk_tree);
//! - per process, `proc_pidinfo(PROC_PIDTASKINFO)`: CPU as `pti_total_user +
//!   pti_total_system` (Mach absolute-time ticks: nanoseconds on Intel, 125/3 ns on Apple
//!   silicon, converted through `mach_timebase_info`), memory as `pti_resident_size`.
//!
//! As on Linux, the CPU figure is summed over the live processes, and memory is their
//! resident memory summed. A process of another user (a `user =` service while warden is
//! not root) cannot be read and is left out.

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

use crate::process::sampling::{mach_ticks_seconds, sum_processes, walk_tree};
use crate::process::{OwnSample, TreeSample};

/// The first room for a list of pids; it doubles while the kernel fills it all, up to
/// [`MAX_PIDS`].
const FIRST_PIDS: usize = 64;
/// The most pids one list is read for (the kernel's own process limit is far lower).
const MAX_PIDS: usize = 1 << 20;

/// `mach_timebase_info_data_t` (`<mach/mach_time.h>`).
#[repr(C)]
struct Timebase {
    numer: u32,
    denom: u32,
}

// libc declares `mach_timebase_info` deprecated (in favour of the `mach2` crate): one
// function is declared here instead of a new dependency.
unsafe extern "C" {
    fn mach_timebase_info(info: *mut Timebase) -> c_int;
}

/// The Mach timebase, read once: `(numer, denom)`.
fn timebase() -> (u32, u32) {
    static TIMEBASE: OnceLock<(u32, u32)> = OnceLock::new();
    *TIMEBASE.get_or_init(|| {
        let mut tb = Timebase { numer: 0, denom: 0 };
        // SAFETY: a valid out-pointer to the struct the call fills.
        if unsafe { mach_timebase_info(&raw mut tb) } != 0 {
            return (1, 1);
        }
        (tb.numer, tb.denom)
    })
}

/// The task info of `pid`, if it is alive and readable.
fn task_info(pid: u32) -> Option<libc::proc_taskinfo> {
    let pid = c_int::try_from(pid).ok()?;
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut info: libc::proc_taskinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_taskinfo>() as c_int;
    // SAFETY: `info` is the struct this flavor fills, of the size given.
    let n = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTASKINFO,
            0,
            (&raw mut info).cast::<c_void>(),
            size,
        )
    };
    (n == size).then_some(info)
}

/// A list of pids from a libproc call that fills `buffer` (of `size` bytes) and returns how
/// many pids it wrote: read again with twice the room while it comes back full.
fn pid_list(mut call: impl FnMut(*mut c_void, c_int) -> c_int) -> Vec<u32> {
    let mut room = FIRST_PIDS;
    loop {
        let mut buf = vec![0 as libc::pid_t; room];
        let bytes = c_int::try_from(std::mem::size_of_val(buf.as_slice())).unwrap_or(c_int::MAX);
        let n = call(buf.as_mut_ptr().cast(), bytes);
        let Ok(n) = usize::try_from(n) else {
            return Vec::new();
        };
        if n < room || room >= MAX_PIDS {
            buf.truncate(n.min(room));
            return buf
                .into_iter()
                .filter_map(|p| u32::try_from(p).ok().filter(|&p| p > 0))
                .collect();
        }
        room *= 2;
    }
}

/// The tree of `pid` (its group and descendants) now; `None` if `pid` is gone.
pub(crate) fn sample_tree(pid: u32) -> Option<TreeSample> {
    let root = task_info(pid)?;
    let pgid = libc::pid_t::try_from(pid).ok()?;
    let mut roots = vec![pid];
    // SAFETY: the buffer and its size come from `pid_list`.
    roots.extend(pid_list(|buf, size| unsafe {
        libc::proc_listpgrppids(pgid, buf, size)
    }));
    let members = walk_tree(roots, |p| {
        let Ok(ppid) = libc::pid_t::try_from(p) else {
            return Vec::new();
        };
        // SAFETY: as above.
        pid_list(|buf, size| unsafe { libc::proc_listchildpids(ppid, buf, size) })
    });
    let (numer, denom) = timebase();
    Some(sum_processes(
        members
            .into_iter()
            .filter_map(|p| if p == pid { Some(root) } else { task_info(p) })
            .map(|t| {
                let ticks = t.pti_total_user.saturating_add(t.pti_total_system);
                (mach_ticks_seconds(ticks, numer, denom), t.pti_resident_size)
            }),
    ))
}

/// warden's own CPU time and resident memory (`PROC_PIDTASKINFO`), and its open file
/// descriptors (`PROC_PIDLISTFDS`).
pub(crate) fn sample_own() -> Option<OwnSample> {
    let me = std::process::id();
    let info = task_info(me)?;
    let (numer, denom) = timebase();
    Some(OwnSample {
        cpu_seconds: mach_ticks_seconds(
            info.pti_total_user.saturating_add(info.pti_total_system),
            numer,
            denom,
        ),
        rss_bytes: info.pti_resident_size,
        open_fds: open_fds(me)?,
    })
}

/// How many descriptors `pid` has open: the list's size, asked first, then the list.
fn open_fds(pid: u32) -> Option<u64> {
    let pid = c_int::try_from(pid).ok()?;
    // SAFETY: a size query: a null buffer of size 0.
    let room =
        unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDLISTFDS, 0, std::ptr::null_mut(), 0) };
    let room = usize::try_from(room).ok()?;
    let entry = std::mem::size_of::<libc::proc_fdinfo>();
    // Room for what the size query said, and a few opened since.
    let mut buf: Vec<libc::proc_fdinfo> = Vec::with_capacity(room / entry + 16);
    let bytes = c_int::try_from(buf.capacity() * entry).ok()?;
    // SAFETY: `buf` has room for `bytes` bytes; the kernel writes at most that.
    let written = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDLISTFDS,
            0,
            buf.as_mut_ptr().cast::<c_void>(),
            bytes,
        )
    };
    Some(usize::try_from(written).ok()? as u64 / entry as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warden_samples_its_own_process() {
        let s = sample_own().expect("a sample of this process");
        assert!(s.rss_bytes > 1 << 20 && s.open_fds >= 3, "{s:?}");
        assert!(s.cpu_seconds > 0.0, "{s:?}");
    }

    #[test]
    fn the_own_process_has_memory() {
        let s = sample_tree(std::process::id()).expect("a sample of this process");
        assert!(s.rss_bytes > 1 << 20 && s.processes >= 1, "{s:?}");
    }

    #[test]
    fn the_timebase_is_filled_in() {
        let (numer, denom) = timebase();
        assert!(numer > 0 && denom > 0, "{numer}/{denom}");
    }
}
