//! [`DirWatch`]: wake up when the entries of a directory change, so that a `pid_file` is read
//! again as soon as its daemon writes it. Linux: inotify (event-driven). Elsewhere, or when
//! the directory cannot be watched: a re-check after a backoff (5 ms doubling up to 200 ms),
//! as the tree waits do without a subreaper.

use std::path::Path;
use std::time::Duration;

/// The first re-check without inotify.
const RECHECK_FIRST: Duration = Duration::from_millis(5);
/// The longest time between two re-checks without inotify.
const RECHECK_MAX: Duration = Duration::from_millis(200);

/// Watches one directory for entries created, renamed into it, written or removed.
#[derive(Debug)]
pub struct DirWatch {
    #[cfg(target_os = "linux")]
    inotify: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    backoff: Duration,
}

impl DirWatch {
    /// Watch `dir`. Never fails: without inotify it falls back to re-checks. Create it before
    /// reading what it guards, so that no change between the read and the wait is missed.
    /// Must be called from within the tokio runtime.
    pub fn new(dir: &Path) -> DirWatch {
        DirWatch {
            #[cfg(target_os = "linux")]
            inotify: inotify(dir).ok(),
            #[cfg(not(target_os = "linux"))]
            backoff: {
                let _ = dir;
                RECHECK_FIRST
            },
            #[cfg(target_os = "linux")]
            backoff: RECHECK_FIRST,
        }
    }

    /// Wait for the next change (or the next re-check).
    pub async fn changed(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.inotify {
            if drain(fd).await.is_ok() {
                return;
            }
            self.inotify = None;
        }
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(RECHECK_MAX);
    }
}

#[cfg(target_os = "linux")]
fn inotify(dir: &Path) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    use std::ffi::CString;
    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh and owned only here.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mask = libc::IN_CREATE
        | libc::IN_MOVED_TO
        | libc::IN_CLOSE_WRITE
        | libc::IN_MODIFY
        | libc::IN_DELETE
        | libc::IN_ATTRIB;
    // SAFETY: a valid descriptor and NUL-terminated path.
    if unsafe { libc::inotify_add_watch(raw, path.as_ptr(), mask) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is owned by the AsyncFd for its whole life.
    Ok(unsafe { tokio::io::unix::AsyncFd::register(fd) }?)
}

/// Wait until inotify has events, then read them all (what changed does not matter).
#[cfg(target_os = "linux")]
async fn drain(fd: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        let mut guard = fd.readable().await?;
        let mut buf = [0u8; 4096];
        let read = guard.try_io(|inner| {
            // SAFETY: a valid descriptor and buffer.
            let n = unsafe { libc::read(inner.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n)
            }
        });
        match read {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
}
