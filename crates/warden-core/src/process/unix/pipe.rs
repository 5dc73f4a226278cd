//! [`OutputPipe`]: the read end of a child's stdout or stderr.

use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// Pipe size asked for on Linux (the unprivileged maximum by default); failure is ignored.
#[cfg(target_os = "linux")]
const PIPE_SIZE: libc::c_int = 1 << 20;

/// The read end of a child's stdout or stderr pipe (non-blocking, driven by the tokio reactor
/// of the runtime that spawned the child).
#[derive(Debug)]
pub struct OutputPipe {
    inner: tokio::net::unix::pipe::Receiver,
}

impl OutputPipe {
    pub(super) fn new(fd: OwnedFd) -> io::Result<OutputPipe> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: fcntl on an fd we own. A refusal (over the per-user limit) is harmless.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        }
        // Checks that it is a pipe opened for reading, and makes it non-blocking.
        Ok(OutputPipe {
            inner: tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?,
        })
    }
}

impl AsyncRead for OutputPipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}
