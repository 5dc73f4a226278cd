//! One log file: appends whole lines, rotates by size (gzip in a background thread), and
//! survives failed writes with a bounded buffer and a dropped-bytes marker.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::capture::Reporter;
use super::leftovers::{self, TEMP_MARK};
use super::scan;

/// Bytes held in memory while writes fail; beyond it output is dropped and counted.
pub(crate) const FAIL_BUFFER: usize = 4 << 20;
/// How often a failing file is retried when no new output arrives.
pub(crate) const RETRY_EVERY: Duration = Duration::from_millis(500);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind: keep going.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The settings of one file that a reload may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileSettings {
    /// 0: never rotate.
    pub max_size: u64,
    pub keep: u32,
    pub compress: bool,
    pub timestamps: bool,
}

/// A log file shared by the pumps that write into it.
pub(crate) struct Sink {
    path: PathBuf,
    state: Mutex<SinkState>,
    rotator: Arc<Rotator>,
    reporter: Reporter,
}

struct SinkState {
    file: Option<File>,
    size: u64,
    settings: FileSettings,
    failure: Option<Failure>,
    /// A retry timer is running: set when one starts, cleared when it ends, so a file
    /// that fails, recovers and fails again before the timer noticed still has one timer.
    retrying: bool,
    /// Bytes dropped since the file was opened (`/metrics`).
    dropped_total: u64,
}

struct Failure {
    error: String,
    /// The failure in a sentence, for `status`.
    what: String,
    pending: Vec<u8>,
    dropped: u64,
}

/// What a write asks the caller to do once the lock is released.
#[derive(Default)]
struct After {
    messages: Vec<String>,
    start_timer: bool,
}

impl Sink {
    /// Open `path` for appending (creating it and its directory, 0750; a directory that
    /// another user can write is refused, see [`crate::state::secure_dir`]). A file that
    /// cannot be opened does not stop the service: its output is held as after a failed
    /// write (up to [`FAIL_BUFFER`] bytes), the file is retried, and [`Sink::problem`] says
    /// why.
    pub(crate) fn open(path: &Path, settings: FileSettings, reporter: Reporter) -> Arc<Sink> {
        let (file, size, failure) = match open_checked(path) {
            Ok((size, f)) => (Some(f), size, None),
            Err(e) => (
                None,
                0,
                Some(Failure {
                    error: e.to_string(),
                    what: format!("cannot open {}: {e}", path.display()),
                    pending: Vec::new(),
                    dropped: 0,
                }),
            ),
        };
        let rotator = Arc::new(Rotator::new());
        let leftovers = rotator.adopt_leftovers(path);
        let failing = failure.is_some();
        let sink = Arc::new(Sink {
            path: path.to_path_buf(),
            state: Mutex::new(SinkState {
                file,
                size,
                settings,
                failure,
                retrying: failing,
                dropped_total: 0,
            }),
            rotator,
            reporter,
        });
        if failing {
            // Retried even if the program never writes, so that `status` clears.
            sink.start_retry_timer();
        }
        if settings.compress {
            for temp in leftovers {
                sink.rotator.enqueue(
                    Job {
                        temp,
                        base: sink.path.clone(),
                        keep: settings.keep,
                    },
                    &sink.reporter,
                );
            }
        }
        sink
    }

    /// Why this file is not being written right now (`cannot open PATH: ...`), if it is not.
    pub(crate) fn problem(&self) -> Option<String> {
        lock(&self.state).failure.as_ref().map(|f| f.what.clone())
    }

