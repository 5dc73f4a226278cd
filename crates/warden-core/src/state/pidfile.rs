//! A service's `pid_file`, read under the same rules as warden's own state files: never
//! through a symlink, a regular file only (not a FIFO that would block), small, and owned by
//! warden's user (Unix; the service's own user once services can run as another one).

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::Path;

use crate::util::open_nofollow;

/// A pid file is a number and a newline; anything longer is not one.
const MAX_PID_FILE: u64 = 4096;

/// Why a pid file holds no usable pid; `Display` names the file and the cause.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("cannot read pid file {}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pid file {} is refused: {why}", path.display())]
    Refused {
        path: std::path::PathBuf,
        why: String,
    },
}

/// The pid in `path`: `Ok(None)` while there is no such file or it is still empty (being
/// written); an error for a symlink, a file that is not regular, is owned by another user,
/// or does not hold a pid.
pub fn read_pid_file(path: &Path) -> Result<Option<u32>, PidFileError> {
    let refused = |why: String| PidFileError::Refused {
        path: path.to_path_buf(),
        why,
    };
    let io_err = |source: io::Error| PidFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    let flags = libc::O_NONBLOCK;
    #[cfg(not(unix))]
    let flags = 0;
    let file = match open_nofollow(OpenOptions::new().read(true), path, flags) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(refused("it is not a regular file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(refused(format!(
                "owned by uid {}, not warden's ({me})",
                meta.uid()
            )));
        }
    }
    let mut text = String::new();
    file.take(MAX_PID_FILE + 1)
        .read_to_string(&mut text)
        .map_err(io_err)?;
    if text.len() as u64 > MAX_PID_FILE {
        return Err(refused("it is too large for a pid file".into()));
    }
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(pid) if pid > 1 => Ok(Some(pid)),
        _ => {
            let shown: String = text.chars().take(32).collect();
            Err(refused(format!("it does not hold a pid: {shown:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_with_a_newline_is_read_and_a_missing_or_empty_file_is_not_yet_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.pid");
        assert!(read_pid_file(&p).expect("missing").is_none());
        std::fs::write(&p, "").expect("write");
        assert!(read_pid_file(&p).expect("empty").is_none());
        std::fs::write(&p, "4242\n").expect("write");
        assert_eq!(read_pid_file(&p).expect("pid"), Some(4242));
    }

    #[test]
    fn garbage_and_init_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.pid");
        std::fs::write(&p, "nginx\n").expect("write");
        let e = read_pid_file(&p).expect_err("garbage").to_string();
        assert!(e.contains("does not hold a pid"), "{e}");
        std::fs::write(&p, "1\n").expect("write");
        assert!(read_pid_file(&p).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real.pid");
        std::fs::write(&real, "4242\n").expect("write");
        let link = dir.path().join("link.pid");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let e = read_pid_file(&link).expect_err("symlink").to_string();
        assert!(e.contains("link.pid"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("fifo.pid");
        let c = std::ffi::CString::new(p.to_str().expect("utf-8")).expect("cstring");
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_pid_file(&p).expect_err("fifo").to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
