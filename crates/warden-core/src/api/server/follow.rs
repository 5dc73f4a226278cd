//! Follow streams (`logs?follow=true`): the backlog, then every new line, as NDJSON.
//!
//! Each follower has a byte budget ([`FOLLOW_BUDGET`]): what its task holds (the chunk being
//! built and the live lines waiting behind it) and what is queued for its connection. A
//! follower that reads slower than the service writes never makes warden hold more: the
//! lines it cannot take now stay in the service's in-memory tail, which the task reads
//! again when there is room, and what the tail lost meanwhile is reported as
//! `{"dropped": N}`. Nothing here depends on the allocator giving memory back: every buffer
//! is bounded, and all of it goes with the follower.

use std::collections::VecDeque;
use std::sync::Weak;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::mpsc;

use super::LogSource;
use crate::logs::LogLine;
use crate::model::Stream;
use crate::proto::{FollowItem, LogLineJson};
use crate::util::rfc3339_ms;

/// NDJSON gathered into one chunk before it is handed to the connection (a line longer than
/// this is one chunk of its own).
pub const FOLLOW_CHUNK: usize = 16 << 10;
/// Chunks queued between a follow stream's task and its connection.
pub(super) const FOLLOW_QUEUE: usize = 1;
/// Live lines (raw bytes) a follower's task keeps while its chunk is full; older ones are
/// read back from the tail later.
const PENDING_BYTES: usize = FOLLOW_CHUNK;
/// Lines read back from the tail and kept to be sent (raw bytes): one copy of the tail is
/// made per this much sent.
const REFILL_KEEP: usize = 64 << 10;
/// Past its backlog, a follower more lines behind than this skips to the newest ones.
const REFILL_LINES: u64 = 64;
/// What one follower may make warden hold, about (plus one line of each kind): the chunk
/// being built, the live lines behind it, the lines read back from the tail, and the queue
/// to its connection. The HTTP library's write buffer adds at most its own bound
/// (`max_buf_size`).
pub const FOLLOW_BUDGET: usize =
    FOLLOW_CHUNK + PENDING_BYTES + REFILL_KEEP + FOLLOW_QUEUE * FOLLOW_CHUNK;
/// Live lines taken from the broadcast in one go before the task looks at its connection.
const DRAIN_BATCH: usize = 256;

/// One line of output as the API sends it.
pub(super) fn line_json(l: &LogLine) -> LogLineJson {
    LogLineJson {
        seq: l.seq,
        stream: l.stream,
        at: rfc3339_ms(l.at),
        line: String::from_utf8_lossy(&l.bytes).into_owned(),
    }
}

fn ndjson(item: &impl Serialize) -> Vec<u8> {
    let mut data = serde_json::to_vec(item).unwrap_or_default();
    data.push(b'\n');
    data
}

