//! The portable side of least privilege and hard limits: what a child runs as
//! ([`Credentials`]: `user`, `group`, `umask`, `nice`, `oom_score_adjust`,
//! `no_new_privileges`, `limits`) and what confines its whole tree ([`Confinement`]: the
//! service's own cgroup with `memory_limit` and `cpu_max` on Linux, the job's memory limit
//! on Windows). The OS folders apply them; nothing of `libc` appears here.
//!
//! # Which service's cgroup is pid N in?
//!
//! [`service_of_pid`] answers it from `/proc/N/cgroup` (Linux, cgroup mode only): a process
//! of service `web` of the warden instance `I` lives in `<warden's cgroup>/warden-I/web.service`
//! or below, whatever it did to its process group, session or environment.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::imp;

/// Who a child runs as and what it may do, applied between fork and exec (Unix). The
/// default changes nothing: the child runs as warden does, with warden's original limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// The account to run as (by name): its uid, its primary group unless `group` says
    /// otherwise, its supplementary groups, and `HOME`, `USER`, `LOGNAME`, `SHELL` from it.
    pub user: Option<String>,
    /// The group to run as (by name), instead of the account's primary group.
    pub group: Option<String>,
    /// The file mode creation mask, `0o000..=0o777`.
    pub umask: Option<u32>,
    /// The nice value, `-20..=19` (below warden's own needs root).
    pub nice: Option<i32>,
    /// Linux `/proc/self/oom_score_adj`, `-1000..=1000` (lowering it needs root).
    pub oom_score_adjust: Option<i32>,
    /// `PR_SET_NO_NEW_PRIVS` (Linux): no set-user-id bit or file capability raises the
    /// privileges of the program or its descendants.
    pub no_new_privileges: bool,
    /// Resource limits, each set as both the soft and the hard limit.
    pub limits: Vec<(Resource, LimitValue)>,
}

impl Credentials {
    /// Does this ask for anything at all?
    pub fn is_default(&self) -> bool {
        *self == Credentials::default()
    }
}

/// A resource limit (`setrlimit`), by the name the config uses (`RLIMIT_` + upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Address space, bytes.
    As,
    /// Core file size, bytes (`core = 0`: no core dumps).
    Core,
    /// CPU time, seconds.
    Cpu,
    /// Data segment, bytes.
    Data,
    /// Largest file written, bytes.
    Fsize,
    /// File locks (Linux).
    Locks,
    /// Locked memory, bytes.
    Memlock,
    /// POSIX message queues, bytes (Linux).
    Msgqueue,
    /// Nice ceiling, `20 - nice` (Linux).
    Nice,
    /// Open file descriptors.
    Nofile,
    /// Processes (threads) of the user.
    Nproc,
    /// Resident set, bytes (ignored by Linux).
    Rss,
    /// Real-time priority ceiling (Linux).
    Rtprio,
    /// Real-time CPU time, microseconds (Linux).
    Rttime,
    /// Queued signals (Linux).
    Sigpending,
    /// Stack size, bytes.
    Stack,
}

impl Resource {
    pub const ALL: &'static [Resource] = &[
        Resource::As,
        Resource::Core,
        Resource::Cpu,
        Resource::Data,
        Resource::Fsize,
        Resource::Locks,
        Resource::Memlock,
        Resource::Msgqueue,
        Resource::Nice,
        Resource::Nofile,
        Resource::Nproc,
        Resource::Rss,
        Resource::Rtprio,
        Resource::Rttime,
        Resource::Sigpending,
        Resource::Stack,
    ];

    /// The name in `limits = { ... }`.
    pub fn name(self) -> &'static str {
        match self {
            Resource::As => "as",
            Resource::Core => "core",
            Resource::Cpu => "cpu",
            Resource::Data => "data",
            Resource::Fsize => "fsize",
            Resource::Locks => "locks",
            Resource::Memlock => "memlock",
            Resource::Msgqueue => "msgqueue",
            Resource::Nice => "nice",
            Resource::Nofile => "nofile",
            Resource::Nproc => "nproc",
            Resource::Rss => "rss",
            Resource::Rtprio => "rtprio",
            Resource::Rttime => "rttime",
            Resource::Sigpending => "sigpending",
            Resource::Stack => "stack",
        }
    }

    pub fn parse(name: &str) -> Option<Resource> {
        Resource::ALL.iter().copied().find(|r| r.name() == name)
    }

    /// Is it a number of bytes (so that the config accepts `"1GiB"`)?
    pub fn is_bytes(self) -> bool {
        matches!(
            self,
            Resource::As
                | Resource::Core
                | Resource::Data
                | Resource::Fsize
                | Resource::Memlock
                | Resource::Msgqueue
                | Resource::Rss
                | Resource::Stack
        )
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The value of one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitValue {
    /// `"unlimited"`: `RLIM_INFINITY`.
    Unlimited,
    Value(u64),
}

/// `cpu_max = "50%"`: the share of one CPU the service's cgroup may use, in percent
/// (`"200%"` is two CPUs). Written to `cpu.max` as a quota per 100 ms period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMax {
    pub percent: u32,
}

