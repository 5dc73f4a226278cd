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

/// Reads what the pipe holds *now*: one `read(2)` first, whatever the reactor has seen so
/// far, and only when that finds nothing the reactor's readiness (which arms the wake-up).
/// The reactor learns of a write only at its next turn; a reader that polls two pipes one
/// after the other (the log pump) would otherwise find the second one "empty" while it holds
/// lines written before the first was read, and show them a round late. The descriptor is
/// non-blocking, so the extra call costs one `EAGAIN` when the pipe is empty.
impl AsyncRead for OutputPipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        use std::os::fd::AsRawFd;
        // SAFETY: `read` writes at most `unfilled.len()` bytes into `unfilled`, and exactly
        // the `n` it returns are marked initialised and filled; nothing is de-initialised.
        let n = unsafe {
            let unfilled = buf.unfilled_mut();
            libc::read(
                self.inner.as_raw_fd(),
                unfilled.as_mut_ptr().cast(),
                unfilled.len(),
            )
        };
        if let Ok(n) = usize::try_from(n) {
            // SAFETY: the kernel initialised these `n` bytes.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            return Poll::Ready(Ok(()));
        }
        let e = io::Error::last_os_error();
        if !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}
