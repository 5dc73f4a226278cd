//! Resource samples on Windows, through the service's Job Object, which holds its whole
//! tree:
//! - CPU: the job's accounting (`JOBOBJECT_BASIC_ACCOUNTING_INFORMATION`: `TotalUserTime` +
//!   `TotalKernelTime`, 100 ns units). It counts every process that ran in the job, the
//!   exited ones too, so the figure never drops when a worker process ends.
//! - Memory: the sum of the working sets (`GetProcessMemoryInfo`, `WorkingSetSize`) of the
//!   job's processes (`JobObjectBasicProcessIdList`), so MEM means what it means on Linux
//!   (resident memory summed over the tree). Each process is opened by its pid and checked
//!   to be in the job (`IsProcessInJob`) before it counts: a pid that ended between the
//!   list and the open, and was reused, is never read.
//!
//! The sampler knows only a pid ([`crate::process::sample_tree`] has the same signature on
//! every OS); the job is found by its main process's pid (see [`job::with_main`]).
//!
//! Under Wine 8 the job's CPU times are always 0 (Wine fills only the process counts of
//! `JobObjectBasicAccountingInformation`); the working sets are real.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::{FILETIME, HANDLE};
use windows_sys::Win32::System::JobObjects::IsProcessInJob;
use windows_sys::Win32::System::ProcessStatus::{GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetProcessHandleCount, GetProcessTimes, OpenProcess,
    PROCESS_QUERY_INFORMATION, PROCESS_VM_READ,
};

use super::job;
use crate::process::sampling::{hundred_ns_seconds, sum_processes};
use crate::process::{OwnSample, TreeSample};

/// The tree of the service whose main process is `pid` (a [`super::Child`] warden holds):
/// `None` if no open job has that main process, or its accounting cannot be read.
pub(crate) fn sample_tree(pid: u32) -> Option<TreeSample> {
    job::with_main(pid, sample_job).flatten()
}

/// `job` is valid for the call (see [`job::with_main`]).
fn sample_job(job: HANDLE) -> Option<TreeSample> {
    let accounting = job::accounting_raw(job).ok()?;
    let pids = job::process_ids_raw(job).ok()?;
    let mut sample = sum_processes(
        pids.into_iter()
            .filter_map(|p| working_set(p, job))
            .map(|bytes| (0.0, bytes)),
    );
    sample.cpu_seconds = hundred_ns_seconds(accounting.TotalUserTime, accounting.TotalKernelTime);
    Some(sample)
}

/// The working set of process `pid`, if it is still in `job`. (`IsProcessInJob` needs
/// `PROCESS_QUERY_INFORMATION` under Wine; the limited right is refused there.)
fn working_set(pid: u32, job: HANDLE) -> Option<u64> {
    // SAFETY: plain call; a non-null result is a handle we own.
    let raw = unsafe { OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, 0, pid) };
    if raw.is_null() {
        return None;
    }
    // SAFETY: a fresh handle that nothing else owns.
    let process = unsafe { OwnedHandle::from_raw_handle(raw) };
    let mut member = 0;
    // SAFETY: both handles are valid for the call; a valid out-pointer.
    let ok = unsafe { IsProcessInJob(process.as_raw_handle(), job, &raw mut member) };
    if ok == 0 || member == 0 {
        return None;
    }
    memory_of(process.as_raw_handle()).map(|c| c.WorkingSetSize as u64)
}

fn memory_of(process: HANDLE) -> Option<PROCESS_MEMORY_COUNTERS> {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut counters: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
    counters.cb = size;
    // SAFETY: a valid process handle and a struct of the size given.
    (unsafe { GetProcessMemoryInfo(process, &raw mut counters, size) } != 0).then_some(counters)
}

/// Nothing to do: the Windows heap gives free pages back on its own.
pub(crate) fn release_free_heap() {}

/// warden's own process: CPU time (`GetProcessTimes`), working set
/// (`GetProcessMemoryInfo`), and its open handles (`GetProcessHandleCount`) as `open_fds`,
/// the figure Prometheus's own Windows clients give as `process_open_fds`.
pub(crate) fn sample_own() -> Option<OwnSample> {
    // SAFETY: a pseudo handle to this process; it needs no closing.
    let me = unsafe { GetCurrentProcess() };
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: a valid process handle and out-pointers.
    let ok = unsafe {
        GetProcessTimes(
            me,
            &raw mut created,
            &raw mut exited,
            &raw mut kernel,
            &raw mut user,
        )
    };
    if ok == 0 {
        return None;
    }
    let counters = memory_of(me)?;
    let mut handles = 0u32;
    // SAFETY: a valid process handle and out-pointer.
    if unsafe { GetProcessHandleCount(me, &raw mut handles) } == 0 {
        return None;
    }
    Some(OwnSample {
        cpu_seconds: hundred_ns_seconds(filetime_units(user), filetime_units(kernel)),
        rss_bytes: counters.WorkingSetSize as u64,
        open_fds: u64::from(handles),
    })
}

/// A `FILETIME` duration as a count of 100 ns units.
fn filetime_units(t: FILETIME) -> i64 {
    ((u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filetime_is_its_two_halves() {
        let t = FILETIME {
            dwLowDateTime: 5,
            dwHighDateTime: 1,
        };
        assert_eq!(filetime_units(t), (1 << 32) + 5);
    }

    /// Is this Wine? (A Wine prefix has the key `HKLM\\Software\\Wine`.)
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

    #[test]
    fn warden_samples_its_own_process() {
        let s = sample_own().expect("a sample of this process");
        assert!(s.rss_bytes > 1 << 20, "{s:?}");
        assert!(s.cpu_seconds > 0.0, "{s:?}");
        if under_wine() {
            // Wine 8's GetProcessHandleCount answers 0 handles.
            assert_eq!(s.open_fds, 0, "Wine now counts handles: check them here");
        } else {
            assert!(s.open_fds >= 3, "{s:?}");
        }
    }

    #[test]
    fn a_pid_that_leads_no_job_is_not_sampled() {
        // This test process is in no job of warden's.
        assert_eq!(sample_tree(std::process::id()), None);
    }
}
