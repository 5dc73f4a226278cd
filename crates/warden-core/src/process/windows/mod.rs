//! Windows implementation of the process layer.
//!
//! # How a child is started
//!
//! 1. The program is resolved (see [`cmdline::resolve_program`]); a `.bat`/`.cmd` file runs
//!    through `cmd.exe` with arguments quoted for it.
//! 2. `CreateProcessW` with `CREATE_SUSPENDED | CREATE_NO_WINDOW |
//!    CREATE_UNICODE_ENVIRONMENT`: the child gets a console of its own with no window (so a
//!    `CTRL_C_EVENT` sent to that console reaches this service's tree only, never warden or
//!    another service), stdin is `NUL` (which also answers cmd's "Terminate batch job
//!    (Y/N)?"), stdout and stderr are pipes (with
//!    [`Output::Joined`](crate::process::Output::Joined), one pipe whose write handle is
//!    both `hStdOutput` and `hStdError`). Only those handles are inherited
//!    (`PROC_THREAD_ATTRIBUTE_HANDLE_LIST`, and a lock around the window in which they are
//!    inheritable).
//! 3. The child is created (suspended) inside a fresh Job Object with
//!    `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` (`PROC_THREAD_ATTRIBUTE_JOB_LIST`; before Windows
//!    10 it is assigned just after), then resumed: nothing it starts can escape the job, and
//!    when the job's last handle closes (the [`Child`] is dropped, or warden exits or
//!    crashes, even in the middle of a spawn) the whole tree ends.
//!
//! Not `CREATE_NEW_PROCESS_GROUP`: it would turn off `CTRL_C` handling in the child and its
//! descendants (the flag is inherited), so `stop_method = ["ctrl-c", ...]` would do nothing
//! for most programs; the child's own console already isolates it.
//!
//! # Waiting
//!
//! The main process's exit is watched with `RegisterWaitForSingleObject` (the system's
//! wait threads; a callback sets a `watch`); the tree's end with the job's completion
//! port (see `job.rs`). Both are event-driven.
//!
//! # Stopping
//!
//! [`Child::apply_stop_step`] does one graceful step (`stop_method` but `terminate`, see
//! [`stop_steps`]): `CtrlC` runs warden's own executable as `warden __ctrl-c PID` (see
//! [`Child::ctrl_c_helper_main`]) and waits for it asynchronously; the helper attaches to the
//! child's console and raises `CTRL_C_EVENT` there, so warden never leaves its own console.
//! `WmClose` posts `WM_CLOSE` to the top-level windows of the job's processes (as `taskkill`
//! without `/F` does). A step with nothing to act on (no console, no window) says so at once.
//! [`Child::kill_tree`] (`terminate`) ends the job. [`Child::request_stop`] is the older,
//! blocking form of one step.
//!
//! # Files
//!
//! `spawn.rs` creates the process, `job.rs` owns the Job Objects, `wait.rs` watches the main
//! process's exit, `pipe.rs` its output, `stop.rs` the graceful steps, `sample.rs` the
//! resource samples through the job, `cmdline.rs` quoting, environment blocks and program
//! lookup.

mod cmdline;
mod follow;
mod job;
mod pipe;
mod sample;
mod spawn;
mod stop;
mod wait;
mod watch;

use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::time::Duration;

use windows_sys::Win32::Foundation::WAIT_OBJECT_0;
use windows_sys::Win32::System::Threading::{GetExitCodeProcess, WaitForSingleObject};

use job::Job;
pub use pipe::OutputPipe;
pub(super) use spawn::spawn;
pub(super) use stop::stop_steps;

pub(super) use sample::{release_free_heap, sample_own, sample_tree};
use wait::ExitWatch;
pub use watch::DirWatch;

use super::{ExitStatus, GroupRecord, MainRecord, Signal};

/// See [`crate::process::release_startup_pages`]: Windows trims a working set itself.
pub(super) fn release_startup_pages() {}

pub(super) fn release_settled_pages() {}

/// The exit code a process gets when warden terminates its job.
const TERMINATED_EXIT_CODE: u32 = 1;

/// A child process and its Job Object.
///
/// Dropping it closes the job, which (kill-on-close) ends every process still in it.
pub struct Child {
    pid: u32,
    start_time: u64,
    stdout: Option<OutputPipe>,
    stderr: Option<OutputPipe>,
    status: Option<ExitStatus>,
    // Drop order matters: the registered wait goes before the process handle it waits on.
    exit: ExitWatch,
    process: OwnedHandle,
    job: Job,
    /// The main process is one the launcher started (`pid_file`), no longer the launcher.
    followed: bool,
}

impl Child {
    /// The pid of the main process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The main process's creation time: 100 ns units since 1601-01-01 UTC (a `FILETIME`).
    pub fn start_time(&self) -> u64 {
        self.start_time
    }