    /// Bytes of output dropped since this file was opened, because it could not be written.
    pub(crate) fn dropped_total(&self) -> u64 {
        lock(&self.state).dropped_total
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn set_settings(&self, settings: FileSettings) {
        lock(&self.state).settings = settings;
    }

    pub(crate) fn timestamps(&self) -> bool {
        lock(&self.state).settings.timestamps
    }

    /// Append `data` (whole lines, or the rest of one begun by an earlier failed write).
    pub(crate) fn write(self: &Arc<Self>, data: &[u8]) {
        let after = {
            let mut st = lock(&self.state);
            let mut after = After::default();
            self.write_locked(&mut st, data, &mut after);
            after
        };
        self.finish(&after);
    }

    /// The retry timer's tick: retry a failing file. True when it works (or was not
    /// failing): the timer ends then.
    fn retry(&self) -> bool {
        let mut st = lock(&self.state);
        let mut after = After::default();
        if st.failure.is_some() {
            self.recover(&mut st, &mut after);
        }
        let ok = st.failure.is_none();
        st.retrying = !ok;
        drop(st);
        self.report(&after);
        ok
    }

    fn report(&self, after: &After) {
        for m in &after.messages {
            (self.reporter)(m);
        }
    }

    fn finish(self: &Arc<Self>, after: &After) {
        self.report(after);
        if after.start_timer {
            self.start_retry_timer();
        }
    }

    /// The timer exists only while the file is failing: it ends once a retry works, or
    /// when the sink is dropped.
    fn start_retry_timer(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime: retry on new output only (and let a later failure try again).
            lock(&self.state).retrying = false;
            return;
        };
        let weak: Weak<Sink> = Arc::downgrade(self);
        rt.spawn(async move {
            loop {
                tokio::time::sleep(RETRY_EVERY).await;
                let Some(sink) = weak.upgrade() else { return };
                if sink.retry() {
                    return;
                }
            }
        });
    }

    fn write_locked(&self, st: &mut SinkState, data: &[u8], after: &mut After) {
        if st.failure.is_some() {
            self.recover(st, after);
        }
        if let Some(f) = &mut st.failure {
            let before = f.dropped;
            buffer(f, data);
            st.dropped_total += f.dropped.saturating_sub(before);
            // A file that could not even be opened gets its retry timer with its first line.
            after.start_timer = !st.retrying;
            st.retrying = true;
            return;
        }
        if let Err((written, err)) = self.write_rotating(st, data, after) {
            let mut f = Failure {
                error: err.to_string(),
                what: format!("cannot write {}: {err}", self.path.display()),
                pending: Vec::new(),
                dropped: 0,
            };
            buffer(&mut f, &data[written..]);
            st.dropped_total += f.dropped;
            after.messages.push(format!(
                "log write to {} failed: {}; buffering up to {FAIL_BUFFER} bytes",
                self.path.display(),
                f.error
            ));
            st.failure = Some(f);
            st.file = None;
            after.start_timer = !st.retrying;
            st.retrying = true;
        }
    }

    /// Reopen the file and write what was held back, then the marker.
    fn recover(&self, st: &mut SinkState, after: &mut After) {
        if st.file.is_none() {
            match open_checked(&self.path) {
                Ok((size, f)) => {
                    st.file = Some(f);
                    st.size = size;
                }
                Err(_) => return,
            }
        }
        let Some(f) = st.failure.take() else { return };
        let Failure {
            error,
            what,
            pending: mut out,
            dropped,
        } = f;
        let held = out.len();
        if dropped > 0 {
            if st.settings.timestamps {
                out.extend_from_slice(&timestamp(SystemTime::now()));
            }
            out.extend_from_slice(
                format!("[warden] dropped {dropped} bytes of output: {error}\n").as_bytes(),
            );
        }
        match self.write_rotating(st, &out, after) {
            Ok(()) => after.messages.push(format!(
                "log write to {} works again; dropped {dropped} bytes",
                self.path.display()
            )),
            Err((written, _)) => {
                // Still failing: hold the rest. The marker is rebuilt later unless it was
                // begun.
                let dropped = if written < held {
                    out.truncate(held);
                    dropped
                } else {
                    0
                };
                out.drain(..written);
                st.failure = Some(Failure {
                    error,
                    what,
                    pending: out,
                    dropped,
                });
                st.file = None;
            }
        }
    }

    /// Write `data` with size rotation; `Err((bytes written, error))` when a write fails.
    fn write_rotating(
        &self,
        st: &mut SinkState,
        mut data: &[u8],
        after: &mut After,
    ) -> Result<(), (usize, io::Error)> {
        let total = data.len();
        while !data.is_empty() {
            let max = st.settings.max_size;
            let room = max.saturating_sub(st.size);
            let cut = if max == 0 || data.len() as u64 <= room {
                data.len()
            } else if let Some(i) = scan::rfind_nl(&data[..room as usize]) {
                i + 1
            } else if st.size == 0 {
                // One line bigger than max_size: whole, alone in a fresh file.
                scan::find_nl(data).map_or(data.len(), |i| i + 1)
            } else {
                0
            };
            if cut > 0 {
                let Some(file) = st.file.as_mut() else {
                    return Err((total - data.len(), io::Error::other("log file is not open")));
                };
                if let Err((n, e)) = write_tracked(file, &data[..cut]) {
                    st.size += n as u64;
                    return Err((total - data.len() + n, e));
                }
                st.size += cut as u64;
                data = &data[cut..];
            }
            if !data.is_empty() {
                self.rotate(st, after)
                    .map_err(|e| (total - data.len(), e))?;
            }
        }
        Ok(())
    }

