//! warden's own files in the state dir: the single-instance lock, the records of the process
//! groups it started (so the next warden can end what a killed one left behind), and the
//! services stopped by hand. Every file is written atomically (a temporary file, then a
//! rename).
//!
//! warden often runs as root, so none of these files may be a trap planted by another user:
//! the state dir is created 0700 and refused when another user can write it (unless it is
//! sticky and owned by warden's user or root, as OpenSSH's `StrictModes` does); every file
//! in it is opened without following symlinks; temporary files are created exclusively.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub mod layout;
pub mod pidfile;

use self::layout::Layout;
use crate::process::GroupRecord;
use crate::util::open_nofollow;

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
    /// A directory another user can write: they could plant symlinks or files in it.
    #[error(
        "{} is {why}; another user could plant files or symlinks in it (make it writable by its owner only: chmod go-w)",
        path.display()
    )]
    Unsafe { path: PathBuf, why: String },
}

/// The largest state file read back (a group record, the hand-stopped list).
const MAX_STATE_FILE: u64 = 1 << 20;

#[cfg(unix)]
const NONBLOCK: i32 = libc::O_NONBLOCK;
#[cfg(not(unix))]
const NONBLOCK: i32 = 0;

/// Create `dir` and its missing parents (new ones with `mode` on Unix: 0700 for the state
/// dir, 0750 for log dirs), then make sure that no other user can write it: it must be owned
/// by warden's user or root, and neither it nor any of its ancestors may be writable by group
/// or others unless sticky (like `/tmp`). (An ancestor's owner is not checked: in a container
/// `/` may belong to an unmapped user, and whoever owns a parent of the state dir can edit
/// the config next to it anyway.) Symlinks on the way are followed: they were written by
/// whoever wrote the config, and what they point to is what gets checked.
pub fn secure_dir(dir: &Path, mode: u32) -> Result<(), StateError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .map_err(io_err("cannot create", dir))?;
        check_dir_tree(dir)
    }
    #[cfg(not(unix))]
    {
        // Windows: the folders' ACLs decide (set by `warden install`); nothing to check here.
        let _ = mode;
        fs::create_dir_all(dir).map_err(io_err("cannot create", dir))
    }
}

