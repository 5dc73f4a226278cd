//! A service's [`Credentials`], resolved in the parent into plain numbers ([`Prepared`]) and
//! applied in the child between fork and exec with async-signal-safe calls only.
//!
//! Order in the child (see `spawn::child_setup`): the steps that need warden's privileges
//! first ([`Prepared::apply_privileged`]: `oom_score_adj`, `nice`, the limits, the umask),
//! then the switch of groups and user ([`Prepared::switch_user`]: `setgroups`, `setgid`,
//! `setuid`), then `no_new_privileges`. The parent-death signal is set after the switch,
//! because the kernel clears it when the credentials change.
//!
//! And warden's own `RLIMIT_NOFILE`: [`raise_fd_limit`] raises the soft limit to the hard
//! limit once at start, remembering the original, which every child gets back unless its
//! `limits` set `nofile`.

use std::ffi::OsString;
use std::io;
use std::sync::OnceLock;

use super::account;
use crate::process::{Credentials, LimitValue, Resource, SpawnError};

/// warden's soft `RLIMIT_NOFILE` before [`raise_fd_limit`] raised it.
static ORIGINAL_NOFILE: OnceLock<libc::rlimit> = OnceLock::new();

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type ResourceId = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type ResourceId = libc::c_int;

/// The digits of an `oom_score_adj` value, formatted before the fork.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(
    not(target_os = "linux"),
    allow(dead_code, reason = "a Linux setting; the config refuses it elsewhere")
)]
struct OomText {
    bytes: [u8; 8],
    len: usize,
}

/// Everything the child applies, as plain numbers.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    /// `(uid, gid, groups)` to switch to.
    switch: Option<(libc::uid_t, libc::gid_t, Vec<libc::gid_t>)>,
    umask: Option<libc::mode_t>,
    nice: Option<libc::c_int>,
    oom: Option<OomText>,
    #[cfg_attr(
        not(target_os = "linux"),
        allow(dead_code, reason = "a Linux setting; the config refuses it elsewhere")
    )]
    no_new_privileges: bool,
    limits: Vec<(ResourceId, libc::rlimit)>,
    /// `HOME`, `USER`, `LOGNAME`, `SHELL` of the account, set before the service's own `env`
    /// (which wins).
    pub(super) env: Vec<(OsString, OsString)>,
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (macOS: at most `OPEN_MAX`), once;
/// remember the original soft limit for the children.
pub(crate) fn raise_fd_limit() {
    let Some(mut lim) = get_rlimit(libc::RLIMIT_NOFILE as ResourceId) else {
        return;
    };
    if ORIGINAL_NOFILE.set(lim).is_err() || lim.rlim_cur >= lim.rlim_max {
        return;
    }
    let original = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if set_rlimit(libc::RLIMIT_NOFILE as ResourceId, &lim).is_err() {
        // macOS refuses more than OPEN_MAX for an unlimited hard limit.
        lim.rlim_cur = OPEN_MAX_FALLBACK.max(original);
        let _ = set_rlimit(libc::RLIMIT_NOFILE as ResourceId, &lim);
    }
}

/// The soft limit tried when the hard one is refused (macOS's `OPEN_MAX`).
const OPEN_MAX_FALLBACK: libc::rlim_t = 10_240;

fn get_rlimit(resource: ResourceId) -> Option<libc::rlimit> {
    // SAFETY: all-zero is a valid rlimit; getrlimit fills it in.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    (unsafe { libc::getrlimit(resource, &raw mut lim) } == 0).then_some(lim)
}

