//! Unix implementation of the process layer.
//!
//! # How a child is started
//!
//! [`spawn`] uses `std::process::Command` with a `pre_exec` hook (never a hand-written
//! `fork`). Between fork and exec the child calls `setsid()` (a new session and process group
//! whose id is the child's pid), on Linux asks for `SIGKILL` when its parent dies
//! (`PR_SET_PDEATHSIG`) and then checks that its parent is still warden, empties its signal
//! mask and resets to default the signals a parent may have ignored (`SIGPIPE` above all).
//!
//! **Call [`spawn`] on a tokio worker thread or on the main thread, never inside
//! `spawn_blocking`.** Linux delivers the parent-death signal when the *thread* that forked
//! exits, and tokio ends idle blocking-pool threads after a few seconds: a child spawned there
//! would be killed for no reason.
//!
//! # Reaping
//!
//! One reaper, global to the process, owns `waitpid`. It runs on its own thread with a small
//! current-thread runtime that listens to `SIGCHLD`, so that it keeps working whichever
//! runtime (or how many runtimes, as in tests) the callers use. Each `SIGCHLD` triggers a
//! `waitpid(-1, WNOHANG)` loop: a registered pid gets its status delivered to its [`Child`];
//! any other pid (an orphan re-parented to warden as a subreaper) is just reaped. After a
//! batch, a generation counter is bumped so that waiters ([`Child::wait_tree_gone`],
//! [`wait_no_children`]) re-check their condition: waiting is event-driven.
//!
//! The registry lock is held both around `Command::spawn` + registration and around the
//! `waitpid` loop. So a child can never be reaped before it is registered (no "unclaimed
//! status" bookkeeping is needed, and a reused pid can never pick up a stale status), and the
//! reaper cannot steal the failed child that `std` itself reaps when `exec` fails.
//!
//! # Platform limits
//!
//! - Linux gets everything: subreaper, parent-death signal, start times from
//!   `/proc/PID/stat` (field 22, clock ticks since boot), adopted-orphan matching through
//!   `/proc/PID/environ`, whole-tree walks through `/proc`.
//! - Elsewhere (macOS, BSDs) there is no subreaper and no `/proc`: `start_time` is 0, a
//!   service is its process group (a daemon that calls `setsid` escapes), `kill_leftovers`
//!   does nothing, `kill_all_descendants` kills the groups of live children only, and
//!   [`Child::wait_tree_gone`] cannot be woken by the death of a group member that is not
//!   warden's child, so it re-checks with a backoff (5 ms doubling up to 200 ms). The same
//!   fallback applies on Linux when [`init_supervisor`] was not called.

use std::collections::HashMap;
#[cfg(target_os = "linux")]
use std::collections::HashSet;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{ExitStatus, GroupRecord, Signal, SpawnError, SpawnSpec};

/// The variable the engine sets to the warden instance id in every service's environment.
const INSTANCE_VAR: &[u8] = b"WARDEN_INSTANCE";
/// The variable the engine sets to the service name in every service's environment.
const SERVICE_VAR: &[u8] = b"WARDEN_SERVICE";

/// Signals whose disposition a child gets back to default before `exec` (ignored signals
/// survive `exec`; handled ones are reset by the kernel anyway).
const RESET_SIGNALS: &[libc::c_int] = &[
    libc::SIGPIPE,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGCHLD,
    libc::SIGALRM,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGXFSZ,
];

/// Pipe size asked for on Linux (the unprivileged maximum by default); failure is ignored.
#[cfg(target_os = "linux")]
const PIPE_SIZE: libc::c_int = 1 << 20;

// ---------------------------------------------------------------------------------------------
// The reaper

/// The global reaper state.
struct Reaper {
    /// Children spawned and not yet reaped, with where their status goes. Held during
    /// `Command::spawn` + registration and during the `waitpid` loop (see the module docs).
    live: Mutex<HashMap<u32, watch::Sender<Option<ExitStatus>>>>,
    /// Bumped after every batch of reaps that reaped something.
    reaped: watch::Sender<u64>,
}

static REAPER: OnceLock<Reaper> = OnceLock::new();
/// Whether the reaper thread runs; the error text if it could not start.
static REAPER_STARTED: OnceLock<Result<(), String>> = OnceLock::new();
/// Whether warden is a child subreaper (Linux), so that every orphan's death is reported.
static SUBREAPER: AtomicBool = AtomicBool::new(false);

