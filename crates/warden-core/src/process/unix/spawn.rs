//! [`spawn`]: start a child in its own session and process group (and, in cgroup mode, its
//! service's cgroup), with the service's credentials and limits, registered with the reaper.

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
#[cfg(target_os = "linux")]
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use tokio::sync::watch;

#[cfg(target_os = "linux")]
use super::cgroup::Cgroup;
use super::child::{Child, ServiceTag};
use super::creds::{self, Prepared};
#[cfg(target_os = "linux")]
use super::fork;
use super::pipe::OutputPipe;
#[cfg(target_os = "linux")]
use super::procfs;
use super::reaper::{ensure_reaper, reaper};
use super::tree::kill_group;
use super::{INSTANCE_VAR, SERVICE_VAR, lock};
use crate::process::{Output, SpawnError, SpawnSpec};

/// The exit code of a child that finds warden gone before its parent-death signal was set
/// (127, as a shell's "could not run the command").
#[cfg(target_os = "linux")]
const EXIT_PARENT_GONE: libc::c_int = 127;

/// The first descriptor a child does not keep open across `exec`: 0, 1 and 2 are its stdin,
/// stdout and stderr.
const FIRST_NON_STDIO_FD: libc::c_int = 3;

/// Where the fallback of [`cloexec_all_but_stdio`] stops, whatever `RLIMIT_NOFILE` says (a
/// limit of a million would cost a million `fcntl` calls per spawn).
const CLOEXEC_LOOP_MAX_FD: libc::c_int = 1 << 16;

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