    /// On Windows `pgid` holds the main process's pid (there are no process groups; the
    /// tree is the job, which cannot outlive warden, see [`super::kill_leftovers`]).
    pub fn group_record(&self, service: &str) -> GroupRecord {
        GroupRecord {
            service: service.to_owned(),
            pgid: self.pid,
            start_time: self.start_time(),
            main: self.followed.then_some(MainRecord {
                pid: self.pid,
                start_time: self.start_time,
            }),
        }
    }

    /// Every start is recorded: there are no cgroups here.
    pub fn needs_record(&self) -> bool {
        true
    }

    pub fn take_stdout(&mut self) -> Option<OutputPipe> {
        self.stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<OutputPipe> {
        self.stderr.take()
    }

    /// Windows has no signals: [`Signal::Kill`] terminates the job (the whole tree, exit
    /// code 1); any other signal is an [`io::ErrorKind::Unsupported`] error. Use
    /// [`Child::apply_stop_step`] for a graceful stop.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        match sig {
            Signal::Kill => self.kill_tree(),
            other => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{other} cannot be sent on Windows (use stop_method)"),
            )),
        }
    }

    /// Terminate the job: every process in it ends at once, with exit code 1.
    pub fn kill_tree(&self) -> io::Result<()> {
        self.job.terminate(TERMINATED_EXIT_CODE)
    }

    /// Wait for the main process to exit. Cancel-safe; after the exit it returns the same
    /// status again at once.
    pub async fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        // The sender lives in `self.exit`, so this only ends when the callback has run.
        let _ = self.exit.rx.wait_for(|exited| *exited).await;
        if let Some(status) = self.exit_status() {
            self.status = Some(status);
            return status;
        }
        // The callback only runs once the handle is signalled: not reached, but never invent
        // a status.
        std::future::pending().await
    }

    /// Has the main process exited?
    pub fn exit_status(&self) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        // SAFETY: the process handle is valid while `self` lives.
        if unsafe { WaitForSingleObject(self.process.as_raw_handle(), 0) } != WAIT_OBJECT_0 {
            return None;
        }
        let mut code = 0u32;
        // SAFETY: as above, with a valid out-pointer.
        if unsafe { GetExitCodeProcess(self.process.as_raw_handle(), &raw mut code) } == 0 {
            return None;
        }
        // NTSTATUS codes such as 0xC000013A come out negative, as `%ERRORLEVEL%` shows them.
        Some(ExitStatus::Code(code as i32))
    }

    /// Warnings about the confinement: none on Windows (the job always holds the tree, and
    /// its memory limit always applies).
    pub fn confinement_notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Wait until no process of the job is left, at most `timeout`. `true` if none is left.
    pub async fn wait_tree_gone(&mut self, timeout: Duration) -> bool {
        self.job.wait_empty(timeout).await
    }
}

pub(super) fn init_supervisor() -> io::Result<()> {
    job::init()
}

/// No `RLIMIT_NOFILE` on Windows.
pub(super) fn raise_fd_limit() {}

/// Per-service `user` is a Unix setting (a Windows service's account is chosen at install).
#[allow(clippy::unnecessary_wraps, reason = "the same signature as on Unix")]
pub(super) fn lookup_account(_name: &str) -> io::Result<Option<super::Account>> {
    Ok(None)
}

#[allow(clippy::unnecessary_wraps, reason = "the same signature as on Unix")]
pub(super) fn lookup_group(_name: &str) -> io::Result<Option<u32>> {
    Ok(None)
}

pub(super) fn resource_supported(_resource: super::Resource) -> bool {
    false
}

/// The job object is the exact tree on Windows; there are no cgroups.
pub(super) fn tracking() -> super::Tracking {
    super::Tracking::Job
}

pub(super) fn service_of_pid(_pid: u32, _instance: &str) -> Option<String> {
    None
}

pub(super) fn signal_name(_num: i32) -> Option<&'static str> {
    None
}

/// Always 0 on Windows: every child runs in a job with kill-on-close, which the kernel
/// closes when warden exits for whatever reason (even a crash or `TerminateProcess`), so
/// no process of a previous warden can be left over.
pub(super) fn kill_leftovers(_records: &[GroupRecord], _marker: &str, _scan: bool) -> usize {
    0
}

/// Nothing is kept between two runs of a service on Windows.
pub(super) fn release_cgroups() {}

/// Terminate every job still open; returns how many processes were in them.
pub(super) fn kill_all_descendants() -> usize {
    job::kill_all(TERMINATED_EXIT_CODE)
}

/// Wait until every job still open is empty.
pub(super) async fn wait_no_children(timeout: Duration) -> bool {
    job::wait_all_empty(timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_and_pipe_are_send() {
        fn is_send<T: Send>() {}
        is_send::<Child>();
        is_send::<OutputPipe>();
    }
}
