//! cgroup v2 (Linux): each service in its own cgroup, so that its tree is tracked exactly,
//! stopped whole and held to hard limits.
//!
//! - **Where**: the v2 hierarchy is found in `/proc/self/mountinfo` (never assumed at
//!   `/sys/fs/cgroup`: a hybrid layout mounts it at `/sys/fs/cgroup/unified`), warden's own
//!   cgroup in `/proc/self/cgroup` (`0::/PATH`). A service `web` of the instance `I` (the state
//!   dir's marker) runs in `<own>/warden-I/web.service`. Cgroup mode is on when a probe cgroup
//!   can be created under `<own>` (root, or a delegated subtree); else warden keeps the soft
//!   tracking (process groups, `/proc` ancestry, the environment marker).
//! - **warden's own leaf**: cgroup v2 lets a cgroup other than the root hand controllers to
//!   its children only while it holds no process itself ("no internal processes"). Under
//!   systemd with `Delegate=yes` warden starts in the unit's cgroup, which it is given to
//!   manage: so, unless its own cgroup is the root, warden first moves itself into the leaf
//!   `<own>/supervisor`, and its services' cgroups go beside it (`<own>/warden-I/`). The leaf
//!   is left to whoever removes `<own>` (systemd, with the unit's cgroup); a move that fails
//!   is named in the warning of a controller that cannot be enabled.
//! - **Moving in**: the parent opens the cgroup's `cgroup.procs` (close-on-exec) before the
//!   fork; the child writes `0` to it first thing, before `exec` and before dropping
//!   privileges, so every process it ever forks is born inside.
//! - **Limits**: `memory_limit` → `memory.max`, `cpu_max` → `cpu.max` ([`limit_writes`]),
//!   written when the service's cgroup offers the controller. warden enables the controllers
//!   it needs in its own `cgroup.subtree_control` and the instance's; where that is refused
//!   (no such controller, or warden's cgroup holds processes and is not the root), the limit
//!   is not applied and the service gets a warning saying why.
//! - **Gone**: `cgroup.events` says `populated 0`. A thread (`warden-cgroups`) reads one
//!   inotify descriptor watching every service's `cgroup.events`, and wakes the waiters
//!   of `Child::wait_tree_gone` (the reaper's generation counter) on each change: no polling.
//!   Each cgroup's watch is removed with its directory (the kernel keeps it otherwise: one
//!   watch, and the file it pins, leaked per start; found by chaos scenario 1).
//! - **Kill**: `cgroup.kill` (Linux ≥ 5.14); older kernels: SIGKILL to each pid of
//!   `cgroup.procs`, a few passes.
//! - **Cleanup**: dropping a [`Cgroup`] removes its directory (and the instance's once
//!   empty). If processes remain (the `Child` was dropped without a stop, as when a runtime
//!   ends), they are killed first, as closing a Job Object does on Windows, and the
//!   directory goes once the kernel emptied it. The next warden on the same state dir kills
//!   what a killed warden left in `warden-I/` ([`kill_leftover_instance`]).

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::lock;
use super::reaper::reaper;

mod parked;
use crate::process::{Confinement, CpuMax, Tracking};

/// The period of `cpu.max`, in microseconds (the kernel's default, 100 ms).
const CPU_PERIOD_US: u64 = 100_000;
/// How many times the fallback kill (no `cgroup.kill`) re-reads `cgroup.procs`.
const KILL_PASSES: usize = 5;
/// The suffix of a service's cgroup (a name of its own, never an interface file's).
const SERVICE_SUFFIX: &str = ".service";
/// The prefix of an instance's cgroup.
const INSTANCE_PREFIX: &str = "warden-";
/// The leaf under its own cgroup that warden moves itself into (never an instance's or a
/// service's name).
const SUPERVISOR_LEAF: &str = "supervisor";

/// The v2 hierarchy warden may manage.
#[derive(Debug)]
struct Hierarchy {
    /// The v2 mount point and the mount's root (a container sees a subtree).
    mount: PathBuf,
    root: String,
    /// warden's own cgroup, absolute.
    own: PathBuf,
    /// What `<own>/cgroup.controllers` offers.
    controllers: Vec<String>,
    /// Why warden could not move itself into `<own>/supervisor` (it is then a process in
    /// `<own>`, which keeps controllers from being enabled there).
    leaf_problem: Option<String>,
}

static HIERARCHY: OnceLock<Result<Hierarchy, String>> = OnceLock::new();
/// Creating and removing cgroup directories: one at a time, so that a service's cgroup is
/// never created in an instance directory that another's drop is removing.
static TREE: Mutex<()> = Mutex::new(());

