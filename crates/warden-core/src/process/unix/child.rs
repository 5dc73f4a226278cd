//! [`Child`]: a spawned process and its process group; what it is, its output, its exit.
//! Signalling and killing its tree are in `tree.rs`.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use super::follow::Followed;
use super::pipe::OutputPipe;
use super::reaper::{SUBREAPER, wait_until};
use crate::process::{ExitStatus, GroupRecord, MainRecord};

/// `WARDEN_INSTANCE` and `WARDEN_SERVICE` as given in the spawn environment: how an orphan that
/// escaped the process group (a double-forked `setsid` daemon) is still known as this service's.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct ServiceTag {
    pub(super) instance: Vec<u8>,
    pub(super) service: Vec<u8>,
}

impl fmt::Debug for ServiceTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTag")
            .field("instance", &String::from_utf8_lossy(&self.instance))
            .field("service", &String::from_utf8_lossy(&self.service))
            .finish()
    }
}

/// A child process and its process group (its own session too: `setsid`). Once its launcher
/// daemonized, the main process is the followed one ([`Child::follow`]), and the tree is both.
#[derive(Debug)]
pub struct Child {
    /// The launcher's pid (= its process group id).
    pub(super) pid: u32,
    pub(super) start_time: u64,
    pub(super) status: watch::Receiver<Option<ExitStatus>>,
    pub(super) stdout: Option<OutputPipe>,
    pub(super) stderr: Option<OutputPipe>,
    #[cfg_attr(
        not(target_os = "linux"),
        allow(dead_code, reason = "orphans are matched through /proc")
    )]
    pub(super) tag: Option<ServiceTag>,
    /// Warnings about the confinement when there is no cgroup to carry them.
    pub(super) notes: Vec<String>,
    /// The service's own cgroup (Linux, cgroup mode): the exact tree; removed on drop.
    #[cfg(target_os = "linux")]
    pub(super) cgroup: Option<super::cgroup::Cgroup>,
    /// The main process when it is no longer the launcher (`pid_file`, or adopted).
    pub(super) followed: Option<Followed>,
}

impl Child {
    /// The pid of the main process: the launcher (= its process group id), or the process
    /// followed since it daemonized.
    pub fn pid(&self) -> u32 {
        self.followed.as_ref().map_or(self.pid, |f| f.pid)
    }

    /// Its start time in the OS's unit, for [`GroupRecord`]: on Linux field 22 of
    /// `/proc/PID/stat` (clock ticks since boot), read right after the fork; 0 elsewhere.
    pub fn start_time(&self) -> u64 {
        self.start_time
    }

    pub fn group_record(&self, service: &str) -> GroupRecord {
        GroupRecord {
            service: service.to_owned(),
            pgid: self.pid,
            start_time: self.start_time(),
            main: self.followed.as_ref().map(|f| MainRecord {
                pid: f.pid,
                start_time: f.start_time,
            }),
        }
    }

    /// A tree in a cgroup of its own needs no record: the next warden ends what a killed
    /// one left through the instance's cgroups (a process leaves its cgroup only with
    /// privileges). That saves a file (an inode on the first start) and two writes per run.
    pub fn needs_record(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.cgroup.is_none();
        #[cfg(not(target_os = "linux"))]
        true
    }

    pub fn take_stdout(&mut self) -> Option<OutputPipe> {
        self.stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<OutputPipe> {
        self.stderr.take()
    }

    /// Wait for the main process to exit. Cancel-safe; after the exit it returns the same
    /// status again at once.
    pub async fn wait(&mut self) -> ExitStatus {
        let status = match &mut self.followed {
            Some(f) => &mut f.status,
            None => &mut self.status,
        };
        if let Ok(status) = status.wait_for(Option::is_some).await
            && let Some(status) = *status
        {
            return status;
        }
        // The reaper drops a sender only after giving it a status: unreachable, but never
        // invent a status.
        std::future::pending().await
    }

    /// Why the service's hard limits (`memory_limit`, `cpu_max`) are not all applied, or
    /// why it runs without its own cgroup: warnings for the service's events.
    pub fn confinement_notes(&self) -> Vec<String> {
        #[cfg(target_os = "linux")]
        if let Some(cg) = &self.cgroup {
            return cg.notes.clone();
        }
        self.notes.clone()
    }

    /// Has the main process exited (and been reaped)?
    pub fn exit_status(&self) -> Option<ExitStatus> {
        match &self.followed {
            Some(f) => *f.status.borrow(),
            None => self.launcher_status(),
        }
    }

    /// Has the launcher (the process warden spawned) exited and been reaped?
    pub(super) fn launcher_status(&self) -> Option<ExitStatus> {
        *self.status.borrow()
    }

    /// Wait until no process of this child's tree is left, at most `timeout`. `true` if
    /// none is left. Re-checks after every reap (see the module docs for non-Linux).
    pub async fn wait_tree_gone(&mut self, timeout: Duration) -> bool {
        let deadline = crate::util::deadline_in(timeout);
        // No tree is gone while its launcher runs: wait for the launcher's own status first.
        // Only then on every reap (any child's): 1,000 services stopping at once would
        // otherwise wake 1,000 waiters per reap, and the last stop signals would queue
        // behind those wake-ups.
        if self.launcher_status().is_none() {
            let mut status = self.status.clone();
            let reaped = status.wait_for(Option::is_some);
            if tokio::time::timeout_at(deadline, reaped).await.is_err() {
                return self.tree_gone();
            }
        }
        wait_until(deadline, SUBREAPER.load(Ordering::Relaxed), || {
            self.tree_gone()
        })
        .await
    }
}
