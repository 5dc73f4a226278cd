//! The receiving end of the systemd notify protocol for one service: a Unix datagram socket
//! whose path the child gets as `NOTIFY_SOCKET`. On Linux each datagram carries the sender's
//! credentials (`SO_PASSCRED`), so that a message from a process outside the service's tree
//! is told apart and ignored; descriptors sent along (`FDSTORE`) are closed at once.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use tokio::io::Interest;
use tokio::net::UnixDatagram;

/// The largest notify message read (systemd's own limit is about as large).
const MAX_MESSAGE: usize = 4096;

/// A bound notify socket; the file is removed on drop.
#[derive(Debug)]
pub struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Bind at `path` (a stale file there is replaced). Must run inside a tokio runtime.
    pub fn bind(path: &Path) -> io::Result<NotifySocket> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let sock = UnixDatagram::bind(path)?;
        #[cfg(target_os = "linux")]
        {
            let on: libc::c_int = 1;
            // SAFETY: a valid fd and a c_int option value of the right size.
            let rc = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_PASSCRED,
                    (&raw const on).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(NotifySocket {
            sock,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next datagram and the sender's pid (`None` where the OS does not say: macOS,
    /// whose socket is protected by the state dir's 0700 alone).
    pub async fn recv(&self) -> io::Result<(Vec<u8>, Option<u32>)> {
        let fd = self.sock.as_raw_fd();
        self.sock
            .async_io(Interest::READABLE, || recv_with_creds(fd))
            .await
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(target_os = "linux")]
fn recv_with_creds(fd: libc::c_int) -> io::Result<(Vec<u8>, Option<u32>)> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    // Room for the credentials and a few descriptors.
    let mut control = [0u64; 32];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty header; the pointers set below outlive
    // the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: fd is a socket; msg points to valid buffers.
    let n = unsafe {
        libc::recvmsg(
            fd,
            &raw mut msg,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut pid = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel filled, within
    // msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                let cred: libc::ucred = std::ptr::read_unaligned(data.cast());
                pid = u32::try_from(cred.pid).ok();
            } else if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let size = std::mem::size_of::<libc::c_int>();
                for i in 0..len / size {
                    let mut raw = [0u8; 4];
                    std::ptr::copy_nonoverlapping(data.add(i * size), raw.as_mut_ptr(), size);
                    libc::close(libc::c_int::from_ne_bytes(raw));
                }
            }
            c = libc::CMSG_NXTHDR(&raw const msg, c);
        }
    }
    buf.truncate(n as usize);
    Ok((buf, pid))
}

#[cfg(not(target_os = "linux"))]
fn recv_with_creds(fd: libc::c_int) -> io::Result<(Vec<u8>, Option<u32>)> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    // SAFETY: fd is a socket; buf is valid for its length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok((buf, None))
}

/// Is `pid` the process `root`, in its process group, or one of its descendants? (Linux:
/// `/proc`; elsewhere the sender is not known and this is not called.)
#[cfg(target_os = "linux")]
pub(crate) fn in_tree(pid: u32, root: u32) -> bool {
    let mut cur = pid;
    for _ in 0..4096 {
        if cur == root {
            return true;
        }
        let Some(p) = super::procfs::stat(cur) else {
            return false;
        };
        if p.pgrp == root {
            return true;
        }
        if p.ppid <= 1 {
            return false;
        }
        cur = p.ppid;
    }
    false
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn in_tree(_pid: u32, _root: u32) -> bool {
    true
}
