//! The service's logs and the pump that feeds them.
//!
//! One task reads both pipes of a child (a joined child has one). A pipe is read in chunks
//! (512 bytes growing to 1 MiB while reads fill the buffer, down to twice the last read when
//! output slows down, so 512 bytes for a quiet stream); the last newline of each chunk is found and everything before it goes to the
//! file in one write, then to the in-memory tail in one copy. Per-line work happens only for
//! timestamps, for live subscribers, and while both streams are busy. A partial line stays
//! in the pump until its newline arrives (or EOF), so two streams sharing a file never mix
//! within a line. With `log.encoding`, each read is transcoded to UTF-8 before lines are
//! cut; the buffer sizes follow the raw bytes read.
//!
//! # Fairness between stdout and stderr
//!
//! The kernel keeps no order between two pipes: when the pump wakes, each holds what the
//! program wrote to it since the last read, and nothing says how those writes interleaved.
//! The pump works in *rounds*: it waits until either pipe has data, reads it, then at once
//! (before any work on the data) reads what the other holds at that moment without waiting;
//! the process layer's Unix pipe reads the pipe itself then, not the reactor's last word on
//! it, which may be a turn old. Lines of the two streams read in the same round are given
//! their sequence numbers one line of each in turn (starting with the stream read first),
//! and while both are busy both read chunks of the same size, so neither runs ahead of the
//! other by whole buffers. A program that alternates stdout and stderr is shown alternating,
//! up to the lines it writes between the two reads of a round (the end-to-end test
//! `alternating_streams_stay_interleaved_in_the_tail` bounds the longest run). A stream
//! that floods alone still reads up to 1 MiB at a time. For the exact order, a service sets
//! `stderr = "stdout"`: its child gets one pipe for both streams.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::Stream;
use super::encoding::{Decoder, decoder_for};
use super::scan;
use super::tail::{TAIL_BYTES, TAIL_LINES, Tail};
use super::writer::{FileSettings, Rotation, Sink, timestamp};
use super::{LogConfig, StderrTarget};

/// Called with a message to show on warden's own stderr (a write failed, writing works again).
pub type Reporter = Arc<dyn Fn(&str) + Send + Sync>;

/// One line of a service's output, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Increases by one for each line of this service, both streams together.
    pub seq: u64,
    pub stream: Stream,
    pub at: SystemTime,
    pub bytes: Vec<u8>,
}

/// The first read buffer of a pump, and the size it returns to when output slows down.
const READ_MIN: usize = 512;
/// Reads that fill the buffer double it up to this.
const READ_MAX: usize = 1 << 20;
/// Room kept in a read buffer past the read size, for the start of a line left over.
const SLACK: usize = 4096;
/// A pump yields its worker thread after delivering this many bytes (see `run_pumps`).
const YIELD_EVERY: usize = READ_MAX;
/// A buffer shrinks to the read size only when reads are smaller than this.
const SHRINK_BELOW: usize = 16 << 10;
/// A line longer than this is cut (with a report): memory must stay bounded.
const LINE_MAX: usize = 64 << 20;
/// Lines a slow subscriber may lag behind before it misses some.
const SUBSCRIBE_BUFFER: usize = 4096;

/// Where each stream goes, swapped whole by [`ServiceLogs::reconfigure`].
struct Routes {
    out: Arc<Sink>,
    err: Arc<Sink>,
}

impl Routes {
    fn sink(&self, stream: Stream) -> &Arc<Sink> {
        match stream {
            Stream::Out => &self.out,
            Stream::Err => &self.err,
        }
    }
}

/// The logs of one service: its files, its in-memory tail, its followers.
pub struct ServiceLogs {
    service: String,
    /// `log.encoding`: read by each new pump.
    encoding: Mutex<Option<String>>,
    reporter: Reporter,
    routes: Mutex<Arc<Routes>>,
    tail: Mutex<Tail>,
    /// Made at the first [`ServiceLogs::subscribe`]: its ring is not small.
    tx: OnceLock<broadcast::Sender<LogLine>>,
    /// Bytes read from stdout and stderr (`/metrics`).
    read_bytes: [AtomicU64; 2],
}