fn set_rlimit(resource: ResourceId, lim: &libc::rlimit) -> io::Result<()> {
    // SAFETY: a valid pointer.
    if unsafe { libc::setrlimit(resource, lim) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The OS's number for a limit, `None` where this OS has no such limit.
pub(super) fn resource_id(resource: Resource) -> Option<ResourceId> {
    #[cfg(target_os = "linux")]
    let linux_only = match resource {
        Resource::Locks => Some(libc::RLIMIT_LOCKS),
        Resource::Msgqueue => Some(libc::RLIMIT_MSGQUEUE),
        Resource::Nice => Some(libc::RLIMIT_NICE),
        Resource::Rtprio => Some(libc::RLIMIT_RTPRIO),
        Resource::Rttime => Some(libc::RLIMIT_RTTIME),
        Resource::Sigpending => Some(libc::RLIMIT_SIGPENDING),
        _ => None,
    };
    #[cfg(not(target_os = "linux"))]
    let linux_only: Option<ResourceId> = None;
    let id = match resource {
        Resource::As => libc::RLIMIT_AS,
        Resource::Core => libc::RLIMIT_CORE,
        Resource::Cpu => libc::RLIMIT_CPU,
        Resource::Data => libc::RLIMIT_DATA,
        Resource::Fsize => libc::RLIMIT_FSIZE,
        Resource::Memlock => libc::RLIMIT_MEMLOCK,
        Resource::Nofile => libc::RLIMIT_NOFILE,
        Resource::Nproc => libc::RLIMIT_NPROC,
        Resource::Rss => libc::RLIMIT_RSS,
        Resource::Stack => libc::RLIMIT_STACK,
        _ => return linux_only,
    };
    Some(id as ResourceId)
}

pub(crate) fn resource_supported(resource: Resource) -> bool {
    resource_id(resource).is_some()
}

fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// `CAP_SYS_RESOURCE`: raise a hard limit, lower `oom_score_adj`.
const CAP_SYS_RESOURCE: u32 = 24;
/// `CAP_SYS_NICE`: lower the nice value.
const CAP_SYS_NICE: u32 = 23;

/// May warden do what capability `cap` grants? Root has every capability, except where a
/// container took some away (Linux: the effective set in `/proc/self/status`).
fn may(cap: u32) -> bool {
    if !is_root() {
        return false;
    }
    #[cfg(target_os = "linux")]
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(hex) = status.lines().find_map(|l| l.strip_prefix("CapEff:"))
        && let Ok(bits) = u64::from_str_radix(hex.trim(), 16)
    {
        return bits & (1 << cap) != 0;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cap;
    true
}

/// Resolve `creds` for a spawn of `program`. Refused here, with the reason, rather than as
/// a bare errno from the child: another user (or group) while warden is not root, an
/// account or group gone since the config was loaded, a limit, nice value or
/// `oom_score_adjust` that only root could grant.
pub(super) fn prepare(creds: &Credentials, program: &str) -> Result<Prepared, SpawnError> {
    let refuse = |reason: String| SpawnError::Privileges {
        program: program.to_owned(),
        reason,
    };
    let root = is_root();
    let mut p = Prepared {
        umask: creds.umask.map(|m| m as libc::mode_t),
        nice: creds.nice,
        no_new_privileges: creds.no_new_privileges,
        ..Prepared::default()
    };
    // SAFETY: plain syscalls.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let account = match &creds.user {
        Some(user) => match account::lookup_account(user) {
            Ok(Some(a)) => Some(a),
            Ok(None) => return Err(refuse(format!("user \"{user}\" does not exist"))),
            Err(e) => return Err(refuse(format!("cannot look up user \"{user}\": {e}"))),
        },
        None => None,
    };
    let group = match &creds.group {
        Some(name) => match account::lookup_group(name) {
            Ok(Some(gid)) => Some(gid),
            Ok(None) => return Err(refuse(format!("group \"{name}\" does not exist"))),
            Err(e) => return Err(refuse(format!("cannot look up group \"{name}\": {e}"))),
        },
        None => None,
    };
    if let Some(a) = &account {
        let gid = group.unwrap_or(a.gid);
        if a.uid != euid || gid != egid {
            if !root {
                return Err(refuse(format!(
                    "the service runs as user \"{}\" (uid {}), but warden runs as uid {euid}, \
                     not root, and only root can switch users",
                    a.name, a.uid
                )));
            }
            let groups = account::group_list(&a.name, gid)
                .map_err(|e| refuse(format!("cannot read the groups of \"{}\": {e}", a.name)))?;
            p.switch = Some((a.uid, gid, groups));
        }
        p.env = vec![
            ("HOME".into(), a.home.clone().into_os_string()),
            ("USER".into(), a.name.clone().into()),
            ("LOGNAME".into(), a.name.clone().into()),
            ("SHELL".into(), a.shell.clone().into_os_string()),
        ];
    } else if let Some(gid) = group
        && gid != egid
    {
        if !root {
            return Err(refuse(format!(
                "the service runs as group \"{}\" (gid {gid}), but warden runs as gid {egid}, \
                 not root, and only root can switch groups",
                creds.group.as_deref().unwrap_or_default()
            )));
        }
        // The user stays; only the group changes, and no supplementary group is kept.
        p.switch = Some((euid, gid, vec![gid]));
    }
    if let Some(adj) = creds.oom_score_adjust {
        if let Some(own) = current_oom_score_adj()
            && adj < own
            && !may(CAP_SYS_RESOURCE)
        {
            return Err(refuse(format!(
                "oom_score_adjust = {adj} is below warden's own ({own}), and only root (with \
                 CAP_SYS_RESOURCE) can lower it"
            )));
        }
        p.oom = Some(oom_text(adj));
    }
    if let Some(nice) = creds.nice
        && nice < current_nice()
        && !may(CAP_SYS_NICE)
    {
        return Err(refuse(format!(
            "nice = {nice} is below warden's own ({}), and only root (with CAP_SYS_NICE) can \
             lower it",
            current_nice()
        )));
    }
    // Read only when there are limits: `may` reads /proc/self/status, on every start.
    let raise_ok = !creds.limits.is_empty() && may(CAP_SYS_RESOURCE);
    let mut has_nofile = false;
    for (resource, value) in &creds.limits {
        let Some(id) = resource_id(*resource) else {
            return Err(refuse(format!(
                "limits.{resource} is not available on this OS"
            )));
        };
        has_nofile |= *resource == Resource::Nofile;
        let v = match value {
            LimitValue::Unlimited => libc::RLIM_INFINITY,
            LimitValue::Value(n) => *n as libc::rlim_t,
        };
        if !raise_ok
            && let Some(cur) = get_rlimit(id)
            && v > cur.rlim_max
        {
            return Err(refuse(format!(
                "limits.{resource} = {} is above warden's hard limit ({}), and only root (with \
                 CAP_SYS_RESOURCE) can raise it",
                limit_text(v),
                limit_text(cur.rlim_max)
            )));
        }
        p.limits.push((
            id,
            libc::rlimit {
                rlim_cur: v,
                rlim_max: v,
            },
        ));
    }
    if !has_nofile && let Some(original) = ORIGINAL_NOFILE.get() {
        p.limits
            .push((libc::RLIMIT_NOFILE as ResourceId, *original));
    }
    Ok(p)
}

fn limit_text(v: libc::rlim_t) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        v.to_string()
    }
}