fn hierarchy() -> Result<&'static Hierarchy, &'static str> {
    HIERARCHY
        .get_or_init(detect)
        .as_ref()
        .map_err(String::as_str)
}

pub(crate) fn tracking() -> Tracking {
    match hierarchy() {
        Ok(h) => Tracking::Cgroup {
            dir: h.own.clone(),
            controllers: h.controllers.clone(),
        },
        Err(reason) => Tracking::ProcessGroup {
            reason: reason.to_owned(),
        },
    }
}

fn detect() -> Result<Hierarchy, String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let (mount, root) = parse_mountinfo(&mountinfo)
        .ok_or_else(|| "no cgroup v2 hierarchy is mounted".to_owned())?;
    let cgroup = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let path = parse_own_cgroup(&cgroup)
        .ok_or_else(|| "/proc/self/cgroup names no cgroup v2 path".to_owned())?;
    let own = own_dir(&mount, &root, &path);
    let probe = own.join(format!("{INSTANCE_PREFIX}probe-{}", std::process::id()));
    if let Err(e) = fs::create_dir(&probe) {
        return Err(format!(
            "cannot create a cgroup in {} (root or a delegated subtree is needed): {e}",
            own.display()
        ));
    }
    let _ = fs::remove_dir(&probe);
    let controllers = read_words(&own.join("cgroup.controllers"));
    let leaf_problem = if is_root_cgroup(&own) {
        None
    } else {
        move_into_leaf(&own).err()
    };
    Ok(Hierarchy {
        mount,
        root,
        own,
        controllers,
        leaf_problem,
    })
}

/// The root of the whole hierarchy (exempt from "no internal processes") is the one cgroup
/// without `cgroup.events`; a cgroup namespace's root has it, and is not exempt.
fn is_root_cgroup(dir: &Path) -> bool {
    !dir.join("cgroup.events").exists()
}

/// Move this process (all its threads) into `<own>/supervisor`, created if needed.
fn move_into_leaf(own: &Path) -> Result<(), String> {
    let leaf = own.join(SUPERVISOR_LEAF);
    mkdir(&leaf).map_err(|e| format!("cannot create cgroup {}: {e}", leaf.display()))?;
    write_file(&leaf.join("cgroup.procs"), "0")
        .map_err(|e| format!("cannot move warden into {}: {e}", leaf.display()))
}

/// The mount point and the mount's root of the first `cgroup2` mount.
fn parse_mountinfo(text: &str) -> Option<(PathBuf, String)> {
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        let root = unescape(fields.get(3)?);
        let mount = unescape(fields.get(4)?);
        Some((PathBuf::from(mount), root))
    })
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(digits) = std::str::from_utf8(&b[i + 1..i + 4])
            && let Ok(v) = u8::from_str_radix(digits, 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of `0::PATH` in `/proc/PID/cgroup`.
fn parse_own_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
}

/// `mount` + `path` seen from the mount's `root`.
fn own_dir(mount: &Path, root: &str, path: &str) -> PathBuf {
    let rel = if root == "/" {
        path
    } else {
        path.strip_prefix(root).unwrap_or(path)
    };
    mount.join(rel.trim_start_matches('/'))
}