fn reaper() -> &'static Reaper {
    REAPER.get_or_init(|| Reaper {
        live: Mutex::new(HashMap::new()),
        reaped: watch::Sender::new(0),
    })
}

/// Lock a mutex, ignoring poisoning: the protected maps stay consistent at every step.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Start the reaper thread once. It installs the `SIGCHLD` listener before this returns, so no
/// child spawned afterwards can exit unnoticed.
fn ensure_reaper() -> io::Result<()> {
    let started = REAPER_STARTED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("warden-reaper".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        // The receiver waits for this message; nothing else to do with a failure.
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    let mut sigchld = match signal(SignalKind::child()) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(()));
                    reap_pass();
                    while sigchld.recv().await.is_some() {
                        reap_pass();
                    }
                });
            });
        match thread {
            Ok(_) => match rx.recv() {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("could not start the reaper: {e}")),
                Err(_) => Err("the reaper thread ended at start".to_owned()),
            },
            Err(e) => Err(format!("could not start the reaper thread: {e}")),
        }
    });
    started.clone().map_err(io::Error::other)
}

/// Reap every child that has exited, deliver the statuses of registered ones, then tell the
/// waiters.
fn reap_pass() {
    let r = reaper();
    let mut any = false;
    {
        let mut live = lock(&r.live);
        loop {
            let mut raw: libc::c_int = 0;
            // SAFETY: plain syscall with a valid out pointer.
            let pid = unsafe { libc::waitpid(-1, &raw mut raw, libc::WNOHANG) };
            if pid > 0 {
                any = true;
                if let Some(tx) = live.remove(&(pid as u32)) {
                    tx.send_replace(Some(decode_status(raw)));
                }
            } else if pid == 0 || errno() != libc::EINTR {
                break; // 0: children left but none exited; ECHILD: no children.
            }
        }
    }
    if any {
        r.reaped.send_modify(|n| *n = n.wrapping_add(1));
    }
}

