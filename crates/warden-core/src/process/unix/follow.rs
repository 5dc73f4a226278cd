//! Following a daemon: once a service's launcher exited, a process it left behind becomes the
//! main one, named by its `pid_file` or adopted ([`Child::find_daemon`], the way systemd's
//! `GuessMainPID` does).
//!
//! A followed process that is warden's child (an orphan re-parented to warden, the
//! subreaper) is registered with the reaper, so its exit status is the real one. Any other
//! (its parent is still alive, or macOS, where orphans go to launchd) is watched for its end:
//! through a pidfd on Linux, by a backoff re-check elsewhere; its exit status cannot be known
//! and counts as code 0, as systemd counts it.

#[cfg(target_os = "linux")]
use std::collections::HashSet;
use std::io;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::child::Child;
use super::reaper::{self, reaper};
use super::tree::{INIT_PID, group_alive, kill_group, kill_pid};
#[cfg(target_os = "linux")]
use super::{INSTANCE_VAR, SERVICE_VAR, lock, procfs};
use crate::process::{Adoption, ExitStatus};

/// The main process of a child whose launcher daemonized.
#[derive(Debug)]
pub(super) struct Followed {
    pub(super) pid: u32,
    /// In the unit of `/proc/PID/stat` (0 where unknown).
    pub(super) start_time: u64,
    pub(super) status: watch::Receiver<Option<ExitStatus>>,
    /// For a process that is not warden's child: the task that watches for its end.
    watcher: Option<JoinHandle<()>>,
}

impl Drop for Followed {
    fn drop(&mut self) {
        if let Some(w) = &self.watcher {
            w.abort();
        }
    }
}

impl Followed {
    fn running(&self) -> bool {
        self.status.borrow().is_none()
    }

    /// `signo` to the process, then to its own process group (if it made one).
    pub(super) fn signal(&self, signo: libc::c_int) {
        if self.running() {
            kill_pid(self.pid, signo);
        }
        if self.group_is_ours() {
            // A group with our pid as id can only be the one this process made: while it
            // or a member lives, the id cannot be reused.
            let _ = kill_group(self.pid, signo);
        }
    }

    /// Is a process group with this pid as id ours (see `Child::group_is_ours`)?
    pub(super) fn group_is_ours(&self) -> bool {
        if self.running() {
            return true;
        }
        #[cfg(target_os = "linux")]
        if let Some(p) = procfs::stat(self.pid) {
            return p.start_time == self.start_time;
        }
        true
    }

    /// It ended and nothing of its own group is left.
    pub(super) fn gone(&self) -> bool {
        let group_lives = self.group_is_ours() && group_alive(self.pid);
        !self.running() && !group_lives
    }
}

fn not_ours(pid: u32, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("pid {pid} is not of this service's tree ({why})"),
    )
}

fn ended(pid: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no process {pid} is running"),
    )
}

impl Child {
    /// Make `pid` the main process: [`Child::pid`], [`Child::wait`] and
    /// [`Child::exit_status`] are about it from now on, [`Child::signal`] reaches it first
    /// (then its own group, then the rest of the tree), and the tree includes it and its
    /// descendants. Refused unless `pid` belongs to this service's tree: it (or an ancestor)
    /// is in the launcher's process group, or was re-parented to warden and is nobody else's
    /// (not another service's child or marker, started no earlier than the launcher). So a
    /// stale pid file never makes warden signal a stranger.
    pub fn follow(&mut self, pid: u32) -> io::Result<()> {
        if pid <= INIT_PID || pid == std::process::id() {
            return Err(not_ours(pid, "init or warden itself"));
        }
        if self
            .followed
            .as_ref()
            .is_some_and(|f| f.pid == pid && f.running())
        {
            return Ok(());
        }
        if pid == self.pid && self.launcher_status().is_some() {
            return Err(ended(pid));
        }
        let start_time = self.check_of_tree(pid)?;
        let followed = watch_process(pid, start_time)?;
        reaper::note_start(pid, start_time);
        self.followed = Some(followed);
        Ok(())
    }

    /// The pid's start time if it belongs to this tree (see [`Child::follow`]).
    #[cfg(target_os = "linux")]
    fn check_of_tree(&self, pid: u32) -> io::Result<u64> {
        let procs = procfs::all();
        let me = std::process::id();
        let registered: HashSet<u32> = reaper::registry().children.keys().copied().collect();
        let by_pid: std::collections::HashMap<u32, procfs::Proc> =
            procs.iter().map(|p| (p.pid, *p)).collect();
        let Some(target) = by_pid.get(&pid).filter(|p| !p.is_zombie()) else {
            return Err(ended(pid));
        };
        let mut cur = *target;
        for _ in 0..=procs.len() {
            if self.in_our_groups(cur.pgrp) {
                return Ok(target.start_time);
            }
            if cur.ppid == me {
                if !registered.contains(&cur.pid)
                    && cur.start_time >= self.start_time
                    && !self.marked_for_another(cur.pid)
                {
                    return Ok(target.start_time);
                }
                break;
            }
            match by_pid.get(&cur.ppid) {
                Some(parent) => cur = *parent,
                None => break,
            }
        }
        Err(not_ours(
            pid,
            "neither in its process group nor re-parented to warden",
        ))
    }