/// The task behind a follow stream: `backlog`, then every line after `start_after` (the
/// tail's, then live ones) of `filter`'s stream, as NDJSON chunks into `out`. A reader that
/// falls behind never slows the service and never costs more than [`FOLLOW_BUDGET`]: the
/// task keeps draining the broadcast, keeps only the newest live lines, and refills the
/// rest from the in-memory tail (`recover`, held weakly so a removed service still ends the
/// stream); only lines the tail no longer holds are reported as `{"dropped": N}`. Without
/// `recover`, lost lines are counted from the broadcast's lag. Ends when the reader hangs
/// up (`out` closes) or the service's logs go away.
pub(super) async fn follow_task(
    backlog: Vec<LogLine>,
    start_after: Option<u64>,
    mut live: broadcast::Receiver<LogLine>,
    filter: Option<Stream>,
    out: mpsc::Sender<Bytes>,
    recover: Option<Weak<dyn LogSource>>,
) {
    let mut f = Follow {
        last: backlog.last().map(|l| l.seq).max(start_after),
        filter,
        chunk: Vec::new(),
        refilled: VecDeque::new(),
        refilled_bytes: 0,
        pending: VecDeque::new(),
        pending_bytes: 0,
        // With a tail to read from, start by reading it: lines may have come since the
        // caller looked.
        behind: recover.is_some(),
        lost: 0,
        backlog_end: recover
            .as_ref()
            .and_then(Weak::upgrade)
            .and_then(|s| s.tail(1, None).last().map(|l| l.seq)),
    };
    for line in &backlog {
        f.push(line);
        if f.chunk.len() >= FOLLOW_CHUNK && !f.flush(&out).await {
            return;
        }
    }
    drop(backlog);
    loop {
        // Take what the broadcast holds now, so a burst travels in few chunks.
        for _ in 0..DRAIN_BATCH {
            match live.try_recv() {
                Ok(line) => f.live(line),
                Err(TryRecvError::Lagged(n)) => f.lagged(n),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => {
                    let _ = f.flush(&out).await;
                    return;
                }
            }
        }
        let ready =
            !f.chunk.is_empty() || f.behind || !f.pending.is_empty() || !f.refilled.is_empty();
        tokio::select! {
            biased;
            () = out.closed() => return,
            permit = out.reserve(), if ready => {
                let Ok(permit) = permit else { return };
                if f.chunk.is_empty() && !f.fill(recover.as_ref()) {
                    return;
                }
                if !f.chunk.is_empty() {
                    permit.send(Bytes::from(std::mem::take(&mut f.chunk)));
                }
            }
            // While the reader does not take more, lines still leave the broadcast: a
            // stalled follower holds no slot of it.
            received = live.recv() => match received {
                Ok(line) => f.live(line),
                Err(RecvError::Lagged(n)) => f.lagged(n),
                Err(RecvError::Closed) => {
                    let _ = f.flush(&out).await;
                    return;
                }
            },
        }
    }
}

/// The state of one follow stream.
struct Follow {
    /// The last sequence number sent (or skipped by the filter, or counted as dropped).
    last: Option<u64>,
    filter: Option<Stream>,
    /// NDJSON not yet handed on.
    chunk: Vec<u8>,
    /// Lines read back from the tail, not yet sent, oldest first.
    refilled: VecDeque<LogLine>,
    refilled_bytes: usize,
    /// Live lines that came while `chunk` was full, oldest first.
    pending: VecDeque<LogLine>,
    pending_bytes: usize,
    /// Lines between `last` and the first pending one (or the newest) may be missing: read
    /// them from the tail before sending more.
    behind: bool,
    /// Without a tail to read from: lines lost since the last report.
    lost: u64,
    /// The newest line when the stream began: up to it, every line the tail holds is sent.
    backlog_end: Option<u64>,
}

impl Follow {
    fn push(&mut self, line: &LogLine) {
        self.last = Some(line.seq);
        if self.filter.is_none_or(|f| f == line.stream) {
            self.chunk.extend_from_slice(&ndjson(&line_json(line)));
        }
    }

    /// Whether `line` is after what was sent.
    fn is_new(&self, line: &LogLine) -> bool {
        self.last.is_none_or(|s| line.seq > s)
    }

    fn dropped(&mut self, n: u64) {
        if n > 0 {
            self.chunk
                .extend_from_slice(&ndjson(&FollowItem::Dropped { dropped: n }));
        }
    }

    /// A live line: sent with the chunk if there is room and nothing waits before it; kept
    /// among the pending ones otherwise (the oldest of those go, the tail has them).
    fn live(&mut self, line: LogLine) {
        if !self.is_new(&line) {
            return;
        }
        if !self.behind && self.pending.is_empty() && self.chunk.len() < FOLLOW_CHUNK {
            self.push(&line);
            return;
        }
        self.pending_bytes += line.bytes.len();
        self.pending.push_back(line);
        while self.pending_bytes > PENDING_BYTES && self.pending.len() > 1 {
            if let Some(old) = self.pending.pop_front() {
                self.pending_bytes -= old.bytes.len();
                self.behind = true;
                if self.filter.is_none_or(|f| f == old.stream) {
                    // Counted only without a tail; a refill starts the count anew.
                    self.lost += 1;
                }
            }
        }
    }

