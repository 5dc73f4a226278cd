//! [`spawn_in_cgroup`]: start a child directly inside its service's cgroup, with
//! `clone3(CLONE_INTO_CGROUP)` (Linux 5.7 and later), instead of letting it move itself there
//! before its `exec`.
//!
//! Why: a move is a cgroup *migration*, which takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing and waits for an RCU grace period. Measured with
//! `strace -T`, the child's `write` of `0` to `cgroup.procs` took a median of 10.5 ms, and
//! all migrations of the machine are serialized behind it: 1,000 services took 13 to 15 s
//! to start, and each crash cost 13 ms before the new run began. A child born in its cgroup
//! pays none of that.
//!
//! std's `Command` cannot pass a flag to `clone`, so this is warden's own spawn, kept as
//! close to std's as possible: the [`Image`] (program candidates, `argv`, `envp`, working
//! directory) is taken from the very `Command` the std path would run, and built before the
//! clone. The clone is `vfork`-like, as glibc's `posix_spawn` (see [`spawn_in_cgroup`]): the
//! child runs on a stack of its own in warden's address space until its `exec`, so nothing
//! is copied, and it makes only async-signal-safe calls on memory allocated before it.
//! Its errno, if it fails, is written where the waiting parent reads it.
//!
//! glibc does not know about this child (no fork handlers run in it, it shares glibc's
//! memory), so the child never calls into glibc beyond plain system-call wrappers, and
//! `creds.rs` switches the user with raw system calls, which act on the child alone (glibc's
//! `setuid` would signal every thread of warden's and change *their* credentials).
//!
//! Where the kernel or a seccomp filter refuses `clone3` (`ENOSYS`, `EINVAL`, `E2BIG`,
//! `EPERM`), or `close_range` cannot unshare (before Linux 5.9), or on an architecture
//! without a trampoline here (other than `x86_64` and `aarch64`), [`spawn_in_cgroup`] says
//! [`Cloned::Unsupported`] once and for all, and the caller falls back to std's path with
//! the move.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};

mod pin;

/// `CLONE_INTO_CGROUP` of `<linux/sched.h>` (not in the `libc` crate for every target).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The exit code of a child whose setup or `exec` failed (its parent reads the cause).
const EXIT_SETUP_FAILED: libc::c_int = 127;

/// The search path when neither the child's environment nor warden's has `PATH` (glibc's
/// `execvp` default).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// The shell `execvp` hands a script without `#!` to.
const SH: &CStr = c"/bin/sh";

/// The children created in their cgroup (tests check that a spawn took this path).
#[cfg(test)]
static CREATED: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Set once `clone3` with `CLONE_INTO_CGROUP` was refused for good.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// `struct clone_args` of `<linux/sched.h>`, up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Everything `execve` needs, built before the clone.
pub(super) struct Image {
    /// The paths to try in order: the program itself when it names a path, else each
    /// directory of the search path joined with it (as `execvp` does).
    candidates: Vec<CString>,
    /// Backs `argv`.
    #[cfg_attr(not(test), expect(dead_code, reason = "owns what argv points to"))]
    args: Vec<CString>,
    /// NUL-terminated.
    argv: Vec<*const libc::c_char>,
    /// Backs `envp`.
    #[cfg_attr(not(test), expect(dead_code, reason = "owns what envp points to"))]
    env: Vec<CString>,
    /// NUL-terminated.
    envp: Vec<*const libc::c_char>,
    /// `/bin/sh`, the candidate (set in the child), the arguments: how `execvp` runs a file
    /// the kernel does not know how to run (`ENOEXEC`: a script without `#!`). A `Cell` has
    /// the layout of its pointer, and the child writes only its own copy.
    sh_argv: Vec<Cell<*const libc::c_char>>,
    cwd: Option<CString>,
}

// SAFETY: the raw pointers point into the CStrings the Image owns, which never move or change.
unsafe impl Send for Image {}