/// The byte counters of one service's output (`/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCounts {
    pub stdout: u64,
    pub stderr: u64,
    /// Dropped because a log file could not be written (over its current files).
    pub dropped: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn settings(cfg: &LogConfig) -> FileSettings {
    FileSettings {
        max_size: cfg.max_size,
        keep: cfg.keep.max(1),
        compress: cfg.compress,
        timestamps: cfg.timestamps,
    }
}

/// Open the sinks of `cfg`, reusing those of `old` whose path did not change.
fn routes(cfg: &LogConfig, old: Option<&Routes>, reporter: &Reporter) -> Routes {
    let s = settings(cfg);
    let reuse = |path: &std::path::Path| -> Option<Arc<Sink>> {
        let old = old?;
        [&old.out, &old.err]
            .into_iter()
            .find(|k| k.path() == path)
            .map(|k| {
                k.set_settings(s);
                Arc::clone(k)
            })
    };
    let out = match reuse(&cfg.stdout) {
        Some(k) => k,
        None => Sink::open(&cfg.stdout, s, Arc::clone(reporter)),
    };
    let err = match &cfg.stderr {
        StderrTarget::Stdout => Arc::clone(&out),
        StderrTarget::File(p) if *p == cfg.stdout => Arc::clone(&out),
        StderrTarget::File(p) => match reuse(p) {
            Some(k) => k,
            None => Sink::open(p, s, Arc::clone(reporter)),
        },
    };
    Routes { out, err }
}

impl ServiceLogs {
    /// Open (create) the service's log files per `cfg`; keep the last 1000 lines (at most
    /// about 1 MiB) in memory. A file that cannot be opened is retried while its output is
    /// held in memory (see [`ServiceLogs::problem`]).
    pub fn open(service: &str, cfg: &LogConfig, reporter: Reporter) -> Arc<ServiceLogs> {
        let routes = routes(cfg, None, &reporter);
        Arc::new(ServiceLogs {
            service: service.to_owned(),
            encoding: Mutex::new(cfg.encoding.clone()),
            reporter,
            routes: Mutex::new(Arc::new(routes)),
            tail: Mutex::new(Tail::new(TAIL_LINES, TAIL_BYTES)),
            tx: OnceLock::new(),
            read_bytes: [AtomicU64::new(0), AtomicU64::new(0)],
        })
    }

    /// Why a log file of this service is not being written right now, if one is not:
    /// `cannot open PATH: ...` or `cannot write PATH: ...`.
    pub fn problem(&self) -> Option<String> {
        let routes = Arc::clone(&lock(&self.routes));
        routes.out.problem().or_else(|| routes.err.problem())
    }

    /// What was read from the service's output, and what was dropped.
    pub fn counts(&self) -> LogCounts {
        let routes = Arc::clone(&lock(&self.routes));
        let mut dropped = routes.out.dropped_total();
        if !Arc::ptr_eq(&routes.out, &routes.err) {
            dropped += routes.err.dropped_total();
        }
        LogCounts {
            stdout: self.read_bytes[0].load(Ordering::Relaxed),
            stderr: self.read_bytes[1].load(Ordering::Relaxed),
            dropped,
        }
    }

    /// Rotate this service's files now (`warden rotate`; see [`Sink::rotate_now`]): each
    /// file once (a joined stderr shares stdout's), with what became of it.
    pub fn rotate(&self) -> Vec<(std::path::PathBuf, Rotation)> {
        let routes = Arc::clone(&lock(&self.routes));
        let mut files = vec![&routes.out];
        if !Arc::ptr_eq(&routes.out, &routes.err) {
            files.push(&routes.err);
        }
        files
            .into_iter()
            .map(|sink| (sink.path().to_path_buf(), sink.rotate_now()))
            .collect()
    }

    /// Apply a changed `[services.NAME.log]` (reload): later lines follow the new settings.
    pub fn reconfigure(&self, cfg: &LogConfig) {
        let mut current = lock(&self.routes);
        let new = routes(cfg, Some(&current), &self.reporter);
        *current = Arc::new(new);
        lock(&self.encoding).clone_from(&cfg.encoding);
    }

