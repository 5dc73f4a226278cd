//! A child's tree: signal it, kill it, tell when it is gone; and the whole-process sweeps
//! (`kill_leftovers` at start-up, `kill_all_descendants` at shutdown).

#[cfg(target_os = "linux")]
use std::collections::HashSet;
use std::io;

use super::child::Child;
#[cfg(target_os = "linux")]
use super::procfs;
use super::reaper::registry;
#[cfg(target_os = "linux")]
use super::{INSTANCE_VAR, SERVICE_VAR};
use super::{errno, signal_number};
use crate::process::{GroupRecord, Signal};

/// How many times [`Child::kill_tree`] scans `/proc` for processes forked meanwhile.
#[cfg(target_os = "linux")]
const KILL_PASSES: usize = 3;

/// init's pid: never signalled (and `kill(-1)` would mean every process).
pub(super) const INIT_PID: u32 = 1;

impl Child {
    /// Send `sig` to the whole process group (and, on Linux, to adopted orphans of this
    /// service: processes re-parented to warden whose environment carries this child's
    /// `WARDEN_INSTANCE` and `WARDEN_SERVICE`). A group that is already gone is not an error.
    ///
    /// A followed main process (see [`Child::follow`]) gets the signal first, then its own
    /// process group, then the rest of the tree.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        let signo = signal_number(sig);
        #[cfg(target_os = "linux")]
        if let Some(f) = &self.followed {
            // Each process once, the main one first.
            let procs = procfs::all();
            let mut sent = HashSet::new();
            if f.status.borrow().is_none() && kill_pid(f.pid, signo) {
                sent.insert(f.pid);
            }
            let (ours, f_ours) = (self.group_is_ours(), f.group_is_ours());
            let members = procs.iter().filter(|p| {
                !p.is_zombie() && ((f_ours && p.pgrp == f.pid) || (ours && p.pgrp == self.pid))
            });
            let orphans = self.adopted_orphans(&procs);
            for pid in members.map(|p| p.pid).chain(orphans) {
                if sent.insert(pid) {
                    kill_pid(pid, signo);
                }
            }
            return Ok(());
        }
        #[cfg(not(target_os = "linux"))]
        if let Some(f) = &self.followed {
            f.signal(signo);
        }
        let result = if self.group_is_ours() {
            kill_group(self.pid, signo)
        } else {
            Ok(())
        };
        #[cfg(target_os = "linux")]
        if let Some(cg) = &self.cgroup {
            // Cgroup mode: every process of the service gets it once, wherever its group is
            // (the group's members got it above).
            for pid in cg.pids() {
                if procfs::stat(pid).is_some_and(|p| p.pgrp != self.pid) {
                    kill_pid(pid, signo);
                }
            }
        } else {
            for pid in self.adopted_orphans_now() {
                kill_pid(pid, signo);
            }
        }
        result
    }

    /// SIGKILL to the whole tree: the process group, adopted orphans of this service and (on
    /// Linux) every process whose parent chain leads to one of those or to the main process.
    pub fn kill_tree(&self) -> io::Result<()> {
        // In cgroup mode the cgroup is the tree: `cgroup.kill` ends all of it.
        #[cfg(target_os = "linux")]
        if let Some(cg) = &self.cgroup
            && cg.kill().is_ok()
        {
            return Ok(());
        }
        let ours = self.group_is_ours();
        if let Some(f) = &self.followed {
            f.signal(libc::SIGKILL);
        }
        let result = if ours {
            kill_group(self.pid, libc::SIGKILL)
        } else {
            Ok(())
        };
        #[cfg(target_os = "linux")]
        {
            // A process may fork while we scan: a few passes catch what was born meanwhile.
            let mut killed = HashSet::new();
            for _ in 0..KILL_PASSES {
                let procs = procfs::all();
                let mut roots: Vec<u32> = Vec::new();
                if let Some(f) = &self.followed {
                    if f.status.borrow().is_none() {
                        roots.push(f.pid);
                    }
                    if f.group_is_ours() {
                        roots.extend(procs.iter().filter(|p| p.pgrp == f.pid).map(|p| p.pid));
                    }
                }
                if ours {
                    roots.extend(procs.iter().filter(|p| p.pgrp == self.pid).map(|p| p.pid));
                    if self.launcher_status().is_none() {
                        roots.push(self.pid);
                    }
                }
                roots.extend(self.adopted_orphans(&procs));
                let me = std::process::id();
                let fresh: Vec<u32> = procfs::closure(&procs, roots)
                    .into_iter()
                    .filter(|pid| *pid != me && !killed.contains(pid))
                    .filter(|pid| procs.iter().any(|p| p.pid == *pid && !p.is_zombie()))
                    .collect();
                if fresh.is_empty() {
                    break;
                }
                for pid in fresh {
                    kill_pid(pid, libc::SIGKILL);
                    killed.insert(pid);
                }
            }
        }
        result
    }

    /// The main process is reaped, its group is empty, and no adopted orphan is left.
    pub(super) fn tree_gone(&self) -> bool {
        if self.launcher_status().is_none() {
            return false;
        }
        if self.followed.as_ref().is_some_and(|f| !f.gone()) {
            return false;
        }
        #[cfg(target_os = "linux")]
        if let Some(cg) = &self.cgroup {
            return !cg.populated();
        }
        if self.group_is_ours() && group_alive(self.pid) {
            return false;
        }
        #[cfg(target_os = "linux")]
        if !self.adopted_orphans_now().is_empty() {
            return false;
        }
        true
    }

    /// Is the process group with our pid as id still ours? Until warden reaps the main process
    /// its pid cannot be reused. After that, a process group keeps its id reserved as long as it
    /// has members, so the group is ours unless a *new* process now has our pid (Linux: a
    /// different start time). Elsewhere this cannot be checked and is assumed.
    pub(super) fn group_is_ours(&self) -> bool {
        if self.launcher_status().is_none() {
            return true;
        }
        #[cfg(target_os = "linux")]
        if let Some(p) = procfs::stat(self.pid) {
            return p.start_time == self.start_time;
        }
        true
    }

    /// [`Child::adopted_orphans`] among warden's children now (no scan without a tag).
    #[cfg(target_os = "linux")]
    fn adopted_orphans_now(&self) -> Vec<u32> {
        if self.tag.is_none() {
            return Vec::new();
        }
        // warden's own children are never adopted orphans: they are left out before their
        // `/proc` entries are read (every task whose child exited asks this after every reap).
        let children = super::reaper::unregistered_children();
        self.adopted_orphans(&children.unwrap_or_else(procfs::all))
    }

    /// Processes re-parented to warden, not spawned by it, whose environment carries this
    /// child's tag, and not yet dead.
    #[cfg(target_os = "linux")]
    fn adopted_orphans(&self, procs: &[procfs::Proc]) -> Vec<u32> {
        let Some(tag) = &self.tag else {
            return Vec::new();
        };
        let me = std::process::id();
        let candidates: Vec<u32> = {
            // One lock and no copy of the registry (1,000 children: asked by every stop).
            let live = registry();
            procs
                .iter()
                .filter(|p| p.ppid == me && !p.is_zombie() && !live.children.contains_key(&p.pid))
                .map(|p| p.pid)
                .collect()
        };
        candidates
            .into_iter()
            .filter(|&pid| {
                procfs::environ_matches(
                    pid,
                    &[(INSTANCE_VAR, &tag.instance), (SERVICE_VAR, &tag.service)],
                )
            })
            .collect()
    }
}