impl Image {
    /// What `cmd` would run: its program, arguments, environment (warden's own unless
    /// `clear_env`, with `cmd`'s changes applied, as std does) and working directory.
    pub(super) fn of(cmd: &Command, clear_env: bool) -> io::Result<Image> {
        let mut env: BTreeMap<OsString, OsString> = if clear_env {
            BTreeMap::new()
        } else {
            std::env::vars_os().collect()
        };
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => env.insert(key.to_os_string(), v.to_os_string()),
                None => env.remove(key),
            };
        }
        let program = cmd.get_program();
        let search = env
            .get(OsStr::new("PATH"))
            .cloned()
            .or_else(|| std::env::var_os("PATH"));
        let candidates = candidates(program, search.as_deref())?;
        let args: Vec<CString> = std::iter::once(program)
            .chain(cmd.get_args())
            .map(c_string)
            .collect::<io::Result<_>>()?;
        let env: Vec<CString> = env
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).map_err(|_| nul_error())
            })
            .collect::<io::Result<_>>()?;
        let cwd = cmd
            .get_current_dir()
            .map(|d| c_string(d.as_os_str()))
            .transpose()?;
        let sh_argv = [SH.as_ptr(), std::ptr::null()]
            .into_iter()
            .chain(args[1..].iter().map(|a| a.as_ptr()))
            .chain(std::iter::once(std::ptr::null()))
            .map(Cell::new)
            .collect();
        Ok(Image {
            candidates,
            sh_argv,
            argv: null_terminated(&args),
            args,
            envp: null_terminated(&env),
            env,
            cwd,
        })
    }
}

/// Whether [`spawn_in_cgroup`] may work (it was not refused for good yet).
pub(super) fn available() -> bool {
    !UNSUPPORTED.load(Ordering::Relaxed)
}

/// What [`spawn_in_cgroup`] did.
pub(super) enum Cloned {
    /// The child runs `image`, inside the cgroup, with this pid.
    Child(u32),
    /// The kernel (or a seccomp filter) refuses `clone3` into a cgroup: use std's path.
    Unsupported,
    /// The child was killed before it ran (it is reaped): use std's path for this one.
    /// Linux 6.18 does that to every child `clone3` creates in a cgroup that was once
    /// killed through `cgroup.kill` (it compares the cgroup's kill count with the one of
    /// the *parent's* cgroup).
    KilledAtBirth,
}

/// `ChildCtx::errno` until the child runs.
const NOT_RUN: i32 = i32::MIN;

/// What the child needs, on the parent's stack (the child shares the address space).
struct ChildCtx<'a> {
    image: &'a Image,
    /// The low descriptors that hold the child's stdin, stdout and stderr (see [`Lane`]).
    slots: [RawFd; 3],
    /// The highest descriptor the child keeps from the shared table (see `in_child`).
    last_kept: RawFd,
    setup: &'a mut dyn FnMut() -> io::Result<()>,
    /// Written by the child when it fails: its errno (0: it called `exec`).
    errno: AtomicI32,
    /// Written by the child when `close_range` cannot unshare the table: then nothing was
    /// changed, and the parent falls back to std's path.
    no_unshare: AtomicBool,
    /// The CPU set the child takes back from its pinned parent (see [`pin`]).
    cpus: Option<libc::cpu_set_t>,
}

/// How many spawns may be between their clone and their child's `exec` at once: one per
/// worker thread of warden's runtime (two). Each has its own [`Lane`]; a third waits.
///
/// Why more than one: with `CLONE_VFORK` the spawning thread sleeps until its child has
/// called `exec`, and is woken on the CPU the child runs on, where the new program then
/// starts (a dynamically linked one spends most of a millisecond in `ld.so` on this
/// machine's VM, whose `cpuid` traps). The woken thread waits for that CPU; with one lane,
/// every other spawn waited behind it, and 1,000 services started at one CPU's pace with the
/// other idle a third of the time (`perf sched timehist`: 1.2 s, against 0.85 s with two).
const LANE_COUNT: usize = 2;

/// What one spawn at a time uses: three descriptors kept open at low numbers, so that a child
/// can take a private descriptor table of only `0..=last` from the shared one (`close_range`
/// with `CLOSE_RANGE_UNSHARE` copies only the descriptors below its range): with 1,000
/// services warden has thousands open, and copying them into every child, then closing them
/// all at its `exec`, made each spawn cost O(services). Between spawns they hold
/// `/dev/null`; during one, the child's stdio. And the child's stack.
struct Lane {
    busy: Mutex<()>,
    fds: [OwnedFd; 3],
    stack: Stack,
}

struct Lanes {
    lanes: [Lane; LANE_COUNT],
    null: OwnedFd,
}

static LANES: OnceLock<Option<Lanes>> = OnceLock::new();