    /// Drain `pipe` until EOF into this service's logs as `stream`.
    pub fn pump<R>(self: &Arc<Self>, pipe: R, stream: Stream) -> JoinHandle<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        match stream {
            Stream::Out => self.pump_pair(Some(pipe), None),
            Stream::Err => self.pump_pair(None, Some(pipe)),
        }
    }

    /// Drain a child's stdout and stderr (either may be absent) until EOF, in one task that
    /// reads the two pipes fairly (see the module docs): the task ends when both are done.
    pub fn pump_pair<R>(self: &Arc<Self>, stdout: Option<R>, stderr: Option<R>) -> JoinHandle<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let me = Arc::clone(self);
        tokio::spawn(async move { me.run_pumps(stdout, stderr).await })
    }

    /// The last `n` lines, oldest first, of one stream or both.
    pub fn tail(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine> {
        lock(&self.tail).last(n, stream)
    }

    /// Every line from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.tx
            .get_or_init(|| broadcast::channel(SUBSCRIBE_BUFFER).0)
            .subscribe()
    }

    /// The decoder of `log.encoding` for a new pump; `None` passes bytes unchanged.
    fn decoder(&self, stream: Stream) -> Option<Decoder> {
        let name = lock(&self.encoding).clone()?;
        decoder_for(&name).unwrap_or_else(|e| {
            (self.reporter)(&format!("{e}; passing {} unchanged", stream_name(stream)));
            None
        })
    }

    async fn run_pumps<R>(&self, stdout: Option<R>, stderr: Option<R>)
    where
        R: AsyncRead + Unpin,
    {
        let decoder = |pipe: &Option<R>, stream| pipe.as_ref().and_then(|_| self.decoder(stream));
        let mut out = Reader::new(Stream::Out, decoder(&stdout, Stream::Out), stdout);
        let mut err = Reader::new(Stream::Err, decoder(&stderr, Stream::Err), stderr);
        let mut scratch: Vec<u8> = Vec::new();
        let mut since_yield = 0;
        loop {
            let (out_limit, err_limit) = (out.limit(&err), err.limit(&out));
            // A round: wait for either pipe, then take what the other holds without waiting.
            // Biased: when both are ready at once nothing tells which was written first;
            // stdout's lines then lead the round, so that a fixed order is kept.
            let (first, result, limit) = tokio::select! {
                biased;
                r = out.read(out_limit), if out.is_open() => (Stream::Out, r, out_limit),
                r = err.read(err_limit), if err.is_open() => (Stream::Err, r, err_limit),
                else => break,
            };
            // Then, at once (before any work on what was read, so that the program writes as
            // little as possible in between), what the other pipe holds at this moment. A
            // pipe of the process layer reads the pipe itself here, not the reactor's last
            // word on it.
            let (first_r, other_r, other_limit) = match first {
                Stream::Out => (&mut out, &mut err, err_limit),
                Stream::Err => (&mut err, &mut out, out_limit),
            };
            other_r.busy = false;
            let other_result = if other_r.is_open() {
                tokio::select! {
                    biased;
                    r = other_r.read(other_limit) => Some(r),
                    () = std::future::ready(()) => None,
                }
            } else {
                None
            };
            self.after_read(first_r, limit, result);
            if let Some(r) = other_result {
                self.after_read(other_r, other_limit, r);
            }
            let (o, e) = (&out.text[..out.ready], &err.text[..err.ready]);
            let delivered = o.len() + e.len();
            match (o.is_empty(), e.is_empty()) {
                (true, true) => {}
                (false, true) => self.deliver(o, Stream::Out, &mut scratch),
                (true, false) => self.deliver(e, Stream::Err, &mut scratch),
                (false, false) => self.deliver_both(o, e, first, &mut scratch),
            }
            // Both, always: each drains what was delivered.
            let (out_idle, err_idle) = (out.consume(), err.consume());
            if out_idle && err_idle && scratch.capacity() > READ_MIN {
                scratch = Vec::new();
            }
            // The process layer's pipes read the descriptor directly, past tokio's
            // cooperative budget and the reactor: a round that read something yields its
            // worker thread, so that floods (one round is up to a MiB) never keep the other
            // tasks (the API above all) waiting. Counting rounds against the budget only
            // yielded every 128 rounds: two floods held both worker threads for seconds.
            //
            // Not after every round, though: a yield wakes the other worker (an `eventfd`
            // write and an `epoll_wait` that finds nothing), and a pump that keeps up with a
            // flood reads one 64 KiB write of the program per round. It yields once it
            // delivered [`YIELD_EVERY`] bytes since the last yield, which bounds the work
            // between two yields as a single round of the biggest reads did.
            since_yield += delivered;
            if since_yield >= YIELD_EVERY {
                since_yield = 0;
                tokio::task::yield_now().await;
            } else {
                tokio::task::consume_budget().await;
            }
        }
    }

    /// Account for one read of `r`: cut its lines, or finish the stream at its end.
    fn after_read<R>(&self, r: &mut Reader<R>, limit: usize, result: std::io::Result<usize>) {
        match result {
            Ok(0) => r.finish(),
            Ok(n) => {
                let i = usize::from(r.stream == Stream::Err);
                self.read_bytes[i].fetch_add(n as u64, Ordering::Relaxed);
                if r.take_in(n, limit) && !r.cut_reported {
                    r.cut_reported = true;
                    (self.reporter)(&format!(
                        "a line of {} of {} is longer than {LINE_MAX} bytes: cut",
                        stream_name(r.stream),
                        self.service
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                (self.reporter)(&format!(
                    "reading {} of {} failed: {e}",
                    stream_name(r.stream),
                    self.service
                ));
                r.finish();
            }
        }
    }

    /// Whole lines of both streams that arrived in the same round: each file gets its own
    /// in one write; the tail, the followers (and a file the two share) get them
    /// interleaved one line at a time, starting with `first`, the stream read first.
    fn deliver_both(&self, out: &[u8], err: &[u8], first: Stream, scratch: &mut Vec<u8>) {
        let at = SystemTime::now();
        let routes = Arc::clone(&lock(&self.routes));
        let pieces = interleave(out, err, first);
        if Arc::ptr_eq(&routes.out, &routes.err) {
            let ts = routes.out.timestamps().then(|| timestamp(at));
            scratch.clear();
            for (_, piece) in &pieces {
                append_lines(scratch, piece, ts.as_ref());
            }
            routes.out.write(scratch);
        } else {
            write_sink(&routes.out, out, at, scratch);
            write_sink(&routes.err, err, at, scratch);
        }
        let mut tail = lock(&self.tail);
        for (stream, piece) in pieces {
            let first_seq = tail.push(stream, at, piece);
            self.publish(first_seq, stream, at, piece);
        }
    }

    /// Send the lines of `data` to live subscribers, if there are any.
    fn publish(&self, first_seq: u64, stream: Stream, at: SystemTime, data: &[u8]) {
        if let Some(tx) = self.tx.get().filter(|tx| tx.receiver_count() > 0) {
            for (i, line) in scan::lines(data).enumerate() {
                // A send fails only when every receiver is gone: nothing to do then.
                let _ = tx.send(LogLine {
                    seq: first_seq + i as u64,
                    stream,
                    at,
                    bytes: line.to_vec(),
                });
            }
        }
    }

    /// Write whole lines (`data` ends with `\n`) to the file, the tail and subscribers.
    fn deliver(&self, data: &[u8], stream: Stream, scratch: &mut Vec<u8>) {
        let at = SystemTime::now();
        let routes = Arc::clone(&lock(&self.routes));
        write_sink(routes.sink(stream), data, at, scratch);
        let mut tail = lock(&self.tail);
        let first = tail.push(stream, at, data);
        self.publish(first, stream, at, data);
    }
}

/// Write whole lines to a file, each prefixed with the time if the file wants it.
fn write_sink(sink: &Arc<Sink>, data: &[u8], at: SystemTime, scratch: &mut Vec<u8>) {
    if sink.timestamps() {
        scratch.clear();
        append_lines(scratch, data, Some(&timestamp(at)));
        sink.write(scratch);
    } else {
        sink.write(data);
    }
}

/// Append whole lines to `buf`, each after `ts` if given.
fn append_lines(buf: &mut Vec<u8>, data: &[u8], ts: Option<&[u8; 25]>) {
    let Some(ts) = ts else {
        buf.extend_from_slice(data);
        return;
    };
    if data.is_empty() {
        return;
    }
    // The exact size first (a count of the newlines is cheap), then each line copied into
    // its place: a flood's scratch buffer stays the size of one read with its stamps, and a
    // line costs one copy of the stamp (its size is fixed: no call) and one of the line.
    let open_end = data.last() != Some(&b'\n');
    let pieces = scan::count_nl(data) + usize::from(open_end);
    let add = data.len() + ts.len() * pieces + usize::from(open_end);
    buf.reserve_exact(add);
    // Written in place, not zeroed first (that was a third pass over the bytes).
    let out = &mut buf.spare_capacity_mut()[..add];
    let (mut at, mut rest) = (0, data);
    while !rest.is_empty() {
        put(&mut out[at..at + ts.len()], ts);
        at += ts.len();
        // Each line with its newline in one copy; a last piece without one gets one.
        let end = scan::find_nl(rest).map_or(rest.len(), |i| i + 1);
        put(&mut out[at..at + end], &rest[..end]);
        at += end;
        rest = &rest[end..];
    }
    if open_end {
        out[at].write(b'\n');
        at += 1;
    }
    assert_eq!(at, add, "every reserved byte is written");
    // SAFETY: the `add` bytes after the old length were all written just above (`at`
    // reached `add`, and the pieces are contiguous from 0).
    unsafe { buf.set_len(buf.len() + add) };
}

/// Copy `src` into `dst`, of the same length (`write_copy_of_slice` is newer than the MSRV).
fn put(dst: &mut [std::mem::MaybeUninit<u8>], src: &[u8]) {
    assert_eq!(dst.len(), src.len());
    // SAFETY: both are valid for `src.len()` bytes (checked above), and `dst`, borrowed
    // mutably, cannot overlap `src`.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<u8>(), src.len());
    }
}

/// The lines of two chunks of whole lines, one of each in turn (starting with `first`'s),
/// then the rest of the longer one in one piece.
fn interleave<'a>(out: &'a [u8], err: &'a [u8], first: Stream) -> Vec<(Stream, &'a [u8])> {
    let (mut a, mut b) = match first {
        Stream::Out => ((Stream::Out, out), (Stream::Err, err)),
        Stream::Err => ((Stream::Err, err), (Stream::Out, out)),
    };
    let mut pieces = Vec::new();
    loop {
        if a.1.is_empty() || b.1.is_empty() {
            pieces.extend([a, b].into_iter().filter(|p| !p.1.is_empty()));
            return pieces;
        }
        let end = scan::find_nl(a.1).map_or(a.1.len(), |i| i + 1);
        pieces.push((a.0, &a.1[..end]));
        a.1 = &a.1[end..];
        std::mem::swap(&mut a, &mut b);
    }
}