/// `kill(-pgid, sig)`; a group that does not exist is fine.
pub(super) fn kill_group(pgid: u32, signo: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall. pgid > 1 always (it is a child's pid), so this never means "all".
    if unsafe { libc::kill(-(pgid as libc::pid_t), signo) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// `kill(pid, sig)`; `true` if it was sent.
pub(super) fn kill_pid(pid: u32, signo: libc::c_int) -> bool {
    if pid <= INIT_PID {
        return false;
    }
    // SAFETY: plain syscall on a positive pid.
    unsafe { libc::kill(pid as libc::pid_t, signo) == 0 }
}

/// Does any process (zombies included) belong to the group `pgid`?
pub(super) fn group_alive(pgid: u32) -> bool {
    // SAFETY: plain syscall, signal 0 only checks.
    if unsafe { libc::kill(-(pgid as libc::pid_t), 0) } == 0 {
        return true;
    }
    errno() != libc::ESRCH
}

/// Linux: SIGKILL every process of a recorded group (if the group is still the recorded one:
/// its leader is gone or has the recorded start time; and only members started no earlier
/// than the leader), a recorded main process (if its start time is the recorded one) with its
/// own group and descendants, and every process of our uid whose environment has
/// `WARDEN_INSTANCE=marker`. Never warden itself or its ancestors. Meant for start-up, before
/// any service is spawned: warden's own children carrying `marker` would be killed too.
#[cfg(target_os = "linux")]
pub(crate) fn kill_leftovers(records: &[GroupRecord], marker: &str, scan: bool) -> usize {
    if records.is_empty() && !scan {
        return super::cgroup::kill_leftover_instance(marker);
    }
    let procs = procfs::all();
    let me = std::process::id();
    let ancestors = procfs::ancestors(&procs, me);
    let spared = |p: &procfs::Proc| p.is_zombie() || p.pid == me || ancestors.contains(&p.pid);
    // By pid and by group, so that 1,000 records against 1,000 processes are not 1,000,000
    // comparisons.
    let by_pid: std::collections::HashMap<u32, &procfs::Proc> =
        procs.iter().map(|p| (p.pid, p)).collect();
    let mut by_group: std::collections::HashMap<u32, Vec<&procfs::Proc>> =
        std::collections::HashMap::new();
    for p in &procs {
        by_group.entry(p.pgrp).or_default().push(p);
    }
    let mut victims: Vec<u32> = Vec::new();
    for rec in records {
        // A followed main process (a daemon that left the group and cleared its
        // environment): it, its own group and its descendants, if it is still that process.
        if let Some(main) = rec.main
            && main.pid > INIT_PID
            && procs
                .iter()
                .any(|p| p.pid == main.pid && p.start_time == main.start_time)
        {
            let members = procs
                .iter()
                .filter(|p| p.pgrp == main.pid && p.start_time >= main.start_time)
                .map(|p| p.pid);
            victims.extend(
                procfs::closure(&procs, std::iter::once(main.pid).chain(members))
                    .into_iter()
                    .filter(|pid| procs.iter().any(|p| p.pid == *pid && !spared(p))),
            );
        }
        if rec.pgid <= INIT_PID {
            continue;
        }
        // A living leader with another start time: the pid was reused, the group is not ours.
        if by_pid
            .get(&rec.pgid)
            .is_some_and(|p| p.start_time != rec.start_time)
        {
            continue;
        }
        victims.extend(
            by_group
                .get(&rec.pgid)
                .into_iter()
                .flatten()
                .filter(|p| p.start_time >= rec.start_time && !spared(p))
                .map(|p| p.pid),
        );
    }
    if scan && !marker.is_empty() {
        // SAFETY: plain syscall.
        let uid = unsafe { libc::getuid() };
        victims.extend(
            procs
                .iter()
                .filter(|p| !spared(p) && procfs::uid(p.pid) == Some(uid))
                .filter(|p| procfs::environ_matches(p.pid, &[(INSTANCE_VAR, marker.as_bytes())]))
                .map(|p| p.pid),
        );
    }
    victims.sort_unstable();
    victims.dedup();
    let in_cgroups = super::cgroup::kill_leftover_instance(marker);
    victims
        .into_iter()
        .filter(|pid| kill_pid(*pid, libc::SIGKILL))
        .count()
        .max(in_cgroups)
}

/// Without `/proc` a recorded group cannot be checked against pid reuse: do nothing.
#[cfg(not(target_os = "linux"))]
pub(crate) fn kill_leftovers(_records: &[GroupRecord], _marker: &str, _scan: bool) -> usize {
    0
}

/// SIGKILL every live descendant of warden (Linux: found through `/proc`) and the groups of
/// children not reaped yet. Returns how many processes (Linux) or groups (elsewhere) it
/// signalled.
pub(crate) fn kill_all_descendants() -> usize {
    #[cfg(target_os = "linux")]
    let walked = {
        let procs = procfs::all();
        let me = std::process::id();
        let live: HashSet<u32> = procs
            .iter()
            .filter(|p| !p.is_zombie())
            .map(|p| p.pid)
            .collect();
        procfs::closure(&procs, [me])
            .into_iter()
            .filter(|pid| *pid != me && live.contains(pid))
            .filter(|pid| kill_pid(*pid, libc::SIGKILL))
            .count()
    };
    let live: Vec<u32> = registry().children.keys().copied().collect();
    // Unreaped, so each group id is still that child's; this catches members that left the
    // parent chain (re-parented elsewhere than to warden).
    let groups = live
        .into_iter()
        .filter(|pid| group_alive(*pid) && kill_group(*pid, libc::SIGKILL).is_ok())
        .count();
    #[cfg(target_os = "linux")]
    {
        let _ = groups;
        walked
    }
    #[cfg(not(target_os = "linux"))]
    groups
}
