//! The portable process layer: spawn a child in its own process group (Unix) or Job Object
//! (Windows), signal it, stop it gracefully, kill its whole tree, and wait for it.
//!
//! Nothing of `libc` or `windows-sys` appears in a public signature here. One folder per OS
//! (`unix/`, `windows/`) implements the same functions, split by job.
//!
//! # Stopping a child gracefully, on any OS
//!
//! [`stop_steps`] turns a service's config into the graceful steps of its stop, in order, and
//! [`Child::apply_stop_step`] applies one. Between steps the caller waits for the tree to go
//! ([`Child::wait_tree_gone`]); after the last one it kills what is left
//! ([`Child::kill_tree`]). A step that cannot apply to this tree says so
//! ([`StepOutcome::NotApplicable`]) at once, so that it takes none of the stop's time:
//!
//! ```ignore
//! for step in process::stop_steps(cfg.stop_signal, &cfg.stop_method) {
//!     match child.apply_stop_step(step).await {
//!         Ok(StepOutcome::Applied) => {}
//!         Ok(StepOutcome::NotApplicable) => continue,
//!         Err(e) => { warn!("cannot send {step}: {e}"); continue }
//!     }
//!     if child.wait_tree_gone(share).await { return Gone; }
//! }
//! child.kill_tree()?;
//! ```
//!
//! On Unix, warden reaps its children itself (one `SIGCHLD` listener calling `waitpid(-1)`),
//! so that processes re-parented to warden as a subreaper are reaped too. Never use
//! `tokio::process` or `std::process::Child::wait` in warden: every child goes through
//! [`spawn`].

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[cfg_attr(unix, path = "unix/mod.rs")]
#[cfg_attr(windows, path = "windows/mod.rs")]
mod imp;
mod privileges;
mod sampling; // health: the portable parts of resource samples

pub use crate::model::Signal;
use crate::model::StopMethod;
#[cfg(unix)]
pub use imp::NotifySocket;
pub use imp::{Child, DirWatch, OutputPipe};

/// One graceful step of a stop, the same type on every OS. [`stop_steps`] gives the steps a
/// service's config asks for on this OS; [`Child::apply_stop_step`] applies one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopStep {
    /// Send this signal to the whole tree (Unix: the process group and the adopted orphans,
    /// as [`Child::signal`]). On Windows only [`Signal::Kill`] applies (it ends the job);
    /// any other signal is [`StepOutcome::NotApplicable`].
    Signal(Signal),
    /// Windows: a console `CTRL_C_EVENT` on the child's own console, which every process of
    /// the tree attached to it receives. Not applicable on Unix.
    CtrlC,
    /// Windows: `WM_CLOSE` posted to every top-level window of the tree's processes. Not
    /// applicable on Unix.
    WmClose,
}

impl fmt::Display for StopStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopStep::Signal(sig) => write!(f, "{sig}"),
            StopStep::CtrlC => f.write_str("Ctrl-C"),
            StopStep::WmClose => f.write_str("WM_CLOSE"),
        }
    }
}

/// What [`Child::apply_stop_step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The request was delivered, or nothing of the tree is left to deliver it to: wait for
    /// the tree to go (a wait that returns at once when it is gone already).
    Applied,
    /// The step cannot apply to this tree (no window for `WM_CLOSE`, no console for Ctrl-C,
    /// a step of another OS): nothing was sent, so the next step may follow at once.
    NotApplicable,
}

/// The graceful steps of a stop for a service's config, in order, on this OS. Unix:
/// `[Signal(stop_signal)]` (`stop_method` is a Windows setting). Windows: each step of
/// `stop_method` but `terminate`, which is the kill that follows every graceful step
/// (`stop_signal` is a Unix setting). An empty list means "kill at once".
pub fn stop_steps(stop_signal: Signal, stop_method: &[StopMethod]) -> Vec<StopStep> {
    imp::stop_steps(stop_signal, stop_method)
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal number (Unix only).
    Signal(i32),
}

impl ExitStatus {
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Code(c) => Some(c),
            ExitStatus::Signal(_) => None,
        }
    }

    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signal(s) => Some(s),
            ExitStatus::Code(_) => None,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "code {c}"),
            ExitStatus::Signal(s) => write!(f, "signal {s}{}", signal_name_suffix(*s)),
        }
    }
}

fn signal_name_suffix(num: i32) -> String {
    imp::signal_name(num).map_or_else(String::new, |n| format!(" (SIG{n})"))
}

/// What to run, fully resolved: no shell is involved unless the caller put one in `program`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// Start from an empty environment instead of warden's own.
    pub clear_env: bool,
    /// Set (or override) these variables.
    pub env: Vec<(OsString, OsString)>,
    /// Where stdout and stderr go. stdin is always the null device.
    pub output: Output,
    /// Who the child runs as and what it may do (Unix; [`Credentials::default`] on Windows):
    /// every spawn of a service (its command, its `stop_command`, its probes) carries the
    /// same.
    pub credentials: Credentials,
    /// The service's own cgroup (Linux) or the limits of its job (Windows); `None`: none
    /// (a `stop_command`).
    pub confinement: Option<Confinement>,
}

