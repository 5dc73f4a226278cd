//! Collecting errors with their place in the file, and "did you mean" hints.

use std::ops::Range;
use std::path::PathBuf;

use super::{ConfigError, ConfigWarning};

/// Every error found so far, with what is needed to turn byte offsets into lines and columns.
pub(super) struct Diagnostics<'a> {
    file: PathBuf,
    src: &'a str,
    errors: Vec<ConfigError>,
    /// Where each error is (byte offsets, as given).
    error_offsets: Vec<usize>,
    warnings: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    pub(super) fn new(file: PathBuf, src: &'a str) -> Self {
        Diagnostics {
            file,
            src,
            errors: Vec::new(),
            error_offsets: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Record an error at byte offset `at` of the source.
    pub(super) fn error(&mut self, at: usize, message: impl Into<String>, hint: Option<String>) {
        let e = self.at(at, message.into(), hint);
        self.errors.push(e);
        self.error_offsets.push(at);
    }

    /// Was an error reported at byte offset `at` (a value already refused)?
    pub(super) fn has_error_at(&self, at: usize) -> bool {
        self.error_offsets.contains(&at)
    }

    /// Record a warning at byte offset `at`: a problem that leaves the config valid.
    pub(super) fn warning(&mut self, at: usize, message: String, hint: Option<String>) {
        let w = self.at(at, message, hint);
        self.warnings.push(w);
    }

    fn at(&self, at: usize, message: String, hint: Option<String>) -> ConfigError {
        let (line, col) = line_col(self.src, at);
        ConfigError {
            file: self.file.clone(),
            line,
            col,
            message,
            hint,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors in file order (by line, then column; ties keep the order they were found).
    pub(super) fn into_errors(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| (e.line, e.col));
        self.errors
    }

    /// The warnings in file order.
    pub(super) fn take_warnings(&mut self) -> Vec<ConfigWarning> {
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.sort_by_key(|e| (e.line, e.col));
        warnings.into_iter().map(ConfigWarning).collect()
    }
}

/// The keys of other supervisors that warden names differently: (their key, warden's key,
/// whose key it is). A hint is given only where warden's key exists in the table being read,
/// so an entry whose warden key has not landed yet stays dormant: add entries freely.
pub(super) const FOREIGN_KEYS: &[(&str, &str, &str)] = &[
    ("autorestart", "restart", "supervisord"),
    ("startsecs", "min_uptime", "supervisord"),
    ("stopwaitsecs", "stop_timeout", "supervisord"),
    ("environment", "env", "supervisord"),
    ("directory", "cwd", "supervisord"),
    ("pidfile", "pid_file", "supervisord"),
    ("max_memory_restart", "memory_max", "PM2"),
    ("oomscoreadjust", "oom_score_adjust", "systemd"),
    ("nonewprivileges", "no_new_privileges", "systemd"),
    ("cpuquota", "cpu_max", "systemd"),
];

/// `did you mean "restart"? "autorestart" is supervisord's name for it` for a known key of
/// another tool whose warden key is one of `allowed`.
pub(super) fn foreign_key_hint(word: &str, allowed: &[&str]) -> Option<String> {
    FOREIGN_KEYS
        .iter()
        .find(|(foreign, ours, _)| foreign.eq_ignore_ascii_case(word) && allowed.contains(ours))
        .map(|(_, ours, tool)| {
            format!("did you mean \"{ours}\"? \"{word}\" is {tool}'s name for it")
        })
}

/// The start of a span, or 0 when there is none.
pub(super) fn start(span: Option<Range<usize>>) -> usize {
    span.map_or(0, |s| s.start)
}

/// 1-based line and column (in characters) of byte offset `at` in `src`.
pub(super) fn line_col(src: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(src.len());
    while !src.is_char_boundary(at) {
        at -= 1;
    }
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// `did you mean "command"?` when `word` is close to one of `candidates`.
pub(super) fn did_you_mean(word: &str, candidates: &[&str]) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean \"{c}\"?"))
}

/// The candidate nearest to `word` by edit distance, if near enough to be a typo.
pub(super) fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance counting a swap of two neighbours as one edit (optimal string alignment),
/// in characters: "TREM" is one edit from "TERM".
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: the distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}