/// Start a child in its own session and process group. See the module docs: call this on a
/// tokio worker thread or the main thread, never inside `spawn_blocking` (Linux delivers the
/// parent-death signal when the forking *thread* exits). Needs a tokio runtime (the output
/// pipes register with its reactor); the reaper is started here if [`init_supervisor`] was not
/// called.
pub(crate) fn spawn(spec: &SpawnSpec) -> Result<Child, SpawnError> {
    let program = spec.program.to_string_lossy().into_owned();
    if tokio::runtime::Handle::try_current().is_err() {
        let source = io::Error::other("spawn must be called inside a tokio runtime");
        return Err(SpawnError::Other { program, source });
    }
    if let Err(source) = ensure_reaper() {
        return Err(SpawnError::Other { program, source });
    }
    // Everything the child applies is resolved and allocated here, before the fork.
    let mut prepared = creds::prepare(&spec.credentials, &program)?;
    #[cfg(target_os = "linux")]
    let (made, notes) = match spec.confinement.as_ref().map(Cgroup::make) {
        Some(Ok(made)) => (made, Vec::new()),
        Some(Err(reason)) => (None, vec![format!("runs without its own cgroup: {reason}")]),
        None => (None, Vec::new()),
    };
    #[cfg(not(target_os = "linux"))]
    let notes = Vec::new();
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args).current_dir(&spec.cwd);
    if spec.clear_env {
        cmd.env_clear();
    }
    for var in crate::process::HOST_MANAGER_VARS {
        cmd.env_remove(var); // health: never the host's systemd variables
    }
    // The account's HOME, USER, LOGNAME and SHELL first: the service's own `env` wins.
    cmd.envs(std::mem::take(&mut prepared.env));
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    let parent = std::process::id() as libc::pid_t;
    // Read here: `getrlimit` is not on the async-signal-safe list.
    let fd_bound = fd_loop_bound();
    #[cfg(target_os = "linux")]
    let oom = super::oom::child_value();
    // What the child does between fork and exec, on either path. `cgroup_fd`: the
    // `cgroup.procs` it moves itself into, where it was not created in its cgroup.
    let setup = move |cgroup_fd: Option<libc::c_int>| {
        // warden's lowered oom_score_adj is not the service's: its original back.
        #[cfg(target_os = "linux")]
        if let Some(v) = oom {
            // SAFETY: this closure only runs in the child, between fork and exec.
            unsafe { super::oom::reset_in_child(v) };
        }
        child_setup(parent, fd_bound, &prepared, cgroup_fd)
    };

    // In cgroup mode, the child is created in its cgroup (see `fork.rs`), with the very
    // program, arguments and environment `cmd` holds. Built before the lock is taken.
    #[cfg(target_os = "linux")]
    let direct = match made.as_ref() {
        Some(_) if fork::available() => {
            match fork::Image::of(&cmd, spec.clear_env)
                .and_then(|i| Ok((i, Stdio3::new(spec.output)?)))
            {
                Ok(prepared) => Some(prepared),
                Err(e) => return Err(spawn_error(spec, program, e)),
            }
        }
        _ => None,
    };

    // warden's own path: a spawn ticket, not the registry lock, keeps the reaper from taking
    // the child before it is registered (see `reaper::Registry`), so two spawns can clone
    // at once.
    #[cfg(target_os = "linux")]
    let launched: Option<Launched> = match (direct, &made) {
        (Some((image, stdio)), Some(m)) => {
            let ticket = super::reaper::InFlight::begin();
            match fork::spawn_in_cgroup(&image, m.dir.as_fd(), stdio.child_fds(), &mut || {
                setup(None)
            }) {
                Ok(fork::Cloned::Child(pid)) => {
                    let (stdout, stderr) = stdio.into_readers();
                    Some((ticket.end(), (pid, stdout, stderr)))
                }
                Ok(fork::Cloned::Unsupported | fork::Cloned::KilledAtBirth) => None,
                Err(e) => return Err(spawn_error(spec, program, e)),
            }
        }
        _ => None,
    };
    #[cfg(not(target_os = "linux"))]
    let launched: Option<Launched> = None;
    let (mut live, (pid, stdout, stderr)) = if let Some(launched) = launched {
        launched
    } else {
        // Holding the registry lock: the reaper cannot reap this child before it is
        // registered, nor steal the failed child that std reaps itself on an exec error.
        let live = lock(&reaper().live);
        // std's path: the child moves itself into its cgroup, if it has one.
        #[cfg(target_os = "linux")]
        let procs = match made.as_ref().map(|m| m.cgroup.open_procs()).transpose() {
            Ok(p) => p,
            Err(reason) => {
                drop(live);
                let source = io::Error::other(reason);
                return Err(SpawnError::Other { program, source });
            }
        };
        #[cfg(target_os = "linux")]
        let cgroup_fd = procs.as_ref().map(AsRawFd::as_raw_fd);
        #[cfg(not(target_os = "linux"))]
        let cgroup_fd: Option<libc::c_int> = None;
        let joined = match std_stdio(&mut cmd, spec.output) {
            Ok(j) => j,
            Err(source) => {
                drop(live);
                return Err(SpawnError::Other { program, source });
            }
        };
        // SAFETY: the hook only makes async-signal-safe syscalls (see `child_setup`).
        unsafe { cmd.pre_exec(move || setup(cgroup_fd)) };
        let mut std_child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                drop(live);
                return Err(spawn_error(spec, program, e));
            }
        };
        let stdout = match joined {
            Some(reader) => Some(OwnedFd::from(reader)),
            None => std_child.stdout.take().map(OwnedFd::from),
        };
        let stderr = std_child.stderr.take().map(OwnedFd::from);
        // Dropping std's Child neither waits nor kills: the reaper owns the exit status.
        (live, (std_child.id(), stdout, stderr))
    };
    let (tx, status) = watch::channel(None);
    live.children.insert(pid, tx);
    // Read before the lock is released: the pid cannot be reaped (hence reused) meanwhile.
    let start_time = read_start_time(pid);
    super::reaper::note_start(pid, start_time);
    drop(live);
    super::reaper::child_added();
    // Our copies of the pipes' write ends: the reader sees end of file once the child's
    // copies are closed.
    drop(cmd);
    #[cfg(target_os = "linux")]
    let cgroup = made.map(|m| m.cgroup);

    let stdout = stdout.map(OutputPipe::new);
    let stderr = stderr.map(OutputPipe::new);
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
        notes,
        #[cfg(target_os = "linux")]
        cgroup,
        followed: None,
    })
}

/// A spawned child, still to be registered: the registry, its pid, its output pipes.
type Launched = (
    std::sync::MutexGuard<'static, super::reaper::Registry>,
    (u32, Option<OwnedFd>, Option<OwnedFd>),
);

/// Set std's stdio on `cmd` for `output` (stdin is always `/dev/null`). With `Joined`,
/// returns the read end of the one pipe whose write end is both 1 and 2.
fn std_stdio(cmd: &mut Command, output: Output) -> io::Result<Option<io::PipeReader>> {
    cmd.stdin(Stdio::null());
    match output {
        Output::Null => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            Ok(None)
        }
        Output::Separate => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            Ok(None)
        }
        Output::Joined => {
            // Both ends close-on-exec: no other child can inherit them. The child gets its
            // descriptors 1 and 2 by `dup2` of the write end (and of its copy).
            let (reader, writer) = io::pipe()?;
            let writer_copy = writer.try_clone()?;
            cmd.stdout(Stdio::from(writer))
                .stderr(Stdio::from(writer_copy));
            Ok(Some(reader))
        }
    }
}

