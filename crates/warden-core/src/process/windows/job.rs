//! Job Objects: each child runs in its own job, created with kill-on-close, so that closing
//! the job (dropping [`Job`], or warden exiting or crashing) ends the whole tree.
//!
//! Every job is associated with one I/O completion port, read by one thread
//! (`warden-jobs`), which turns the kernel's `JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO` into a
//! `watch` value per job, and bumps a global generation counter that
//! [`wait_all_empty`] waits on. No polling: a waiter sleeps until a job empties or its
//! deadline passes, and then checks the job's counters once more (the kernel documents
//! that these messages can, rarely, be lost).

use std::collections::HashMap;
use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, OwnedHandle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use windows_sys::Win32::Foundation::{ERROR_MORE_DATA, GetLastError, HANDLE};
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatus, OVERLAPPED,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_JOB_MEMORY,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, JOBOBJECT_ASSOCIATE_COMPLETION_PORT,
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION, JOBOBJECT_BASIC_PROCESS_ID_LIST,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectAssociateCompletionPortInformation,
    JobObjectBasicAccountingInformation, JobObjectBasicProcessIdList,
    JobObjectExtendedLimitInformation, QueryInformationJobObject, SetInformationJobObject,
    TerminateJobObject,
};
use windows_sys::Win32::System::SystemServices::JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO;
use windows_sys::Win32::System::Threading::INFINITE;

/// A raw job handle kept in the registry. It is only used while the registry's lock is held,
/// and [`Job`]'s `Drop` removes it under that lock before the handle is closed.
#[derive(Clone, Copy)]
struct RawJob(HANDLE);
// SAFETY: a job handle is a kernel handle, usable from any thread; see the type's comment
// for why it is never used after being closed.
unsafe impl Send for RawJob {}

struct Entry {
    handle: RawJob,
    empty: watch::Sender<bool>,
    /// The pid of the service's main process in this job, once [`Job::set_main`] named it
    /// (resource samples find the job by it, see [`with_main`]).
    main: Option<u32>,
}

struct Monitor {
    port: OwnedHandle,
    jobs: Arc<Mutex<HashMap<usize, Entry>>>,
    /// Bumped whenever some job becomes empty.
    generation: Arc<watch::Sender<u64>>,
    next_key: AtomicUsize,
}

/// A new completion port is not tied to a file, so there is no key for one.
const NO_COMPLETION_KEY: usize = 0;
/// One thread (`warden-jobs`) reads the port.
const PORT_THREADS: u32 = 1;
/// The room added, beyond what the kernel reported, when a process id list is re-read
/// (processes may start between two reads).
const PID_LIST_SLACK: usize = 16;

static MONITOR: LazyLock<io::Result<Monitor>> = LazyLock::new(Monitor::start);

fn monitor() -> io::Result<&'static Monitor> {
    MONITOR
        .as_ref()
        .map_err(|e| io::Error::new(e.kind(), format!("job monitor unavailable: {e}")))
}

/// Start the completion-port thread now rather than at the first spawn.
pub(super) fn init() -> io::Result<()> {
    monitor().map(|_| ())
}