/// The tree confinement of one service: its own cgroup `warden-INSTANCE/SERVICE.service`
/// under warden's own (Linux, when warden can manage a cgroup v2 subtree) with its hard
/// limits, or its job's memory limit (Windows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// The warden instance (the state dir's marker, `WARDEN_INSTANCE`).
    pub instance: String,
    pub service: String,
    /// `memory_limit`: `memory.max` (Linux), the job memory limit (Windows).
    pub memory_max: Option<u64>,
    /// `cpu_max`: `cpu.max` (Linux; not applied elsewhere).
    pub cpu_max: Option<CpuMax>,
}

/// A user account, as the OS's user database gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// Look a user up by name: `Ok(None)` if there is no such user. Always `Ok(None)` on Windows.
pub fn lookup_account(name: &str) -> io::Result<Option<Account>> {
    imp::lookup_account(name)
}

/// Look a group up by name: its gid, `Ok(None)` if there is no such group.
pub fn lookup_group(name: &str) -> io::Result<Option<u32>> {
    imp::lookup_group(name)
}

/// Can this OS set that limit?
pub fn resource_supported(resource: Resource) -> bool {
    imp::resource_supported(resource)
}

/// How warden tracks (and confines) the processes of its services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracking {
    /// Each service runs in its own cgroup under `dir` (Linux, cgroup v2): tracked exactly,
    /// stopped whole, with hard limits where the controllers exist.
    Cgroup {
        /// warden's own cgroup, absolute (under the v2 mount), below which each instance
        /// has `warden-INSTANCE/`.
        dir: PathBuf,
        /// The controllers that warden's cgroup offers (`memory`, `cpu`, ...).
        controllers: Vec<String>,
    },
    /// Windows: each service's tree is its Job Object, exact by construction;
    /// `memory_limit` is the job's memory limit.
    Job,
    /// Soft tracking (Unix without cgroups): the process group, `/proc` ancestry and the
    /// `WARDEN_INSTANCE` marker; limits by sampling.
    ProcessGroup {
        /// Why not cgroups.
        reason: String,
    },
}

impl Tracking {
    /// `"cgroup"`, `"job"` or `"process-group"`, as the status JSON says.
    pub fn mode(&self) -> &'static str {
        match self {
            Tracking::Cgroup { .. } => "cgroup",
            Tracking::Job => "job",
            Tracking::ProcessGroup { .. } => "process-group",
        }
    }
}

/// The mode in force, found once (Linux: the cgroup v2 mount from `/proc/self/mountinfo`,
/// warden's own cgroup from `/proc/self/cgroup`, and a probe that a cgroup can be created
/// there).
pub fn tracking() -> Tracking {
    imp::tracking()
}

/// Which service of warden instance `instance` has pid `pid` in its cgroup (Linux, cgroup
/// mode): the service's name, or `None` (no such process, not in one of this instance's
/// service cgroups, or not in cgroup mode). For attributing an orphan to its service.
pub fn service_of_pid(pid: u32, instance: &str) -> Option<String> {
    imp::service_of_pid(pid, instance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_round_trip() {
        for r in Resource::ALL {
            assert_eq!(Resource::parse(r.name()), Some(*r));
        }
        assert_eq!(Resource::parse("NOFILE"), None);
        assert!(Resource::Core.is_bytes());
        assert!(!Resource::Nofile.is_bytes());
    }
}
