//! Log capture with real files and real pipes: whole lines, rotation, gzip, floods, the
//! in-memory tail, followers, and a failing disk.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use warden_core::config::{LogConfig, StderrTarget};
use warden_core::logs::{Reporter, ServiceLogs, Stream};

const WAIT: Duration = Duration::from_secs(30);

fn config(dir: &Path) -> LogConfig {
    LogConfig::defaults(dir, "svc")
}

/// A reporter that records its messages.
fn recorder() -> (Reporter, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let rep: Reporter =
        Arc::new(move |m: &str| s.lock().expect("reporter lock").push(m.to_owned()));
    (rep, seen)
}

fn open(cfg: &LogConfig) -> (Arc<ServiceLogs>, Arc<Mutex<Vec<String>>>) {
    let (rep, seen) = recorder();
    (ServiceLogs::open("svc", cfg, rep), seen)
}

async fn join(h: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(WAIT, h)
        .await
        .expect("pump did not end in time")
        .expect("pump panicked");
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Write `pieces` one after the other into a pump of `stream`, close the pipe, and wait
/// for the pump to end.
async fn pump_to_eof(logs: &Arc<ServiceLogs>, stream: Stream, pieces: &[&[u8]]) {
    let (mut w, r) = tokio::io::duplex(1 << 16);
    let pump = logs.pump(r, stream);
    for piece in pieces {
        w.write_all(piece).await.expect("write");
    }
    drop(w);
    join(pump).await;
}

/// The names in `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Wait until background compression is done: a rotated file is renamed to a temporary
/// `FILE.rotating-N` at once (the pump has ended, so every rotation has happened) and
/// removed only after its `.gz` is in place.
async fn wait_compressed(dir: &Path) {
    wait_until("compression", || {
        !file_names(dir).iter().any(|n| n.contains(".rotating-"))
    })
    .await;
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn numbered(base: &Path, n: u32, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{n}{ext}"));
    PathBuf::from(s)
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(path).expect("open gz"))
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{} is not valid gzip: {e}", path.display()));
    out
}

/// Every file of `base` oldest first (`FILE.keep` .. `FILE.1`, `FILE`), concatenated.
fn read_rotated(base: &Path, keep: u32) -> Vec<u8> {
    let mut all = Vec::new();
    for n in (1..=keep).rev() {
        let plain = numbered(base, n, "");
        let gz = numbered(base, n, ".gz");
        if gz.exists() {
            all.extend(gunzip(&gz));
        } else if plain.exists() {
            all.extend(read(&plain));
        }
    }
    all.extend(read(base));
    all
}

/// Check that `data` holds lines `line {i:08}` for consecutive `i`, ending at `last`.
fn check_numbered(data: &[u8], prefix: &str, last: usize) -> usize {
    let text = std::str::from_utf8(data).expect("utf8");
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let first = last + 1 - lines.len();
    for (k, line) in lines.iter().enumerate() {
        let want = format!("{prefix} {:08}", first + k);
        assert_eq!(*line, want, "line {k} of {}", lines.len());
    }
    lines.len()
}

/// A blocking writer into a channel (Windows: the test stands in for an OS pipe).
#[cfg(not(unix))]
struct Chan(tokio::sync::mpsc::Sender<Vec<u8>>);

#[cfg(not(unix))]
impl std::io::Write for Chan {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(b.to_vec())
            .map_err(std::io::Error::other)?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `line {i:08}\n` for each `i`.
fn numbered_lines(range: std::ops::Range<usize>) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(range.len() * 14);
    for i in range {
        let _ = writeln!(s, "line {i:08}");
    }
    s
}

/// A real OS pipe: the read end for a pump, the write end for a writer thread.
#[cfg(unix)]
#[allow(
    clippy::incompatible_msrv,
    reason = "tests run on the dev toolchain (>= 1.87)"
)]
fn os_pipe() -> (
    impl tokio::io::AsyncRead + Unpin + Send + 'static,
    std::io::PipeWriter,
) {
    let (r, w) = std::io::pipe().expect("pipe");
    let r = tokio::net::unix::pipe::Receiver::from_owned_fd(r.into()).expect("tokio pipe");
    (r, w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_writes_are_joined_and_a_last_line_gets_its_newline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let (logs, _) = open(&cfg);
    let (mut w, r) = tokio::io::duplex(1024);
    let (mut ew, er) = tokio::io::duplex(1024);
    let out = logs.pump(r, Stream::Out);
    let err = logs.pump(er, Stream::Err);
    w.write_all(b"hel").await.expect("write");
    w.flush().await.expect("flush");
    // A line on the other stream is a handshake: the half line of stdout must not be out.
    ew.write_all(b"handshake\n").await.expect("write");
    wait_until("the stderr line", || logs.tail(10, None).len() == 1).await;
    assert_eq!(read(&cfg.stdout), b"");
    w.write_all(b"lo wor").await.expect("write");
    w.write_all(b"ld\nlast without newline")
        .await
        .expect("write");
    drop(w);
    drop(ew);
    join(out).await;
    join(err).await;
    assert_eq!(read(&cfg.stdout), b"hello world\nlast without newline\n");
    let tail: Vec<Vec<u8>> = logs
        .tail(10, Some(Stream::Out))
        .into_iter()
        .map(|l| l.bytes)
        .collect();
    assert_eq!(
        tail,
        vec![b"hello world".to_vec(), b"last without newline".to_vec()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_passes_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let (logs, _) = open(&cfg);
    let bytes: &[u8] = b"\xff\xfe bad \xc3\x28 utf8\r\n\x00nul\n\xe2\x82";
    pump_to_eof(&logs, Stream::Err, &[bytes]).await;
    let mut want = bytes.to_vec();
    want.push(b'\n');
    assert_eq!(read(&dir.path().join("svc.err.log")), want);
    assert_eq!(logs.tail(1, None)[0].bytes, b"\xe2\x82");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_prefix_each_line_with_rfc3339_millis() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.timestamps = true;
    let (logs, _) = open(&cfg);
    let before = std::time::SystemTime::now();
    pump_to_eof(&logs, Stream::Out, &[b"one\n\ntwo\nthree"]).await;
    let text = String::from_utf8(read(&cfg.stdout)).expect("utf8");
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 4, "{text:?}");
    for (line, body) in lines.iter().zip(["one", "", "two", "three"]) {
        let (ts, rest) = line.split_at(24);
        assert_eq!(rest, format!(" {body}"), "{line:?}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts:?}");
        let at = humantime::parse_rfc3339(ts).expect("rfc3339");
        assert!(at + Duration::from_millis(1) >= before, "{ts}");
    }
    // The tail keeps lines without the prefix.
    assert_eq!(logs.tail(1, None)[0].bytes, b"three");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stderr_into_stdout_file_never_interleaves_within_a_line() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.stderr = StderrTarget::Stdout;
    let (logs, _) = open(&cfg);
    let (ow, or) = tokio::io::duplex(4096);
    let (ew, er) = tokio::io::duplex(4096);
    // One pump over both pipes, as the engine starts it.
    let pumps = [logs.pump_pair(Some(or), Some(er))];
    // Each writer sends its lines in odd-sized pieces so lines straddle reads.
    let writer = |name: &'static str, piece: usize| {
        move |mut w: tokio::io::DuplexStream| async move {
            use std::fmt::Write;
            let mut all = String::new();
            for i in 0..N {
                let _ = writeln!(all, "{name} {i:08} {}", "x".repeat(i % 37));
            }
            for chunk in all.as_bytes().chunks(piece) {
                w.write_all(chunk).await.expect("write");
            }
        }
    };
    let a = tokio::spawn(writer("out", 7)(ow));
    let b = tokio::spawn(writer("err", 13)(ew));
    for w in [a, b] {
        tokio::time::timeout(WAIT, w)
            .await
            .expect("writer timeout")
            .expect("writer");
    }
    for p in pumps {
        join(p).await;
    }
    let text = String::from_utf8(read(&cfg.stdout)).expect("utf8");
    let mut next = [0usize; 2];
    for line in text.lines() {
        let (name, rest) = line.split_at(3);
        let k = usize::from(name == "err");
        assert!(name == "out" || name == "err", "mixed line {line:?}");
        let want = format!(" {:08} {}", next[k], "x".repeat(next[k] % 37));
        assert_eq!(rest, want, "line of {name}");
        next[k] += 1;
    }
    assert_eq!(next, [N, N]);
    assert!(!dir.path().join("svc.err.log").exists());
    // One global sequence over both streams.
    let tail = logs.tail(100, None);
    assert!(tail.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(tail.last().map(|l| l.seq), Some(2 * N as u64 - 1));
}

/// Lines both pipes held when the pump read them (one round) get their sequence numbers one
/// of each in turn, stdout first; each file gets its own stream's in order, and a file that
/// both streams share gets the interleaved order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_read_from_both_pipes_in_one_round_are_interleaved() {
    for shared in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(dir.path());
        if shared {
            cfg.stderr = StderrTarget::Stdout;
        }
        let (logs, _) = open(&cfg);
        let (mut ow, or) = tokio::io::duplex(1024);
        let (mut ew, er) = tokio::io::duplex(1024);
        // Written before the pump exists: its first round finds both pipes full.
        ow.write_all(b"o1\no2\no3\no4\n").await.expect("write");
        ew.write_all(b"e1\ne2\n").await.expect("write");
        drop((ow, ew));
        join(logs.pump_pair(Some(or), Some(er))).await;
        let got: Vec<String> = logs
            .tail(100, None)
            .iter()
            .map(|l| format!("{}:{}", l.seq, String::from_utf8_lossy(&l.bytes)))
            .collect();
        assert_eq!(got, ["0:o1", "1:e1", "2:o2", "3:e2", "4:o3", "5:o4"]);
        let streams: Vec<Stream> = logs.tail(100, None).iter().map(|l| l.stream).collect();
        assert_eq!(
            streams,
            [
                Stream::Out,
                Stream::Err,
                Stream::Out,
                Stream::Err,
                Stream::Out,
                Stream::Out
            ]
        );
        if shared {
            assert_eq!(read(&cfg.stdout), b"o1\ne1\no2\ne2\no3\no4\n");
        } else {
            assert_eq!(read(&cfg.stdout), b"o1\no2\no3\no4\n");
            assert_eq!(read(&dir.path().join("svc.err.log")), b"e1\ne2\n");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_exactly_keep_files_none_over_max_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.max_size = 1000;
    cfg.keep = 3;
    let (logs, _) = open(&cfg);
    let all = numbered_lines(0..2000);
    let pieces: Vec<&[u8]> = all.as_bytes().chunks(3000).collect();
    pump_to_eof(&logs, Stream::Out, &pieces).await;
    assert_eq!(
        file_names(dir.path()),
        [
            "svc.err.log",
            "svc.out.log",
            "svc.out.log.1",
            "svc.out.log.2",
            "svc.out.log.3"
        ]
    );
    for n in 1..=3 {
        let len = read(&numbered(&cfg.stdout, n, "")).len();
        // 14-byte lines: a full file holds 71 of them.
        assert_eq!(len, 994, "FILE.{n}");
    }
    assert!(read(&cfg.stdout).len() <= 1000);
    let kept = check_numbered(&read_rotated(&cfg.stdout, 3), "line", 1999);
    assert!(kept > 3 * 71);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_bigger_than_max_size_goes_whole_into_a_fresh_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.max_size = 100;
    cfg.keep = 3;
    let (logs, _) = open(&cfg);
    let huge = "h".repeat(5000);
    let text = format!("small\n{huge}\nafter\n");
    pump_to_eof(&logs, Stream::Out, &[text.as_bytes()]).await;
    assert_eq!(read(&numbered(&cfg.stdout, 2, "")), b"small\n");
    assert_eq!(
        read(&numbered(&cfg.stdout, 1, "")),
        format!("{huge}\n").as_bytes()
    );
    assert_eq!(read(&cfg.stdout), b"after\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_file_is_appended_and_counts_toward_max_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.max_size = 20;
    fs::write(&cfg.stdout, b"previous run 12345\n").expect("seed");
    let (logs, _) = open(&cfg);
    pump_to_eof(&logs, Stream::Out, &[b"new\n"]).await;
    assert_eq!(read(&numbered(&cfg.stdout, 1, "")), b"previous run 12345\n");
    assert_eq!(read(&cfg.stdout), b"new\n");

    // A restart appends.
    drop(logs);
    let (logs, _) = open(&cfg);
    pump_to_eof(&logs, Stream::Out, &[b"again\n"]).await;
    assert_eq!(read(&cfg.stdout), b"new\nagain\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_rotations_are_valid_gzip_in_order() {
    // 14 bytes each: about 70 back-to-back rotations.
    const N: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.max_size = 4096;
    cfg.keep = 200;
    cfg.compress = true;
    let (logs, seen) = open(&cfg);
    let all = numbered_lines(0..N);
    pump_to_eof(&logs, Stream::Out, &[all.as_bytes()]).await;
    wait_compressed(dir.path()).await;
    let mut gz = 0;
    for name in file_names(dir.path()) {
        assert!(!name.contains("rotating"), "temp file left: {name}");
        let is_gz = Path::new(&name).extension().is_some_and(|e| e == "gz");
        gz += usize::from(is_gz);
        assert!(!name.starts_with("svc.out.log.") || is_gz, "{name}");
    }
    assert!(gz > 50, "{gz} gz files");
    assert_eq!(
        check_numbered(&read_rotated(&cfg.stdout, cfg.keep), "line", N - 1),
        N
    );
    assert!(seen.lock().expect("lock").is_empty(), "{:?}", seen.lock());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_rotations_keep_only_keep_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.max_size = 1024;
    cfg.keep = 3;
    cfg.compress = true;
    let (logs, _) = open(&cfg);
    let all = numbered_lines(0..5000);
    pump_to_eof(&logs, Stream::Out, &[all.as_bytes()]).await;
    wait_compressed(dir.path()).await;
    assert_eq!(
        file_names(dir.path()),
        [
            "svc.err.log",
            "svc.out.log",
            "svc.out.log.1.gz",
            "svc.out.log.2.gz",
            "svc.out.log.3.gz"
        ]
    );
    check_numbered(&read_rotated(&cfg.stdout, 3), "line", 4999);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_lines_arrive_none_lost_duplicated_or_split() {
    const N: usize = 1_000_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.max_size = 1 << 20;
    cfg.keep = 100;
    let (logs, _) = open(&cfg);
    let writer = move |mut w: Box<dyn std::io::Write + Send>| {
        let mut block = String::new();
        for i in 0..N {
            block.push_str(&numbered_lines(i..i + 1));
            if block.len() > 50_000 || i == N - 1 {
                w.write_all(block.as_bytes()).expect("write pipe");
                block.clear();
            }
        }
    };
    #[cfg(unix)]
    let pump = {
        let (r, w) = os_pipe();
        let pump = logs.pump(r, Stream::Out);
        std::thread::spawn(move || writer(Box::new(w)));
        pump
    };
    #[cfg(not(unix))]
    let pump = {
        let (mut w, r) = tokio::io::duplex(1 << 16);
        let pump = logs.pump(r, Stream::Out);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
        std::thread::spawn(move || writer(Box::new(Chan(tx))));
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                w.write_all(&b).await.expect("write");
            }
        });
        pump
    };
    join(pump).await;
    assert_eq!(
        check_numbered(&read_rotated(&cfg.stdout, cfg.keep), "line", N - 1),
        N
    );
    let tail = logs.tail(3, None);
    assert_eq!(
        tail.last().map(|l| (l.seq, l.bytes.clone())),
        Some((N as u64 - 1, format!("line {:08}", N - 1).into_bytes()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_keeps_arrival_order_across_streams_and_takes_n() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let (logs, _) = open(&cfg);
    let (mut ow, or) = tokio::io::duplex(1024);
    let (mut ew, er) = tokio::io::duplex(1024);
    let out = logs.pump(or, Stream::Out);
    let err = logs.pump(er, Stream::Err);
    for (i, stream) in ["o", "e", "e", "o", "e"].into_iter().enumerate() {
        let w = if stream == "o" { &mut ow } else { &mut ew };
        w.write_all(format!("{stream}{i}\n").as_bytes())
            .await
            .expect("write");
        wait_until("the line in the tail", || {
            logs.tail(100, None).len() == i + 1
        })
        .await;
    }
    let all = logs.tail(100, None);
    let got: Vec<(u64, Stream, String)> = all
        .iter()
        .map(|l| {
            (
                l.seq,
                l.stream,
                String::from_utf8_lossy(&l.bytes).into_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, Stream::Out, "o0".to_owned()),
            (1, Stream::Err, "e1".to_owned()),
            (2, Stream::Err, "e2".to_owned()),
            (3, Stream::Out, "o3".to_owned()),
            (4, Stream::Err, "e4".to_owned()),
        ]
    );
    let last2: Vec<u64> = logs.tail(2, None).iter().map(|l| l.seq).collect();
    assert_eq!(last2, [3, 4]);
    let err2: Vec<u64> = logs
        .tail(2, Some(Stream::Err))
        .iter()
        .map(|l| l.seq)
        .collect();
    assert_eq!(err2, [2, 4]);
    let out9: Vec<u64> = logs
        .tail(9, Some(Stream::Out))
        .iter()
        .map(|l| l.seq)
        .collect();
    assert_eq!(out9, [0, 3]);
    drop((ow, ew));
    join(out).await;
    join(err).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let (logs, _) = open(&cfg);
    let all = numbered_lines(0..100_000);
    pump_to_eof(&logs, Stream::Out, &[all.as_bytes()]).await;
    let tail = logs.tail(usize::MAX, None);
    assert!(tail.len() >= 1000 && tail.len() < 6000, "{}", tail.len());
    assert_eq!(tail.last().map(|l| l.seq), Some(99_999));
    assert!(tail.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_receive_new_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let (logs, _) = open(&cfg);
    let (mut w, r) = tokio::io::duplex(1024);
    let pump = logs.pump(r, Stream::Out);
    w.write_all(b"before\n").await.expect("write");
    wait_until("the first line", || logs.tail(1, None).len() == 1).await;
    let mut rx = logs.subscribe();
    w.write_all(b"a\nb").await.expect("write");
    w.write_all(b"c\n").await.expect("write");
    drop(w);
    join(pump).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let line = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("timeout")
            .expect("recv");
        got.push((line.seq, line.stream, line.bytes));
    }
    assert_eq!(
        got,
        [
            (1, Stream::Out, b"a".to_vec()),
            (2, Stream::Out, b"bc".to_vec())
        ]
    );
    // The pump has ended: nothing else (no duplicate, no line from before subscribing).
    assert_eq!(
        rx.try_recv().map(|l| l.seq),
        Err(tokio::sync::broadcast::error::TryRecvError::Empty)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfigure_moves_later_lines_to_the_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let (logs, _) = open(&cfg);
    let (mut w, r) = tokio::io::duplex(1024);
    let pump = logs.pump(r, Stream::Out);
    w.write_all(b"old\n").await.expect("write");
    wait_until("the first line", || logs.tail(1, None).len() == 1).await;
    let mut cfg2 = cfg.clone();
    cfg2.stdout = dir.path().join("sub").join("new.log");
    cfg2.timestamps = true;
    logs.reconfigure(&cfg2);
    w.write_all(b"new\n").await.expect("write");
    drop(w);
    join(pump).await;
    assert_eq!(read(&cfg.stdout), b"old\n");
    let new = read(&cfg2.stdout);
    assert!(
        new.ends_with(b"Z new\n") && new.len() == 29,
        "{:?}",
        String::from_utf8_lossy(&new)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf16le_output_is_cut_into_utf8_lines_across_any_read() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.encoding = Some("utf-16le".into());
    let (logs, seen) = open(&cfg);
    // Characters of 1, 2, 3 and 4 UTF-8 bytes (a surrogate pair in UTF-16); odd-sized
    // pieces split code units and surrogate pairs; the flood makes the read buffer grow.
    let mut text = String::new();
    for i in 0..N {
        use std::fmt::Write;
        let _ = writeln!(text, "é€😀 {i:08} {}", "ü".repeat(i % 300));
    }
    text.push_str("last 😀");
    let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let pieces: Vec<&[u8]> = bytes.chunks(4093).collect();
    pump_to_eof(&logs, Stream::Out, &pieces).await;
    text.push('\n');
    assert!(read(&cfg.stdout) == text.as_bytes(), "the file differs");
    let tail = logs.tail(2, None);
    assert_eq!(
        tail[0].bytes,
        format!("é€😀 {:08} {}", N - 1, "ü".repeat((N - 1) % 300)).into_bytes()
    );
    assert_eq!(tail[1].bytes, "last 😀".as_bytes());
    assert_eq!(tail[1].seq, N as u64);
    assert!(seen.lock().expect("lock").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latin1_output_that_doubles_when_decoded_stays_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.encoding = Some("latin1".into());
    let (logs, _) = open(&cfg);
    // Every byte of a line is above 0x7F: 2 bytes in UTF-8. 1.5 MB of raw bytes fill the
    // read buffer up to its largest, and a decoded line nearly fills the tail's budget.
    let line: Vec<u8> = (0..500_000).map(|i| 0xC0 + (i % 0x3F) as u8).collect();
    let mut raw = Vec::new();
    for _ in 0..3 {
        raw.extend_from_slice(&line);
        raw.push(b'\n');
    }
    pump_to_eof(&logs, Stream::Out, &[&raw]).await;
    let want: String = line.iter().map(|&b| char::from(b)).collect();
    assert!(
        read(&cfg.stdout) == format!("{want}\n{want}\n{want}\n").as_bytes(),
        "the file differs"
    );
    let tail = logs.tail(1, None);
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].seq, 2);
    assert!(tail[0].bytes == want.as_bytes(), "the tail differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_encoding_is_reported_and_bytes_pass_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    cfg.encoding = Some("klingon".into());
    let (logs, seen) = open(&cfg);
    pump_to_eof(&logs, Stream::Err, &[b"caf\xe9\n"]).await;
    assert_eq!(read(&dir.path().join("svc.err.log")), b"caf\xe9\n");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with("unknown encoding \"klingon\""),
        "{}",
        seen[0]
    );
    assert!(
        seen[0].ends_with("; passing stderr unchanged"),
        "{}",
        seen[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconfigure_sets_the_encoding_of_later_pumps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let (logs, _) = open(&cfg);
    pump_to_eof(&logs, Stream::Out, &[b"caf\xe9\n"]).await;
    let mut cfg2 = cfg.clone();
    cfg2.encoding = Some("latin1".into());
    logs.reconfigure(&cfg2);
    pump_to_eof(&logs, Stream::Out, &[b"caf\xe9\n"]).await;
    // The first pump passed the byte unchanged, the second decoded it.
    let mut want = b"caf\xe9\n".to_vec();
    want.extend_from_slice("café\n".as_bytes());
    assert_eq!(read(&cfg.stdout), want);
}

/// `/dev/full` fails every write with ENOSPC; the log's directory is a symlink to `/dev`,
/// then to a real directory. (The log file itself is never opened through a symlink, but
/// the directories of the configured path are the config's own choice.)
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_buffers_then_recovers_with_a_marker() {
    // 6 MiB of 14-byte lines: 4 MiB (whole lines) held, the rest dropped and counted.
    const N: usize = 6 * 1024 * 1024 / 14;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    let link_dir = dir.path().join("d");
    std::os::unix::fs::symlink("/dev", &link_dir).expect("symlink");
    let link = link_dir.join("full");
    cfg.stdout = link.clone();
    let (logs, seen) = open(&cfg);
    let (mut w, r) = tokio::io::duplex(1 << 16);
    let pump = logs.pump(r, Stream::Out);

    let all = numbered_lines(0..N);
    w.write_all(all.as_bytes()).await.expect("write");
    wait_until("every line read", || {
        logs.tail(1, None).first().map(|l| l.seq) == Some(N as u64 - 1)
    })
    .await;
    {
        // The failure is reported once, and no recovery.
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].starts_with(&format!("log write to {} failed: ", link.display())),
            "{}",
            seen[0]
        );
        assert!(
            seen[0].ends_with("; buffering up to 4194304 bytes"),
            "{}",
            seen[0]
        );
    }

    // The disk "comes back": the next retry (timer or new output) writes everything held.
    let real_dir = dir.path().join("real");
    fs::create_dir(&real_dir).expect("mkdir");
    let real = real_dir.join("full");
    fs::write(&real, b"").expect("create");
    let tmp = dir.path().join("d.tmp");
    std::os::unix::fs::symlink(&real_dir, &tmp).expect("symlink");
    fs::rename(&tmp, &link_dir).expect("swap link");
    // No output arrives meanwhile: the timer is what recovers.
    wait_until("recovery by the timer", || {
        seen.lock().expect("lock").len() == 2
    })
    .await;
    w.write_all(b"after\n").await.expect("write");
    drop(w);
    join(pump).await;

    let text = String::from_utf8(read(&real)).expect("utf8");
    let mut lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.pop(), Some("after"));
    let marker = lines.pop().expect("marker");
    let kept = lines.len();
    assert!(kept * 14 <= 4 << 20 && kept * 14 > (4 << 20) - 14, "{kept}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line {i:08}"));
    }
    let dropped = (N - kept) * 14;
    assert!(
        marker.starts_with(&format!("[warden] dropped {dropped} bytes of output: ")),
        "{marker}"
    );
    assert!(marker.contains("No space left on device"), "{marker}");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].contains("works again"), "{}", seen[1]);
}

/// Throughput of one pump: `cargo test --release -p warden-core --test logs -- --ignored
/// --nocapture throughput`.
#[cfg(unix)]
#[ignore = "a measurement, run in release mode by hand"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_of_100_byte_lines() {
    const TOTAL: usize = 2 << 30;
    let block = format!("{}\n", "x".repeat(99)).repeat(640);
    let spawn_writer = |mut w: std::io::PipeWriter, block: String| {
        std::thread::spawn(move || {
            use std::io::Write;
            let mut sent = 0;
            while sent < TOTAL {
                w.write_all(block.as_bytes()).expect("write");
                sent += block.len();
            }
        })
    };
    {
        // The baseline: the same pipe read into a 1 MiB buffer and thrown away.
        use tokio::io::AsyncReadExt;
        let (mut r, w) = os_pipe();
        let start = Instant::now();
        let writer = spawn_writer(w, block.clone());
        let mut buf = vec![0u8; 1 << 20];
        while r.read(&mut buf).await.expect("read") > 0 {}
        let secs = start.elapsed().as_secs_f64();
        writer.join().expect("writer");
        println!(
            "raw pipe, read and discard: {:.0} MB/s",
            TOTAL as f64 / secs / 1e6
        );
    }
    {
        // The floor: the same pipe copied into a file with no line logic at all.
        use std::io::Write;
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut file = fs::File::create(dir.path().join("raw.log")).expect("create");
        let (mut r, w) = os_pipe();
        let start = Instant::now();
        let writer = spawn_writer(w, block.clone());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = r.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).expect("write");
        }
        let secs = start.elapsed().as_secs_f64();
        writer.join().expect("writer");
        println!(
            "raw pipe, read and write to a file: {:.0} MB/s",
            TOTAL as f64 / secs / 1e6
        );
    }
    for (timestamps, subscribe) in [(false, false), (true, false), (false, true), (false, false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(dir.path());
        cfg.max_size = 256 << 20;
        cfg.keep = 2;
        cfg.timestamps = timestamps;
        let (logs, _) = open(&cfg);
        let rx = subscribe.then(|| logs.subscribe());
        let (r, w) = os_pipe();
        let start = Instant::now();
        let pump = logs.pump(r, Stream::Out);
        let writer = spawn_writer(w, block.clone());
        join(pump).await;
        let secs = start.elapsed().as_secs_f64();
        writer.join().expect("writer");
        println!(
            "timestamps={timestamps} subscriber={subscribe}: {:.0} MB/s ({:.2} s for {} MiB)",
            TOTAL as f64 / secs / 1e6,
            secs,
            TOTAL >> 20
        );
        drop(rx);
    }
}