fn read_words(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// One file a limit writes: `(controller, file, contents)`.
pub(super) type LimitWrite = (&'static str, &'static str, String);

/// What `memory_limit` and `cpu_max` write into a service's cgroup.
pub(super) fn limit_writes(memory_max: Option<u64>, cpu_max: Option<CpuMax>) -> Vec<LimitWrite> {
    let mut out = Vec::new();
    if let Some(bytes) = memory_max {
        out.push(("memory", "memory.max", bytes.to_string()));
    }
    if let Some(cpu) = cpu_max {
        let quota = u64::from(cpu.percent) * CPU_PERIOD_US / 100;
        out.push(("cpu", "cpu.max", format!("{quota} {CPU_PERIOD_US}")));
    }
    out
}

/// Write `writes` into `dir` where its `cgroup.controllers` offers the controller; the
/// warnings for those not applied.
pub(super) fn apply_limits(dir: &Path, writes: &[LimitWrite]) -> Vec<String> {
    let offered = read_words(&dir.join("cgroup.controllers"));
    let mut notes = Vec::new();
    for (controller, file, value) in writes {
        let key = if *controller == "memory" {
            "memory_limit"
        } else {
            "cpu_max"
        };
        if !offered.iter().any(|c| c == controller) {
            notes.push(format!(
                "{key} is not applied: the {controller} controller is not available to {}",
                dir.display()
            ));
            continue;
        }
        if let Err(e) = write_file(&dir.join(file), value) {
            notes.push(format!(
                "{key} is not applied: cannot write {value:?} to {}: {e}",
                dir.join(file).display()
            ));
        }
    }
    notes
}

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// Ask for `controllers` in `dir`'s `cgroup.subtree_control` (those it offers); the
/// warnings for those refused.
fn enable_controllers(dir: &Path, controllers: &[&str]) -> Vec<String> {
    let offered = read_words(&dir.join("cgroup.controllers"));
    let enabled = read_words(&dir.join("cgroup.subtree_control"));
    let mut notes = Vec::new();
    for c in controllers {
        if enabled.iter().any(|e| e == c) || !offered.iter().any(|o| o == c) {
            continue;
        }
        if let Err(e) = write_file(&dir.join("cgroup.subtree_control"), &format!("+{c}")) {
            notes.push(format!(
                "cannot enable the {c} controller in {}: {e}",
                dir.display()
            ));
        }
    }
    notes
}

/// A service's cgroup, owned by its [`Child`](super::Child): removed when dropped.
#[derive(Debug)]
pub(super) struct Cgroup {
    dir: PathBuf,
    /// The watch on its `cgroup.events` in the [`watcher`], removed with the directory: the
    /// kernel keeps a watch on a file of a removed cgroup (and the file) until it is removed.
    watch: Option<Watch>,
    /// Why a limit was not applied, for the engine to warn about.
    pub(super) notes: Vec<String>,
    /// `cgroup.kill` was written: the cgroup is not kept for a next run (Linux 6.18 kills a
    /// child that `clone3` creates in a cgroup killed before, see `fork.rs`).
    killed: std::sync::atomic::AtomicBool,
}

/// A cgroup made for a spawn, and its directory open: `clone3` creates the child in it (see
/// `fork.rs`).
pub(super) struct Made {
    pub(super) cgroup: Cgroup,
    pub(super) dir: OwnedFd,
}

impl Cgroup {
    /// Create (or reuse) the cgroup of `conf`, apply its limits and open its `cgroup.procs`.
    /// `Ok(None)` when not in cgroup mode.
    pub(super) fn make(conf: &Confinement) -> Result<Option<Made>, String> {
        let Ok(h) = hierarchy() else { return Ok(None) };
        let instance = h.own.join(format!("{INSTANCE_PREFIX}{}", conf.instance));
        let dir = instance.join(format!("{}{SERVICE_SUFFIX}", conf.service));
        let writes = limit_writes(conf.memory_max, conf.cpu_max);
        let wanted: Vec<&str> = writes.iter().map(|w| w.0).collect();
        let mut notes = Vec::new();
        // The cgroup of this service's last run, if it is still kept (see `parked.rs`); the
        // mkdirs below then find everything there.
        let kept = {
            let _tree = lock(&TREE);
            if !wanted.is_empty() {
                let refused = enable_controllers(&h.own, &wanted);
                if let (false, Some(why)) = (refused.is_empty(), &h.leaf_problem) {
                    notes.push(format!("warden stays in its own cgroup: {why}"));
                }
                notes.extend(refused);
            }
            mkdir(&instance)
                .map_err(|e| format!("cannot create cgroup {}: {e}", instance.display()))?;
            if !wanted.is_empty() {
                notes.extend(enable_controllers(&instance, &wanted));
            }
            mkdir(&dir).map_err(|e| format!("cannot create cgroup {}: {e}", dir.display()))?;
            parked::take(&dir)
        };
        let watch = match kept {
            Some(kept) => kept.watch,
            None => watch_events(&dir.join("cgroup.events")),
        };
        let cgroup = Cgroup {
            dir,
            watch,
            notes,
            killed: std::sync::atomic::AtomicBool::new(false),
        };
        let mut limit_notes = apply_limits(&cgroup.dir, &writes);
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&cgroup.dir)
            .map_err(|e| format!("cannot open cgroup {}: {e}", cgroup.dir.display()))?;
        let mut cgroup = cgroup;
        cgroup.notes.append(&mut limit_notes);
        Ok(Some(Made {
            cgroup,
            dir: dir.into(),
        }))
    }

    /// Its `cgroup.procs`, open for a child to move itself in by writing `0` (where the
    /// kernel cannot create a child in a cgroup).
    pub(super) fn open_procs(&self) -> Result<OwnedFd, String> {
        fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join("cgroup.procs"))
            .map(OwnedFd::from)
            .map_err(|e| format!("cannot open {}/cgroup.procs: {e}", self.dir.display()))
    }

    /// Does any process live in the cgroup (`populated 1` in `cgroup.events`)? A cgroup
    /// that cannot be read counts as empty (it is gone).
    pub(super) fn populated(&self) -> bool {
        super::procfs::read_small(self.dir.join("cgroup.events"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.trim() == "populated 1")
    }

    /// The pids in the cgroup now (its descendants' too).
    pub(super) fn pids(&self) -> Vec<u32> {
        let mut out = Vec::new();
        collect_pids(&self.dir, &mut out);
        out
    }

    /// SIGKILL everything in the cgroup: `cgroup.kill`, or each pid on older kernels.
    #[cfg(test)]
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn kill(&self) -> io::Result<()> {
        self.killed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        kill_dir(&self.dir)
    }
}