    /// Move the current file aside and open a fresh one. An error here is about the new
    /// file (a failed rename is reported and writing goes on in the old file).
    fn rotate(&self, st: &mut SinkState, after: &mut After) -> io::Result<()> {
        self.rotate_moved(st, after).map(|_| ())
    }

    /// [`Sink::rotate`], telling why the file was not moved aside, if it was not (its rename
    /// failed, and writing goes on in it).
    fn rotate_moved(&self, st: &mut SinkState, after: &mut After) -> io::Result<Option<String>> {
        st.file = None; // Windows cannot rename an open file.
        let keep = st.settings.keep.max(1);
        let moved = if st.settings.compress {
            let temp = self.rotator.temp_name(&self.path);
            fs::rename(&self.path, &temp).map(|()| Some(temp))
        } else {
            let _shift = lock(&self.rotator.shift);
            shift(&self.path, keep, "")
                .and_then(|()| fs::rename(&self.path, numbered(&self.path, 1, "")).map(|()| None))
        };
        let file = open_append(&self.path)?;
        st.size = file.metadata()?.len();
        st.file = Some(file);
        match moved {
            Ok(Some(temp)) => {
                let job = Job {
                    temp,
                    base: self.path.clone(),
                    keep,
                };
                let mut messages = self.rotator.enqueue(job, &self.reporter);
                after.messages.append(&mut messages);
            }
            Ok(None) => {}
            Err(e) => {
                let why = format!("log rotation of {} failed: {e}", self.path.display());
                after.messages.push(why.clone());
                // Go on in the same file rather than retrying on every line.
                st.size = 0;
                return Ok(Some(why));
            }
        }
        Ok(None)
    }

    /// Rotate now (`warden rotate`), as when the file reaches `max_size`: it becomes
    /// `FILE.1` (or `FILE.1.gz`, compressed in the background) and a fresh file is opened.
    /// Every write of whole lines holds the same lock, so the cut falls between two lines:
    /// nothing is split or lost. An empty file is left as it is, and so is one that cannot
    /// be written right now (its problem is the answer).
    pub(crate) fn rotate_now(self: &Arc<Self>) -> Rotation {
        let mut st = lock(&self.state);
        let mut after = After::default();
        let rotation = if let Some(f) = &st.failure {
            Rotation::Failed(f.what.clone())
        } else if st.size == 0 {
            Rotation::Empty
        } else {
            let ext = if st.settings.compress { ".gz" } else { "" };
            match self.rotate_moved(&mut st, &mut after) {
                Ok(None) => Rotation::Rotated(numbered(&self.path, 1, ext)),
                Ok(Some(why)) => Rotation::Failed(why),
                // The next line finds the file closed and is held while it is retried.
                Err(e) => Rotation::Failed(format!("cannot open {}: {e}", self.path.display())),
            }
        };
        drop(st);
        self.finish(&after);
        rotation
    }
}

/// What [`Sink::rotate_now`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// Moved aside to this file; a fresh one was opened.
    Rotated(PathBuf),
    /// Nothing to rotate: the file is empty.
    Empty,
    /// Not rotated, and why.
    Failed(String),
}

/// Hold `data` while failing: whole lines up to the budget, then count what is dropped.
fn buffer(f: &mut Failure, data: &[u8]) {
    if f.dropped == 0 {
        let room = FAIL_BUFFER.saturating_sub(f.pending.len());
        let take = if data.len() <= room {
            data.len()
        } else {
            scan::rfind_nl(&data[..room]).map_or(0, |i| i + 1)
        };
        f.pending.extend_from_slice(&data[..take]);
        f.dropped += (data.len() - take) as u64;
    } else {
        // Once something is dropped, drop the rest too: the marker follows what was kept.
        f.dropped += data.len() as u64;
    }
}