/// One pipe of a pump: its buffers, the size of its next read, the lines ready to deliver.
struct Reader<R> {
    stream: Stream,
    /// `None` once it reached its end (or failed).
    pipe: Option<R>,
    decoder: Option<Decoder>,
    /// Text not yet delivered: whole lines in `text[..ready]`, then the start of a line whose
    /// newline has not arrived.
    text: Vec<u8>,
    ready: usize,
    /// With a decoder, reads land here and are decoded onto `text`; without one, reads land
    /// in `text` directly.
    raw: Vec<u8>,
    /// The size of the next read: [`READ_MIN`] doubling up to [`READ_MAX`] while reads fill
    /// it, down to twice the last read when output slows down (see [`Reader::take_in`]).
    want: usize,
    /// Its last read in a round brought bytes.
    busy: bool,
    cut_reported: bool,
}

impl<R> Reader<R> {
    fn new(stream: Stream, decoder: Option<Decoder>, pipe: Option<R>) -> Reader<R> {
        Reader {
            stream,
            pipe,
            decoder,
            text: Vec::new(),
            ready: 0,
            raw: Vec::new(),
            want: READ_MIN,
            busy: false,
            cut_reported: false,
        }
    }

    fn is_open(&self) -> bool {
        self.pipe.is_some()
    }