    /// The broadcast lost `n` lines for this follower.
    fn lagged(&mut self, n: u64) {
        self.behind = true;
        self.lost += n;
    }

    /// Fill the empty chunk, in order: the lines read back from the tail before, more from
    /// the tail (if behind), then the pending live lines; up to [`FOLLOW_CHUNK`]. `false`:
    /// the service's logs are gone.
    fn fill(&mut self, recover: Option<&Weak<dyn LogSource>>) -> bool {
        self.take_refilled();
        if self.behind && self.refilled.is_empty() && self.chunk.len() < FOLLOW_CHUNK {
            if let Some(weak) = recover {
                let Some(source) = weak.upgrade() else {
                    return false;
                };
                // The tail is read up to the first live line still kept, if any.
                let upto = self.pending.front().map(|l| l.seq);
                self.refill(source.as_ref(), upto);
                drop(source);
                self.take_refilled();
            } else {
                let lost = std::mem::take(&mut self.lost);
                self.dropped(lost);
                self.behind = false;
            }
        }
        while self.chunk.len() < FOLLOW_CHUNK && !self.behind && self.refilled.is_empty() {
            let Some(line) = self.pending.pop_front() else {
                break;
            };
            self.pending_bytes -= line.bytes.len();
            if self.is_new(&line) {
                if recover.is_some() {
                    // Lines before it that neither the tail nor the broadcast had.
                    self.gap_before(&line);
                }
                self.push(&line);
            }
        }
        true
    }

    /// Report the lines missing between the last one sent and `line`.
    fn gap_before(&mut self, line: &LogLine) {
        // Sequence numbers start at 0 for each service.
        let expected = self.last.map_or(0, |s| s + 1);
        self.dropped(line.seq.saturating_sub(expected));
    }

    /// Move lines read back from the tail into the chunk, as many as fit.
    fn take_refilled(&mut self) {
        while self.chunk.len() < FOLLOW_CHUNK {
            let Some(line) = self.refilled.pop_front() else {
                break;
            };
            self.refilled_bytes -= line.bytes.len();
            if self.is_new(&line) {
                self.gap_before(&line);
                self.push(&line);
            }
        }
    }

    /// Read back from the tail the lines after `last` and before `upto` (all of them
    /// without `upto`): the oldest [`REFILL_KEEP`] bytes of them are kept to be sent, the
    /// rest stays in the tail for the next time (then still behind). The copy of the tail
    /// is dropped before the next await, so at most one per worker thread exists at a time,
    /// whatever the number of followers; it is made once per [`REFILL_KEEP`] bytes sent.
    fn refill(&mut self, source: &dyn LogSource, upto: Option<u64>) {
        self.lost = 0;
        let newest = source.tail(1, None).last().map(|l| l.seq);
        // Sequence numbers start at 0 for each service. The tail gives its last lines: ask
        // for every one after `last` up to the newest.
        let expected = self.last.map_or(0, |s| s + 1);
        let mut want = newest.map_or(0, |n| (n + 1).saturating_sub(expected));
        // Past the backlog, a follower this far behind is skipped forward to the newest
        // lines: reading all it missed from the tail would cost a copy of the tail for each
        // chunk it takes.
        let in_backlog = self.backlog_end.is_some_and(|end| expected <= end);
        if !in_backlog {
            // The lines skipped are reported as dropped before the first one sent.
            want = want.min(REFILL_LINES);
        }
        if want > 0 {
            let lines = source.tail(usize::try_from(want).unwrap_or(usize::MAX), None);
            for line in lines {
                if !self.is_new(&line) || upto.is_some_and(|u| line.seq >= u) {
                    continue;
                }
                if self.refilled_bytes >= REFILL_KEEP {
                    return;
                }
                self.refilled_bytes += line.bytes.len();
                self.refilled.push_back(line);
            }
        }
        self.behind = false;
    }

