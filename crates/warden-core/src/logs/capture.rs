//! The service's logs and the pumps that feed them.
//!
//! A pump reads its pipe in chunks (512 bytes growing to 1 MiB while reads fill the buffer,
//! back to 512 bytes when output slows down), finds the last newline of each chunk and hands
//! everything before it to the file in one write, then to the in-memory tail in one copy.
//! Per-line work happens only for timestamps and for live subscribers. A partial line stays
//! in the pump until its newline arrives (or EOF), so two streams sharing a file never mix
//! within a line. With `log.encoding`, each read is transcoded to UTF-8 before lines are
//! cut; the buffer sizes follow the raw bytes read.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::Stream;
use super::encoding::{Decoder, decoder_for};
use super::scan;
use super::tail::{TAIL_BYTES, TAIL_LINES, Tail};
use super::writer::{FileSettings, Sink, timestamp};
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
        })
    }

    /// Why a log file of this service is not being written right now, if one is not:
    /// `cannot open PATH: ...` or `cannot write PATH: ...`.
    pub fn problem(&self) -> Option<String> {
        let routes = Arc::clone(&lock(&self.routes));
        routes.out.problem().or_else(|| routes.err.problem())
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
        let me = Arc::clone(self);
        tokio::spawn(async move { me.run_pump(pipe, stream).await })
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

    async fn run_pump<R>(&self, mut pipe: R, stream: Stream)
    where
        R: AsyncRead + Unpin,
    {
        let mut decoder = self.decoder(stream);
        // Text not yet delivered: the start of a line whose newline has not arrived.
        let mut text: Vec<u8> = Vec::new();
        // With a decoder, reads land here and are decoded onto `text`; without one, reads
        // land in `text` directly.
        let mut raw: Vec<u8> = Vec::new();
        let mut scratch: Vec<u8> = Vec::new();
        let mut cut_reported = false;
        loop {
            let input = if decoder.is_some() {
                &mut raw
            } else {
                &mut text
            };
            if input.len() == input.capacity() {
                input.reserve_exact(input.capacity().max(READ_MIN));
            }
            let spare = input.capacity() - input.len();
            let n = match pipe.read_buf(input).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    (self.reporter)(&format!(
                        "reading {} of {} failed: {e}",
                        stream_name(stream),
                        self.service
                    ));
                    break;
                }
            };
            let filled = n == spare;
            let new = match decoder.as_mut() {
                Some(d) => {
                    let new = text.len();
                    d.decode(&raw, &mut text);
                    raw.clear();
                    new
                }
                None => text.len() - n,
            };
            match scan::rfind_nl(&text[new..]) {
                Some(i) => {
                    let end = new + i + 1;
                    self.deliver(&text[..end], stream, &mut scratch);
                    text.drain(..end);
                }
                None if text.len() >= LINE_MAX => {
                    if !cut_reported {
                        cut_reported = true;
                        (self.reporter)(&format!(
                            "a line of {} of {} is longer than {LINE_MAX} bytes: cut",
                            stream_name(stream),
                            self.service
                        ));
                    }
                    text.push(b'\n');
                    self.deliver(&text, stream, &mut scratch);
                    text.clear();
                }
                None => {}
            }
            // The size of the next read follows the raw bytes of this one.
            let input = if decoder.is_some() {
                &mut raw
            } else {
                &mut text
            };
            let cap = input.capacity();
            if filled && cap < READ_MAX {
                // The read filled the buffer: more is waiting. Double it.
                input.reserve_exact(2 * cap - input.len());
            } else if n < cap / 4 {
                // Output slowed down: give the memory back while idle.
                scratch.clear();
                for v in [&mut text, &mut raw, &mut scratch] {
                    if v.is_empty() && v.capacity() > READ_MIN {
                        *v = Vec::new();
                    }
                }
            }
        }
        if let Some(d) = decoder.as_mut() {
            d.finish(&mut text);
        }
        if !text.is_empty() {
            text.push(b'\n');
            self.deliver(&text, stream, &mut scratch);
        }
    }

    /// Write whole lines (`data` ends with `\n`) to the file, the tail and subscribers.
    fn deliver(&self, data: &[u8], stream: Stream, scratch: &mut Vec<u8>) {
        let at = SystemTime::now();
        let routes = Arc::clone(&lock(&self.routes));
        let sink = routes.sink(stream);
        if sink.timestamps() {
            let ts = timestamp(at);
            scratch.clear();
            scratch.reserve(data.len() + ts.len() * (data.len() / 16 + 1));
            for line in scan::lines(data) {
                scratch.extend_from_slice(&ts);
                scratch.extend_from_slice(line);
                scratch.push(b'\n');
            }
            sink.write(scratch);
        } else {
            sink.write(data);
        }
        let mut tail = lock(&self.tail);
        let first = tail.push(stream, at, data);
        if let Some(tx) = self.tx.get().filter(|tx| tx.receiver_count() > 0) {
            for (i, line) in scan::lines(data).enumerate() {
                // A send fails only when every receiver is gone: nothing to do then.
                let _ = tx.send(LogLine {
                    seq: first + i as u64,
                    stream,
                    at,
                    bytes: line.to_vec(),
                });
            }
        }
    }
}

fn stream_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Out => "stdout",
        Stream::Err => "stderr",
    }
}
