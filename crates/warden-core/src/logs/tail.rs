//! The in-memory tail of a service: the last lines of both streams in arrival order.
//!
//! A chunk of whole lines is appended in bulk to a byte ring, with one index entry per chunk
//! (not per line): the hot path costs a `memcpy` and a newline count. Lines are cut apart
//! only when [`Tail::last`] is asked for them.

use std::collections::VecDeque;
use std::time::SystemTime;

use super::Stream;
use super::capture::LogLine;
use super::scan;

/// Lines kept: at least this many (when they fit in [`TAIL_BYTES`]).
pub(crate) const TAIL_LINES: usize = 1000;
/// Bytes kept, about (one chunk more at most).
pub(crate) const TAIL_BYTES: usize = 1 << 20;

/// One appended chunk: whole lines of one stream that arrived together.
struct Seg {
    stream: Stream,
    at: SystemTime,
    first_seq: u64,
    lines: usize,
    len: usize,
}

pub(crate) struct Tail {
    bytes: VecDeque<u8>,
    segs: VecDeque<Seg>,
    lines: usize,
    next_seq: u64,
    max_lines: usize,
    max_bytes: usize,
}

impl Tail {
    pub(crate) fn new(max_lines: usize, max_bytes: usize) -> Tail {
        Tail {
            bytes: VecDeque::new(),
            segs: VecDeque::new(),
            lines: 0,
            next_seq: 0,
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Append `data` (whole lines, each ending with `\n`); returns the seq of its first line.
    pub(crate) fn push(&mut self, stream: Stream, at: SystemTime, mut data: &[u8]) -> u64 {
        let first_seq = self.next_seq;
        let total = scan::count_nl(data);
        self.next_seq += total as u64;
        let mut seg_first = first_seq;
        let mut lines = total;
        if data.len() > self.max_bytes {
            // Keep only the lines that start in the last `max_bytes` bytes.
            let cut = data.len() - self.max_bytes;
            let skip = scan::find_nl(&data[cut - 1..]).map_or(data.len(), |i| cut + i);
            let skipped = scan::count_nl(&data[..skip]);
            seg_first += skipped as u64;
            lines -= skipped;
            data = &data[skip..];
        }
        if lines > self.max_lines {
            // Only its last `max_lines` lines can stay (they push out all older ones): copy
            // no more. `data` ends with `\n`; find the newline before those lines.
            let mut nl = data.len() - 1;
            for _ in 0..self.max_lines {
                nl = scan::rfind_nl(&data[..nl]).unwrap_or(0);
            }
            seg_first += (lines - self.max_lines) as u64;
            lines = self.max_lines;
            data = &data[nl + 1..];
        }
        if lines == 0 {
            return first_seq;
        }
        self.bytes.extend(data);
        self.segs.push_back(Seg {
            stream,
            at,
            first_seq: seg_first,
            lines,
            len: data.len(),
        });
        self.lines += lines;
        while let Some(front) = self.segs.front() {
            let over_lines = self.lines - front.lines >= self.max_lines;
            let over_bytes = self.bytes.len() > self.max_bytes && self.segs.len() > 1;
            if !(over_lines || over_bytes) {
                break;
            }
            self.lines -= front.lines;
            self.bytes.drain(..front.len);
            self.segs.pop_front();
        }
        if self.segs.is_empty() {
            self.bytes = VecDeque::new();
        }
        first_seq
    }

    /// The seq the next line will get.
    #[cfg(test)]
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last `n` lines of `stream` (or both), oldest first.
    pub(crate) fn last(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine> {
        let mut out: Vec<LogLine> = Vec::new();
        let mut end = self.bytes.len();
        let mut seg_bytes = Vec::new();
        for seg in self.segs.iter().rev() {
            let start = end - seg.len;
            let range = start..end;
            end = start;
            if out.len() >= n {
                break;
            }
            if stream.is_some_and(|s| s != seg.stream) {
                continue;
            }
            seg_bytes.clear();
            seg_bytes.extend(self.bytes.range(range));
            let mut lines: Vec<&[u8]> = scan::lines(&seg_bytes).collect();
            let take = lines.len().min(n - out.len());
            let skip = lines.len() - take;
            for (i, line) in lines.drain(skip..).enumerate().rev() {
                out.push(LogLine {
                    seq: seg.first_seq + (skip + i) as u64,
                    stream: seg.stream,
                    at: seg.at,
                    bytes: line.to_vec(),
                });
            }
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;

    fn texts(lines: &[LogLine]) -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                format!(
                    "{}:{}:{}",
                    l.seq,
                    l.stream.as_str(),
                    String::from_utf8_lossy(&l.bytes)
                )
            })
            .collect()
    }

    #[test]
    fn keeps_order_across_streams_and_filters() {
        let mut t = Tail::new(100, 1 << 20);
        let now = SystemTime::now();
        t.push(Stream::Out, now, b"a\nb\n");
        t.push(Stream::Err, now, b"c\n");
        t.push(Stream::Out, now, b"d\n");
        assert_eq!(texts(&t.last(3, None)), ["1:out:b", "2:err:c", "3:out:d"]);
        assert_eq!(
            texts(&t.last(10, Some(Stream::Out))),
            ["0:out:a", "1:out:b", "3:out:d"]
        );
        assert_eq!(texts(&t.last(1, Some(Stream::Err))), ["2:err:c"]);
        assert!(t.last(0, None).is_empty());
    }

    #[test]
    fn bounds_lines_and_bytes() {
        let mut t = Tail::new(10, 64);
        let now = SystemTime::now();
        for i in 0..100 {
            t.push(Stream::Out, now, format!("line {i}\n").as_bytes());
        }
        let all = t.last(usize::MAX, None);
        assert!(all.len() >= 8 && all.len() <= 11, "{}", all.len());
        assert_eq!(all.last().map(|l| l.seq), Some(99));
        // A chunk bigger than the byte budget keeps its last lines only.
        let mut big = String::new();
        for i in 0..50 {
            let _ = writeln!(big, "big {i:04}");
        }
        let first = t.push(Stream::Err, now, big.as_bytes());
        assert_eq!(first, 100);
        let all = t.last(usize::MAX, None);
        assert_eq!(all.last().map(|l| l.seq), Some(149));
        assert_eq!(
            all.last().map(|l| l.bytes.clone()),
            Some(b"big 0049".to_vec())
        );
        assert!(all.iter().all(|l| l.bytes.starts_with(b"big ")));
        assert_eq!(t.next_seq(), 150);
    }

    /// A chunk of more lines than are kept copies only the last ones, with their own seqs.
    #[test]
    fn a_chunk_of_many_lines_keeps_its_last_ones() {
        let mut t = Tail::new(3, 1 << 20);
        let now = SystemTime::now();
        t.push(Stream::Out, now, b"a\n");
        let first = t.push(Stream::Err, now, b"b\nc\nd\ne\nf\n");
        assert_eq!(first, 1);
        assert_eq!(t.bytes.len(), 6, "only d, e, f are copied");
        assert_eq!(texts(&t.last(10, None)), ["3:err:d", "4:err:e", "5:err:f"]);
        // Exactly as many lines as are kept: all of them, nothing before.
        let mut t = Tail::new(3, 1 << 20);
        t.push(Stream::Out, now, b"x\ny\nz\n");
        assert_eq!(texts(&t.last(10, None)), ["0:out:x", "1:out:y", "2:out:z"]);
        assert_eq!(t.next_seq(), 3);
    }
}