fn oom_text(adj: i32) -> OomText {
    let s = adj.to_string();
    let mut bytes = [0u8; 8];
    let len = s.len().min(bytes.len());
    bytes[..len].copy_from_slice(&s.as_bytes()[..len]);
    OomText { bytes, len }
}

#[cfg(target_os = "linux")]
fn current_oom_score_adj() -> Option<i32> {
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn current_oom_score_adj() -> Option<i32> {
    None
}

fn current_nice() -> libc::c_int {
    // SAFETY: plain syscall; -1 is also a valid nice value, so errno is not checked (a
    // failure reads as -1, which only makes the check above more permissive).
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

impl Prepared {
    /// In the child, before the user switch: what needs warden's privileges.
    ///
    /// # Safety
    ///
    /// Call it only in the child between fork and exec.
    pub(super) unsafe fn apply_privileged(&self) -> io::Result<()> {
        // SAFETY (every call below): async-signal-safe syscalls with valid arguments.
        #[cfg(target_os = "linux")]
        if let Some(oom) = &self.oom {
            let fd = unsafe {
                libc::open(
                    c"/proc/self/oom_score_adj".as_ptr(),
                    libc::O_WRONLY | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = unsafe { libc::write(fd, oom.bytes.as_ptr().cast(), oom.len) };
            let err = io::Error::last_os_error();
            unsafe { libc::close(fd) };
            if n < 0 {
                return Err(err);
            }
        }
        if let Some(nice) = self.nice
            && unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0
        {
            return Err(io::Error::last_os_error());
        }
        for (id, lim) in &self.limits {
            if unsafe { libc::setrlimit(*id, lim) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(mask) = self.umask {
            unsafe { libc::umask(mask) };
        }
        Ok(())
    }

    /// In the child: `setgroups`, `setgid`, `setuid` (if a switch is asked), then
    /// `PR_SET_NO_NEW_PRIVS`.
    ///
    /// # Safety
    ///
    /// Call it only in the child between fork and exec.
    pub(super) unsafe fn switch_user(&self) -> io::Result<()> {
        if let Some((uid, gid, groups)) = &self.switch {
            // SAFETY: async-signal-safe syscalls; `groups` was allocated before the fork.
            unsafe {
                if set_ids(groups, *gid, *uid) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        #[cfg(target_os = "linux")]
        if self.no_new_privileges
            // SAFETY: a plain prctl.
            && unsafe {
                libc::prctl(
                    libc::PR_SET_NO_NEW_PRIVS,
                    1 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// `setgroups`, `setgid`, `setuid`, in that order; non-zero on the first failure (errno set).
/// On Linux, raw system calls, which change the calling thread only: the child has one
/// thread, and glibc's wrappers would signal every thread glibc remembers from the parent,
/// under a lock that a child of `clone3` (see `fork.rs`) may find held.
///
/// # Safety
///
/// Only in a child between fork and exec.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
unsafe fn set_ids(groups: &[libc::gid_t], gid: libc::gid_t, uid: libc::uid_t) -> libc::c_long {
    // SAFETY: plain system calls; `groups` outlives them.
    unsafe {
        let r = libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr());
        if r != 0 {
            return r;
        }
        let r = libc::syscall(libc::SYS_setgid, gid);
        if r != 0 {
            return r;
        }
        libc::syscall(libc::SYS_setuid, uid)
    }
}

/// `setgroups`, `setgid`, `setuid` through libc (no `clone3` child here).
///
/// # Safety
///
/// Only in a child between fork and exec.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
unsafe fn set_ids(groups: &[libc::gid_t], gid: libc::gid_t, uid: libc::uid_t) -> libc::c_long {
    // SAFETY: async-signal-safe calls; `groups` outlives them.
    unsafe {
        if libc::setgroups(groups.len() as _, groups.as_ptr()) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            return -1;
        }
    }
    0
}
