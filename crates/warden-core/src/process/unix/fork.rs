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
//! std's `Command` cannot pass a flag to `clone`, so this is warden's own fork and exec,
//! kept as close to std's as possible: the [`Image`] (program candidates, `argv`, `envp`,
//! working directory) is taken from the very `Command` the std path would run, and built
//! before the clone; between clone and `exec` the child only makes async-signal-safe calls
//! on memory allocated before it. An `exec` failure is reported through a close-on-exec pipe,
//! as std does. The clone is fork-like (no `CLONE_VM`): the child has a copy of the address
//! space, and its one thread is the one that cloned.
//!
//! glibc does not know about this child (no fork handlers run in it), so its locks and
//! thread list are as they were in the parent: the child never calls into glibc beyond
//! plain system-call wrappers (and `creds.rs` switches the user with raw system calls, which
//! act on the one thread there is, for the same reason).
//!
//! Where the kernel or a seccomp filter refuses `clone3` (`ENOSYS`, `EINVAL`, `E2BIG`,
//! `EPERM`), [`spawn_in_cgroup`] says [`Cloned::Unsupported`] once and for all, and the
//! caller falls back to std's path with the move.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// `CLONE_INTO_CGROUP` of `<linux/sched.h>` (not in the `libc` crate for every target).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The exit code of a child whose setup or `exec` failed (its parent reads the cause).
const EXIT_SETUP_FAILED: libc::c_int = 127;

/// The search path when neither the child's environment nor warden's has `PATH` (glibc's
/// `execvp` default).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// The shell `execvp` hands a script without `#!` to.
const SH: &CStr = c"/bin/sh";

/// How many children were created in their cgroup (tests check that the path was taken).
#[cfg(test)]
static CREATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
}

/// Start `image` as a child created inside the cgroup whose directory is `cgroup`, with
/// `stdio` as its descriptors 0, 1 and 2, after `setup` (which must only make
/// async-signal-safe calls). Returns once the child has called `exec` (or failed to: then
/// the child is reaped here and its error returned). The caller holds the reaper's registry
/// lock, so that nothing else reaps the child.
pub(super) fn spawn_in_cgroup(
    image: &Image,
    cgroup: BorrowedFd<'_>,
    stdio: [BorrowedFd<'_>; 3],
    setup: &mut dyn FnMut() -> io::Result<()>,
) -> io::Result<Cloned> {
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return Ok(Cloned::Unsupported);
    }
    let (report_r, report_w) = cloexec_pipe()?;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: a fork-like clone (no CLONE_VM): the child gets a copy of the address space and
    // runs only `in_child`, which never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw const args,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        let fds = stdio.map(|fd| fd.as_raw_fd());
        // SAFETY: we are the child, between clone and exec.
        unsafe { in_child(image, fds, setup, report_w.as_raw_fd()) }
    }
    if pid < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENOSYS | libc::EINVAL | libc::E2BIG | libc::EPERM) => {
                UNSUPPORTED.store(true, Ordering::Relaxed);
                Ok(Cloned::Unsupported)
            }
            _ => Err(err),
        };
    }
    drop(report_w);
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("clone3: bad pid"))?;
    match read_report(&report_r) {
        None => {
            #[cfg(test)]
            CREATED.fetch_add(1, Ordering::Relaxed);
            Ok(Cloned::Child(pid as u32))
        }
        Some(errno) => {
            let mut status = 0;
            // SAFETY: our own child, which has exited or is about to (`_exit` after the
            // report); the caller's registry lock keeps the reaper from taking it.
            while unsafe { libc::waitpid(pid, &raw mut status, 0) } == -1
                && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

/// The errno the child reported, or `None` at end of file: the `exec` succeeded.
fn read_report(fd: &OwnedFd) -> Option<i32> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading into the unfilled part of a buffer we own.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                buf[got..].as_mut_ptr().cast(),
                buf.len() - got,
            )
        };
        match n {
            0 => break,
            n if n > 0 => got += n as usize,
            _ if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => break,
        }
    }
    // A partial report cannot happen (4 bytes into an empty pipe are written at once).
    (got == buf.len()).then(|| i32::from_ne_bytes(buf))
}

/// The child's side: descriptors, working directory, `setup`, then each candidate in turn.
/// On any failure the errno goes to `report` and the child exits.
///
/// # Safety
///
/// Only in the child between clone and exec: async-signal-safe calls on memory allocated
/// before the clone.
unsafe fn in_child(
    image: &Image,
    stdio: [RawFd; 3],
    setup: &mut dyn FnMut() -> io::Result<()>,
    report: RawFd,
) -> ! {
    // SAFETY: (every call) async-signal-safe syscalls with valid arguments.
    let fail = |errno: i32| -> ! {
        let bytes = errno.to_ne_bytes();
        unsafe {
            libc::write(report, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(EXIT_SETUP_FAILED)
        }
    };
    for (target, &fd) in stdio.iter().enumerate() {
        let target = target as RawFd;
        let done = if fd == target {
            // dup2 onto itself would keep the close-on-exec flag: clear it instead.
            unsafe { libc::fcntl(fd, libc::F_SETFD, 0) != -1 }
        } else {
            unsafe { libc::dup2(fd, target) != -1 }
        };
        if !done {
            fail(super::errno());
        }
    }
    if let Some(cwd) = &image.cwd
        && unsafe { libc::chdir(cwd.as_ptr()) } == -1
    {
        fail(super::errno());
    }
    if let Err(e) = setup() {
        fail(e.raw_os_error().unwrap_or(libc::EINVAL));
    }
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
        let script = "cat /proc/self/cgroup; echo \"v=$FORK_VAR\"; echo to-stderr >&2";
        let Some(mut spec) = cgroup_spec(tmp.path(), script, "pipes") else {
            return;
        };
        spec.output = crate::process::Output::Separate;
        spec.env.push(("FORK_VAR".into(), "42".into()));
        let before = CREATED.load(Ordering::Relaxed);
        let mut child = crate::process::spawn(&spec).expect("spawn");
        assert!(
            CREATED.load(Ordering::Relaxed) > before,
            "created by clone3 in its cgroup"
        );
        let (out, err) = tokio::join!(read_all(child.take_stdout()), read_all(child.take_stderr()));
        assert!(out.contains("/pipes.service\n"), "in its cgroup: {out}");
        assert!(out.contains("v=42\n"), "its environment: {out}");
        assert_eq!(err, "to-stderr\n");
        let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
            .await
            .expect("it exits");
        assert_eq!(status, crate::process::ExitStatus::Code(0));

        // Joined: one pipe for both, in the program's order.
        spec.output = crate::process::Output::Joined;
        spec.args[1] = "echo one; echo two >&2; echo three".into();
        let mut child = crate::process::spawn(&spec).expect("spawn");
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
}