/// Write all of `buf`, telling how much was written before an error.
fn write_tracked(file: &mut File, buf: &[u8]) -> Result<(), (usize, io::Error)> {
    let mut done = 0;
    while done < buf.len() {
        match file.write(&buf[done..]) {
            Ok(0) => return Err((done, io::Error::from(io::ErrorKind::WriteZero))),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(())
}

/// Open a log file for appending: created 0640 (with its directory, 0750), never through a
/// symlink planted under its name.
/// [`open_append`] in a directory that is checked first; returns the file's size too.
fn open_checked(path: &Path) -> io::Result<(u64, File)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::state::secure_dir(dir, 0o750).map_err(io::Error::other)?;
    }
    let f = open_append(path)?;
    Ok((f.metadata()?.len(), f))
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut dirs = fs::DirBuilder::new();
    let mut opts = OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        dirs.mode(0o750);
        opts.mode(0o640);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        dirs.recursive(true).create(dir)?;
    }
    crate::util::open_nofollow(&mut opts, path, 0)
}

/// Create `path` for writing, exclusively and without following a symlink; a leftover file
/// of that name (a crash during compression) is removed first.
fn create_fresh(path: &Path) -> io::Result<File> {
    let create = || {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o640);
        }
        crate::util::open_nofollow(&mut opts, path, 0)
    };
    match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            create()
        }
        other => other,
    }
}

/// The RFC 3339 UTC time with milliseconds and a space: `2024-05-01T12:00:00.123Z `.
pub(crate) fn timestamp(at: SystemTime) -> [u8; 25] {
    let mut out = [b' '; 25];
    let mut cur = io::Cursor::new(&mut out[..24]);
    // The format is always 24 bytes for years 0000-9999; a later year is cut short.
    let _ = write!(cur, "{}", humantime::format_rfc3339_millis(at));
    out
}

/// `FILE.n` + `ext`.
fn numbered(base: &Path, n: u32, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{n}{ext}"));
    PathBuf::from(s)
}

/// Make room for a new `FILE.1<ext>`: delete `FILE.<keep><ext>`, shift the others up.
fn shift(base: &Path, keep: u32, ext: &str) -> io::Result<()> {
    ignore_missing(fs::remove_file(numbered(base, keep, ext)))?;
    for n in (1..keep).rev() {
        ignore_missing(fs::rename(
            numbered(base, n, ext),
            numbered(base, n + 1, ext),
        ))?;
    }
    Ok(())
}