/// The descriptors 0, 1 and 2 of a child started by `fork.rs`, all close-on-exec here (the
/// child `dup2`s them): `/dev/null` for stdin (and for the output of `Null`), and the pipes.
#[cfg(target_os = "linux")]
struct Stdio3 {
    null: std::os::fd::BorrowedFd<'static>,
    /// The read and write ends of the stdout pipe (with `Joined`, also the child's stderr).
    out: Option<(OwnedFd, OwnedFd)>,
    err: Option<(OwnedFd, OwnedFd)>,
}

#[cfg(target_os = "linux")]
impl Stdio3 {
    fn new(output: Output) -> io::Result<Stdio3> {
        let null = fork::null()?;
        let (out, err) = match output {
            Output::Null => (None, None),
            Output::Joined => (Some(fork::cloexec_pipe()?), None),
            Output::Separate => (Some(fork::cloexec_pipe()?), Some(fork::cloexec_pipe()?)),
        };
        Ok(Stdio3 { null, out, err })
    }

    fn child_fds(&self) -> [std::os::fd::BorrowedFd<'_>; 3] {
        let out = self.out.as_ref().map_or(self.null, |(_, w)| w.as_fd());
        let err = self.err.as_ref().map_or(out, |(_, w)| w.as_fd());
        [self.null, out, err]
    }

    /// The read ends; the write ends are closed.
    fn into_readers(self) -> (Option<OwnedFd>, Option<OwnedFd>) {
        (self.out.map(|(r, _)| r), self.err.map(|(r, _)| r))
    }
}

/// Runs in the child between fork and exec: async-signal-safe calls only, no allocation.
/// `fd_bound`: see [`cloexec_all_but_stdio`]. In order: a new session; into the service's
/// cgroup (`cgroup_fd`: its `cgroup.procs`); what needs warden's privileges (oom score,
/// nice, limits, umask); the switch of groups and user, `no_new_privileges`; then the
/// parent-death signal, which a change of credentials would have cleared.
fn child_setup(
    parent: libc::pid_t,
    fd_bound: libc::c_int,
    prepared: &Prepared,
    cgroup_fd: Option<libc::c_int>,
) -> io::Result<()> {
    // SAFETY: each call is an async-signal-safe syscall with valid arguments.
    unsafe {
        if libc::setsid() == -1 {
            return Err(io::Error::last_os_error());
        }
        if let Some(fd) = cgroup_fd
            && libc::write(fd, b"0".as_ptr().cast(), 1) != 1
        {
            return Err(io::Error::last_os_error());
        }
        prepared.apply_privileged()?;
        prepared.switch_user()?;
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
                libc::_exit(EXIT_PARENT_GONE);
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
        cloexec_all_but_stdio(fd_bound);
    }
    Ok(())
}

/// Mark every descriptor but 0, 1 and 2 close-on-exec, so that a service gets none of the
/// descriptors warden inherited (warden's own are opened close-on-exec already). Marked,
/// not closed: std's pipe that reports an `exec` failure to the parent must stay open until
/// the `exec`.
///
/// Linux 5.11 and later: one `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)`, through `syscall`
/// (no libc wrapper needed). Elsewhere, or when the kernel refuses it: `fcntl(FD_CLOEXEC)`
/// on each number from 3 below `fd_bound` (the soft `RLIMIT_NOFILE`, at most
/// [`CLOEXEC_LOOP_MAX_FD`], read by the parent before the fork); a descriptor numbered above
/// the limit (opened before it was lowered) is missed there. Both are async-signal-safe.
///
/// # Safety
///
/// Call it only in the child between fork and exec.
unsafe fn cloexec_all_but_stdio(fd_bound: libc::c_int) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a plain syscall with integer arguments.
        let done = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                FIRST_NON_STDIO_FD as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        } == 0;
        if done {
            return;
        }
    }
    for fd in FIRST_NON_STDIO_FD..fd_bound {
        // SAFETY: fcntl on a number that may or may not be open (EBADF then, harmless).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// The soft `RLIMIT_NOFILE`, at most [`CLOEXEC_LOOP_MAX_FD`] (that bound if it is unknown).
fn fd_loop_bound() -> libc::c_int {
    // SAFETY: an all-zero rlimit is a valid value; getrlimit fills it in.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 {
        return CLOEXEC_LOOP_MAX_FD;
    }
    libc::c_int::try_from(lim.rlim_cur).map_or(CLOEXEC_LOOP_MAX_FD, |n| n.min(CLOEXEC_LOOP_MAX_FD))
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