/// The lanes, made at the first spawn (their descriptors' numbers are low then); `None` if
/// `/dev/null` cannot be opened or a stack cannot be mapped.
fn lanes() -> Option<&'static Lanes> {
    LANES
        .get_or_init(|| {
            let null = open_null().ok()?;
            let dup = |fd: &OwnedFd| fd.try_clone().ok();
            let lane = || -> Option<Lane> {
                let fds = [dup(&null)?, dup(&null)?, dup(&null)?];
                // Where warden's own 0, 1 or 2 was closed, a slot could be one of them.
                fds.iter().all(|fd| fd.as_raw_fd() > 2).then_some(())?;
                Some(Lane {
                    busy: Mutex::new(()),
                    fds,
                    stack: Stack::map()?,
                })
            };
            let lanes = [lane()?, lane()?];
            Some(Lanes { lanes, null })
        })
        .as_ref()
}

impl Lanes {
    /// A free lane, or the first one once it is free.
    fn take(&self) -> (&Lane, MutexGuard<'_, ()>) {
        for lane in &self.lanes {
            match lane.busy.try_lock() {
                Ok(guard) => return (lane, guard),
                Err(TryLockError::Poisoned(p)) => return (lane, p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let lane = &self.lanes[0];
        (lane, super::lock(&lane.busy))
    }
}

/// `/dev/null`, read and write, close-on-exec, opened once: what a child's stdin (and the
/// output of `Output::Null`) is.
pub(super) fn null() -> io::Result<BorrowedFd<'static>> {
    lanes()
        .map(|l| l.null.as_fd())
        .ok_or_else(|| io::Error::other("cannot open /dev/null"))
}

/// `/dev/null`, read and write, close-on-exec.
fn open_null() -> io::Result<OwnedFd> {
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

/// Put `fd` in the slot `slot` (atomically replacing what was there), close-on-exec.
fn fill(slot: &OwnedFd, fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: both descriptors are open; dup3 replaces the slot's file atomically.
    if unsafe { libc::dup3(fd.as_raw_fd(), slot.as_raw_fd(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Start `image` as a child created inside the cgroup whose directory is `cgroup`, with
/// `stdio` as its descriptors 0, 1 and 2, after `setup` (which must only make
/// async-signal-safe calls and must not allocate). Returns once the child has called `exec`
/// (or failed to: then the child is reaped here and its error returned). The caller holds
/// a spawn ticket of the reaper's (`reaper::InFlight`): the reaper takes no child that is not
/// registered meanwhile. The spawn takes a [`Lane`] of its own for the clone.
///
/// The clone is `vfork`-like (`CLONE_VM | CLONE_VFORK`, as glibc's `posix_spawn`): the
/// child runs on its own stack in warden's address space while this thread waits, so no
/// page table is copied and no page is copied on write afterwards. It also shares the
/// descriptor table (`CLONE_FILES`) until it takes its own small one (see [`Lane`]).
/// All signals are blocked in this thread meanwhile, and the child resets every handler
/// before it unblocks them: no handler of warden's runs in the child. This thread is pinned
/// to its CPU for the clone, so that the child runs where it waits ([`pin`]).
pub(super) fn spawn_in_cgroup(
    image: &Image,
    cgroup: BorrowedFd<'_>,
    stdio: [BorrowedFd<'_>; 3],
    setup: &mut dyn FnMut() -> io::Result<()>,
) -> io::Result<Cloned> {
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return Ok(Cloned::Unsupported);
    }
    let Some(lanes) = lanes() else {
        UNSUPPORTED.store(true, Ordering::Relaxed);
        return Ok(Cloned::Unsupported);
    };
    let (lane, _busy) = lanes.take();
    let stack = &lane.stack;
    for (slot, fd) in lane.fds.iter().zip(stdio) {
        fill(slot, fd)?;
    }
    let slot_fds = lane.fds.each_ref().map(AsRawFd::as_raw_fd);
    let mut ctx = ChildCtx {
        image,
        slots: slot_fds,
        last_kept: slot_fds.into_iter().max().unwrap_or(2),
        setup,
        errno: AtomicI32::new(NOT_RUN),
        no_unshare: AtomicBool::new(false),
        cpus: None,
    };
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP | (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES) as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.base as u64,
        stack_size: stack.size as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    let pinned = pin::Pinned::here();
    ctx.cpus = pinned.as_ref().map(pin::Pinned::original);
    let blocked = block_all_signals();
    // SAFETY: the child runs `child_main` on `stack`, with `ctx`, which lives until this
    // returns; with CLONE_VFORK this thread waits until the child has exec'd or exited.
    let pid = unsafe { clone3_with(&args, child_main, (&raw mut ctx).cast()) };
    restore_signals(&blocked);
    drop(pinned);
    // The child's copies are its own now (or it is gone): the slots let go of the pipes.
    for slot in &lane.fds {
        let _ = fill(slot, lanes.null.as_fd());
    }
    if pid < 0 {
        let errno = i32::try_from(-pid).unwrap_or(libc::EINVAL);
        return match errno {
            libc::ENOSYS | libc::EINVAL | libc::E2BIG | libc::EPERM => {
                UNSUPPORTED.store(true, Ordering::Relaxed);
                Ok(Cloned::Unsupported)
            }
            _ => Err(io::Error::from_raw_os_error(errno)),
        };
    }
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("clone3: bad pid"))?;
    let errno = ctx.errno.load(Ordering::Acquire);
    if errno == 0 {
        #[cfg(test)]
        super::lock(&CREATED).push(pid as u32);
        return Ok(Cloned::Child(pid as u32));
    }
    let mut status = 0;
    // SAFETY: our own child, which has exited (CLONE_VFORK returned); the caller's spawn
    // ticket keeps the reaper from taking it.
    while unsafe { libc::waitpid(pid, &raw mut status, 0) } == -1
        && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
    if ctx.no_unshare.load(Ordering::Acquire) {
        UNSUPPORTED.store(true, Ordering::Relaxed);
        return Ok(Cloned::Unsupported);
    }
    if errno == NOT_RUN {
        return Ok(Cloned::KilledAtBirth);
    }
    Err(io::Error::from_raw_os_error(errno))
}

/// The child's entry, on its own stack.
///
/// # Safety
///
/// `arg` is the parent's `ChildCtx`, and the parent waits (`CLONE_VFORK`).
extern "C" fn child_main(arg: *mut libc::c_void) -> ! {
    // SAFETY: see above; the parent does not touch ctx until the child exec'd or exited.
    let ctx = unsafe { &mut *arg.cast::<ChildCtx<'_>>() };
    // SAFETY: we are the child, between clone and exec.
    unsafe { in_child(ctx) }
}

/// The child's side: its own small descriptor table, its stdio, its signal handlers back to
/// default, its working directory, `setup`, then each candidate in turn. On a failure the
/// errno goes to `ctx.errno` and the child exits.
///
/// # Safety
///
/// Only in the child between clone and exec: async-signal-safe calls on memory allocated
/// before the clone, and writes only to `ctx`.
unsafe fn in_child(ctx: &mut ChildCtx<'_>) -> ! {
    let fail = |errno: i32| -> ! {
        ctx.errno.store(
            if errno == 0 { libc::EINVAL } else { errno },
            Ordering::Release,
        );
        // SAFETY: ends this process only (no CLONE_THREAD).
        unsafe { libc::_exit(EXIT_SETUP_FAILED) }
    };
    ctx.errno.store(0, Ordering::Release);
    if let Some(cpus) = &ctx.cpus {
        // SAFETY: in the child, on the parent's ctx.
        unsafe { pin::release_in_child(cpus) };
    }
    // SAFETY (every call below): async-signal-safe syscalls with valid arguments.
    // A private table of 0..=last_kept; the rest of warden's descriptors are not copied.
    let first_dropped = (ctx.last_kept + 1) as libc::c_uint;
    if unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first_dropped,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        )
    } != 0
    {
        // Still sharing warden's table: change nothing, let the parent use std's path.
        ctx.no_unshare.store(true, Ordering::Release);
        fail(super::errno());
    }
    for (target, &slot) in ctx.slots.iter().enumerate() {
        if unsafe { libc::dup2(slot, target as RawFd) } == -1 {
            fail(super::errno());
        }
    }
    for sig in 1..NSIG {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    if let Some(cwd) = &ctx.image.cwd
        && unsafe { libc::chdir(cwd.as_ptr()) } == -1
    {
        fail(super::errno());
    }
    if let Err(e) = (ctx.setup)() {
        fail(e.raw_os_error().unwrap_or(libc::EINVAL));
    }
    let image = ctx.image;
    // As execvp: a missing candidate or a refused one is skipped; a refusal is reported if
    // no candidate runs, else the last error.
    let mut errno = libc::ENOENT;
    let mut refused = false;
    for path in &image.candidates {
        unsafe { libc::execve(path.as_ptr(), image.argv.as_ptr(), image.envp.as_ptr()) };
        errno = super::errno();
        match errno {
            libc::EACCES => refused = true,
            libc::ENOEXEC => {
                image.sh_argv[1].set(path.as_ptr());
                let argv = image.sh_argv.as_ptr().cast::<*const libc::c_char>();
                unsafe { libc::execve(SH.as_ptr(), argv, image.envp.as_ptr()) };
                errno = super::errno();
                refused = false;
                break;
            }
            libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ENAMETOOLONG => {}
            _ => {
                refused = false;
                break;
            }
        }
    }
    fail(if refused { libc::EACCES } else { errno })
}

/// Signals 1 to 64 (the kernel's `_NSIG` is 65).
const NSIG: libc::c_int = 65;

/// The child's stack: big enough for `in_child` in a debug build many times over. Only the
/// pages it touches are ever backed by memory.
const STACK_SIZE: usize = 256 * 1024;

/// A `PROT_NONE` page below the stack: an overflow faults instead of writing over warden.
const GUARD_SIZE: usize = 64 * 1024;

/// A child's stack (one per [`Lane`]).
struct Stack {
    /// The lowest usable address (above the guard).
    base: usize,
    size: usize,
}

impl Stack {
    fn map() -> Option<Stack> {
        // SAFETY: a fresh private anonymous mapping, never unmapped (it lives as long as
        // warden); the guard is its lowest part.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                GUARD_SIZE + STACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return None;
            }
            if libc::mprotect(p, GUARD_SIZE, libc::PROT_NONE) != 0 {
                libc::munmap(p, GUARD_SIZE + STACK_SIZE);
                return None;
            }
            Some(Stack {
                base: p as usize + GUARD_SIZE,
                size: STACK_SIZE,
            })
        }
    }
}

/// Block every signal in this thread; returns the mask to restore.
fn block_all_signals() -> libc::sigset_t {
    // SAFETY: all-zero sigsets are valid values; sigfillset and pthread_sigmask fill them.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&raw mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &raw const all, &raw mut old);
        old
    }
}

fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: a mask returned by pthread_sigmask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// `clone3(args)`, the child running `entry(arg)` on the stack `args` names (it never
/// returns). Returns the child's pid, or `-errno`.
///
/// # Safety
///
/// `args` must name a valid stack (with `CLONE_VM`, the child must not return into this
/// frame, which `entry` guarantees), and `arg` must stay valid while the child uses it.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_with(
    args: &CloneArgs,
    entry: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> isize {
    let ret: isize;
    // SAFETY: see above. The kernel keeps every register but rax, rcx and r11; the child
    // starts with rsp at the top of its stack and calls `entry` from there.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") std::ptr::from_ref(args),
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// See the x86-64 version.
///
/// # Safety
///
/// As there.
#[cfg(target_arch = "aarch64")]
unsafe fn clone3_with(
    args: &CloneArgs,
    entry: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> isize {
    let ret: isize;
    // SAFETY: see the x86-64 version; the kernel keeps every register but x0.
    unsafe {
        std::arch::asm!(
            "svc #0",
            "cbnz x0, 2f",
            "mov x29, xzr",
            "mov x0, x20",
            "blr x21",
            "brk #1",
            "2:",
            inlateout("x0") std::ptr::from_ref(args) as isize => ret,
            in("x1") std::mem::size_of::<CloneArgs>(),
            in("x8") libc::SYS_clone3,
            in("x20") arg,
            in("x21") entry,
            options(nostack),
        );
    }
    ret
}

/// No trampoline for this architecture: std's path.
///
/// # Safety
///
/// Always safe; `unsafe` for the same signature.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn clone3_with(
    _args: &CloneArgs,
    _entry: extern "C" fn(*mut libc::c_void) -> !,
    _arg: *mut libc::c_void,
) -> isize {
    -(libc::ENOSYS as isize)
}

/// The paths `execvp` would try for `program` with the search path `search`.
fn candidates(program: &OsStr, search: Option<&OsStr>) -> io::Result<Vec<CString>> {
    let name = program.as_bytes();
    if name.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    if name.contains(&b'/') {
        return Ok(vec![c_string(program)?]);
    }
    let search = search.map_or(DEFAULT_PATH, OsStr::as_bytes);
    search
        .split(|&b| b == b':')
        .map(|dir| {
            let mut path = if dir.is_empty() {
                b".".to_vec()
            } else {
                dir.to_vec()
            };
            path.push(b'/');
            path.extend_from_slice(name);
            CString::new(path).map_err(|_| nul_error())
        })
        .collect()
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| nul_error())
}

fn nul_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "nul byte found in provided data",
    )
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// A pipe whose two ends are close-on-exec.
pub(super) fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: a valid out-array of two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[CString]) -> Vec<&str> {
        v.iter().map(|c| c.to_str().expect("utf-8")).collect()
    }