fn ignore_missing(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// A rotated file waiting to be compressed into `base.1.gz`.
struct Job {
    temp: PathBuf,
    base: PathBuf,
    keep: u32,
}

/// Compresses rotated files off the pumps, one at a time and in order, in a thread that
/// exists only while there is work.
struct Rotator {
    queue: Mutex<RotQueue>,
    /// Held while numbered files are shifted, so numbering stays right.
    shift: Mutex<()>,
}

struct RotQueue {
    jobs: VecDeque<Job>,
    running: bool,
    next_temp: u64,
}

impl Rotator {
    fn new() -> Rotator {
        Rotator {
            queue: Mutex::new(RotQueue {
                jobs: VecDeque::new(),
                running: false,
                next_temp: 0,
            }),
            shift: Mutex::new(()),
        }
    }

    /// A name no file has: a sink opened again for the same path in this process (a
    /// service removed and added back) may find the temps of the earlier one's compressor.
    fn temp_name(&self, base: &Path) -> PathBuf {
        let mut q = lock(&self.queue);
        loop {
            let n = q.next_temp;
            q.next_temp += 1;
            let mut s = base.as_os_str().to_owned();
            s.push(format!("{TEMP_MARK}{n}"));
            let temp = PathBuf::from(s);
            if fs::symlink_metadata(&temp).is_err() {
                return temp;
            }
        }
    }

    /// Files left by an earlier run that stopped before compressing them, oldest first;
    /// half-written `.gz` files are removed (see [`leftovers`]).
    fn adopt_leftovers(&self, base: &Path) -> Vec<PathBuf> {
        let found = leftovers::take(base);
        lock(&self.queue).next_temp = found.last().map_or(0, |(n, _)| n + 1);
        found.into_iter().map(|(_, p)| p).collect()
    }

    /// Queue a job; start the worker if it is not running. Returns messages to report.
    fn enqueue(self: &Arc<Self>, job: Job, reporter: &Reporter) -> Vec<String> {
        let mut messages = Vec::new();
        let mut q = lock(&self.queue);
        let keep = job.keep as usize;
        q.jobs.push_back(job);
        // Jobs beyond `keep` would be shifted out anyway: skip compressing them.
        while q.jobs.len() > keep {
            if let Some(old) = q.jobs.pop_front() {
                let _ = fs::remove_file(&old.temp);
            }
        }
        if !q.running {
            q.running = true;
            let me = Arc::clone(self);
            let rep = Arc::clone(reporter);
            let spawned = std::thread::Builder::new()
                .name("warden-log-gzip".into())
                .spawn(move || me.work(&rep));
            if let Err(e) = spawned {
                q.running = false;
                messages.push(format!("cannot start the log compression thread: {e}"));
            }
        }
        messages
    }

    fn work(&self, reporter: &Reporter) {
        loop {
            let job = {
                let mut q = lock(&self.queue);
                let Some(job) = q.jobs.pop_front() else {
                    q.running = false;
                    return;
                };
                job
            };
            if let Err(e) = self.compress(&job) {
                reporter(&format!(
                    "log compression of {} failed: {e}; left as {}",
                    job.base.display(),
                    job.temp.display()
                ));
            }
        }
    }

    fn compress(&self, job: &Job) -> io::Result<()> {
        let mut gz_temp = job.temp.as_os_str().to_owned();
        gz_temp.push(".gz");
        let gz_temp = PathBuf::from(gz_temp);
        let result = (|| {
            let mut input =
                crate::util::open_nofollow(OpenOptions::new().read(true), &job.temp, 0)?;
            let out = BufWriter::with_capacity(256 << 10, create_fresh(&gz_temp)?);
            let mut enc = GzEncoder::new(out, Compression::fast());
            io::copy(&mut input, &mut enc)?;
            enc.finish()?
                .into_inner()
                .map_err(io::IntoInnerError::into_error)?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&gz_temp);
            return Err(e);
        }
        {
            let _shift = lock(&self.shift);
            shift(&job.base, job.keep.max(1), ".gz")?;
            fs::rename(&gz_temp, numbered(&job.base, 1, ".gz"))?;
        }
        fs::remove_file(&job.temp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_is_rfc3339_millis_and_a_space() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(&timestamp(at), b"2023-11-14T22:13:20.123Z ");
    }

    #[test]
    fn buffer_keeps_whole_lines_then_counts_drops() {
        let mut f = Failure {
            error: String::new(),
            what: String::new(),
            pending: vec![b'x'; FAIL_BUFFER - 5],
            dropped: 0,
        };
        buffer(&mut f, b"ab\ncd\n");
        assert_eq!(f.pending.len(), FAIL_BUFFER - 2);
        assert_eq!(f.dropped, 3);
        buffer(&mut f, b"e\n");
        assert_eq!(f.dropped, 5);
    }

    /// `/dev/full` fails every write (put in place of the open file); reopening fails while
    /// the path is a symlink (never followed), and works once a real file is back. The
    /// retry timer holds the only `Weak` of its sink, so `weak_count` counts timers.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_retry_timer_while_failing_and_none_after() {
        use std::time::Instant;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.log");
        let aside = dir.path().join("aside.log");
        // A symlink under the log's name: reopening fails until the real file is back.
        let break_path = || {
            fs::rename(&path, &aside).expect("move the log aside");
            std::os::unix::fs::symlink("/dev/null", &path).expect("symlink");
        };
        let mend_path = || fs::rename(&aside, &path).expect("put the log back");
        let fill_disk = |sink: &Sink| {
            lock(&sink.state).file = Some(open_append(Path::new("/dev/full")).expect("/dev/full"));
        };
        let settings = FileSettings {
            max_size: 0,
            keep: 1,
            compress: false,
            timestamps: false,
        };
        let sink = Sink::open(&path, settings, Arc::new(|_: &str| {}));
        assert_eq!(Arc::weak_count(&sink), 0, "no timer before a failure");

        break_path();
        fill_disk(&sink);
        sink.write(b"a\n");
        assert!(lock(&sink.state).failure.is_some());
        assert_eq!(Arc::weak_count(&sink), 1, "one timer while failing");
        // Recovered by new output, then failing again before the timer's next tick.
        mend_path();
        sink.write(b"b\n");
        assert!(lock(&sink.state).failure.is_none());
        break_path();
        fill_disk(&sink);
        sink.write(b"c\n");
        assert!(lock(&sink.state).failure.is_some());
        assert_eq!(Arc::weak_count(&sink), 1, "still one timer");

        // Recovered by the timer: the timer ends.
        mend_path();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Arc::weak_count(&sink) > 0 {
            assert!(Instant::now() < deadline, "the retry timer did not end");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(lock(&sink.state).failure.is_none());
        assert_eq!(fs::read(&path).expect("read"), b"a\nb\nc\n");
    }
}
