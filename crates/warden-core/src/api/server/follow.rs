//! Follow streams (`logs?follow=true`): the backlog, then every new line, as NDJSON.

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;

use super::LogSource;
use crate::logs::LogLine;
use crate::model::Stream;
use crate::proto::{FollowItem, LogLineJson};
use crate::util::rfc3339_ms;

/// Chunks buffered between a follow stream's task and its connection.
pub(super) const FOLLOW_BUFFER: usize = 64;

/// One line of output as the API sends it.
pub(super) fn line_json(l: &LogLine) -> LogLineJson {
    LogLineJson {
        seq: l.seq,
        stream: l.stream,
        at: rfc3339_ms(l.at),
        line: String::from_utf8_lossy(&l.bytes).into_owned(),
    }
}

fn ndjson(item: &impl Serialize) -> Bytes {
    let mut data = serde_json::to_vec(item).unwrap_or_default();
    data.push(b'\n');
    data.into()
}

/// The task behind a follow stream: the backlog, then every new line of `filter`'s stream,
/// as NDJSON chunks into `out`. A reader that falls behind never slows the service: the
/// broadcast drops lines for it; the task then refills what it missed from the in-memory
/// tail (`recover`, held weakly so a removed service still ends the stream), and only lines
/// the tail no longer holds are reported as `{"dropped": N}`. Ends when the reader hangs up
/// (`out` closes) or the service's logs go away.
pub(super) async fn follow_task(
    backlog: Vec<LogLine>,
    start_after: Option<u64>,
    mut live: broadcast::Receiver<LogLine>,
    filter: Option<Stream>,
    out: mpsc::Sender<Bytes>,
    recover: Option<std::sync::Weak<dyn LogSource>>,
) {
    let mut follow = Follow {
        last: backlog.last().map(|l| l.seq).max(start_after),
        filter,
        chunk: Vec::new(),
    };
    for line in &backlog {
        follow.push(line);
        if follow.chunk.len() >= FOLLOW_CHUNK && !follow.flush(&out).await {
            return;
        }
    }
    if !follow.flush(&out).await {
        return;
    }
    loop {
        let first = tokio::select! {
            () = out.closed() => return,
            r = live.recv() => r,
        };
        // Take whatever else is already there too, so a burst travels in few chunks.
        let mut next = Some(first);
        while let Some(received) = next.take() {
            match received {
                Ok(line) => follow.take(&line),
                Err(RecvError::Lagged(n)) => {
                    let Some(source) = recover.as_ref().and_then(std::sync::Weak::upgrade) else {
                        if recover.is_some() {
                            return;
                        }
                        follow
                            .chunk
                            .extend_from_slice(&ndjson(&FollowItem::Dropped { dropped: n }));
                        break;
                    };
                    let missed = source.tail(usize::MAX, None);
                    drop(source);
                    follow.refill(&missed, n);
                }
                Err(RecvError::Closed) => {
                    let _ = follow.flush(&out).await;
                    return;
                }
            }
            if follow.chunk.len() < FOLLOW_CHUNK {
                next = match live.try_recv() {
                    Ok(l) => Some(Ok(l)),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Some(Err(RecvError::Lagged(n)))
                    }
                    Err(broadcast::error::TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                    Err(broadcast::error::TryRecvError::Empty) => None,
                };
            }
        }
        if !follow.flush(&out).await {
            return;
        }
    }
}

/// Flush a follow chunk at about this size.
const FOLLOW_CHUNK: usize = 64 << 10;

/// The state of one follow stream: the last sequence number sent (or skipped by the filter)
/// and the chunk being built.
struct Follow {
    last: Option<u64>,
    filter: Option<Stream>,
    chunk: Vec<u8>,
}

impl Follow {
    fn push(&mut self, line: &LogLine) {
        self.last = Some(line.seq);
        if self.filter.is_none_or(|f| f == line.stream) {
            self.chunk.extend_from_slice(&ndjson(&line_json(line)));
        }
    }

    /// A live line: skip what was sent already.
    fn take(&mut self, line: &LogLine) {
        if self.last.is_none_or(|s| line.seq > s) {
            self.push(line);
        }
    }

    /// After a lag of `n` lines: send what the tail still holds; report what it lost.
    fn refill(&mut self, tail: &[LogLine], n: u64) {
        let missed: Vec<&LogLine> = tail
            .iter()
            .filter(|l| self.last.is_none_or(|s| l.seq > s))
            .collect();
        // Sequence numbers start at 0 for each service.
        let expected = self.last.map_or(0, |s| s + 1);
        let gap = missed
            .first()
            .map_or(n, |first| first.seq.saturating_sub(expected));
        if gap > 0 {
            self.chunk
                .extend_from_slice(&ndjson(&FollowItem::Dropped { dropped: gap }));
        }
        for l in missed {
            self.push(l);
        }
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