    #[test]
    fn a_bare_name_is_looked_up_in_each_directory_of_the_search_path() {
        let c = candidates(
            OsStr::new("redis"),
            Some(OsStr::new("/usr/local/bin::/bin")),
        )
        .expect("ok");
        assert_eq!(
            strings(&c),
            ["/usr/local/bin/redis", "./redis", "/bin/redis"]
        );
    }

    #[test]
    fn a_path_is_run_as_it_is_and_no_search_path_means_the_default() {
        let c = candidates(OsStr::new("./x/run"), Some(OsStr::new("/bin"))).expect("ok");
        assert_eq!(strings(&c), ["./x/run"]);
        let c = candidates(OsStr::new("sh"), None).expect("ok");
        assert_eq!(strings(&c), ["/bin/sh", "/usr/bin/sh"]);
    }

    #[test]
    fn the_image_has_the_commands_environment_on_top_of_warden_s() {
        let mut cmd = Command::new("prog");
        cmd.arg("a").env("WARDEN_FORK_TEST", "1").env_remove("HOME");
        let image = Image::of(&cmd, true).expect("ok");
        assert_eq!(strings(&image.args), ["prog", "a"]);
        assert_eq!(strings(&image.env), ["WARDEN_FORK_TEST=1"]);
        assert_eq!(image.argv.len(), 3);
        assert!(image.argv[2].is_null() && image.envp[1].is_null());
        let image = Image::of(&cmd, false).expect("ok");
        assert!(strings(&image.env).contains(&"WARDEN_FORK_TEST=1"));
        assert!(!strings(&image.env).iter().any(|kv| kv.starts_with("HOME=")));
    }

