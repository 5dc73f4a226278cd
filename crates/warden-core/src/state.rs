//! warden's own files in the state dir: the single-instance lock, the records of the process
//! groups it started (so the next warden can end what a killed one left behind), and the
//! services stopped by hand. Every file is written atomically (a temporary file, then a
//! rename).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

pub mod layout;

use self::layout::Layout;
use crate::process::GroupRecord;

/// An error about a state file, naming the path.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("warden is already running (pid {pid})")]
    AlreadyRunning { pid: String },
    #[error("{op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Write `data` to `path` atomically: a sibling temporary file, flushed to disk, renamed
/// over `path`.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    write_replace(path, data, false, true)
}

/// Write a file only its owner can read (mode 0600 on Unix, from its creation), atomically.
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    write_replace(path, data, true, true)
}

/// Write a sibling temporary file (mode 0600 if `private`), flush it to disk if `durable`,
/// and rename it over `path`.
fn write_replace(path: &Path, data: &[u8], private: bool, durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = opts.open(&tmp)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The state dir of one warden: held for warden's whole life.
pub struct StateDir {
    dir: PathBuf,
    // Holds the exclusive lock for as long as warden lives; std opens it close-on-exec, so
    // children never inherit it and a killed warden releases it at once.
    _lock: File,
}

impl StateDir {
    /// Create the dir if needed and take the single-instance lock. A second warden on the
    /// same dir gets [`StateError::AlreadyRunning`] with the first one's pid.
    pub fn lock(dir: &Path) -> Result<StateDir, StateError> {
        fs::create_dir_all(dir).map_err(io_err("cannot create state dir", dir))?;
        let path = Layout::new(dir).lock();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("cannot open lock file", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(StateError::AlreadyRunning {
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.into()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err("cannot lock", &path)(e)),
        }
        let write_pid = |f: &mut File| -> io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{}", std::process::id())?;
            f.flush()
        };
        write_pid(&mut file).map_err(io_err("cannot write", &path))?;
        let run = Layout::new(dir).run_dir();
        fs::create_dir_all(&run).map_err(io_err("cannot create", &run))?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
            _lock: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The marker every child carries as `WARDEN_INSTANCE`: derived from the state dir, so
    /// the next warden on the same dir recognizes the processes of a killed one.
    pub fn marker(&self) -> String {
        instance_marker(&self.dir)
    }

    fn record_path(&self, service: &str) -> PathBuf {
        Layout::new(&self.dir).group_record(service)
    }

    /// Remember that `record`'s group runs (atomically replacing the previous record).
    ///
    /// Not flushed to disk: the record guards against a killed warden, whose writes the page
    /// cache keeps; an fsync on every start would cost more than the start itself.
    pub fn save_group(&self, record: &GroupRecord) -> io::Result<()> {
        let data = serde_json::to_vec(record).map_err(io::Error::other)?;
        write_replace(&self.record_path(&record.service), &data, false, false)
    }

    /// Forget the group of `service` (it ended).
    pub fn clear_group(&self, service: &str) -> io::Result<()> {
        match fs::remove_file(self.record_path(service)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The groups recorded by a previous warden (readable records only).
    pub fn recorded_groups(&self) -> Vec<GroupRecord> {
        let Ok(entries) = fs::read_dir(Layout::new(&self.dir).run_dir()) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|data| serde_json::from_slice(&data).ok())
            .collect()
    }

    /// Forget every recorded group.
    pub fn clear_all_groups(&self) {
        if let Ok(entries) = fs::read_dir(Layout::new(&self.dir).run_dir()) {
            for e in entries.filter_map(Result::ok) {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// The services stopped by hand (they stay stopped across reloads and restarts of warden).
    pub fn hand_stopped(&self) -> Vec<String> {
        fs::read(Layout::new(&self.dir).hand_stopped())
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default()
    }

    pub fn save_hand_stopped(&self, names: &[String]) -> io::Result<()> {
        let data = serde_json::to_vec(names).map_err(io::Error::other)?;
        write_atomic(&Layout::new(&self.dir).hand_stopped(), &data)
    }
}

/// A short stable hex id of a path (FNV-1a of its text).
pub fn instance_marker(dir: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.to_string_lossy().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_first_pid() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = StateDir::lock(tmp.path()).expect("first lock");
        match StateDir::lock(tmp.path()) {
            Err(StateError::AlreadyRunning { pid }) => {
                assert_eq!(pid, std::process::id().to_string());
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("second lock succeeded"),
        }
        drop(first);
        StateDir::lock(tmp.path()).expect("lock again after release");
    }

    #[test]
    fn group_records_round_trip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let st = StateDir::lock(tmp.path()).expect("lock");
        let rec = GroupRecord {
            service: "api".into(),
            pgid: 42,
            start_time: 7,
        };
        st.save_group(&rec).expect("save");
        assert_eq!(st.recorded_groups(), vec![rec]);
        st.clear_group("api").expect("clear");
        st.clear_group("api").expect("clear twice is fine");
        assert!(st.recorded_groups().is_empty());
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("f.json");
        write_atomic(&p, b"long long content").expect("write");
        write_atomic(&p, b"short").expect("write");
        assert_eq!(fs::read(&p).expect("read"), b"short");
        assert_eq!(
            fs::read_dir(tmp.path()).expect("ls").count(),
            1,
            "no temp file left"
        );
    }
}