    /// The size of the next read. While both pipes are busy, both may read the larger of
    /// their two sizes: equal shares, so that neither stream runs ahead of the other by whole
    /// buffers (a backlog of both is read in equal parts), and a flood is never slowed by a
    /// stream that writes a line now and then. Otherwise a stream reads its own size, up to
    /// [`READ_MAX`] (an idle one keeps its small buffer while the other floods).
    fn limit<S>(&self, other: &Reader<S>) -> usize {
        if self.busy && other.busy && other.is_open() {
            self.want.max(other.want)
        } else {
            self.want
        }
    }

    /// Read at most `limit` bytes; `Ok(0)` at the end. Cancel-safe: nothing is read unless it
    /// completes.
    async fn read(&mut self, limit: usize) -> std::io::Result<usize>
    where
        R: AsyncRead + Unpin,
    {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(0);
        };
        let input = if self.decoder.is_some() {
            &mut self.raw
        } else {
            &mut self.text
        };
        if input.capacity() - input.len() < limit {
            // Room for the start of a line left over from this read too: the next read of
            // the same size then fits without growing the buffer again (a `realloc`, an
            // `mremap` for a big one, on every other round of a flood). Not for the first,
            // smallest read, which a quiet stream waits in: 2,000 idle pipes would hold
            // 9 MB of slack.
            let slack = if limit > READ_MIN { SLACK } else { 0 };
            input.reserve_exact(limit + slack);
        }
        pipe.take(limit as u64).read_buf(input).await
    }

    /// `n` bytes were read by a read of at most `limit` (see [`Reader::limit`]): decode them,
    /// find the whole lines, size the next read. Returns whether a line over [`LINE_MAX`] was
    /// cut.
    fn take_in(&mut self, n: usize, limit: usize) -> bool {
        self.busy = true;
        let new = match self.decoder.as_mut() {
            Some(d) => {
                let new = self.text.len();
                d.decode(&self.raw, &mut self.text);
                self.raw.clear();
                new
            }
            None => self.text.len() - n,
        };
        let mut cut = false;
        match scan::rfind_nl(&self.text[new..]) {
            Some(i) => self.ready = new + i + 1,
            None if self.text.len() >= LINE_MAX => {
                self.text.push(b'\n');
                self.ready = self.text.len();
                cut = true;
            }
            None => {}
        }
        // The size of the next read follows the raw bytes of this one: a full read doubles
        // it; a read of less than a quarter means output slowed down, and the next read is
        // sized to twice this one (a quiet stream is back at `READ_MIN` at once). Not
        // straight back to `READ_MIN`: a reader that keeps up with a flood finds one write of
        // the program at a time in the pipe, and climbing from 512 bytes again after each
        // took eight reads (and eight rounds) per 64 KiB write.
        if n >= limit {
            self.want = (2 * limit).min(READ_MAX);
        } else if n < limit / 4 {
            self.want = (2 * n).next_power_of_two().clamp(READ_MIN, READ_MAX);
        }
        cut
    }

    /// The end of the pipe: a last line without newline becomes ready.
    fn finish(&mut self) {
        self.pipe = None;
        self.busy = false;
        if let Some(d) = self.decoder.as_mut() {
            d.finish(&mut self.text);
        }
        if self.text.len() > self.ready {
            self.text.push(b'\n');
            self.ready = self.text.len();
        }
    }

    /// The ready lines were delivered. Returns whether this reader is idle (nothing held, its
    /// output slowed down to small reads), in which case it gives its memory back at once: a
    /// service that goes quiet after a burst keeps no big buffer.
    fn consume(&mut self) -> bool {
        self.text.drain(..self.ready);
        self.ready = 0;
        let idle = self.text.is_empty() && self.want == READ_MIN;
        if idle {
            for v in [&mut self.text, &mut self.raw] {
                if v.capacity() > READ_MIN {
                    *v = Vec::new();
                }
            }
        } else {
            // Output slowed down but goes on (reads of a few hundred bytes keep `want` a
            // little above `READ_MIN`): a buffer left from a burst shrinks to what reads now
            // need instead of staying at its biggest. Not while reads are big (a flood that the
            // pump keeps up with reads one write of the program at a time, 64 KiB and more):
            // shrinking and growing again on alternate rounds cost a `realloc` and fresh
            // pages each time.
            let need = self.want;
            if need <= SHRINK_BELOW {
                for v in [&mut self.text, &mut self.raw] {
                    if v.capacity() > 4 * need && v.len() <= need {
                        v.shrink_to(need);
                    }
                }
            }
        }
        idle
    }
}