    /// A real spawn in cgroup mode (root, with a cgroup v2 subtree; skipped elsewhere):
    /// `setup` returns, a spec as the cgroup tests build it.
    fn cgroup_spec(
        dir: &std::path::Path,
        script: &str,
        service: &str,
    ) -> Option<crate::process::SpawnSpec> {
        if let crate::process::Tracking::ProcessGroup { reason } = super::super::cgroup::tracking()
        {
            println!("skipped: {reason}");
            return None;
        }
        let instance = format!("fork{}", std::process::id());
        Some(super::super::cgroup::tests::sh_in_cgroup(
            dir, script, &instance, service,
        ))
    }

    fn created_here(pid: u32) -> bool {
        super::super::lock(&CREATED).contains(&pid)
    }

    async fn read_all(pipe: Option<crate::process::OutputPipe>) -> String {
        use tokio::io::AsyncReadExt;
        let mut out = String::new();
        let mut pipe = pipe.expect("a pipe");
        let read = pipe.read_to_string(&mut out);
        tokio::time::timeout(std::time::Duration::from_secs(20), read)
            .await
            .expect("the output ends")
            .expect("read");
        out
    }

    #[tokio::test]
    async fn in_cgroup_mode_the_child_is_created_in_its_cgroup_with_its_pipes_and_environment() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let script = "cat /proc/self/cgroup; echo \"v=$FORK_VAR\"; echo to-stderr >&2; \
                      grep Cpus_allowed_list /proc/self/status";
        let Some(mut spec) = cgroup_spec(tmp.path(), script, "pipes") else {
            return;
        };
        spec.output = crate::process::Output::Separate;
        spec.env.push(("FORK_VAR".into(), "42".into()));
        let mut child = crate::process::spawn(&spec).expect("spawn");
        assert!(created_here(child.pid()), "created by clone3 in its cgroup");
        let (out, err) = tokio::join!(read_all(child.take_stdout()), read_all(child.take_stderr()));
        assert!(out.contains("/pipes.service\n"), "in its cgroup: {out}");
        assert!(out.contains("v=42\n"), "its environment: {out}");
        assert_eq!(err, "to-stderr\n");
        // Its parent thread was pinned to one CPU for the clone: the child took back the
        // parent's set (this thread's, which is back too).
        let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
        let cpus = status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list"))
            .expect("Cpus_allowed_list");
        assert!(
            out.contains(&format!("{cpus}\n")),
            "the same CPUs as warden's {cpus}: {out}"
        );
        let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
            .await
            .expect("it exits");
        assert_eq!(status, crate::process::ExitStatus::Code(0));

