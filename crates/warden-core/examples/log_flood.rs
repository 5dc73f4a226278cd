//! A fixed flood through the log pipeline, for the instruction-count guard (`bench/guard/run`
//! runs it under `valgrind --tool=callgrind`). Not a benchmark of wall time: everything here
//! is deterministic, so its instruction count moves only when the code does.
//!
//! `log_flood [plain|timestamps] [LINES]`: LINES (default 500,000) numbered lines of exactly
//! 100 bytes, the bench's `wb-flood` format, go through [`ServiceLogs::pump`] into a log file
//! in a fresh temp dir, with the default log settings (10 MiB files, 5 kept: it rotates) and
//! `timestamps` as asked. The "pipe" is a fake reader: the writer adds whole 64 KiB writes to it
//! (1 to 16 of them before each read, from a fixed pseudo-random sequence, like a writer that
//! is sometimes ahead of the reader and sometimes not), up to 1 MiB (the pipe's size). At the
//! end it checks that the files hold every line once, in order, and prints the line count.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use warden_core::logs::{LogConfig, ServiceLogs, Stream};

const LINE: usize = 100;
const WRITE: usize = 64 * 1024;
const PIPE: usize = 1 << 20;

/// The writer's side and the pipe between it and the pump.
struct FakePipe {
    /// Everything the writer will write, and how much of it it wrote so far.
    data: Vec<u8>,
    written: usize,
    read: usize,
    rng: u64,
}

impl FakePipe {
    fn new(lines: usize) -> FakePipe {
        // Made by hand, not with `format!`: the count should be the pipeline's, not this.
        let mut line = [b'x'; LINE];
        line[10] = b' ';
        line[LINE - 1] = b'\n';
        let mut data = Vec::with_capacity(lines * LINE);
        for i in 0..lines {
            let mut n = i;
            for d in (0..10).rev() {
                line[d] = b'0' + (n % 10) as u8;
                n /= 10;
            }
            data.extend_from_slice(&line);
        }
        FakePipe {
            data,
            written: 0,
            read: 0,
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    /// The reader found the pipe empty: the writer wrote 1 to 16 more times 64 KiB (the
    /// pipe holds 1 MiB at most).
    fn writer_turn(&mut self) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let writes = 1 + (self.rng % 16) as usize;
        self.written = (self.written + (writes * WRITE).min(PIPE)).min(self.data.len());
    }
}

impl AsyncRead for FakePipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if me.read == me.written {
            me.writer_turn();
        }
        let n = buf.remaining().min(me.written - me.read);
        buf.put_slice(&me.data[me.read..me.read + n]);
        me.read += n;
        Poll::Ready(Ok(()))
    }
}

/// Checks that the log files (oldest first: `.5` ... `.1`, then the live file) hold every
/// line once, whole and in order; returns how many. Cheap on purpose (the lines have one
/// length, so line `k` of a file starts at `k * len`): the count should be the pipeline's.
fn check(dir: &std::path::Path, lines: usize, timestamps: bool) -> usize {
    let mut files: Vec<std::path::PathBuf> = (1..=5)
        .rev()
        .map(|n| dir.join(format!("flood.out.log.{n}")))
        .filter(|p| p.exists())
        .collect();
    files.push(dir.join("flood.out.log"));
    let skip = if timestamps { 25 } else { 0 };
    let len = skip + LINE;
    let mut next = 0;
    for f in files {
        let text = std::fs::read(&f).expect("read a log file");
        assert_eq!(text.len() % len, 0, "{} is not whole lines", f.display());
        for line in text.chunks_exact(len) {
            let mut n = 0;
            for &d in &line[skip..skip + 10] {
                assert!(d.is_ascii_digit(), "a line of {} is cut", f.display());
                n = n * 10 + usize::from(d - b'0');
            }
            assert_eq!(n, next, "line {next} of {} is not next", f.display());
            assert_eq!(line[len - 1], b'\n', "a line of {} is cut", f.display());
            next += 1;
        }
    }
    assert_eq!(next, lines, "lines are missing");
    next
}

fn main() {
    let mut args = std::env::args().skip(1);
    let timestamps = match args.next().as_deref() {
        None | Some("plain") => false,
        Some("timestamps") => true,
        Some(other) => panic!("usage: log_flood [plain|timestamps] [LINES], not {other}"),
    };
    let lines: usize = args.next().map_or(500_000, |s| s.parse().expect("LINES"));
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut cfg = LogConfig::defaults(dir.path(), "flood");
    cfg.timestamps = timestamps;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let pipe = FakePipe::new(lines);
    rt.block_on(async {
        let logs = ServiceLogs::open("flood", &cfg, Arc::new(|m: &str| eprintln!("{m}")));
        logs.pump(pipe, Stream::Out).await.expect("the pump");
    });
    let kept = check(dir.path(), lines, timestamps);
    println!("{kept} lines");
}