fn mkdir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<u32>) {
    out.extend(
        fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok()),
    );
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out);
            }
        }
    }
}

fn kill_dir(dir: &Path) -> io::Result<()> {
    match write_file(&dir.join("cgroup.kill"), "1") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        Err(_) => {
            kill_each(dir);
            Ok(())
        }
    }
}

/// Before Linux 5.14 (no `cgroup.kill`): SIGKILL each pid of the cgroup and its
/// descendants; a few passes catch what forked meanwhile.
fn kill_each(dir: &Path) {
    for _ in 0..KILL_PASSES {
        let mut pids = Vec::new();
        collect_pids(dir, &mut pids);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            super::tree::kill_pid(pid, libc::SIGKILL);
        }
    }
}

/// Cgroups whose `Child` was dropped while processes remained: removed by the
/// `warden-cgroups` thread once they are empty (their `cgroup.events` is watched).
static PENDING: Mutex<Vec<(PathBuf, Option<Watch>)>> = Mutex::new(Vec::new());

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _tree = lock(&TREE);
        // The thread that removes kept cgroups in time is the watcher's.
        let timed = WATCHER.get().is_some_and(Option::is_some);
        let killed = self.killed.load(std::sync::atomic::Ordering::Relaxed);
        if timed && !killed && !self.populated() {
            // Kept a moment for the service's next run, then removed (see `parked.rs`).
            parked::park(self.dir.clone(), self.watch);
            return;
        }
        if remove(&self.dir) {
            unwatch(self.watch);
            return;
        }
        // The tree outlived its `Child` (it was dropped without a stop, as when a runtime
        // ends): end it, as closing a Job Object does on Windows, and remove the cgroup once
        // the kernel has emptied it.
        let _ = kill_dir(&self.dir);
        if remove(&self.dir) {
            unwatch(self.watch);
        } else {
            lock(&PENDING).push((self.dir.clone(), self.watch));
        }
    }
}

/// Remove a service's cgroup, and its instance's once that is empty; `false` while
/// processes remain in it.
fn remove(dir: &Path) -> bool {
    if fs::remove_dir(dir).is_err() {
        return false;
    }
    if let Some(instance) = dir.parent() {
        // Fails while another service's cgroup is there.
        let _ = fs::remove_dir(instance);
    }
    true
}

/// Remove the pending cgroups that are empty now.
fn sweep_pending() {
    let _tree = lock(&TREE);
    lock(&PENDING).retain(|(dir, watch)| {
        let gone = !dir.exists() || remove(dir);
        if gone {
            unwatch(*watch);
        }
        !gone
    });
}

/// Kill and remove what a previous warden of instance `instance` left in its cgroups
/// (Linux, cgroup mode); returns how many processes were in them.
pub(crate) fn kill_leftover_instance(instance: &str) -> usize {
    let Ok(h) = hierarchy() else { return 0 };
    let dir = h.own.join(format!("{INSTANCE_PREFIX}{instance}"));
    let Ok(entries) = fs::read_dir(&dir) else {
        return 0;
    };
    let mut killed = 0;
    let _tree = lock(&TREE);
    for e in entries.filter_map(Result::ok) {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let mut pids = Vec::new();
        collect_pids(&e.path(), &mut pids);
        killed += pids.len();
        if !pids.is_empty() {
            let _ = kill_dir(&e.path());
        }
        // Fails until the killed processes are gone; the service's own drop retries.
        let _ = fs::remove_dir(e.path());
    }
    let _ = fs::remove_dir(&dir);
    killed
}

/// The cgroup directory of `pid` now.
fn cgroup_of(h: &Hierarchy, pid: u32) -> Option<PathBuf> {
    let text = super::procfs::read_small(format!("/proc/{pid}/cgroup")).ok()?;
    let path = parse_own_cgroup(&text)?;
    Some(own_dir(&h.mount, &h.root, &path))
}

