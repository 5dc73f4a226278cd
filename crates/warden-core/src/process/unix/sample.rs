//! Resource samples of a service's tree: CPU time and resident memory summed over the
//! main process, its process group and every descendant. Linux reads `/proc` (here); macOS
//! asks libproc (`sample_macos.rs`). On another Unix nothing is sampled: `None`, shown as
//! "-", rather than a guess.
//!
//! In cgroup mode (the main process is in its service's cgroup) the CPU time is the
//! cgroup's `usage_usec` of `cpu.stat` (present without the cpu controller): exact, and it
//! keeps the time of processes that already ended, which a sum over the live ones loses.
//! The memory stays the summed RSS, so that MEM means the same in both modes; the cgroup's
//! `memory.current` (page cache included; only with the memory controller) comes beside it.

#[cfg(target_os = "macos")]
pub(crate) use super::sample_macos::{sample_own, sample_tree};
#[cfg(not(target_os = "macos"))]
use crate::process::{OwnSample, TreeSample};

/// The tree of `pid` (its group and descendants) now.
#[cfg(target_os = "linux")]
pub(crate) fn sample_tree(pid: u32) -> Option<TreeSample> {
    use super::procfs;
    // SAFETY: sysconf only reads a system constant.
    let (tick, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if tick <= 0 || page <= 0 {
        return None;
    }
    // The descendants through the kernel's `children` files (a few reads, not a scan of
    // all of /proc), and the orphans of its group that were re-parented to warden: never a
    // registered child (each leads its own group), so those are left unread. Reading all
    // 1,000 of them per sample made sampling O(n²): 1,000 services kept warden busy.
    procfs::stat(pid)?;
    let mut roots = vec![pid];
    if let Some(own) = super::reaper::unregistered_children() {
        roots.extend(
            own.iter()
                .filter(|p| p.pgrp == pid && p.pid != pid)
                .map(|p| p.pid),
        );
    }
    let members = crate::process::sampling::walk_tree(roots, children);
    let (mut ticks, mut pages, mut processes) = (0u64, 0u64, 0u32);
    for p in members {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        if let Some((u, s, rss)) = parse_usage(&text) {
            ticks = ticks.saturating_add(u.saturating_add(s));
            pages = pages.saturating_add(rss);
            processes += 1;
        }
    }
    let mut cpu_seconds = ticks as f64 / tick as f64;
    let mut cgroup_memory_bytes = None;
    if let Some(dir) = super::cgroup::service_dir_of(pid) {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        if let Some(usec) = read("cpu.stat").as_deref().and_then(usage_usec) {
            cpu_seconds = usec as f64 / 1e6;
        }
        cgroup_memory_bytes = read("memory.current").and_then(|t| t.trim().parse().ok());
    }
    Some(TreeSample {
        cpu_seconds,
        rss_bytes: pages.saturating_mul(page as u64),
        processes,
        cgroup_memory_bytes,
    })
}

/// The `usage_usec` line of a cgroup's `cpu.stat`.
#[cfg(target_os = "linux")]
fn usage_usec(cpu_stat: &str) -> Option<u64> {
    cpu_stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

/// The children of `pid`, from every one of its threads.
#[cfg(target_os = "linux")]
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.filter_map(Result::ok) {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_ascii_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// Fields 14 (utime), 15 (stime) and 24 (rss, in pages) of `/proc/PID/stat`, counted after
/// the last `)` of the command name.
#[cfg(target_os = "linux")]
fn parse_usage(text: &str) -> Option<(u64, u64, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // `rest` starts at field 3.
    let get = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((get(14)?, get(15)?, get(24)?))
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub(crate) fn sample_tree(_pid: u32) -> Option<TreeSample> {
    None
}

/// Give the free pages of the heap back to the OS (glibc's `malloc_trim`): what a start of
/// 1,000 services or a reload parsed and built, and freed, is otherwise kept by the allocator
/// between the chunks still in use. Elsewhere the allocator is left alone.
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: no preconditions; it only returns free memory of the heap to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// warden's own CPU time, RSS and open file descriptors (`/proc/self`).
#[cfg(target_os = "linux")]
pub(crate) fn sample_own() -> Option<OwnSample> {
    // SAFETY: sysconf only reads a system constant.
    let (tick, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if tick <= 0 || page <= 0 {
        return None;
    }
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (u, s, rss) = parse_usage(&text)?;
    // The directory's own descriptor, open while it is read, is not counted.
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()?
        .count()
        .saturating_sub(1) as u64;
    Some(OwnSample {
        cpu_seconds: u.saturating_add(s) as f64 / tick as f64,
        rss_bytes: rss.saturating_mul(page as u64),
        open_fds,
    })
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub(crate) fn sample_own() -> Option<OwnSample> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn usage_fields_are_counted_after_the_command_name() {
        let text = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 123 10000 250 18446744073709551615";
        assert_eq!(parse_usage(text), Some((7, 3, 250)));
    }

    #[test]
    fn the_cgroup_cpu_time_is_usage_usec() {
        let text = "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n";
        assert_eq!(usage_usec(text), Some(1_500_000));
        assert_eq!(usage_usec("user_usec 3\n"), None);
    }

    #[test]
    fn warden_samples_its_own_process() {
        let s = sample_own().expect("a sample of this process");
        assert!(s.rss_bytes > 1 << 20 && s.open_fds >= 3, "{s:?}");
    }

    #[test]
    fn the_own_process_has_memory() {
        let s = sample_tree(std::process::id()).expect("a sample of this process");
        assert!(s.rss_bytes > 1 << 20 && s.processes >= 1, "{s:?}");
    }
}
