//! Reading the files a config names (the config itself, `env_file`, `api_token_file`): only
//! regular files, and only up to a size cap, so that a FIFO never hangs a load and
//! `/dev/zero` never fills the memory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum FileProblem {
    #[error("no such file")]
    NotFound,
    #[error("{0}")]
    Io(#[source] io::Error),
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is larger than {0} bytes")]
    TooBig(u64),
    #[error("it is not UTF-8 text")]
    NotUtf8,
}

impl From<io::Error> for FileProblem {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            FileProblem::NotFound
        } else {
            FileProblem::Io(e)
        }
    }
}

/// The whole content of the regular file at `path` (symlinks followed), if it holds at most
/// `cap` bytes.
pub(super) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, FileProblem> {
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(FileProblem::NotRegular(kind(meta.file_type())));
    }
    let mut data = Vec::with_capacity(meta.len().min(cap) as usize);
    file.take(cap.saturating_add(1)).read_to_end(&mut data)?;
    if data.len() as u64 > cap {
        return Err(FileProblem::TooBig(cap));
    }
    Ok(data)
}

/// [`read_capped`] as UTF-8 text.
pub(super) fn read_capped_text(path: &Path, cap: u64) -> Result<String, FileProblem> {
    String::from_utf8(read_capped(path, cap)?).map_err(|_| FileProblem::NotUtf8)
}

/// Open for reading without blocking: opening a FIFO that has no writer would wait forever.
/// (Reads of a regular file ignore `O_NONBLOCK`.)
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).open(path)
}

/// "a directory", "a FIFO", ... for a file that is not a regular file.
fn kind(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}