pub use privileges::{
    Account, Confinement, CpuMax, Credentials, LimitValue, Resource, Tracking, lookup_account,
    lookup_group, resource_supported, service_of_pid, tracking,
};
/// One resource sample of a service's tree (Unix: the main process, its group, its
/// descendants; Windows: every process in its job).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeSample {
    /// CPU time used so far, user and system. Unix: in cgroup mode the service cgroup's
    /// (`cpu.stat` `usage_usec`, ended processes included), else summed over the tree's live
    /// processes. Windows: the job's total, which also keeps the time of its processes that
    /// exited.
    pub cpu_seconds: f64,
    /// Resident memory (Windows: the working set), summed over the tree's processes (in
    /// every mode).
    pub rss_bytes: u64,
    /// How many processes the memory figure sums.
    pub processes: u32,
    /// The service cgroup's `memory.current` (page cache included); `None` outside cgroup
    /// mode or without the memory controller.
    pub cgroup_memory_bytes: Option<u64>,
}

/// Is `pid` the process `root`, in its group, or a descendant of it? (The sender check of
/// a notify message; `true` where the OS does not say who sent it.)
#[cfg(unix)]
pub fn in_tree(pid: u32, root: u32) -> bool {
    imp::in_tree(pid, root)
}

/// Sample the tree of `pid`, the main process of a [`Child`] warden holds, now. Linux reads
/// `/proc` (the descendants, and the orphans of its group that warden adopted); macOS asks
/// libproc (its group and its descendants); Windows reads the job of the [`Child`] whose
/// main process is `pid`. `None`: nothing to sample (`pid` is gone, or on Windows no open
/// job has it as its main process).
pub fn sample_tree(pid: u32) -> Option<TreeSample> {
    imp::sample_tree(pid)
}

/// warden's own process (not its children), for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OwnSample {
    pub cpu_seconds: f64,
    /// Resident memory (Windows: the working set).
    pub rss_bytes: u64,
    /// Open file descriptors (Windows: open handles, as Prometheus's Windows clients count
    /// `process_open_fds`).
    pub open_fds: u64,
}

/// Sample warden's own process now: Linux reads `/proc/self`, macOS asks libproc, Windows
/// `GetProcessTimes`, `GetProcessMemoryInfo` and `GetProcessHandleCount`.
pub fn sample_own() -> Option<OwnSample> {
    imp::sample_own()
}

/// Give the heap's free pages back to the OS after a burst of allocations that were freed
/// (the start of every service, a reload); see [`imp::release_free_heap`].
pub fn release_free_heap() {
    imp::release_free_heap();
}

/// Once a start is over (every service had its first start, the control endpoint serves):
/// unmap the clean pages of warden's read-only file mappings, its code and read-only data and
/// those of its libraries, so that only what warden runs again is mapped again (Linux; the
/// pages stay in the page cache: see `unix/pages.rs` why that is lossless). Elsewhere nothing.
pub fn release_startup_pages() {
    imp::release_startup_pages();
}

/// The same once warden has settled (every service's start has come to an end), from a
/// short-lived thread of its own, with the free heap given back first, so that hardly any
/// code of warden's runs after it: each page that runs again is mapped again with its
/// neighbourhood (the kernel's fault-around, 64 KiB), and the caller's own way back to its
/// wait, from a release on its thread, mapped 0.8 MB of code back at once. Linux; elsewhere
/// nothing.
pub fn release_settled_pages() {
    imp::release_settled_pages();
}

/// The variables a service manager above warden (systemd) gives warden itself: every child
/// starts without them unless its own `env` (or warden, for `notify = true`) sets them, so
/// that a child under `inherit_env` never talks to the host's systemd in warden's place.
pub const HOST_MANAGER_VARS: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
];

/// Where a child's stdout and stderr go (its stdin is always the null device).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Both to the null device: [`Child::take_stdout`] and [`Child::take_stderr`] give
    /// `None`.
    Null,
    /// A pipe each, read through [`Child::take_stdout`] and [`Child::take_stderr`]. The order
    /// of lines *across* the two pipes is lost: the reader only sees what each one holds.
    Separate,
    /// One pipe for both, read through [`Child::take_stdout`] ([`Child::take_stderr`] gives
    /// `None`): the child's stdout and stderr are the same pipe (Unix: descriptors 1 and 2
    /// are copies of one write end; Windows: one handle is both `hStdOutput` and
    /// `hStdError`), so the reader gets the bytes in the order the program wrote them.
    Joined,
}

