//! Following a daemon on Windows: a launcher that started a detached process and exited
//! names it in its `pid_file`; that process becomes the main one. The job already holds the
//! whole tree, so only the main process changes: its pid, its handle and its exit watch.

use std::io;
use std::os::windows::io::{FromRawHandle, OwnedHandle};

use windows_sys::Win32::System::Threading::{
    OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE,
};

use super::Child;
use super::spawn::creation_time;
use super::wait::ExitWatch;
use crate::process::Adoption;

impl Child {
    /// Make `pid` the main process: [`Child::pid`], [`Child::wait`] and
    /// [`Child::exit_status`] are about it from now on. Refused unless `pid` is in this
    /// child's job (so a stale pid file never makes warden act on a stranger).
    pub fn follow(&mut self, pid: u32) -> io::Result<()> {
        if pid == self.pid && self.exit_status().is_none() {
            return Ok(());
        }
        if !self.job.process_ids()?.contains(&pid) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("pid {pid} is not of this service's tree (not in its job)"),
            ));
        }
        // SAFETY: plain call; a non-null result is a handle we own.
        let raw = unsafe {
            OpenProcess(
                PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
                0,
                pid,
            )
        };
        if raw.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh handle that nothing else owns.
        let process = unsafe { OwnedHandle::from_raw_handle(raw) };
        let exit = ExitWatch::new(&process)?;
        // Samples find the job by the new main pid now; the old handle (which kept the old
        // pid from being reused) closes only after.
        self.job.set_main(pid);
        // The old wait goes before the handle it waits on.
        drop(std::mem::replace(&mut self.exit, exit));
        self.start_time = creation_time(&process);
        self.process = process;
        self.pid = pid;
        self.status = None;
        self.followed = true;
        Ok(())
    }

    /// The job holds the tree, but Windows does not say which process of it a launcher
    /// meant: without a `pid_file`, nothing is adopted.
    pub fn find_daemon(&self) -> Adoption {
        Adoption::Nothing
    }
}