fn decode_status(raw: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(raw) {
        ExitStatus::Signal(libc::WTERMSIG(raw))
    } else {
        // WIFEXITED; stopped/continued are never reported since we do not ask for them.
        ExitStatus::Code(libc::WEXITSTATUS(raw))
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Wait until `done()` holds, re-checking after every reap batch, at most until `deadline`.
/// When `event_driven` is false (some deaths are not reported to warden), also re-check with a
/// backoff from 5 ms up to 200 ms.
async fn wait_until(deadline: Instant, event_driven: bool, mut done: impl FnMut() -> bool) -> bool {
    let mut rx = reaper().reaped.subscribe();
    let mut backoff = Duration::from_millis(5);
    loop {
        rx.borrow_and_update();
        if done() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let wake = if event_driven {
            deadline
        } else {
            let at = (now + backoff).min(deadline);
            backoff = (backoff * 2).min(Duration::from_millis(200));
            at
        };
        match tokio::time::timeout_at(wake, rx.changed()).await {
            Ok(Ok(())) | Err(_) => {}
            // The sender is a static: it is never dropped. Fall back on the deadline.
            Ok(Err(_)) => tokio::time::sleep_until(wake).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Child

/// `WARDEN_INSTANCE` and `WARDEN_SERVICE` as given in the spawn environment: how an orphan that
/// escaped the process group (a double-forked `setsid` daemon) is still known as this service's.
#[derive(Clone, PartialEq, Eq)]
struct ServiceTag {
    instance: Vec<u8>,
    service: Vec<u8>,
}

impl fmt::Debug for ServiceTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTag")
            .field("instance", &String::from_utf8_lossy(&self.instance))
            .field("service", &String::from_utf8_lossy(&self.service))
            .finish()
    }
}

/// A child process and its process group (its own session too: `setsid`).
#[derive(Debug)]
pub struct Child {
    pid: u32,
    start_time: u64,
    status: watch::Receiver<Option<ExitStatus>>,
    stdout: Option<OutputPipe>,
    stderr: Option<OutputPipe>,
    #[cfg_attr(
        not(target_os = "linux"),
        allow(dead_code, reason = "orphans are matched through /proc")
    )]
    tag: Option<ServiceTag>,
}

impl Child {
    /// The pid of the main process (= its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its start time in the OS's unit, for [`GroupRecord`]: on Linux field 22 of
    /// `/proc/PID/stat` (clock ticks since boot), read right after the fork; 0 elsewhere.
    pub fn start_time(&self) -> u64 {
        self.start_time
    }

    pub fn group_record(&self, service: &str) -> GroupRecord {
        GroupRecord {
            service: service.to_owned(),
            pgid: self.pid,
            start_time: self.start_time(),
        }
    }

    pub fn take_stdout(&mut self) -> Option<OutputPipe> {
        self.stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<OutputPipe> {
        self.stderr.take()
    }

    /// Send `sig` to the whole process group (and, on Linux, to adopted orphans of this
    /// service: processes re-parented to warden whose environment carries this child's
    /// `WARDEN_INSTANCE` and `WARDEN_SERVICE`). A group that is already gone is not an error.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        let signo = signal_number(sig);
        let result = if self.group_is_ours() {
            kill_group(self.pid, signo)
        } else {
            Ok(())
        };
        #[cfg(target_os = "linux")]
        for pid in self.adopted_orphans_now() {
            kill_pid(pid, signo);
        }
        result
    }

    /// SIGKILL to the whole tree: the process group, adopted orphans of this service and (on
    /// Linux) every process whose parent chain leads to one of those or to the main process.
    pub fn kill_tree(&self) -> io::Result<()> {
        let ours = self.group_is_ours();
        let result = if ours {
            kill_group(self.pid, libc::SIGKILL)
        } else {
            Ok(())
        };
        #[cfg(target_os = "linux")]
        {
            // A process may fork while we scan: a few passes catch what was born meanwhile.
            let mut killed = HashSet::new();
            for _ in 0..3 {
                let procs = procfs::all();
                let mut roots: Vec<u32> = Vec::new();
                if ours {
                    roots.extend(procs.iter().filter(|p| p.pgrp == self.pid).map(|p| p.pid));
                    if self.exit_status().is_none() {
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

    /// Wait for the main process to exit. Cancel-safe; after the exit it returns the same
    /// status again at once.
    pub async fn wait(&mut self) -> ExitStatus {
        if let Ok(status) = self.status.wait_for(Option::is_some).await
            && let Some(status) = *status
        {
            return status;
        }
        // The reaper drops a sender only after giving it a status: unreachable, but never
        // invent a status.
        std::future::pending().await
    }

    /// Has the main process exited (and been reaped)?
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.status.borrow()
    }

    /// Wait until no process of this child's tree is left, at most `timeout`. `true` if
    /// none is left. Re-checks after every reap (see the module docs for non-Linux).
    pub async fn wait_tree_gone(&mut self, timeout: Duration) -> bool {
        let deadline = crate::util::deadline_in(timeout);
        wait_until(deadline, SUBREAPER.load(Ordering::Relaxed), || {
            self.tree_gone()
        })
        .await
    }

    /// The main process is reaped, its group is empty, and no adopted orphan is left.
    fn tree_gone(&self) -> bool {
        if self.exit_status().is_none() {
            return false;
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
    fn group_is_ours(&self) -> bool {
        if self.exit_status().is_none() {
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
        self.adopted_orphans(&procfs::own_children().unwrap_or_else(procfs::all))
    }

    /// Processes re-parented to warden, not spawned by it, whose environment carries this
    /// child's tag, and not yet dead.
    #[cfg(target_os = "linux")]
    fn adopted_orphans(&self, procs: &[procfs::Proc]) -> Vec<u32> {
        let Some(tag) = &self.tag else {
            return Vec::new();
        };
        let me = std::process::id();
        let registered: HashSet<u32> = lock(&reaper().live).keys().copied().collect();
        procs
            .iter()
            .filter(|p| p.ppid == me && !p.is_zombie() && !registered.contains(&p.pid))
            .filter(|p| {
                procfs::environ_matches(
                    p.pid,
                    &[(INSTANCE_VAR, &tag.instance), (SERVICE_VAR, &tag.service)],
                )
            })
            .map(|p| p.pid)
            .collect()
    }
}

/// `kill(-pgid, sig)`; a group that does not exist is fine.
fn kill_group(pgid: u32, signo: libc::c_int) -> io::Result<()> {
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
#[cfg(target_os = "linux")]
fn kill_pid(pid: u32, signo: libc::c_int) -> bool {
    if pid <= 1 {
        return false;
    }
    // SAFETY: plain syscall on a positive pid.
    unsafe { libc::kill(pid as libc::pid_t, signo) == 0 }
}

/// Does any process (zombies included) belong to the group `pgid`?
fn group_alive(pgid: u32) -> bool {
    // SAFETY: plain syscall, signal 0 only checks.
    if unsafe { libc::kill(-(pgid as libc::pid_t), 0) } == 0 {
        return true;
    }
    errno() != libc::ESRCH
}

fn signal_number(sig: Signal) -> libc::c_int {
    match sig {
        Signal::Int => libc::SIGINT,
        Signal::Term => libc::SIGTERM,
        Signal::Hup => libc::SIGHUP,
        Signal::Quit => libc::SIGQUIT,
        Signal::Kill => libc::SIGKILL,
        Signal::Usr1 => libc::SIGUSR1,
        Signal::Usr2 => libc::SIGUSR2,
    }
}

// ---------------------------------------------------------------------------------------------
// Output pipes

/// The read end of a child's stdout or stderr pipe (non-blocking, driven by the tokio reactor
/// of the runtime that spawned the child).
#[derive(Debug)]
pub struct OutputPipe {
    inner: tokio::net::unix::pipe::Receiver,
}

impl OutputPipe {
    fn new(fd: OwnedFd) -> io::Result<OutputPipe> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: fcntl on an fd we own. A refusal (over the per-user limit) is harmless.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
        }
        // Checks that it is a pipe opened for reading, and makes it non-blocking.
        Ok(OutputPipe {
            inner: tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?,
        })
    }
}

impl AsyncRead for OutputPipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

// ---------------------------------------------------------------------------------------------
// spawn

/// Start a child in its own session and process group. See the module docs: call this on a
/// tokio worker thread or the main thread, never inside `spawn_blocking` (Linux delivers the
/// parent-death signal when the forking *thread* exits). Needs a tokio runtime (the output
/// pipes register with its reactor); the reaper is started here if [`init_supervisor`] was not
/// called.
pub(super) fn spawn(spec: &SpawnSpec) -> Result<Child, SpawnError> {
    let program = spec.program.to_string_lossy().into_owned();
    if tokio::runtime::Handle::try_current().is_err() {
        let source = io::Error::other("spawn must be called inside a tokio runtime");
        return Err(SpawnError::Other { program, source });
    }
    if let Err(source) = ensure_reaper() {
        return Err(SpawnError::Other { program, source });
    }

    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null());
    if spec.clear_env {
        cmd.env_clear();
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if spec.capture_output {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    } else {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the hook only makes async-signal-safe syscalls (see `child_setup`).
    unsafe {
        cmd.pre_exec(move || child_setup(parent));
    }

    // Holding the registry lock: the reaper cannot reap this child before it is registered,
    // nor steal the failed child std reaps itself on an exec error. (std's pipes are CLOEXEC.)
    let mut live = lock(&reaper().live);
    let mut std_child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            drop(live);
            return Err(spawn_error(spec, program, e));
        }
    };
    let pid = std_child.id();
    let (tx, status) = watch::channel(None);
    live.insert(pid, tx);
    // Read before the lock is released: the pid cannot be reaped (hence reused) meanwhile.
    let start_time = read_start_time(pid);
    drop(live);

    let stdout = std_child.stdout.take().map(|p| OutputPipe::new(p.into()));
    let stderr = std_child.stderr.take().map(|p| OutputPipe::new(p.into()));
    // Dropping std's Child neither waits nor kills: the reaper owns the exit status.
    drop(std_child);
    let (stdout, stderr) = match (stdout.transpose(), stderr.transpose()) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(source), _) | (_, Err(source)) => {
            // Cannot hand out a child whose output nobody can read: end it. It gets reaped.
            // The group certainly exists (unreaped leader), so an error here is impossible.
            let _ = kill_group(pid, libc::SIGKILL);
            return Err(SpawnError::Other { program, source });
        }
    };
    Ok(Child {
        pid,
        start_time,
        status,
        stdout,
        stderr,
        tag: service_tag(spec),
    })
}

/// Runs in the child between fork and exec: async-signal-safe calls only, no allocation.
fn child_setup(parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: each call is an async-signal-safe syscall with valid arguments.
    unsafe {
        if libc::setsid() == -1 {
            return Err(io::Error::last_os_error());
        }
        #[cfg(target_os = "linux")]
        {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ) == -1
            {
                return Err(io::Error::last_os_error());
            }
            // If warden died between fork and prctl, the signal will never come: leave now.
            if libc::getppid() != parent {
                libc::_exit(127);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = parent;
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &raw const set, std::ptr::null_mut());
        for &sig in RESET_SIGNALS {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    Ok(())
}

/// Map a spawn failure to its cause: a missing program, a refused one, or an unusable cwd.
fn spawn_error(spec: &SpawnSpec, program: String, source: io::Error) -> SpawnError {
    let errno = source.raw_os_error();
    if matches!(errno, Some(libc::ENOENT | libc::EACCES | libc::ENOTDIR))
        && let Err(cwd_error) = check_cwd(&spec.cwd)
    {
        return SpawnError::BadCwd {
            cwd: spec.cwd.clone(),
            source: cwd_error,
        };
    }
    match errno {
        Some(libc::ENOENT) => SpawnError::NotFound { program, source },
        Some(libc::EACCES) => SpawnError::PermissionDenied { program, source },
        _ => SpawnError::Other { program, source },
    }
}

/// Is `cwd` a directory we may enter?
fn check_cwd(cwd: &Path) -> io::Result<()> {
    if !std::fs::metadata(cwd)?.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    let c = CString::new(cwd.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn service_tag(spec: &SpawnSpec) -> Option<ServiceTag> {
    let find = |name: &[u8]| {
        spec.env
            .iter()
            .rev()
            .find(|(k, _)| k.as_bytes() == name)
            .map(|(_, v)| v.as_bytes().to_vec())
    };
    Some(ServiceTag {
        instance: find(INSTANCE_VAR)?,
        service: find(SERVICE_VAR)?,
    })
}

#[cfg(target_os = "linux")]
fn read_start_time(pid: u32) -> u64 {
    procfs::stat(pid).map_or(0, |p| p.start_time)
}

#[cfg(not(target_os = "linux"))]
fn read_start_time(_pid: u32) -> u64 {
    0
}

// ---------------------------------------------------------------------------------------------
// Whole-process operations

pub(super) fn init_supervisor() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain prctl.
        if unsafe {
            libc::prctl(
                libc::PR_SET_CHILD_SUBREAPER,
                1 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        } == -1
        {
            return Err(io::Error::last_os_error());
        }
        SUBREAPER.store(true, Ordering::Relaxed);
    }
    ensure_reaper()
}

const SIGNAL_NAMES: &[(libc::c_int, &str)] = &[
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGILL, "ILL"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGABRT, "ABRT"),
    (libc::SIGBUS, "BUS"),
    (libc::SIGFPE, "FPE"),
    (libc::SIGKILL, "KILL"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGSEGV, "SEGV"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGPIPE, "PIPE"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGCHLD, "CHLD"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGSTOP, "STOP"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGTTIN, "TTIN"),
    (libc::SIGTTOU, "TTOU"),
    (libc::SIGURG, "URG"),
    (libc::SIGXCPU, "XCPU"),
    (libc::SIGXFSZ, "XFSZ"),
    (libc::SIGVTALRM, "VTALRM"),
    (libc::SIGPROF, "PROF"),
    (libc::SIGWINCH, "WINCH"),
    (libc::SIGIO, "IO"),
    (libc::SIGSYS, "SYS"),
];

/// `"TERM"` for 15, and so on; `None` for a number this OS does not name.
pub(super) fn signal_name(num: i32) -> Option<&'static str> {
    SIGNAL_NAMES
        .iter()
        .find(|(n, _)| *n == num)
        .map(|(_, name)| *name)
}

/// Linux: SIGKILL every process of a recorded group (if the group is still the recorded one:
/// its leader is gone or has the recorded start time; and only members started no earlier
/// than the leader) and every process of our uid whose environment has
/// `WARDEN_INSTANCE=marker`. Never warden itself or its ancestors. Meant for start-up, before
/// any service is spawned: warden's own children carrying `marker` would be killed too.
#[cfg(target_os = "linux")]
pub(super) fn kill_leftovers(records: &[GroupRecord], marker: &str) -> usize {
    let procs = procfs::all();
    let me = std::process::id();
    let ancestors = procfs::ancestors(&procs, me);
    let spared = |p: &procfs::Proc| p.is_zombie() || p.pid == me || ancestors.contains(&p.pid);
    let mut victims: Vec<u32> = Vec::new();
    for rec in records {
        if rec.pgid <= 1 {
            continue;
        }
        // A living leader with another start time: the pid was reused, the group is not ours.
        if procs
            .iter()
            .any(|p| p.pid == rec.pgid && p.start_time != rec.start_time)
        {
            continue;
        }
        victims.extend(
            procs
                .iter()
                .filter(|p| p.pgrp == rec.pgid && p.start_time >= rec.start_time && !spared(p))
                .map(|p| p.pid),
        );
    }
    if !marker.is_empty() {
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
    victims
        .into_iter()
        .filter(|pid| kill_pid(*pid, libc::SIGKILL))
        .count()
}

/// Without `/proc` a recorded group cannot be checked against pid reuse: do nothing.
#[cfg(not(target_os = "linux"))]
pub(super) fn kill_leftovers(_records: &[GroupRecord], _marker: &str) -> usize {
    0
}

/// SIGKILL every live descendant of warden (Linux: found through `/proc`) and the groups of
/// children not reaped yet. Returns how many processes (Linux) or groups (elsewhere) it
/// signalled.
pub(super) fn kill_all_descendants() -> usize {
    #[cfg(target_os = "linux")]
    let walked = {
        let procs = procfs::all();
        let me = std::process::id();
        procfs::closure(&procs, [me])
            .into_iter()
            .filter(|pid| *pid != me)
            .filter(|pid| procs.iter().any(|p| p.pid == *pid && !p.is_zombie()))
            .filter(|pid| kill_pid(*pid, libc::SIGKILL))
            .count()
    };
    let live: Vec<u32> = lock(&reaper().live).keys().copied().collect();
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

/// `true` once warden has no child at all (`waitid` says `ECHILD`), at most `timeout`.
pub(super) async fn wait_no_children(timeout: Duration) -> bool {
    let deadline = crate::util::deadline_in(timeout);
    if ensure_reaper().is_err() {
        // Nobody reaps: only the current state can be answered.
        return no_children_now();
    }
    wait_until(deadline, true, no_children_now).await
}

fn no_children_now() -> bool {
    // SAFETY: an all-zero siginfo_t is valid; WNOWAIT leaves any zombie for the reaper.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &raw mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    rc == -1 && errno() == libc::ECHILD
}

/// Is this `NAME=value` entry (bytes) the given pair?
#[cfg(target_os = "linux")]
fn env_entry_is(entry: &[u8], name: &[u8], value: &[u8]) -> bool {
    entry.len() == name.len() + 1 + value.len()
        && entry.starts_with(name)
        && entry[name.len()] == b'='
        && entry.ends_with(value)
}

// ---------------------------------------------------------------------------------------------
// /proc

#[cfg(target_os = "linux")]
mod procfs {
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

    /// Parse `/proc/PID/stat`. The command name (field 2) is in parentheses and may contain
    /// spaces and parentheses: fields are counted after its *last* `)`.
    pub(super) fn parse_stat(pid: u32, text: &str) -> Option<Proc> {
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        // fields[0] is field 3 (state); field N is fields[N - 3].
        Some(Proc {
            pid,
            state: *fields.first()?.as_bytes().first()?,
            ppid: fields.get(1)?.parse().ok()?,
            pgrp: fields.get(2)?.parse().ok()?,
            start_time: fields.get(19)?.parse().ok()?,
        })
    }

    pub(super) fn stat(pid: u32) -> Option<Proc> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(pid, &text)
    }

    /// warden's own direct children (every thread's), with their stat: adopted orphans are
    /// always among them, and this costs a few reads instead of a scan of all of `/proc`.
    /// `None` where the kernel does not offer the `children` files.
    pub(super) fn own_children() -> Option<Vec<Proc>> {
        let mut out = Vec::new();
        for task in std::fs::read_dir("/proc/self/task")
            .ok()?
            .filter_map(Result::ok)
        {
            let text = std::fs::read_to_string(task.path().join("children")).ok()?;
            out.extend(
                text.split_ascii_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .filter_map(stat),
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
                .any(|entry| super::env_entry_is(entry, name, value))
        })
    }

    #[cfg(test)]
    mod tests {
        use super::parse_stat;

        #[test]
        fn stat_with_parentheses_and_spaces_in_the_name() {
            let text = "42 (a) b (c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 0 0";
            let p = parse_stat(42, text).expect("parses");
            assert_eq!(
                (p.state, p.ppid, p.pgrp, p.start_time),
                (b'S', 7, 42, 123_456)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGTERM), Some("TERM"));
        assert_eq!(signal_name(libc::SIGKILL), Some("KILL"));
        assert_eq!(signal_name(0), None);
    }

    #[cfg(target_os = "linux")]
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