    /// Without `/proc`: only a member of the launcher's process group (or the followed
    /// process's) is accepted.
    #[cfg(not(target_os = "linux"))]
    fn check_of_tree(&self, pid: u32) -> io::Result<u64> {
        // SAFETY: plain syscall.
        let pgid = unsafe { libc::getpgid(pid as libc::pid_t) };
        if pgid < 0 {
            return Err(ended(pid));
        }
        if self.in_our_groups(pgid as u32) {
            Ok(0)
        } else {
            Err(not_ours(pid, "not in its process group"))
        }
    }

    /// Is `pgrp` the launcher's group or the followed process's, and still ours?
    fn in_our_groups(&self, pgrp: u32) -> bool {
        (pgrp == self.pid && self.group_is_ours())
            || self
                .followed
                .as_ref()
                .is_some_and(|f| pgrp == f.pid && f.group_is_ours())
    }

    /// Does `pid` carry this warden's `WARDEN_INSTANCE` with another service's name?
    #[cfg(target_os = "linux")]
    fn marked_for_another(&self, pid: u32) -> bool {
        let Some(tag) = &self.tag else {
            return false;
        };
        procfs::environ_matches(pid, &[(INSTANCE_VAR, &tag.instance)])
            && !procfs::environ_matches(pid, &[(SERVICE_VAR, &tag.service)])
    }

    /// What the main process that just exited left behind, attributed to this service, in
    /// this order: (1) its `WARDEN_SERVICE` marker (with this warden's `WARDEN_INSTANCE`), or
    /// membership of the launcher's (or the followed process's) group; (2) its cgroup, where
    /// the service has one (`cgroup_verdict`); (3) its start time, when it lies within
    /// the lifetime of exactly one process of warden's that ended (the main one that just
    /// exited). The OS does not tell warden the exact parent of an orphan (that takes the
    /// process-events connector, as root). Only orphans re-parented to warden count: their
    /// own children come along as the tree.
    #[cfg(target_os = "linux")]
    pub fn find_daemon(&self) -> Adoption {
        // An empty cgroup of its own: nothing of the service is left anywhere, so nothing
        // to read (this runs after every exit with code 0, twice).
        if self.cgroup.as_ref().is_some_and(|cg| !cg.populated()) {
            return Adoption::Nothing;
        }
        let main = self.pid();
        let main_start = self
            .followed
            .as_ref()
            .map_or(self.start_time, |f| f.start_time);
        let lives = reaper::lifetimes();
        let Some(main_life) = lives
            .iter()
            .find(|l| l.pid == main && l.start == main_start && l.end.is_some())
            .copied()
        else {
            return Adoption::Nothing;
        };
        let me = std::process::id();
        let registered: HashSet<u32> = reaper::registry().children.keys().copied().collect();
        let mut ours = Vec::new();
        let mut doubtful = Vec::new();
        // Only warden's own children can be adopted: read those (`children` files), not
        // every process of the machine (that scan was most of a crash's restart time on a
        // busy host); every process only where the kernel has no `children` files.
        let candidates = reaper::unregistered_children().unwrap_or_else(procfs::all);
        for c in candidates {
            if c.ppid != me || c.is_zombie() || registered.contains(&c.pid) || c.pid == main {
                continue;
            }
            let verdict = self.attribute(&c, &registered, &lives, main_life);
            match verdict {
                Verdict::Ours => ours.push(c.pid),
                Verdict::Doubtful => doubtful.push(c.pid),
                Verdict::NotOurs => {}
            }
        }
        match (ours.as_slice(), doubtful.is_empty()) {
            ([], true) => Adoption::Nothing,
            ([one], true) => Adoption::One(*one),
            _ => {
                ours.extend(doubtful);
                ours.sort_unstable();
                Adoption::Ambiguous(ours)
            }
        }
    }

    /// Elsewhere orphans go to launchd, not to warden: nothing can be adopted.
    #[cfg(not(target_os = "linux"))]
    pub fn find_daemon(&self) -> Adoption {
        Adoption::Nothing
    }

