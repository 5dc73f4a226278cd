//! The portable parts of resource sampling: the walk of a process tree, the sum over its
//! processes, and the OS units of CPU time. The OS code (`unix/sample.rs`,
//! `unix/sample_macos.rs`, `windows/sample.rs`) only reads the figures; what they mean is
//! decided here, and unit-tested on every OS.

/// Every process of a tree: `roots` and, transitively, the children that `children` gives
/// for each member. Each pid is visited once, so a table that loops (a pid reused as its own
/// ancestor's child between two reads) cannot make the walk run forever. The order is not
/// meaningful.
#[cfg(any(unix, test))]
pub(crate) fn walk_tree(
    roots: impl IntoIterator<Item = u32>,
    mut children: impl FnMut(u32) -> Vec<u32>,
) -> Vec<u32> {
    let mut seen = std::collections::HashSet::new();
    let mut members = Vec::new();
    let mut stack: Vec<u32> = roots.into_iter().collect();
    while let Some(pid) = stack.pop() {
        if seen.insert(pid) {
            members.push(pid);
            stack.extend(children(pid).into_iter().filter(|c| !seen.contains(c)));
        }
    }
    members
}

/// The sample of a tree from the figures of each of its processes that could be read:
/// `(cpu_seconds, rss_bytes)`. CPU time and memory are summed (saturating, never wrapping);
/// `processes` counts the figures given.
#[cfg(any(windows, target_os = "macos", test))]
pub(crate) fn sum_processes(figures: impl IntoIterator<Item = (f64, u64)>) -> super::TreeSample {
    let mut sample = super::TreeSample {
        cpu_seconds: 0.0,
        rss_bytes: 0,
        processes: 0,
        cgroup_memory_bytes: None,
    };
    for (cpu, rss) in figures {
        sample.cpu_seconds += cpu.max(0.0);
        sample.rss_bytes = sample.rss_bytes.saturating_add(rss);
        sample.processes = sample.processes.saturating_add(1);
    }
    sample
}

/// Windows: CPU time in the kernel's unit (100 ns, as in `FILETIME` and the job's
/// `TotalUserTime`/`TotalKernelTime`), user plus kernel, in seconds. A negative count (a
/// `LARGE_INTEGER` is signed; the kernel never gives one) counts as 0.
#[cfg(any(windows, test))]
pub(crate) fn hundred_ns_seconds(user: i64, kernel: i64) -> f64 {
    let units = u64::try_from(user)
        .unwrap_or(0)
        .saturating_add(u64::try_from(kernel).unwrap_or(0));
    units as f64 / 10_000_000.0
}

/// macOS: CPU time in Mach absolute-time ticks (`pti_total_user`, `pti_total_system`) in
/// seconds, through the timebase (`mach_timebase_info`: ns = ticks × numer / denom). On Intel
/// Macs the timebase is 1/1, so ticks are nanoseconds; on Apple silicon it is 125/3 (a tick
/// is 41.67 ns), and reading ticks as nanoseconds would show 1/24 of the real figure. A
/// timebase of 0/x or x/0 (never given) is taken as 1/1.
#[cfg(any(target_os = "macos", test))]
pub(crate) fn mach_ticks_seconds(ticks: u64, numer: u32, denom: u32) -> f64 {
    let (numer, denom) = if numer == 0 || denom == 0 {
        (1, 1)
    } else {
        (numer, denom)
    };
    ticks as f64 * f64::from(numer) / f64::from(denom) / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The children of `pid` in a `(pid, ppid)` table, as `proc_listchildpids` answers.
    fn children_in(table: &[(u32, u32)]) -> impl FnMut(u32) -> Vec<u32> + '_ {
        move |pid| {
            table
                .iter()
                .filter(|&&(_, ppid)| ppid == pid)
                .map(|&(p, _)| p)
                .collect()
        }
    }

    fn sorted(mut v: Vec<u32>) -> Vec<u32> {
        v.sort_unstable();
        v
    }

    #[test]
    fn the_walk_finds_every_descendant_and_nothing_else() {
        // 10 ─┬─ 11 ── 13 ── 14
        //     └─ 12
        // 20 ── 21   (another tree)
        let table = [
            (11, 10),
            (12, 10),
            (13, 11),
            (14, 13),
            (21, 20),
            (10, 1),
            (20, 1),
        ];
        assert_eq!(
            sorted(walk_tree([10], children_in(&table))),
            [10, 11, 12, 13, 14]
        );
        assert_eq!(sorted(walk_tree([13], children_in(&table))), [13, 14]);
    }

    #[test]
    fn the_walk_joins_several_roots_and_counts_each_process_once() {
        // 30 leads the group; 31 left it as an orphan of the group (reparented); 32 is
        // both a root (a group member) and a child of 30.
        let table = [(32, 30), (33, 31)];
        assert_eq!(
            sorted(walk_tree([30, 31, 32], children_in(&table))),
            [30, 31, 32, 33]
        );
    }

    #[test]
    fn the_walk_ends_on_a_table_that_loops() {
        // Read at two moments, pids reused: 40 is a child of 41, and 41 of 40.
        let table = [(40, 41), (41, 40)];
        assert_eq!(sorted(walk_tree([40], children_in(&table))), [40, 41]);
    }

    #[test]
    fn a_lone_process_is_its_own_tree() {
        assert_eq!(walk_tree([7], |_| Vec::new()), [7]);
    }

    #[test]
    fn figures_are_summed_over_the_processes() {
        let s = sum_processes([(1.5, 100 << 20), (0.25, 30 << 20), (0.0, 0)]);
        assert!((s.cpu_seconds - 1.75).abs() < 1e-9, "{s:?}");
        assert_eq!(s.rss_bytes, 130 << 20);
        assert_eq!(s.processes, 3);
        let none = sum_processes([]);
        assert_eq!(
            (none.cpu_seconds, none.rss_bytes, none.processes),
            (0.0, 0, 0)
        );
    }

    #[test]
    fn memory_saturates_instead_of_wrapping() {
        let s = sum_processes([(0.0, u64::MAX - 1), (0.0, 10)]);
        assert_eq!(s.rss_bytes, u64::MAX);
    }

    #[test]
    fn windows_cpu_time_is_in_100_ns_units_user_plus_kernel() {
        // 2.5 s user + 0.5 s kernel.
        assert!((hundred_ns_seconds(25_000_000, 5_000_000) - 3.0).abs() < 1e-9);
        assert!((hundred_ns_seconds(1, 0) - 1e-7).abs() < 1e-15);
        assert!(hundred_ns_seconds(0, 0).abs() < f64::EPSILON);
        assert!(hundred_ns_seconds(-5, 0).abs() < f64::EPSILON);
        assert!(hundred_ns_seconds(i64::MAX, i64::MAX) > 1e12);
    }

    #[test]
    fn mac_cpu_time_goes_through_the_timebase() {
        // Intel: ticks are nanoseconds.
        assert!((mach_ticks_seconds(1_500_000_000, 1, 1) - 1.5).abs() < 1e-9);
        // Apple silicon: 24 MHz ticks, 125/3 ns each: 24,000,000 ticks are one second.
        assert!((mach_ticks_seconds(24_000_000, 125, 3) - 1.0).abs() < 1e-9);
        // A timebase that was never filled in.
        assert!((mach_ticks_seconds(2_000_000_000, 0, 0) - 2.0).abs() < 1e-9);
    }
}