pub(crate) fn service_of_pid(pid: u32, instance: &str) -> Option<String> {
    let h = hierarchy().ok()?;
    let dir = cgroup_of(h, pid)?;
    let rel = dir
        .strip_prefix(h.own.join(format!("{INSTANCE_PREFIX}{instance}")))
        .ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    first.strip_suffix(SERVICE_SUFFIX).map(str::to_owned)
}

/// The service cgroup (`<own>/warden-I/NAME.service`) that `pid` is in, if it is in one of
/// warden's: what a sample of its tree reads `cpu.stat` and `memory.current` from.
pub(super) fn service_dir_of(pid: u32) -> Option<PathBuf> {
    let h = hierarchy().ok()?;
    let dir = cgroup_of(h, pid)?;
    service_dir_in(&h.own, &dir)
}

/// `<own>/warden-I/NAME.service` when `dir` is it or below it.
fn service_dir_in(own: &Path, dir: &Path) -> Option<PathBuf> {
    let mut rel = dir.strip_prefix(own).ok()?.components();
    let instance = rel.next()?.as_os_str().to_str()?;
    let service = rel.next()?.as_os_str().to_str()?;
    (instance.starts_with(INSTANCE_PREFIX) && service.ends_with(SERVICE_SUFFIX))
        .then(|| own.join(instance).join(service))
}

/// The inotify descriptor that watches every service's `cgroup.events`, read by the
/// `warden-cgroups` thread; `None` if it could not be set up (waiters then fall back on
/// the reaper's wake-ups and their deadline).
static WATCHER: OnceLock<Option<OwnedFd>> = OnceLock::new();

fn watcher() -> Option<&'static OwnedFd> {
    WATCHER
        .get_or_init(|| {
            // SAFETY: plain syscall.
            let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            // SAFETY: a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let raw = fd.as_raw_fd();
            std::thread::Builder::new()
                .name("warden-cgroups".into())
                .spawn(move || read_events(raw))
                .ok()?;
            Some(fd)
        })
        .as_ref()
}

/// Wait on the inotify descriptor (it lives in a static: never closed) and wake every waiter
/// after each batch of events; also remove the kept cgroups whose time is up (a timer, and
/// the eventfd that says a cgroup was kept).
fn read_events(fd: libc::c_int) {
    let waker = parked::waker().unwrap_or(-1);
    let mut buf = [0u8; 4096];
    let mut timer: Option<std::time::Duration> = None;
    loop {
        let mut fds = [fd, waker].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        // Rounded up: waking a millisecond early would only mean one more turn.
        let ms = timer.map_or(-1, |t| {
            libc::c_int::try_from(t.as_millis().saturating_add(1)).unwrap_or(libc::c_int::MAX)
        });
        // SAFETY: two valid pollfds (a negative fd is ignored by poll).
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) } < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[1].revents & libc::POLLIN != 0 {
            parked::drain_waker(waker);
        }
        if fds[0].revents & libc::POLLIN != 0 {
            // SAFETY: a valid buffer of that length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
            sweep_pending();
            reaper().reaped.send_modify(|g| *g = g.wrapping_add(1));
        }
        timer = parked::sweep(false);
    }
}

/// Remove every service cgroup kept for a next run (warden ends).
pub(super) fn release_kept() {
    parked::release_all();
}

/// A watch descriptor of the [`watcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watch(libc::c_int);

