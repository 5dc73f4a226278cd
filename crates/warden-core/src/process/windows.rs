//! Windows implementation of the process layer. (Skeleton: replaced by the real one.)

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};

use super::{ExitStatus, GroupRecord, Signal, SpawnError, SpawnSpec};

/// A child process and its process group.
pub struct Child {
    pid: u32,
}

impl Child {
    /// The pid of the main process (= its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its start time in the OS's unit, for [`GroupRecord`].
    pub fn start_time(&self) -> u64 {
        0
    }

    pub fn group_record(&self, service: &str) -> GroupRecord {
        GroupRecord {
            service: service.to_owned(),
            pgid: self.pid,
            start_time: self.start_time(),
        }
    }

    pub fn take_stdout(&mut self) -> Option<OutputPipe> {
        None
    }

    pub fn take_stderr(&mut self) -> Option<OutputPipe> {
        None
    }

    /// Send `sig` to the whole process group (and to adopted orphans of this service).
    pub fn signal(&self, _sig: Signal) -> io::Result<()> {
        Err(io::Error::other("skeleton"))
    }

    /// SIGKILL to the whole tree.
    pub fn kill_tree(&self) -> io::Result<()> {
        Err(io::Error::other("skeleton"))
    }

    /// Wait for the main process to exit. Cancel-safe; after the exit it returns the same
    /// status again at once.
    pub async fn wait(&mut self) -> ExitStatus {
        std::future::pending().await
    }

    /// Has the main process exited (and been reaped)?
    pub fn exit_status(&self) -> Option<ExitStatus> {
        None
    }

    /// Wait until no process of this child's tree is left, at most `timeout`. `true` if
    /// none is left.
    pub async fn wait_tree_gone(&mut self, _timeout: Duration) -> bool {
        false
    }
}

/// The read end of a child's stdout or stderr pipe.
pub struct OutputPipe {
    _p: (),
}

impl AsyncRead for OutputPipe {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

pub(super) fn spawn(_spec: &SpawnSpec) -> Result<Child, SpawnError> {
    Err(SpawnError::Other {
        program: String::new(),
        source: io::Error::other("skeleton"),
    })
}

pub(super) fn init_supervisor() -> io::Result<()> {
    Ok(())
}

pub(super) fn signal_name(_num: i32) -> Option<&'static str> {
    None
}

pub(super) fn kill_leftovers(_records: &[GroupRecord], _marker: &str) -> usize {
    0
}

pub(super) fn kill_all_descendants() -> usize {
    0
}

pub(super) async fn wait_no_children(_timeout: Duration) -> bool {
    true
}

impl Child {
    /// One graceful step of `stop_method`.
    pub fn request_stop(&self, _method: crate::config::StopMethod) -> io::Result<()> {
        Err(io::Error::other("skeleton"))
    }
}