    /// Send the chunk; `false` when the reader hung up.
    async fn flush(&mut self, out: &mpsc::Sender<Bytes>) -> bool {
        if self.chunk.is_empty() {
            return true;
        }
        out.send(Bytes::from(std::mem::take(&mut self.chunk)))
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::Value;

    use super::*;

    #[test]
    fn log_lines_are_lossy_utf8() {
        let l = LogLine {
            seq: 3,
            stream: Stream::Out,
            at: std::time::UNIX_EPOCH,
            bytes: b"a\xffb".to_vec(),
        };
        let j = line_json(&l);
        assert_eq!(j.line, "a\u{fffd}b");
        assert_eq!(j.at, "1970-01-01T00:00:00.000Z");
    }

    fn line(seq: u64, stream: Stream) -> LogLine {
        LogLine {
            seq,
            stream,
            at: std::time::UNIX_EPOCH,
            bytes: format!("line {seq}").into_bytes(),
        }
    }

    /// The reading end of a follow stream, one NDJSON item at a time (a chunk may hold
    /// several).
    struct Items {
        rx: mpsc::Receiver<Bytes>,
        pending: std::collections::VecDeque<Value>,
    }

    impl Items {
        fn new(rx: mpsc::Receiver<Bytes>) -> Items {
            Items {
                rx,
                pending: std::collections::VecDeque::new(),
            }
        }

        async fn next(&mut self) -> Value {
            if self.pending.is_empty() {
                let chunk = tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
                    .await
                    .expect("in time")
                    .expect("a chunk");
                assert_eq!(chunk.last(), Some(&b'\n'), "chunks hold whole lines");
                self.pending.extend(
                    chunk
                        .split(|b| *b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(|l| serde_json::from_slice::<Value>(l).expect("json")),
                );
            }
            self.pending.pop_front().expect("an item")
        }

        /// Nothing more is queued now.
        fn assert_idle(&mut self) {
            assert!(self.pending.is_empty(), "left: {:?}", self.pending);
            assert!(self.rx.try_recv().is_err(), "no chunk waits");
        }
    }

    /// A log source whose tail is set by the test.
    struct TailOnly(std::sync::Mutex<Vec<LogLine>>);

    impl LogSource for TailOnly {
        fn tail(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine> {
            let all = self.0.lock().expect("lock");
            let lines: Vec<LogLine> = all
                .iter()
                .filter(|l| stream.is_none_or(|s| s == l.stream))
                .cloned()
                .collect();
            lines[lines.len().saturating_sub(n)..].to_vec()
        }

        fn subscribe(&self) -> broadcast::Receiver<LogLine> {
            unreachable!("the test subscribes itself")
        }

        fn rotate(&self) -> Vec<(std::path::PathBuf, crate::logs::Rotation)> {
            unreachable!("the follow tests rotate nothing")
        }
    }

    // The tests run on one thread: the follow task runs only while the test awaits, so what
    // it has received at each step is known exactly.
    #[tokio::test]
    async fn follow_skips_duplicates_filters_and_reports_lag() {
        let (tx, live) = broadcast::channel(2);
        let (out, rx) = mpsc::channel(8);
        let mut items = Items::new(rx);
        // Lines 1..=2 are the backlog; 2 also arrives live (subscribed before the tail).
        tx.send(line(2, Stream::Out)).expect("send");
        let task = tokio::spawn(follow_task(
            vec![line(1, Stream::Out), line(2, Stream::Out)],
            None,
            live,
            Some(Stream::Out),
            out,
            None,
        ));
        assert_eq!(items.next().await["seq"], 1);
        assert_eq!(items.next().await["seq"], 2);
        tx.send(line(3, Stream::Err)).expect("send");
        tx.send(line(4, Stream::Out)).expect("send");
        assert_eq!(items.next().await["seq"], 4, "the err line is filtered");
        // Overflow the broadcast (capacity 2) before the task reads: 5..=7 are lost.
        for seq in 5..=9 {
            tx.send(line(seq, Stream::Out)).expect("send");
        }
        assert_eq!(items.next().await, serde_json::json!({ "dropped": 3 }));
        assert_eq!(items.next().await["seq"], 8);
        assert_eq!(items.next().await["seq"], 9);
        items.assert_idle();
        // The reader hangs up: the task ends although no line comes.
        drop(items);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("task ends")
            .expect("no panic");
    }

    #[tokio::test]
    async fn a_lag_is_refilled_from_the_tail_and_only_the_lost_lines_are_counted() {
        // Sequence numbers start at 0: a follower that saw nothing yet expects line 0 first.
        let source = Arc::new(TailOnly(std::sync::Mutex::new(Vec::new())));
        let weak = Arc::downgrade(&(source.clone() as Arc<dyn LogSource>));
        let (tx, live) = broadcast::channel(2);
        let (out, rx) = mpsc::channel(8);
        let mut items = Items::new(rx);
        let task = tokio::spawn(follow_task(
            Vec::new(),
            None,
            live,
            Some(Stream::Out),
            out,
            Some(weak),
        ));
        tokio::task::yield_now().await;
        // 0..=5 are written while the follower does not read; the tail still holds them all.
        for seq in 0..=5 {
            let stream = if seq == 3 { Stream::Err } else { Stream::Out };
            source.0.lock().expect("lock").push(line(seq, stream));
            tx.send(line(seq, stream)).expect("send");
        }
        for seq in [0, 1, 2, 4, 5] {
            assert_eq!(items.next().await["seq"], seq, "refilled, nothing dropped");
        }
        items.assert_idle();
        // 6..=11 are written; the tail has lost 6 and 7 by now.
        {
            let mut tail = source.0.lock().expect("lock");
            tail.clear();
            tail.extend((8..=11).map(|seq| line(seq, Stream::Out)));
        }
        for seq in 6..=11 {
            tx.send(line(seq, Stream::Out)).expect("send");
        }
        assert_eq!(items.next().await, serde_json::json!({ "dropped": 2 }));
        for seq in 8..=11 {
            assert_eq!(items.next().await["seq"], seq);
        }
        items.assert_idle();
        // The service goes away: the stream ends.
        drop(source);
        tx.send(line(12, Stream::Out)).expect("send");
        tx.send(line(13, Stream::Out)).expect("send");
        tx.send(line(14, Stream::Out)).expect("send");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("task ends")
            .expect("no panic");
    }

    #[tokio::test]
    async fn follow_skips_what_preceded_it_after_a_lag() {
        // n = 0: nothing is sent of lines 0..=4, which were there before the follow began.
        let tail: Vec<LogLine> = (0..=4).map(|seq| line(seq, Stream::Out)).collect();
        let source = Arc::new(TailOnly(std::sync::Mutex::new(tail)));
        let weak = Arc::downgrade(&(source.clone() as Arc<dyn LogSource>));
        let (tx, live) = broadcast::channel(1);
        let (out, rx) = mpsc::channel(8);
        let mut items = Items::new(rx);
        let task = tokio::spawn(follow_task(
            Vec::new(),
            Some(4),
            live,
            None,
            out,
            Some(weak),
        ));
        tokio::task::yield_now().await;
        for seq in 5..=7 {
            source.0.lock().expect("lock").push(line(seq, Stream::Out));
            tx.send(line(seq, Stream::Out)).expect("send");
        }
        for seq in 5..=7 {
            assert_eq!(items.next().await["seq"], seq);
        }
        items.assert_idle();
        drop(items);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("task ends")
            .expect("no panic");
    }

    #[tokio::test]
    async fn follow_ends_when_the_logs_go_away() {
        let (tx, live) = broadcast::channel::<LogLine>(4);
        let (out, mut rx) = mpsc::channel(8);
        let task = tokio::spawn(follow_task(Vec::new(), None, live, None, out, None));
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("task ends")
            .expect("no panic");
        assert!(rx.recv().await.is_none());
    }
}