fn stream_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Out => "stdout",
        Stream::Err => "stderr",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `n` bytes of whole lines to `r` as one read of at most `limit`, then deliver them.
    fn read_lines(r: &mut Reader<&'static [u8]>, n: usize, limit: usize) {
        let start = r.text.len();
        r.text.resize(start + n, b'x');
        r.text[start + n - 1] = b'\n';
        r.take_in(n, limit);
        r.consume();
    }

    /// Each line gets the stamp, a last piece without a newline gets one, and what `buf`
    /// held before is kept; without a stamp the bytes are appended as they are.
    #[test]
    fn append_lines_stamps_every_line_and_ends_the_last() {
        let ts = *b"2024-05-01T12:00:00.123Z ";
        let mut buf = b"kept\n".to_vec();
        append_lines(&mut buf, b"a\n\nbc\nd", Some(&ts));
        let want = [
            &b"kept\n"[..],
            &ts,
            b"a\n",
            &ts,
            b"\n",
            &ts,
            b"bc\n",
            &ts,
            b"d\n",
        ]
        .concat();
        assert_eq!(buf, want);
        append_lines(&mut buf, b"", Some(&ts));
        assert_eq!(buf, want, "nothing added for nothing");
        let mut plain = Vec::new();
        append_lines(&mut plain, b"x\ny", None);
        assert_eq!(plain, b"x\ny");
        // A chunk of 100-byte lines, as a flood delivers them.
        let chunk: Vec<u8> = (0..1000)
            .flat_map(|_| [[b'x'; 99].as_slice(), b"\n"].concat())
            .collect();
        let mut out = Vec::new();
        append_lines(&mut out, &chunk, Some(&ts));
        assert_eq!(out.len(), 1000 * 125);
        assert!(
            out.chunks(125)
                .all(|l| l.starts_with(&ts) && l.ends_with(b"x\n"))
        );
    }

    /// A reader that keeps up with a flood finds one 64 KiB write in the pipe at a time: its
    /// next read is sized to that (not back to 512 bytes, eight reads to climb again).
    #[test]
    fn a_read_after_a_slowdown_is_sized_to_what_it_got() {
        let mut r: Reader<&'static [u8]> = Reader::new(Stream::Out, None, Some(&b""[..]));
        read_lines(&mut r, READ_MAX, READ_MAX);
        assert_eq!(r.want, READ_MAX);
        read_lines(&mut r, READ_MAX / 8, READ_MAX);
        assert_eq!(r.want, READ_MAX / 4);
        read_lines(&mut r, 100, READ_MAX / 4);
        assert_eq!(
            r.want, READ_MIN,
            "a quiet stream is back at the minimum at once"
        );
    }

    /// After a burst, a stream that goes on writing a few hundred bytes at a time does not
    /// keep the burst's big buffer.
    #[test]
    fn the_buffer_of_a_burst_shrinks_when_output_slows_down() {
        let mut r: Reader<&'static [u8]> = Reader::new(Stream::Out, None, Some(&b""[..]));
        r.text.reserve_exact(READ_MAX);
        read_lines(&mut r, READ_MAX, READ_MAX);
        assert!(r.text.capacity() >= READ_MAX);
        for _ in 0..3 {
            let limit = r.want;
            read_lines(&mut r, 300, limit);
            assert!(r.want > READ_MIN, "still more than the minimum: {}", r.want);
            assert!(
                r.text.capacity() <= 4 * r.want,
                "capacity {} for reads of {}",
                r.text.capacity(),
                r.want
            );
        }
    }
}