/// Watch `events` for changes; `None` if it cannot be watched (no watcher, or the watch
/// limit reached: this cgroup is left to the reaper's wake-ups). The kernel does not end
/// the watch when the cgroup goes (a cgroup's files are not unlinked): [`unwatch`] does.
fn watch_events(events: &Path) -> Option<Watch> {
    let fd = watcher()?;
    let c = std::ffi::CString::new(events.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid descriptor and NUL-terminated path.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
    (wd >= 0).then_some(Watch(wd))
}

/// End a watch of a removed cgroup. Two `Cgroup`s of one directory share its watch (the
/// second reused the directory): whichever removes the directory ends it, and the other's
/// call fails harmlessly (the kernel does not reuse a watch descriptor soon: it allocates
/// them cyclically).
fn unwatch(watch: Option<Watch>) {
    let (Some(Watch(wd)), Some(fd)) = (watch, WATCHER.get().and_then(Option::as_ref)) else {
        return;
    };
    // SAFETY: plain syscall on a valid descriptor; an unknown wd is EINVAL, nothing else.
    unsafe { libc::inotify_rm_watch(fd.as_raw_fd(), wd) };
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `sh -c SCRIPT` in `dir`, in the cgroup `warden-INSTANCE/SERVICE.service`, output
    /// discarded.
    pub(in crate::process::imp) fn sh_in_cgroup(
        dir: &std::path::Path,
        script: &str,
        instance: &str,
        service: &str,
    ) -> crate::process::SpawnSpec {
        crate::process::SpawnSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: dir.to_owned(),
            clear_env: true,
            env: Vec::new(),
            output: crate::process::Output::Null,
            credentials: crate::process::Credentials::default(),
            confinement: Some(Confinement {
                instance: instance.to_owned(),
                service: service.to_owned(),
                memory_max: None,
                cpu_max: None,
            }),
        }
    }

    #[test]
    fn the_v2_mount_is_found_in_a_hybrid_layout() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        assert_eq!(
            parse_mountinfo(text),
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/".to_owned()))
        );
        let spaced = "41 31 0:38 / /mnt/my\\040cgroups rw - cgroup2 none rw\n";
        assert_eq!(
            parse_mountinfo(spaced).map(|m| m.0),
            Some(PathBuf::from("/mnt/my cgroups"))
        );
        assert_eq!(
            parse_mountinfo("31 23 0:28 / /x rw - tmpfs tmpfs rw\n"),
            None
        );
    }

    #[test]
    fn own_cgroup_is_the_v2_line() {
        let text = "4:memory:/a/b\n1:cpu:/\n0::/system.slice/warden.service\n";
        let path = parse_own_cgroup(text).expect("v2 line");
        assert_eq!(path, "/system.slice/warden.service");
        assert_eq!(
            own_dir(Path::new("/sys/fs/cgroup"), "/", &path),
            PathBuf::from("/sys/fs/cgroup/system.slice/warden.service")
        );
        // A mount of a subtree (a container's view): paths are seen from its root.
        assert_eq!(
            own_dir(Path::new("/sys/fs/cgroup"), "/ctr", "/ctr/app"),
            PathBuf::from("/sys/fs/cgroup/app")
        );
    }

    /// The root is told from any other cgroup by its missing `cgroup.events`; a move into the
    /// leaf that cannot be made says where (plain directories stand in for cgroups).
    #[test]
    fn warden_moves_into_its_leaf_unless_its_cgroup_is_the_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let own = tmp.path();
        assert!(is_root_cgroup(own));
        fs::write(own.join("cgroup.events"), "populated 1\nfrozen 0\n").expect("write");
        assert!(!is_root_cgroup(own));
        let err = move_into_leaf(own).expect_err("not a cgroup: no cgroup.procs to write");
        assert!(
            err.starts_with(&format!(
                "cannot move warden into {}",
                own.join("supervisor").display()
            )),
            "{err}"
        );
        assert!(own.join("supervisor").is_dir(), "the leaf was made");
    }

    #[test]
    fn a_pid_is_sampled_from_its_service_cgroup_only() {
        let own = Path::new("/cg/system.slice/warden.service");
        assert_eq!(
            service_dir_in(own, &own.join("warden-I1/web.service")),
            Some(own.join("warden-I1/web.service"))
        );
        // A cgroup the service made below its own: still the service's.
        assert_eq!(
            service_dir_in(own, &own.join("warden-I1/web.service/sub")),
            Some(own.join("warden-I1/web.service"))
        );
        for not in ["", "warden-I1", "other/web.service", "warden-I1/web"] {
            assert_eq!(service_dir_in(own, &own.join(not)), None, "{not:?}");
        }
        assert_eq!(service_dir_in(own, Path::new("/cg/user.slice")), None);
    }

    #[test]
    fn memory_limit_and_cpu_max_write_memory_max_and_cpu_max() {
        assert_eq!(
            limit_writes(Some(1 << 30), Some(CpuMax { percent: 50 })),
            vec![
                ("memory", "memory.max", "1073741824".to_owned()),
                ("cpu", "cpu.max", "50000 100000".to_owned()),
            ]
        );
        assert_eq!(
            limit_writes(None, Some(CpuMax { percent: 250 })),
            vec![("cpu", "cpu.max", "250000 100000".to_owned())]
        );
        assert!(limit_writes(None, None).is_empty());
    }

    /// What is written where the controller is offered, and the warning where it is not
    /// (on a plain directory standing in for a cgroup: these machines' v2 hierarchy has no
    /// memory or cpu controller).
    #[test]
    fn limits_are_written_only_where_the_controller_is_offered() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        fs::write(dir.join("cgroup.controllers"), "cpu io\n").expect("write");
        fs::write(dir.join("cpu.max"), "max 100000\n").expect("write");
        let writes = limit_writes(Some(512 << 20), Some(CpuMax { percent: 50 }));
        let notes = apply_limits(dir, &writes);
        assert_eq!(
            fs::read_to_string(dir.join("cpu.max")).expect("read"),
            "50000 100000"
        );
        assert!(!dir.join("memory.max").exists());
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("memory_limit is not applied: the memory controller"),
            "{notes:?}"
        );
    }

    /// A real child in a real cgroup (skipped, with the reason, where this machine gives no
    /// cgroup v2 subtree to manage): `service_of_pid` names its service, for its escaped
    /// grandchild too; a kill empties the cgroup; dropping the child removes it.
    #[tokio::test]
    async fn a_child_and_its_escaped_grandchild_are_in_the_service_cgroup_until_killed() {
        in_a_real_cgroup(true).await;
    }

    /// The same with the fallback of kernels before 5.14: SIGKILL to each pid.
    #[tokio::test]
    async fn without_cgroup_kill_each_pid_of_the_cgroup_is_killed() {
        in_a_real_cgroup(false).await;
    }

    async fn in_a_real_cgroup(with_cgroup_kill: bool) {
        if let Err(reason) = hierarchy() {
            println!("skipped: {reason}");
            return;
        }
        let instance = format!("unit{}{with_cgroup_kill}", std::process::id());
        let tmp = tempfile::tempdir().expect("tempdir");
        let pid_file = tmp.path().join("escaped");
        let script = format!(
            "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {}; exec sleep 300",
            pid_file.display()
        );
        let spec = sh_in_cgroup(tmp.path(), &script, &instance, "svc");
        let mut child = crate::process::spawn(&spec).expect("spawn");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let escaped: u32 = loop {
            if let Some(pid) = fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break pid;
            }
            assert!(std::time::Instant::now() < deadline, "no pid file");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        assert_eq!(
            service_of_pid(child.pid(), &instance).as_deref(),
            Some("svc")
        );
        assert_eq!(service_of_pid(escaped, &instance).as_deref(), Some("svc"));
        assert_eq!(service_of_pid(escaped, "another-instance"), None);
        assert_eq!(service_of_pid(std::process::id(), &instance), None);
        let dir = child.cgroup.as_ref().expect("a cgroup").dir.clone();
        assert!(dir.join("cgroup.procs").exists());

        if with_cgroup_kill {
            child.kill_tree().expect("kill");
        } else {
            kill_each(&dir);
        }
        assert!(
            child
                .wait_tree_gone(std::time::Duration::from_secs(20))
                .await,
            "the cgroup empties"
        );
        assert!(
            !Path::new(&format!("/proc/{escaped}")).exists() || {
                let stat = fs::read_to_string(format!("/proc/{escaped}/stat")).unwrap_or_default();
                stat.contains(") Z")
            }
        );
        let inode =
            |d: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(d).expect("cgroup"));
        let first = inode(&dir);
        drop(child);
        if with_cgroup_kill {
            // A cgroup emptied by `cgroup.kill` is not kept (see `fork.rs`): removed now.
            assert!(!dir.exists(), "a killed cgroup is removed with its child");
            assert!(
                !dir.parent().expect("instance").exists(),
                "and the instance's"
            );
            return;
        }
        // Kept for the service's next run: created in the same cgroup.
        assert!(dir.exists(), "kept a moment after its child");
        let again = sh_in_cgroup(tmp.path(), "exit 0", &instance, "svc");
        let mut child = crate::process::spawn(&again).expect("spawn again");
        assert_eq!(child.cgroup.as_ref().expect("a cgroup").dir, dir);
        assert_eq!(inode(&dir), first, "the same cgroup, not a new one");
        tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
            .await
            .expect("it exits");
        assert!(
            child
                .wait_tree_gone(std::time::Duration::from_secs(20))
                .await
        );
        drop(child);
        // Then removed by the timer, the instance's too.
        let deadline = std::time::Instant::now() + parked::KEEP_FOR * 10;
        while dir.parent().expect("instance").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the kept cgroup is removed in time"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(!dir.exists());
    }

    /// A busy process in a service's cgroup that has ended still counts: the sample's CPU
    /// time is the cgroup's `usage_usec`, not the sum over the live processes (about 0 here),
    /// and `memory.current` comes along where the memory controller is.
    #[tokio::test]
    async fn a_sample_in_a_cgroup_takes_its_cpu_from_cpu_stat() {
        if let Err(reason) = hierarchy() {
            println!("skipped: {reason}");
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let done = tmp.path().join("done");
        // The subshell spins until its CPU limit of 1 s ends it (SIGXCPU).
        let script = format!(
            "(ulimit -c 0; ulimit -t 1; while :; do :; done); : > {}; exec sleep 300",
            done.display()
        );
        let spec = sh_in_cgroup(
            tmp.path(),
            &script,
            &format!("unitcpu{}", std::process::id()),
            "busy",
        );
        let mut child = crate::process::spawn(&spec).expect("spawn");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !done.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the burner never ended"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let dir = child.cgroup.as_ref().expect("a cgroup").dir.clone();
        assert_eq!(service_dir_of(child.pid()), Some(dir.clone()));
        let s = crate::process::sample_tree(child.pid()).expect("a sample");
        assert!(
            s.cpu_seconds >= 0.5,
            "the ended burner's second (about 0.93 s of usage_usec here) is in the figure: {s:?}"
        );
        let stat = fs::read_to_string(format!("/proc/{}/stat", child.pid())).expect("stat");
        let rest: Vec<&str> = stat[stat.rfind(')').expect(")") + 2..].split(' ').collect();
        let live: u64 =
            rest[11].parse::<u64>().expect("utime") + rest[12].parse::<u64>().expect("stime");
        assert!(
            live < 20,
            "the live process itself used little: {live} ticks"
        );
        assert_eq!(
            s.cgroup_memory_bytes.is_some(),
            dir.join("memory.current").exists(),
            "{s:?}"
        );
        child.kill_tree().expect("kill");
        assert!(
            child
                .wait_tree_gone(std::time::Duration::from_secs(20))
                .await
        );
    }

    /// The inotify watches of the watcher on `ino` (from `/proc/self/fdinfo`).
    fn watches_on(ino: u64) -> usize {
        let Some(fd) = WATCHER.get().and_then(Option::as_ref) else {
            return 0;
        };
        let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
            .expect("fdinfo of the watcher");
        let needle = format!(" ino:{ino:x} ");
        info.lines()
            .filter(|l| l.starts_with("inotify wd:") && l.contains(&needle))
            .count()
    }

    /// Regression (chaos scenario 1: 1,600 watches left after a 45 s crash storm of 50
    /// services): the watch on a cgroup's `cgroup.events` goes with the cgroup, whether its
    /// child ended before the drop or was still running (the cgroup removed later).
    #[tokio::test]
    async fn a_removed_cgroup_leaves_no_inotify_watch_behind() {
        use std::os::unix::fs::MetadataExt;
        if let Err(reason) = hierarchy() {
            println!("skipped: {reason}");
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        for (i, script) in ["exit 0", "sleep 300 & exec sleep 300"]
            .into_iter()
            .enumerate()
        {
            let spec = sh_in_cgroup(
                tmp.path(),
                script,
                &format!("unitwatch{i}x{}", std::process::id()),
                "svc",
            );
            let mut child = crate::process::spawn(&spec).expect("spawn");
            let dir = child.cgroup.as_ref().expect("a cgroup").dir.clone();
            let ino = fs::metadata(dir.join("cgroup.events")).expect("stat").ino();
            assert_eq!(watches_on(ino), 1, "{script}: cgroup.events is watched");
            if i == 0 {
                child.wait().await;
                assert!(
                    child
                        .wait_tree_gone(std::time::Duration::from_secs(20))
                        .await
                );
            }
            drop(child);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while dir.exists() || watches_on(ino) != 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{script}: {} exists: {}, watches on it: {}",
                    dir.display(),
                    dir.exists(),
                    watches_on(ino)
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }

    /// A child dropped while its tree runs (no stop: a runtime that ends) takes its tree
    /// and, once the kernel emptied it, its cgroup along.
    #[tokio::test]
    async fn a_child_dropped_while_running_ends_its_tree_and_its_cgroup_goes() {
        if let Err(reason) = hierarchy() {
            println!("skipped: {reason}");
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let spec = sh_in_cgroup(
            tmp.path(),
            "sleep 300 & exec sleep 300",
            &format!("unitdrop{}", std::process::id()),
            "svc",
        );
        let child = crate::process::spawn(&spec).expect("spawn");
        let dir = child.cgroup.as_ref().expect("a cgroup").dir.clone();
        drop(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while dir.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} is still there: {}",
                dir.display(),
                fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!dir.parent().expect("instance").exists());
    }
}
