//! What warden reads of `/proc` (Linux): process stats, the parent tree, environments.

use std::collections::{HashMap, HashSet};

/// What warden needs of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Proc {
    pub pid: u32,
    pub state: u8,
    pub ppid: u32,
    pub pgrp: u32,
    /// Field 22: clock ticks since boot.
    pub start_time: u64,
}

impl Proc {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, b'Z' | b'X')
    }
}

/// The fields of `/proc/PID/stat` warden reads, numbered as in `proc(5)` from 1.
mod field {
    /// The first field after the command name (field 2, in parentheses).
    pub const FIRST_AFTER_COMM: usize = 3;
    pub const STATE: usize = 3;
    pub const PPID: usize = 4;
    pub const PGRP: usize = 5;
    /// Clock ticks since boot.
    pub const START_TIME: usize = 22;
}

/// Parse `/proc/PID/stat`. The command name (field 2) is in parentheses and may contain
/// spaces and parentheses: fields are counted after its *last* `)`.
pub(super) fn parse_stat(pid: u32, text: &str) -> Option<Proc> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let get = |n: usize| fields.get(n - field::FIRST_AFTER_COMM).copied();
    Some(Proc {
        pid,
        state: *get(field::STATE)?.as_bytes().first()?,
        ppid: get(field::PPID)?.parse().ok()?,
        pgrp: get(field::PGRP)?.parse().ok()?,
        start_time: get(field::START_TIME)?.parse().ok()?,
    })
}

pub(super) fn stat(pid: u32) -> Option<Proc> {
    let text = read_small(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// The most a [`read_small`] file may hold: a stat line, a `cgroup.events`, a process's
/// cgroup, warden's children (seven bytes a pid) are far smaller.
const SMALL_MAX: usize = 4 << 20;

/// A small file of `/proc` or of a cgroup, whole: one `open` and reads into a 1 KiB buffer
/// (grown if full) until the end, usually two. std's `read_to_string` first asks the file's
/// size, which these files report as 0, then probes with 32-byte reads: a stat line took
/// eight calls, several times per start and per exit.
pub(super) fn read_small(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            if len >= SMALL_MAX {
                return Err(std::io::Error::other("file too large"));
            }
            buf.resize(len * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The pids of warden's own direct children (every thread's), from the kernel's `children`
/// files: a few reads instead of a scan of all of `/proc`. `None` where the kernel does not
/// offer them.
pub(super) fn own_child_pids() -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(Result::ok)
    {
        let text = read_small(task.path().join("children")).ok()?;
        out.extend(
            text.split_ascii_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    Some(out)
}

/// Every process visible now (those that vanish during the scan are skipped).
pub(super) fn all() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

/// `roots` and every process whose parent chain leads to one of them.
pub(super) fn closure(procs: &[Proc], roots: impl IntoIterator<Item = u32>) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut seen: HashSet<u32> = HashSet::new();
    let mut stack: Vec<u32> = roots.into_iter().collect();
    while let Some(pid) = stack.pop() {
        if seen.insert(pid)
            && let Some(kids) = children.get(&pid)
        {
            stack.extend(kids.iter().copied().filter(|k| !seen.contains(k)));
        }
    }
    seen
}

/// The parent chain of `pid` (not including it).
pub(super) fn ancestors(procs: &[Proc], pid: u32) -> HashSet<u32> {
    let parent: HashMap<u32, u32> = procs.iter().map(|p| (p.pid, p.ppid)).collect();
    let mut out = HashSet::new();
    let mut cur = pid;
    while let Some(&pp) = parent.get(&cur) {
        if pp == 0 || !out.insert(pp) {
            break;
        }
        cur = pp;
    }
    out
}

pub(super) fn uid(pid: u32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

/// Does the environment of `pid` hold every `(name, value)` pair? (`false` if unreadable,
/// e.g. another user's process or a zombie.)
pub(super) fn environ_matches(pid: u32, pairs: &[(&[u8], &[u8])]) -> bool {
    let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    pairs.iter().all(|(name, value)| {
        env.split(|b| *b == 0)
            .any(|entry| env_entry_is(entry, name, value))
    })
}

/// Is this `NAME=value` entry (bytes) the given pair?
fn env_entry_is(entry: &[u8], name: &[u8], value: &[u8]) -> bool {
    entry.len() == name.len() + 1 + value.len()
        && entry.starts_with(name)
        && entry[name.len()] == b'='
        && entry.ends_with(value)
}

#[cfg(test)]
mod tests {
    use super::{env_entry_is, parse_stat, read_small};

    #[test]
    fn read_small_reads_a_proc_file_and_a_file_past_its_first_buffer_whole() {
        let own = read_small("/proc/self/stat").expect("stat");
        assert_eq!(
            parse_stat(std::process::id(), &own).map(|p| p.pid),
            Some(std::process::id())
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("big");
        let text = (0..2000).fold(String::new(), |mut s, i| {
            use std::fmt::Write as _;
            let _ = write!(s, "{i} ");
            s
        });
        std::fs::write(&path, &text).expect("write");
        assert_eq!(read_small(&path).expect("read"), text);
        assert!(read_small(tmp.path().join("missing")).is_err());
    }

    #[test]
    fn stat_with_parentheses_and_spaces_in_the_name() {
        let text = "42 (a) b (c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 0 0";
        let p = parse_stat(42, text).expect("parses");
        assert_eq!(
            (p.state, p.ppid, p.pgrp, p.start_time),
            (b'S', 7, 42, 123_456)
        );
    }

    #[test]
    fn env_entries() {
        assert!(env_entry_is(
            b"WARDEN_SERVICE=web",
            b"WARDEN_SERVICE",
            b"web"
        ));
        assert!(!env_entry_is(
            b"WARDEN_SERVICE=web2",
            b"WARDEN_SERVICE",
            b"web"
        ));
        assert!(!env_entry_is(
            b"WARDEN_SERVICEX=web",
            b"WARDEN_SERVICE",
            b"web"
        ));
        assert!(env_entry_is(b"X=", b"X", b""));
    }
}