/// Why a spawn failed; `Display` names the program and the cause.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("program not found: {program}")]
    NotFound {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("permission denied running {program}")]
    PermissionDenied {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("working directory {cwd} is not usable")]
    BadCwd {
        cwd: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The service's privileges cannot be applied: another `user` while warden is not
    /// root, an account that no longer exists, a limit above what warden may grant. Retrying
    /// cannot help: the service fails at once (see [`SpawnError::is_permanent`]).
    #[error("cannot start {program}: {reason}")]
    Privileges { program: String, reason: String },
    #[error("could not start {program}")]
    Other {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

impl SpawnError {
    /// Would the same spawn fail again, whatever the time? (Only [`SpawnError::Privileges`].)
    pub fn is_permanent(&self) -> bool {
        matches!(self, SpawnError::Privileges { .. })
    }
}

/// Start a child: its own process group and session (Unix: `setsid`, a parent-death signal
/// on Linux) or its own Job Object with kill-on-close (Windows). stdin is the null device.
///
/// Must be called from within the tokio runtime.
pub fn spawn(spec: &SpawnSpec) -> Result<Child, SpawnError> {
    imp::spawn(spec)
}

/// Prepare warden's own process to supervise: on Linux become a child subreaper so that
/// orphaned descendants are re-parented to warden (and reaped by it); start the reaper.
/// Also raise warden's own soft `RLIMIT_NOFILE` to its hard limit (a thousand services
/// need two thousand pipe descriptors); children get the original soft limit back unless
/// their `limits` say otherwise. Call once, early, inside the runtime.
pub fn init_supervisor() -> std::io::Result<()> {
    imp::raise_fd_limit();
    imp::init_supervisor()
}

/// A record of a process group warden started, saved in the state dir so that the next
/// warden can end what a killed warden left behind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupRecord {
    pub service: String,
    /// The process group id (= the pid of the service's main process).
    pub pgid: u32,
    /// The leader's start time, in the OS's own unit (Linux: clock ticks since boot), so a
    /// reused pid is never mistaken for ours.
    pub start_time: u64,
    /// The main process warden follows instead of the leader, once a launcher daemonized
    /// (`pid_file`, or adopted): it may have left the group and cleared its environment, so
    /// only this record lets the next warden find it. Absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<MainRecord>,
}

/// A followed main process: its pid and its start time (the same unit as
/// [`GroupRecord::start_time`]), so a reused pid is never hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MainRecord {
    pub pid: u32,
    pub start_time: u64,
}

/// What a launcher that exited left behind, as [`Child::find_daemon`] attributes it (the way
/// systemd's `GuessMainPID` does): the process that should become the service's main one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adoption {
    /// Nothing of this service is left (or this OS cannot tell).
    Nothing,
    /// Exactly one process, attributed to this service beyond doubt: follow it.
    One(u32),
    /// Several candidates, or one that could be another service's: adopt nothing.
    Ambiguous(Vec<u32>),
}

/// End every process left over from a previous warden whose groups are listed, and what is
/// left in its instance's cgroups (and, on Linux with `scan`, every process carrying
/// `marker` as its `WARDEN_INSTANCE` environment variable: a read of every process's
/// environment, skipped after a previous warden that ended cleanly). Returns the number of
/// processes killed.
pub fn kill_leftovers(records: &[GroupRecord], marker: &str, scan: bool) -> usize {
    imp::kill_leftovers(records, marker, scan)
}

/// Remove what warden keeps between two runs of a service (Linux: the empty cgroup of its
/// last run, for a second, so that a restart is created in it): called when warden ends.
pub fn release_cgroups() {
    imp::release_cgroups();
}

/// Kill every descendant of warden still alive (used last at shutdown, after every service
/// stopped, so that nothing a service forked outlives warden). Returns how many it signalled.
pub fn kill_all_descendants() -> usize {
    imp::kill_all_descendants()
}

/// Wait until warden has no child process left (all reaped), or `timeout` passed.
/// Returns `true` if none is left.
pub async fn wait_no_children(timeout: Duration) -> bool {
    imp::wait_no_children(timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_steps_read_as_in_the_event_lines() {
        assert_eq!(StopStep::Signal(Signal::Term).to_string(), "SIGTERM");
        assert_eq!(StopStep::CtrlC.to_string(), "Ctrl-C");
        assert_eq!(StopStep::WmClose.to_string(), "WM_CLOSE");
    }

    /// The engine awaits a step inside a spawned task: the future must be `Send`.
    #[test]
    fn a_stop_step_can_be_awaited_in_a_spawned_task() {
        fn assert_send<T: Send>(_: &T) {}
        // Only the future's type is checked; it is never polled.
        fn check(child: &Child) {
            let step = child.apply_stop_step(StopStep::CtrlC);
            assert_send(&step);
        }
        let _ = check;
    }
}