/// The checks of [`secure_dir`] without creating anything, for `warden check`: a dir that
/// does not exist yet is judged by its nearest existing ancestor (whose owner is not
/// checked: warden will create the rest).
pub fn check_dir_tree(dir: &Path) -> Result<(), StateError> {
    #[cfg(unix)]
    {
        let mut first = true;
        let mut existing = dir;
        while fs::metadata(existing).is_err() {
            first = false;
            match existing.parent() {
                Some(p) if !p.as_os_str().is_empty() => existing = p,
                _ => return Ok(()),
            }
        }
        let real = fs::canonicalize(existing).map_err(io_err("cannot resolve", existing))?;
        for (i, d) in real.ancestors().enumerate() {
            check_dir(d, first && i == 0)?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// One directory: owned by us or root (if `check_owner`), and not writable by group or
/// others unless sticky.
#[cfg(unix)]
fn check_dir(d: &Path, check_owner: bool) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(d).map_err(io_err("cannot inspect", d))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let unsafe_dir = |why: String| StateError::Unsafe {
        path: d.to_path_buf(),
        why,
    };
    if check_owner && meta.uid() != me && meta.uid() != 0 {
        return Err(unsafe_dir(format!(
            "owned by uid {}, neither warden's ({me}) nor root",
            meta.uid()
        )));
    }
    let m = meta.mode();
    if m & 0o022 != 0 && m & 0o1000 == 0 {
        let who = if m & 0o002 != 0 {
            "others"
        } else {
            "its group"
        };
        return Err(unsafe_dir(format!(
            "writable by {who} (mode {:o}) and not sticky",
            m & 0o7777
        )));
    }
    Ok(())
}

/// Open warden's own log (`<state_dir>/warden.log`, written by `warden up -d`) for
/// appending: created 0600 (an existing one is narrowed to 0600, it may quote the config),
/// never through a symlink.
pub fn open_private_log(path: &Path) -> Result<File, StateError> {
    let mut opts = OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = open_nofollow(&mut opts, path, NONBLOCK).map_err(io_err("cannot open", path))?;
    let meta = file.metadata().map_err(io_err("cannot inspect", path))?;
    if !meta.is_file() {
        let source = io::Error::other("it is not a regular file");
        return Err(io_err("cannot use", path)(source));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(io_err("cannot restrict", path))?;
        }
    }
    Ok(file)
}

/// The content of a state file, if it is a regular file (not a symlink, FIFO or device)
/// of at most [`MAX_STATE_FILE`] bytes.
fn read_state_file(path: &Path) -> io::Result<Vec<u8>> {
    let file = open_nofollow(OpenOptions::new().read(true), path, NONBLOCK)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut data = Vec::new();
    file.take(MAX_STATE_FILE + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_STATE_FILE {
        return Err(io::Error::other("too large"));
    }
    Ok(data)
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

/// The length of a group record on disk (see [`StateDir::save_group`]).
const RECORD_LEN: usize = 512;

/// Write `data` over the start of `path` (created 0644 if missing, never through a symlink)
/// in one `write`, and cut the file there.
fn overwrite(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o644);
    }
    let mut f = open_nofollow(&mut opts, path, 0)?;
    f.write_all(data)?;
    // A same-length file is the rule (every record is padded): no truncate to journal.
    let len = data.len() as u64;
    if f.metadata()?.len() != len {
        f.set_len(len)?;
    }
    Ok(())
}

/// Write a sibling temporary file (mode 0600 if `private`), flush it to disk if `durable`,
/// and rename it over `path` (a rename replaces a symlink, it never writes through one).
///
/// The temporary file is created exclusively and without following symlinks
/// (`O_CREAT | O_EXCL | O_NOFOLLOW`): a file or link planted under its name makes the write
/// fail instead of redirecting it. A leftover of a crashed warden is removed once.
fn write_replace(path: &Path, data: &[u8], private: bool, durable: bool) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{seq}", std::process::id()));
    let create = || {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if private { 0o600 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = private;
        open_nofollow(&mut opts, &tmp, 0)
    };
    let mut created = false;
    let result = (|| {
        let mut f = match create() {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Not ours to write through: remove the name itself (never a link's target).
                fs::remove_file(&tmp)?;
                create()?
            }
            other => other?,
        };
        created = true;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() && created {
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
    /// Create the dir if needed (0700) and take the single-instance lock. A second warden
    /// on the same dir gets [`StateError::AlreadyRunning`] with the first one's pid; a dir
    /// that another user can write gets [`StateError::Unsafe`].
    pub fn lock(dir: &Path) -> Result<StateDir, StateError> {
        secure_dir(dir, 0o700)?;
        let path = Layout::new(dir).lock();
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        // Non-blocking: a FIFO planted under the name must not block the open.
        let mut file = open_nofollow(&mut opts, &path, NONBLOCK)
            .map_err(io_err("cannot open lock file", &path))?;
        if !file
            .metadata()
            .map_err(io_err("cannot inspect", &path))?
            .is_file()
        {
            let source = io::Error::other("it is not a regular file");
            return Err(io_err("cannot use lock file", &path)(source));
        }
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
        secure_dir(&run, 0o700)?;
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

    /// Remember that `record`'s group runs, replacing the previous record whole.
    ///
    /// Not flushed to disk: the record guards against a killed warden, whose writes the page
    /// cache keeps; an fsync on every start would cost more than the start itself. Written in
    /// place, padded to [`RECORD_LEN`] bytes by one `write` at offset 0, which a killed
    /// warden cannot tear: a new file and a rename per start made ext4 allocate an inode
    /// each time, the largest cost of starting 1,000 services. A record too long for the
    /// padding (not seen: names are bounded) is written to a new file and renamed.
    pub fn save_group(&self, record: &GroupRecord) -> io::Result<()> {
        let mut data = serde_json::to_vec(record).map_err(io::Error::other)?;
        let path = self.record_path(&record.service);
        if data.len() >= RECORD_LEN {
            return write_replace(&path, &data, false, false);
        }
        data.resize(RECORD_LEN - 1, b' ');
        data.push(b'\n');
        overwrite(&path, &data)
    }

    /// Forget the group of `service` (it ended): its record becomes blank, which no reader
    /// takes for a record; the file stays for the next start.
    pub fn clear_group(&self, service: &str) -> io::Result<()> {
        let path = self.record_path(service);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            _ => overwrite(&path, &[b' '; RECORD_LEN]),
        }
    }

    /// The groups recorded by a previous warden (readable records only).
    pub fn recorded_groups(&self) -> Vec<GroupRecord> {
        let Ok(entries) = fs::read_dir(Layout::new(&self.dir).run_dir()) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| read_state_file(&e.path()).ok())
            .filter_map(|data| serde_json::from_slice(&data).ok())
            .collect()
    }

    /// Say that this warden stopped and reaped every process it started: the next one need
    /// not read every process's environment for leftovers.
    pub fn mark_clean_exit(&self) -> io::Result<()> {
        write_replace(&Layout::new(&self.dir).clean_exit(), b"", false, false)
    }

    /// Whether the previous warden on this dir ended cleanly; the mark is gone afterwards
    /// (this warden may not end cleanly).
    pub fn take_clean_exit(&self) -> bool {
        fs::remove_file(Layout::new(&self.dir).clean_exit()).is_ok()
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
        self.hand_stopped_since()
            .into_iter()
            .map(|h| h.name)
            .collect()
    }

    /// The services stopped by hand, each with when (`None` in a file of an older warden,
    /// which kept only the names).
    pub fn hand_stopped_since(&self) -> Vec<HandStopped> {
        let entries: Vec<StoppedEntry> = read_state_file(&Layout::new(&self.dir).hand_stopped())
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default();
        entries
            .into_iter()
            .map(|e| match e {
                StoppedEntry::Name(name) => HandStopped { name, since: None },
                StoppedEntry::Since(h) => h,
            })
            .collect()
    }

    /// Record `names` as the services stopped by hand: one already recorded keeps its time,
    /// a new one is stamped now.
    pub fn save_hand_stopped(&self, names: &[String]) -> io::Result<()> {
        // By name, not a search per name: `stop --all` of 1,000 services saves 1,000 times.
        let mut known: std::collections::HashMap<String, Option<String>> = self
            .hand_stopped_since()
            .into_iter()
            .map(|h| (h.name, h.since))
            .collect();
        let now = crate::util::rfc3339_ms(std::time::SystemTime::now());
        let entries: Vec<HandStopped> = names
            .iter()
            .map(|name| HandStopped {
                name: name.clone(),
                since: known.remove(name).unwrap_or_else(|| Some(now.clone())),
            })
            .collect();
        let data = serde_json::to_vec(&entries).map_err(io::Error::other)?;
        write_atomic(&Layout::new(&self.dir).hand_stopped(), &data)
    }
}

/// A service stopped by hand, as `stopped.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HandStopped {
    pub name: String,
    /// RFC 3339 UTC with milliseconds.
    #[serde(default)]
    pub since: Option<String>,
}

/// One entry of `stopped.json`: a bare name (older wardens) or a name with its time.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum StoppedEntry {
    Name(String),
    Since(HandStopped),
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
            main: Some(crate::process::MainRecord {
                pid: 43,
                start_time: 8,
            }),
        };
        st.save_group(&rec).expect("save");
        assert_eq!(st.recorded_groups(), vec![rec.clone()]);
        // A shorter record replaces a longer one whole.
        let short = GroupRecord {
            main: None,
            ..rec.clone()
        };
        st.save_group(&short).expect("save");
        assert_eq!(st.recorded_groups(), vec![short]);
        st.clear_group("api").expect("clear");
        st.clear_group("api").expect("clear twice is fine");
        assert!(st.recorded_groups().is_empty());
        st.clear_group("never-saved")
            .expect("clear without a record");
        st.save_group(&rec).expect("save after a clear");
        assert_eq!(st.recorded_groups(), vec![rec]);
    }

    #[test]
    fn hand_stopped_keeps_each_time_and_reads_the_old_list_of_names() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let st = StateDir::lock(tmp.path()).expect("lock");
        // The file of an older warden: names only.
        fs::write(tmp.path().join(layout::HAND_STOPPED), br#"["old"]"#).expect("write");
        assert_eq!(st.hand_stopped(), ["old"]);
        assert_eq!(st.hand_stopped_since()[0].since, None);
        st.save_hand_stopped(&["old".into(), "api".into()])
            .expect("save");
        let first = st.hand_stopped_since();
        assert_eq!(first[0].since, None, "an old entry keeps having no time");
        let api_at = first[1].since.clone().expect("a new entry is stamped");
        assert!(api_at.ends_with('Z') && api_at.len() == 24, "{api_at}");
        st.save_hand_stopped(&["api".into(), "db".into()])
            .expect("save");
        let second = st.hand_stopped_since();
        assert_eq!(second[0].name, "api");
        assert_eq!(second[0].since.as_deref(), Some(api_at.as_str()), "kept");
        assert_eq!(second[1].name, "db");
        assert_eq!(st.hand_stopped(), ["api", "db"]);
        st.save_hand_stopped(&[]).expect("forget");
        assert!(st.hand_stopped().is_empty());
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