        // Joined: one pipe for both, in the program's order.
        spec.output = crate::process::Output::Joined;
        spec.args[1] = "echo one; echo two >&2; echo three".into();
        let mut child = crate::process::spawn(&spec).expect("spawn");
        assert!(created_here(child.pid()), "created by clone3 in its cgroup");
        assert_eq!(read_all(child.take_stdout()).await, "one\ntwo\nthree\n");
        assert!(child.take_stderr().is_none());
        tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
            .await
            .expect("it exits");
    }

    #[tokio::test]
    async fn in_cgroup_mode_a_bare_name_is_found_on_the_path_and_a_script_without_shebang_runs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let Some(mut spec) = cgroup_spec(tmp.path(), "", "search") else {
            return;
        };
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        let script = bin.join("no-shebang");
        std::fs::write(&script, "echo \"ran as $0 with $1\"\n").expect("write");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        spec.program = "no-shebang".into();
        spec.args = vec!["arg1".into()];
        spec.env.push((
            "PATH".into(),
            format!("/nonexistent:{}", bin.display()).into(),
        ));
        spec.output = crate::process::Output::Joined;
        let mut child = crate::process::spawn(&spec).expect("spawn");
        assert!(created_here(child.pid()), "created by clone3 in its cgroup");
        let out = read_all(child.take_stdout()).await;
        assert_eq!(out, format!("ran as {} with arg1\n", script.display()));
        tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
            .await
            .expect("it exits");

        // A name found nowhere, and a file that may not be run: std's errors.
        spec.program = "warden-no-such-program".into();
        let err = crate::process::spawn(&spec).expect_err("not found");
        assert!(
            matches!(err, crate::process::SpawnError::NotFound { .. }),
            "{err:?}"
        );
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        spec.program = script.into();
        let err = crate::process::spawn(&spec).expect_err("not executable");
        assert!(
            matches!(err, crate::process::SpawnError::PermissionDenied { .. }),
            "{err:?}"
        );
        spec.cwd = tmp.path().join("gone");
        let err = crate::process::spawn(&spec).expect_err("no cwd");
        assert!(
            matches!(err, crate::process::SpawnError::BadCwd { .. }),
            "{err:?}"
        );
    }

    /// A child created in a cgroup that `cgroup.kill` emptied before is killed by the kernel
    /// before it runs (Linux 6.18): the spawn takes std's path then, and the program runs.
    #[tokio::test]
    async fn a_spawn_into_a_cgroup_killed_before_still_runs_its_program() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let Some(mut spec) = cgroup_spec(tmp.path(), "exec sleep 300", "killed") else {
            return;
        };
        let mut first = crate::process::spawn(&spec).expect("spawn");
        first.kill_tree().expect("cgroup.kill");
        assert!(
            first
                .wait_tree_gone(std::time::Duration::from_secs(20))
                .await
        );
        // While `first` holds it, the same cgroup (killed once) is the second run's.
        spec.output = crate::process::Output::Joined;
        spec.args[1] = "echo ran".into();
        let mut second = crate::process::spawn(&spec).expect("spawn again");
        assert!(
            !created_here(second.pid()),
            "std's path, the clone3 child died at birth"
        );
        assert_eq!(read_all(second.take_stdout()).await, "ran\n");
        let status = tokio::time::timeout(std::time::Duration::from_secs(20), second.wait())
            .await
            .expect("it exits");
        assert_eq!(status, crate::process::ExitStatus::Code(0));
        drop(second);
        let dir = first.cgroup.as_ref().expect("a cgroup").dir().to_owned();
        drop(first);
        assert!(
            !dir.exists(),
            "a killed cgroup is removed, not kept for a next run"
        );
    }
}
