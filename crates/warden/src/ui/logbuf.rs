//! The log pane's lines: a bounded buffer (the oldest lines go first), so a flooding service
//! costs a fixed amount of memory and every frame renders from at most [`CAPACITY`] lines.

use std::collections::VecDeque;

use warden_core::logs::Stream;

/// Lines kept for the log pane.
pub const CAPACITY: usize = 5_000;
/// Characters of one line kept (a longer line is cut, with a marker).
pub const MAX_LINE: usize = 4_096;

/// One line of the pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The service it came from.
    pub service: String,
    /// `None`: a note of the UI or of warden (`N lines skipped`), not output.
    pub stream: Option<Stream>,
    /// RFC 3339 UTC with milliseconds (sorts as text).
    pub at: String,
    pub line: String,
}

impl Entry {
    pub fn new(service: &str, stream: Option<Stream>, at: String, line: &str) -> Entry {
        let mut line = printable(line);
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push_str(" [warden ui: line cut]");
        }
        Entry {
            service: service.to_owned(),
            stream,
            at,
            line,
        }
    }
}

/// `line` without what would drive the terminal: ANSI escape sequences are dropped, a tab
/// becomes spaces, any other control character a `?`.
pub fn printable(line: &str) -> String {
    if !line.chars().any(char::is_control) {
        return line.to_owned();
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ params final-byte; OSC: ESC ] ... BEL or ESC \; others: ESC X.
                match chars.next() {
                    Some('[') => {
                        for c in chars.by_ref() {
                            if ('@'..='~').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(c) = chars.next() {
                            if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            '\t' => out.push_str("    "),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The lines, oldest first, and how far the view is scrolled up.
#[derive(Debug, Default)]
pub struct LogBuf {
    lines: VecDeque<Entry>,
    /// Lines between the newest one and the bottom of the view; 0 follows new lines.
    scroll: usize,
}

impl LogBuf {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Entry> {
        self.lines.get(i)
    }

    pub fn clear(&mut self) {
        self.lines.clear();
        self.scroll = 0;
    }

    /// Whether new lines scroll into view (not scrolled up).
    pub fn following(&self) -> bool {
        self.scroll == 0
    }

    pub fn scroll(&self) -> usize {
        self.scroll
    }

    /// The index of the line at the bottom of the view.
    pub fn bottom(&self) -> Option<usize> {
        self.lines.len().checked_sub(1 + self.scroll)
    }

    /// Add a line in time order: appended, or (interleaving several services) inserted after
    /// the last line that is not newer. A paused view stays on the lines it shows.
    pub fn push(&mut self, entry: Entry) {
        let mut at = self.lines.len();
        while at > 0 && self.lines[at - 1].at > entry.at && !entry.at.is_empty() {
            at -= 1;
        }
        let below_view = at + self.scroll >= self.lines.len();
        self.lines.insert(at, entry);
        if self.scroll > 0 && !below_view {
            // Inserted above the bottom of the view: nothing moves.
        } else if self.scroll > 0 {
            self.scroll += 1;
        }
        if self.lines.len() > CAPACITY {
            self.lines.pop_front();
            self.scroll = self.scroll.min(self.lines.len().saturating_sub(1));
        }
    }

    /// Scroll up (toward older lines) by `n`; this pauses the follow.
    pub fn up(&mut self, n: usize) {
        self.scroll = (self.scroll + n).min(self.lines.len().saturating_sub(1));
    }

    /// Scroll down by `n`; at the bottom the follow resumes.
    pub fn down(&mut self, n: usize) {
        self.scroll = self.scroll.saturating_sub(n);
    }

    pub fn top(&mut self) {
        self.scroll = self.lines.len().saturating_sub(1);
    }

    pub fn follow(&mut self) {
        self.scroll = 0;
    }

    /// Put line `i` at the bottom of the view, then `context` lines lower so it is not on
    /// the edge.
    pub fn show(&mut self, i: usize, context: usize) {
        let below = self.lines.len().saturating_sub(1 + i);
        self.scroll = below.saturating_sub(context);
    }

    /// The matches of `needle` (case-insensitive), from the line before `from` upward
    /// (`older`) or from the line after it downward.
    pub fn find(&self, needle: &str, from: Option<usize>, older: bool) -> Option<usize> {
        if needle.is_empty() {
            return None;
        }
        let needle = needle.to_ascii_lowercase();
        let hit = |i: &usize| {
            self.lines
                .get(*i)
                .is_some_and(|e| e.line.to_ascii_lowercase().contains(&needle))
        };
        let len = self.lines.len();
        if older {
            let start = from.unwrap_or(len);
            (0..start.min(len)).rev().find(hit)
        } else {
            let start = from.map_or(0, |f| f + 1);
            (start..len).find(hit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(at: &str, line: &str) -> Entry {
        Entry::new("a", Some(Stream::Out), at.into(), line)
    }

    #[test]
    fn the_buffer_is_bounded_and_a_paused_view_stays_put() {
        let mut b = LogBuf::default();
        for i in 0..CAPACITY + 10 {
            b.push(e(&format!("{i:08}"), &format!("line {i}")));
        }
        assert_eq!(b.len(), CAPACITY);
        assert_eq!(b.get(0).map(|e| e.line.as_str()), Some("line 10"));
        assert!(b.following());
        b.up(3);
        let shown = b.bottom().and_then(|i| b.get(i)).cloned();
        b.push(e("99999999", "new"));
        assert_eq!(b.bottom().and_then(|i| b.get(i)).cloned(), shown);
        assert!(!b.following());
        b.down(100);
        assert!(b.following());
    }

    #[test]
    fn lines_are_interleaved_by_time() {
        let mut b = LogBuf::default();
        b.push(e("2", "b"));
        b.push(e("4", "d"));
        b.push(e("1", "a"));
        b.push(e("3", "c"));
        let all: Vec<&str> = (0..b.len())
            .filter_map(|i| b.get(i))
            .map(|e| e.line.as_str())
            .collect();
        assert_eq!(all, ["a", "b", "c", "d"]);
    }

    #[test]
    fn search_goes_older_and_newer() {
        let mut b = LogBuf::default();
        for (i, l) in ["Error one", "ok", "error two", "ok"].iter().enumerate() {
            b.push(e(&i.to_string(), l));
        }
        assert_eq!(b.find("ERROR", None, true), Some(2));
        assert_eq!(b.find("error", Some(2), true), Some(0));
        assert_eq!(b.find("error", Some(0), true), None);
        assert_eq!(b.find("error", Some(0), false), Some(2));
        assert_eq!(b.find("", None, true), None);
    }

    #[test]
    fn escape_sequences_never_reach_the_terminal() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("\x1b[1;31mred\x1b[0m ok"), "red ok");
        assert_eq!(printable("\x1b]0;title\x07a\tb\rc"), "a    b?c");
        assert_eq!(printable("\x1b]8;;http://x\x1b\\link"), "link");
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_LINE);
        let entry = Entry::new("a", None, String::new(), &long);
        assert!(entry.line.len() < MAX_LINE + 40);
        assert!(entry.line.ends_with("[warden ui: line cut]"));
    }
}
