//! [`OutputPipe`]: the read end of a child's stdout or stderr (or of both, when one pipe is
//! given as both handles), and how the pair of ends is made.

use std::ffi::OsStr;
use std::io;
use std::os::windows::io::{FromRawHandle, OwnedHandle};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeClient};
use windows_sys::Win32::Foundation::{ERROR_INVALID_PARAMETER, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_FLAG_FIRST_PIPE_INSTANCE, PIPE_ACCESS_OUTBOUND,
};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::GetCurrentProcessId;

use super::cmdline;

/// One instance per pipe name: nobody else can connect to a service's output pipe.
const PIPE_INSTANCES: u32 = 1;
/// The size the system is asked to reserve for each direction of an output pipe.
const PIPE_BUFFER_BYTES: u32 = 64 * 1024;
/// The default time-out for `WaitNamedPipe` (0: the system's 50 ms); nobody waits on it.
const PIPE_DEFAULT_TIMEOUT: u32 = 0;

/// The read end of a child's stdout or stderr pipe (a named pipe opened for overlapped I/O
/// on tokio's reactor). The end of the data (all the child's copies of the write end
/// closed) reads as end of file.
pub struct OutputPipe {
    pipe: NamedPipeClient,
}

impl AsyncRead for OutputPipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.pipe).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

/// A pipe for one output stream, or for both (the caller passes the child's end as
/// `hStdOutput` and `hStdError`): our end reads asynchronously (overlapped, on tokio's
/// reactor), the child's end is a plain synchronous handle, as programs expect of their
/// stdout. A named pipe with a unique name, one instance, local clients only.
pub(super) fn output_pipe() -> io::Result<(OutputPipe, OwnedHandle)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // SAFETY: plain call.
    let me = unsafe { GetCurrentProcessId() };
    let name = format!(
        r"\\.\pipe\warden-{me}-{}-{:016x}",
        COUNTER.fetch_add(1, Ordering::Relaxed),
        fastrand::u64(..)
    );
    let wide_name = cmdline::to_wide_nul(OsStr::new(&name))?;
    let create = |mode| {
        // SAFETY: a NUL-terminated name, no security attributes (not inheritable).
        unsafe {
            CreateNamedPipeW(
                wide_name.as_ptr(),
                PIPE_ACCESS_OUTBOUND | FILE_FLAG_FIRST_PIPE_INSTANCE,
                mode,
                PIPE_INSTANCES,
                PIPE_BUFFER_BYTES,
                PIPE_BUFFER_BYTES,
                PIPE_DEFAULT_TIMEOUT,
                std::ptr::null(),
            )
        }
    };
    let base = PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT;
    let mut h = create(base | PIPE_REJECT_REMOTE_CLIENTS);
    if h == INVALID_HANDLE_VALUE
        && io::Error::last_os_error().raw_os_error() == Some(ERROR_INVALID_PARAMETER as i32)
    {
        // A system that does not know the flag.
        h = create(base);
    }
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle that nothing else owns.
    let theirs = unsafe { OwnedHandle::from_raw_handle(h) };
    let pipe = ClientOptions::new().read(true).write(false).open(&name)?;
    Ok((OutputPipe { pipe }, theirs))
}