impl Monitor {
    fn start() -> io::Result<Monitor> {
        // SAFETY: plain call; a new port not tied to a file.
        let port = unsafe {
            CreateIoCompletionPort(
                windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE,
                std::ptr::null_mut(),
                NO_COMPLETION_KEY,
                PORT_THREADS,
            )
        };
        if port.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `port` is a fresh handle that nothing else owns.
        let port = unsafe { OwnedHandle::from_raw_handle(port) };
        let jobs: Arc<Mutex<HashMap<usize, Entry>>> = Arc::default();
        let generation = Arc::new(watch::Sender::new(0));
        let thread_port = port.try_clone()?;
        let (thread_jobs, thread_gen) = (Arc::clone(&jobs), Arc::clone(&generation));
        std::thread::Builder::new()
            .name("warden-jobs".into())
            .spawn(move || read_port(&thread_port, &thread_jobs, &thread_gen))?;
        Ok(Monitor {
            port,
            jobs,
            generation,
            next_key: AtomicUsize::new(1),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Entry>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn read_port(
    port: &OwnedHandle,
    jobs: &Mutex<HashMap<usize, Entry>>,
    generation: &watch::Sender<u64>,
) {
    loop {
        let mut message = 0u32;
        let mut key = 0usize;
        let mut overlapped: *mut OVERLAPPED = std::ptr::null_mut();
        // SAFETY: valid out-pointers; the port lives as long as this thread (it is owned
        // by a clone held here).
        let ok = unsafe {
            GetQueuedCompletionStatus(
                port.as_raw_handle(),
                &raw mut message,
                &raw mut key,
                &raw mut overlapped,
                INFINITE,
            )
        };
        if ok == 0 && overlapped.is_null() {
            // The port itself failed: nothing more will come. Waiters fall back to their
            // deadline and a final check.
            return;
        }
        if message == JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO {
            if let Some(entry) = jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
            {
                entry.empty.send_replace(true);
            }
            generation.send_modify(|g| *g = g.wrapping_add(1));
        }
    }
}

/// A Job Object with kill-on-close, registered with the monitor.
pub(super) struct Job {
    handle: OwnedHandle,
    key: usize,
    empty: watch::Receiver<bool>,
}

impl Job {
    /// A new job; `memory_max` (a service's `memory_limit`): the most memory committed by
    /// all of its processes together (`JOB_OBJECT_LIMIT_JOB_MEMORY`); an allocation beyond
    /// it fails.
    pub(super) fn new(memory_max: Option<u64>) -> io::Result<Job> {
        let monitor = monitor()?;
        // SAFETY: no attributes (the handle is not inheritable: a child holding it would
        // keep the job, and so the kill-on-close, alive), no name.
        let raw = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if raw.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh handle that nothing else owns.
        let handle = unsafe { OwnedHandle::from_raw_handle(raw) };

        // SAFETY: all-zero is a valid value of this plain C struct.
        let limits = extended_limits(memory_max);
        set_info(&handle, JobObjectExtendedLimitInformation, &limits)?;

        let key = monitor.next_key.fetch_add(1, Ordering::Relaxed);
        let port = JOBOBJECT_ASSOCIATE_COMPLETION_PORT {
            CompletionKey: key as *mut c_void,
            CompletionPort: monitor.port.as_raw_handle(),
        };
        set_info(&handle, JobObjectAssociateCompletionPortInformation, &port)?;

        let (tx, rx) = watch::channel(false);
        monitor.lock().insert(
            key,
            Entry {
                handle: RawJob(handle.as_raw_handle()),
                empty: tx,
                main: None,
            },
        );
        Ok(Job {
            handle,
            key,
            empty: rx,
        })
    }

    /// The job's handle, for `CreateProcessW`'s job list; it stays owned by the job.
    pub(super) fn as_raw_handle(&self) -> HANDLE {
        self.handle.as_raw_handle()
    }

    pub(super) fn assign(&self, process: BorrowedHandle<'_>) -> io::Result<()> {
        // SAFETY: both handles are valid for the call.
        check(unsafe {
            AssignProcessToJobObject(self.handle.as_raw_handle(), process.as_raw_handle())
        })
    }

    /// End every process in the job with `exit_code`.
    pub(super) fn terminate(&self, exit_code: u32) -> io::Result<()> {
        terminate_raw(self.handle.as_raw_handle(), exit_code)
    }

    pub(super) fn active_processes(&self) -> io::Result<u32> {
        active_raw(self.handle.as_raw_handle())
    }

    /// The pids of the processes in the job now.
    pub(super) fn process_ids(&self) -> io::Result<Vec<u32>> {
        process_ids_raw(self.handle.as_raw_handle())
    }

    /// Name `pid` as the main process of the job: [`with_main`] finds the job by it. Called
    /// at the spawn and when the child follows another main process. The caller holds the
    /// process's handle meanwhile, so that the pid cannot be reused by another process and
    /// name two jobs at once.
    pub(super) fn set_main(&self, pid: u32) {
        if let Ok(monitor) = monitor()
            && let Some(entry) = monitor.lock().get_mut(&self.key)
        {
            entry.main = Some(pid);
        }
    }

    /// Wait until no process is left in the job, at most `timeout`; `true` if none is left.
    pub(super) async fn wait_empty(&self, timeout: Duration) -> bool {
        if self.active_processes().is_ok_and(|n| n == 0) {
            return true;
        }
        let mut rx = self.empty.clone();
        if let Ok(Ok(_)) = tokio::time::timeout(timeout, rx.wait_for(|empty| *empty)).await {
            return true;
        }
        self.active_processes().is_ok_and(|n| n == 0)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // Unregister before the handle closes (the registry only uses it under the lock).
        if let Ok(monitor) = monitor() {
            monitor.lock().remove(&self.key);
        }
        // Then `self.handle` closes; with kill-on-close that ends what is left of the tree.
    }
}

/// The job's limits: kill-on-close, and the job memory limit if any (at most what the
/// address space can hold).
fn extended_limits(memory_max: Option<u64>) -> JOBOBJECT_EXTENDED_LIMIT_INFORMATION {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if let Some(bytes) = memory_max {
        limits.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
        limits.JobMemoryLimit = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    limits
}

fn set_info<T>(job: &OwnedHandle, class: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is the struct that `class` names, valid for the call.
    check(unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            class,
            std::ptr::from_ref(value).cast(),
            std::mem::size_of::<T>() as u32,
        )
    })
}

fn check(ok: i32) -> io::Result<()> {
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn terminate_raw(job: HANDLE, exit_code: u32) -> io::Result<()> {
    // SAFETY: `job` is a live job handle (see callers).
    check(unsafe { TerminateJobObject(job, exit_code) })
}

fn active_raw(job: HANDLE) -> io::Result<u32> {
    Ok(accounting_raw(job)?.ActiveProcesses)
}

/// The job's accounting: its live processes, and the CPU time of every process that ran in
/// it (`TotalUserTime`, `TotalKernelTime`, 100 ns units; exited processes included).
pub(super) fn accounting_raw(job: HANDLE) -> io::Result<JOBOBJECT_BASIC_ACCOUNTING_INFORMATION> {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut info: JOBOBJECT_BASIC_ACCOUNTING_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is the struct this class fills, valid for the call.
    check(unsafe {
        QueryInformationJobObject(
            job,
            JobObjectBasicAccountingInformation,
            (&raw mut info).cast(),
            std::mem::size_of_val(&info) as u32,
            std::ptr::null_mut(),
        )
    })?;
    Ok(info)
}

/// The pids of the processes in `job` now.
pub(super) fn process_ids_raw(job: HANDLE) -> io::Result<Vec<u32>> {
    let mut capacity = 64usize;
    loop {
        // Header (two u32 = one usize) followed by `capacity` usize entries.
        let mut buf = vec![0usize; 1 + capacity];
        let bytes = std::mem::size_of_val(buf.as_slice());
        // SAFETY: `buf` is large enough and suitably aligned for the header and the
        // list the kernel is told about.
        let ok = unsafe {
            QueryInformationJobObject(
                job,
                JobObjectBasicProcessIdList,
                buf.as_mut_ptr().cast(),
                bytes as u32,
                std::ptr::null_mut(),
            )
        };
        // SAFETY: the buffer starts with the header the call filled in.
        let header = unsafe { &*buf.as_ptr().cast::<JOBOBJECT_BASIC_PROCESS_ID_LIST>() };
        let (assigned, listed) = (
            header.NumberOfAssignedProcesses as usize,
            header.NumberOfProcessIdsInList as usize,
        );
        if ok == 0 {
            // SAFETY: plain call.
            if unsafe { GetLastError() } != ERROR_MORE_DATA {
                return Err(io::Error::last_os_error());
            }
        } else if listed >= assigned {
            return Ok(buf[1..=listed.min(capacity)]
                .iter()
                .map(|&p| p as u32)
                .collect());
        }
        capacity = assigned.max(capacity * 2) + PID_LIST_SLACK;
    }
}

/// Run `f` with the handle of the job whose main process is `pid` (see [`Job::set_main`]),
/// under the registry's lock: the handle is only valid while it is held, so `f` must be
/// short (a sample: two queries and one per process). `None`: no open job has that main
/// process. A linear search: one comparison per open job, against the syscalls of a sample.
pub(super) fn with_main<T>(pid: u32, f: impl FnOnce(HANDLE) -> T) -> Option<T> {
    let monitor = monitor().ok()?;
    let jobs = monitor.lock();
    let entry = jobs.values().find(|e| e.main == Some(pid))?;
    Some(f(entry.handle.0))
}

/// Terminate every job still open; returns how many processes were in them.
pub(super) fn kill_all(exit_code: u32) -> usize {
    let Ok(monitor) = monitor() else { return 0 };
    let jobs = monitor.lock();
    jobs.values()
        .map(|entry| {
            let active = active_raw(entry.handle.0).unwrap_or(0);
            if active > 0 && terminate_raw(entry.handle.0, exit_code).is_err() {
                return 0;
            }
            active as usize
        })
        .sum()
}

/// Wait until every open job is empty, at most `timeout`; `true` if they all are.
pub(super) async fn wait_all_empty(timeout: Duration) -> bool {
    let Ok(monitor) = monitor() else { return true };
    let all_empty = || {
        monitor
            .lock()
            .values()
            .all(|e| active_raw(e.handle.0).is_ok_and(|n| n == 0))
    };
    let mut rx = monitor.generation.subscribe();
    let deadline = crate::util::deadline_in(timeout);
    loop {
        rx.mark_unchanged();
        if all_empty() {
            return true;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return all_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limit_sets_the_job_memory_limit() {
        let plain = extended_limits(None);
        assert_eq!(
            plain.BasicLimitInformation.LimitFlags,
            JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        );
        assert_eq!(plain.JobMemoryLimit, 0);
        let limited = extended_limits(Some(1 << 30));
        assert_eq!(
            limited.BasicLimitInformation.LimitFlags,
            JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_JOB_MEMORY
        );
        assert_eq!(limited.JobMemoryLimit, 1 << 30);
    }
}