/// Resident memory of 100 services (200 pumps on OS pipes) idle after one line each:
/// `cargo test --release -p warden-core --test logs -- --ignored --nocapture idle_memory`.
#[cfg(target_os = "linux")]
#[ignore = "a measurement, run in release mode by hand"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_memory_of_100_services() {
    fn rss_kib() -> usize {
        let statm = fs::read_to_string("/proc/self/statm").expect("statm");
        let pages: usize = statm
            .split_whitespace()
            .nth(1)
            .expect("rss")
            .parse()
            .expect("number");
        pages * 4
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let before = rss_kib();
    let mut keep = Vec::new();
    for i in 0..100 {
        let mut cfg = config(dir.path());
        cfg.stdout = dir.path().join(format!("s{i}.out.log"));
        cfg.stderr = StderrTarget::File(dir.path().join(format!("s{i}.err.log")));
        let (logs, _) = open(&cfg);
        for stream in [Stream::Out, Stream::Err] {
            let (r, mut w) = os_pipe();
            let pump = logs.pump(r, stream);
            std::io::Write::write_all(&mut w, b"hello from a service\n").expect("write");
            keep.push((pump, w));
        }
        wait_until("both lines", || logs.tail(2, None).len() == 2).await;
    }
    let after = rss_kib();
    println!(
        "100 services, 200 idle pumps: {} KiB more resident",
        after.saturating_sub(before)
    );
    drop(keep);
}