    #[cfg(target_os = "linux")]
    fn attribute(
        &self,
        c: &procfs::Proc,
        registered: &HashSet<u32>,
        lives: &[reaper::Lifetime],
        main_life: reaper::Lifetime,
    ) -> Verdict {
        if let Some(tag) = &self.tag {
            if procfs::environ_matches(
                c.pid,
                &[(INSTANCE_VAR, &tag.instance), (SERVICE_VAR, &tag.service)],
            ) {
                return Verdict::Ours;
            }
            if procfs::environ_matches(c.pid, &[(INSTANCE_VAR, &tag.instance)]) {
                return Verdict::NotOurs;
            }
        }
        if self.in_our_groups(c.pgrp) {
            return Verdict::Ours;
        }
        if registered.contains(&c.pgrp) {
            // In the group of another of warden's live children.
            return Verdict::NotOurs;
        }
        if let Some(ours) = self.cgroup_verdict(c.pid) {
            return if ours {
                Verdict::Ours
            } else {
                Verdict::NotOurs
            };
        }
        let within = |l: &reaper::Lifetime| {
            l.end
                .is_some_and(|end| l.start <= c.start_time && c.start_time <= end)
        };
        if !within(&main_life) {
            return Verdict::NotOurs;
        }
        if lives.iter().filter(|l| within(l)).count() == 1 {
            Verdict::Ours
        } else {
            Verdict::Doubtful
        }
    }

    /// In cgroup mode the cgroup decides: `Some(true)` when the process is in this service's
    /// cgroup, `Some(false)` when it is not; `None` when this service has no cgroup of its
    /// own (process-group mode).
    #[cfg(target_os = "linux")]
    fn cgroup_verdict(&self, pid: u32) -> Option<bool> {
        self.cgroup.as_ref()?;
        let tag = self.tag.as_ref()?;
        let instance = std::str::from_utf8(&tag.instance).ok()?;
        let found = super::cgroup::service_of_pid(pid, instance);
        Some(found.is_some_and(|s| s.as_bytes() == tag.service.as_slice()))
    }
}

/// How an orphan relates to a service.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ours,
    /// Its start time fits this service and another.
    Doubtful,
    NotOurs,
}

/// Start watching `pid` (started at `start_time`) for its end.
#[cfg_attr(
    not(target_os = "linux"),
    allow(
        clippy::unnecessary_wraps,
        reason = "Linux can fail: the process ended meanwhile"
    )
)]
fn watch_process(pid: u32, start_time: u64) -> io::Result<Followed> {
    #[cfg(target_os = "linux")]
    {
        let me = std::process::id();
        // Under the reaper's lock: it cannot reap the process before it is registered.
        let mut live = lock(&reaper().live);
        match procfs::stat(pid) {
            Some(p) if p.start_time == start_time && p.ppid == me => {
                let (tx, status) = watch::channel(None);
                live.children.insert(pid, tx);
                return Ok(Followed {
                    pid,
                    start_time,
                    status,
                    watcher: None,
                });
            }
            Some(p) if p.start_time == start_time && !p.is_zombie() => {}
            _ => return Err(ended(pid)),
        }
    }
    let (tx, status) = watch::channel(None);
    let watcher = tokio::spawn(watch_foreign(pid, start_time, tx));
    Ok(Followed {
        pid,
        start_time,
        status,
        watcher: Some(watcher),
    })
}

/// Wait for the end of a process that is not warden's child, then report it as code 0 and
/// wake the tree's waiters.
async fn watch_foreign(pid: u32, start_time: u64, tx: watch::Sender<Option<ExitStatus>>) {
    #[cfg(target_os = "linux")]
    let watched = pidfd_wait(pid, start_time).await.is_ok();
    #[cfg(not(target_os = "linux"))]
    let watched = {
        let _ = start_time;
        false
    };
    if !watched {
        let far = crate::util::deadline_in(std::time::Duration::from_secs(100 * 365 * 86_400));
        reaper::wait_until(far, false, || !process_exists(pid)).await;
    }
    tx.send_replace(Some(ExitStatus::Code(0)));
    reaper().reaped.send_modify(|n| *n = n.wrapping_add(1));
}

/// Wait until `pid` ends, through a pidfd (Linux 5.3+). `Err` if there is none to be had.
#[cfg(target_os = "linux")]
async fn pidfd_wait(pid: u32, start_time: u64) -> io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor, owned only here (pidfds are close-on-exec).
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Opened after the checks: make sure the pid still is that process.
    if procfs::stat(pid).is_none_or(|p| p.start_time != start_time || p.is_zombie()) {
        return Ok(());
    }
    // SAFETY: the descriptor is owned by the AsyncFd for its whole life.
    let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }?;
    let _ = fd.readable().await?;
    Ok(())
}

/// Does `pid` exist (a zombie counts as gone on Linux)?
fn process_exists(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        procfs::stat(pid).is_some_and(|p| !p.is_zombie())
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: plain syscall, signal 0 only checks.
        let sent = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
        sent || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
}
