//! Windows implementation of the process layer.
//!
//! # How a child is started
//!
//! 1. The program is resolved (see [`cmdline::resolve_program`]); a `.bat`/`.cmd` file runs
//!    through `cmd.exe` with arguments quoted for it.
//! 2. `CreateProcessW` with `CREATE_SUSPENDED | CREATE_NO_WINDOW |
//!    CREATE_UNICODE_ENVIRONMENT`: the child gets a console of its own with no window (so a
//!    `CTRL_C_EVENT` sent to that console reaches this service's tree only, never warden or
//!    another service), stdin is `NUL` (which also answers cmd's "Terminate batch job
//!    (Y/N)?"), stdout and stderr are pipes. Only those three handles are inherited
//!    (`PROC_THREAD_ATTRIBUTE_HANDLE_LIST`, and a lock around the window in which they are
//!    inheritable).
//! 3. The suspended child is put in a fresh Job Object with
//!    `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, then resumed: nothing it starts can escape the
//!    job, and when the job's last handle closes (the [`Child`] is dropped, or warden exits
//!    or crashes) the whole tree ends.
//!
//! Not `CREATE_NEW_PROCESS_GROUP`: it would turn off `CTRL_C` handling in the child and its
//! descendants (the flag is inherited), so `stop_method = ["ctrl-c", ...]` would do nothing
//! for most programs; the child's own console already isolates it.
//!
//! # Waiting
//!
//! The main process's exit is watched with `RegisterWaitForSingleObject` (the system's
//! wait threads; a callback sets a `watch`); the tree's end with the job's completion
//! port (see `job.rs`). Both are event-driven.
//!
//! # Stopping
//!
//! [`Child::request_stop`] does one step of `stop_method`: `CtrlC` runs warden's own
//! executable as `warden __ctrl-c PID` (see [`Child::ctrl_c_helper_main`]), which attaches
//! to the child's console and raises `CTRL_C_EVENT` there, so warden never leaves its own
//! console; `WmClose` posts `WM_CLOSE` to the top-level windows of the job's processes (as
//! `taskkill` without `/F` does); `Terminate` ends the job.

use std::ffi::{OsStr, OsString, c_void};
use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeClient};
use tokio::sync::watch;
use windows_sys::Win32::Foundation::{
    BOOL, BOOLEAN, ERROR_ACCESS_DENIED, ERROR_DIRECTORY, ERROR_FILE_NOT_FOUND,
    ERROR_INVALID_PARAMETER, ERROR_PATH_NOT_FOUND, FILETIME, GENERIC_READ, GENERIC_WRITE, HANDLE,
    HANDLE_FLAG_INHERIT, HWND, INVALID_HANDLE_VALUE, LPARAM, SetHandleInformation, TRUE,
    WAIT_OBJECT_0,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_SHARE_READ,
    FILE_SHARE_WRITE, OPEN_EXISTING, PIPE_ACCESS_OUTBOUND,
};
use windows_sys::Win32::System::Console::{
    AttachConsole, CTRL_C_EVENT, FreeConsole, GenerateConsoleCtrlEvent, SetConsoleCtrlHandler,
};
use windows_sys::Win32::System::Pipes::{
    CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{
    CREATE_NO_WINDOW, CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT, CreateProcessW,
    DETACHED_PROCESS, DeleteProcThreadAttributeList, EXTENDED_STARTUPINFO_PRESENT,
    GetCurrentProcessId, GetExitCodeProcess, GetProcessTimes, INFINITE,
    InitializeProcThreadAttributeList, LPPROC_THREAD_ATTRIBUTE_LIST,
    PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROCESS_CREATION_FLAGS, PROCESS_INFORMATION,
    RegisterWaitForSingleObject, ResumeThread, STARTF_USESTDHANDLES, STARTUPINFOEXW,
    TerminateProcess, UnregisterWaitEx, UpdateProcThreadAttribute, WT_EXECUTEONLYONCE,
    WaitForSingleObject,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    EnumWindows, GetWindowThreadProcessId, PostMessageW, WM_CLOSE,
};

use super::{ExitStatus, GroupRecord, Signal, SpawnError, SpawnSpec};
use crate::model::StopMethod;

#[path = "windows/cmdline.rs"]
mod cmdline;
#[path = "windows/job.rs"]
mod job;

use job::Job;

/// The exit code a process gets when warden terminates its job.
const TERMINATED_EXIT_CODE: u32 = 1;

/// How long [`Child::request_stop`] waits for the `__ctrl-c` helper to finish.
const CTRL_C_HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// A child process and its Job Object.
///
/// Dropping it closes the job, which (kill-on-close) ends every process still in it.
pub struct Child {
    pid: u32,
    start_time: u64,
    stdout: Option<OutputPipe>,
    stderr: Option<OutputPipe>,
    status: Option<ExitStatus>,
    // Drop order matters: the registered wait goes before the process handle it waits on.
    exit: ExitWatch,
    process: OwnedHandle,
    job: Job,
}

impl Child {
    /// The hidden subcommand of the `warden` binary that runs
    /// [`Child::ctrl_c_helper_main`]: `warden __ctrl-c PID`.
    pub const CTRL_C_HELPER_SUBCOMMAND: &'static str = "__ctrl-c";

    /// The pid of the main process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The main process's creation time: 100 ns units since 1601-01-01 UTC (a `FILETIME`).
    pub fn start_time(&self) -> u64 {
        self.start_time
    }

    /// On Windows `pgid` holds the main process's pid (there are no process groups; the
    /// tree is the job, which cannot outlive warden, see [`super::kill_leftovers`]).
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

    /// Windows has no signals: [`Signal::Kill`] terminates the job (the whole tree, exit
    /// code 1); any other signal is an [`io::ErrorKind::Unsupported`] error. Use
    /// [`Child::request_stop`] for a graceful stop.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        match sig {
            Signal::Kill => self.kill_tree(),
            other => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{other} cannot be sent on Windows (use stop_method)"),
            )),
        }
    }

    /// Terminate the job: every process in it ends at once, with exit code 1.
    pub fn kill_tree(&self) -> io::Result<()> {
        self.job.terminate(TERMINATED_EXIT_CODE)
    }

    /// One step of `stop_method`:
    ///
    /// - [`StopMethod::CtrlC`]: a `CTRL_C_EVENT` on the child's own console, which every
    ///   process of the tree attached to it receives (a program that started its children
    ///   with a console of their own, or detached, has to pass it on itself). Done by
    ///   `warden __ctrl-c PID` (see [`Child::ctrl_c_helper_main`]); this call waits for
    ///   that helper, up to 10 s.
    /// - [`StopMethod::WmClose`]: `WM_CLOSE` posted to every top-level window of every
    ///   process in the job. An error of kind [`io::ErrorKind::NotFound`] if there is no
    ///   such window (so the caller can go on to the next method at once).
    /// - [`StopMethod::Terminate`]: as [`Child::kill_tree`].
    ///
    /// When no process of the tree is left, `CtrlC` and `WmClose` do nothing and succeed.
    pub fn request_stop(&self, method: StopMethod) -> io::Result<()> {
        match method {
            StopMethod::Terminate => self.kill_tree(),
            StopMethod::CtrlC => {
                // The main process's console first; if it is gone, that of any process
                // left in the job (some, such as a console host, have none to attach to).
                let mut pids = self.job.process_ids()?;
                pids.sort_by_key(|&p| p != self.pid);
                let mut last_err = None;
                for pid in pids {
                    match run_ctrl_c_helper(pid) {
                        Ok(()) => return Ok(()),
                        Err(e) => last_err = Some(e),
                    }
                }
                last_err.map_or(Ok(()), Err)
            }
            StopMethod::WmClose => {
                let pids = self.job.process_ids()?;
                if pids.is_empty() {
                    return Ok(());
                }
                match post_wm_close(&pids) {
                    0 => Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "no top-level window belongs to the service's processes",
                    )),
                    _ => Ok(()),
                }
            }
        }
    }

    /// The body of the hidden `warden __ctrl-c PID` subcommand; returns its exit code.
    ///
    /// It leaves the console it has (if any), attaches to the console of process `pid`,
    /// ignores `CTRL_C` itself and raises `CTRL_C_EVENT` for every process on that console.
    /// Exit codes: 0 sent, 2 could not attach to the console of `pid`, 3 could not raise
    /// the event. Run it in a process of its own (it changes the calling process's console).
    pub fn ctrl_c_helper_main(pid: u32) -> i32 {
        // SAFETY: console calls with no pointers; this process exists only to do this.
        unsafe {
            FreeConsole();
            if AttachConsole(pid) == 0 {
                return 2;
            }
            // Ignore the event here (the flag is this process's own).
            SetConsoleCtrlHandler(None, TRUE);
            let sent = GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0);
            FreeConsole();
            if sent == 0 { 3 } else { 0 }
        }
    }

    /// Wait for the main process to exit. Cancel-safe; after the exit it returns the same
    /// status again at once.
    pub async fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        // The sender lives in `self.exit`, so this only ends when the callback has run.
        let _ = self.exit.rx.wait_for(|exited| *exited).await;
        if let Some(status) = self.exit_status() {
            self.status = Some(status);
            return status;
        }
        // The callback only runs once the handle is signalled: not reached, but never invent
        // a status.
        std::future::pending().await
    }

    /// Has the main process exited?
    pub fn exit_status(&self) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        // SAFETY: the process handle is valid while `self` lives.
        if unsafe { WaitForSingleObject(self.process.as_raw_handle(), 0) } != WAIT_OBJECT_0 {
            return None;
        }
        let mut code = 0u32;
        // SAFETY: as above, with a valid out-pointer.
        if unsafe { GetExitCodeProcess(self.process.as_raw_handle(), &raw mut code) } == 0 {
            return None;
        }
        // NTSTATUS codes such as 0xC000013A come out negative, as `%ERRORLEVEL%` shows them.
        Some(ExitStatus::Code(code as i32))
    }

    /// Wait until no process of the job is left, at most `timeout`. `true` if none is left.
    pub async fn wait_tree_gone(&mut self, timeout: Duration) -> bool {
        self.job.wait_empty(timeout).await
    }
}

/// The read end of a child's stdout or stderr pipe (a named pipe opened for overlapped I/O
/// on tokio's reactor). The end of the data (all the child's copies of the write end
/// closed) reads as end of file.
pub struct OutputPipe {
    pipe: NamedPipeClient,
}

impl AsyncRead for OutputPipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.pipe).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

/// Watches the main process's handle with `RegisterWaitForSingleObject`.
struct ExitWatch {
    wait: RawWait,
    // Boxed: its address is the callback's context and must not move.
    _tx: Box<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

struct RawWait(HANDLE);
// SAFETY: a wait handle may be unregistered from any thread.
unsafe impl Send for RawWait {}
// SAFETY: it is only used in `Drop`.
unsafe impl Sync for RawWait {}

unsafe extern "system" fn on_process_exit(context: *mut c_void, _timed_out: BOOLEAN) {
    // SAFETY: `context` is the boxed sender of an `ExitWatch`, which unregisters the wait
    // (waiting for a running callback) before the box is freed.
    let tx = unsafe { &*context.cast::<watch::Sender<bool>>() };
    tx.send_replace(true);
}

impl ExitWatch {
    fn new(process: &OwnedHandle) -> io::Result<ExitWatch> {
        let (tx, rx) = watch::channel(false);
        let tx = Box::new(tx);
        let mut wait: HANDLE = std::ptr::null_mut();
        // SAFETY: the process handle outlives the registration (field order of `Child`);
        // the context outlives it too (unregistered in `Drop` before the box is freed).
        let ok = unsafe {
            RegisterWaitForSingleObject(
                &raw mut wait,
                process.as_raw_handle(),
                Some(on_process_exit),
                std::ptr::from_ref::<watch::Sender<bool>>(&tx).cast(),
                INFINITE,
                WT_EXECUTEONLYONCE,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ExitWatch {
            wait: RawWait(wait),
            _tx: tx,
            rx,
        })
    }
}

impl Drop for ExitWatch {
    fn drop(&mut self) {
        // SAFETY: a registered wait; INVALID_HANDLE_VALUE makes the call wait for a callback
        // in progress, so the sender is not freed under it.
        unsafe { UnregisterWaitEx(self.wait.0, INVALID_HANDLE_VALUE) };
    }
}

/// Serialises the window in which a spawn's child-side handles are inheritable, so that no
/// other spawn of this process can inherit them (belt and braces with the handle list,
/// which some Windows-likes ignore).
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// What the raw spawn needs, already encoded.
struct RawSpawn<'a> {
    application: &'a Path,
    command_line: Vec<u16>,
    env_block: Option<Vec<u16>>,
    cwd: Option<&'a Path>,
    flags: PROCESS_CREATION_FLAGS,
    stdin: OwnedHandle,
    stdout: OwnedHandle,
    stderr: OwnedHandle,
}

struct Started {
    pid: u32,
    process: OwnedHandle,
    job: Job,
}

pub(super) fn spawn(spec: &SpawnSpec) -> Result<Child, SpawnError> {
    let program = spec.program.to_string_lossy().into_owned();
    let other = |source| SpawnError::Other {
        program: program.clone(),
        source,
    };

    let cwd_is_dir = std::fs::metadata(&spec.cwd).and_then(|meta| {
        meta.is_dir()
            .then_some(())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotADirectory, "not a directory"))
    });
    if let Err(source) = cwd_is_dir {
        return Err(SpawnError::BadCwd {
            cwd: spec.cwd.clone(),
            source,
        });
    }

    let env = cmdline::merge_env(
        if spec.clear_env {
            Vec::new()
        } else {
            std::env::vars_os().collect()
        },
        &spec.env,
    );
    let resolved = cmdline::resolve_program(
        &spec.program,
        &spec.cwd,
        cmdline::env_get(&env, "PATH"),
        &system_dirs(),
    )
    .ok_or_else(|| SpawnError::NotFound {
        program: program.clone(),
        source: io::Error::new(
            io::ErrorKind::NotFound,
            "no such file (bare names are looked up in PATH and the system directories)",
        ),
    })?;

    let (application, command_line) = if resolved.batch {
        let cmd = system_dirs()
            .first()
            .map(|d| d.join("cmd.exe"))
            .ok_or_else(|| other(io::Error::other("no system directory for cmd.exe")))?;
        (
            cmd,
            cmdline::batch_command_line(&resolved.path, &spec.args).map_err(other)?,
        )
    } else {
        (
            resolved.path.clone(),
            cmdline::command_line(&spec.program, &spec.args).map_err(other)?,
        )
    };
    let env_block = cmdline::env_block(&env).map_err(other)?;

    let (stdout, stdout_theirs, stderr, stderr_theirs) = if spec.capture_output {
        let (ours_out, theirs_out) = output_pipe().map_err(other)?;
        let (ours_err, theirs_err) = output_pipe().map_err(other)?;
        (Some(ours_out), theirs_out, Some(ours_err), theirs_err)
    } else {
        (
            None,
            open_nul(GENERIC_WRITE).map_err(other)?,
            None,
            open_nul(GENERIC_WRITE).map_err(other)?,
        )
    };

    let started = spawn_raw(RawSpawn {
        application: &application,
        command_line,
        env_block: Some(env_block),
        cwd: Some(&spec.cwd),
        flags: CREATE_NO_WINDOW,
        stdin: open_nul(GENERIC_READ).map_err(other)?,
        stdout: stdout_theirs,
        stderr: stderr_theirs,
    })
    .map_err(|source| classify(&program, &spec.cwd, source))?;

    let exit = ExitWatch::new(&started.process).map_err(other)?;
    Ok(Child {
        pid: started.pid,
        start_time: creation_time(&started.process),
        stdout,
        stderr,
        status: None,
        exit,
        process: started.process,
        job: started.job,
    })
}

/// Map a `CreateProcessW` failure to the portable error.
fn classify(program: &str, cwd: &Path, source: io::Error) -> SpawnError {
    let program = program.to_owned();
    match source.raw_os_error().map(|c| c as u32) {
        Some(ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND) => {
            SpawnError::NotFound { program, source }
        }
        Some(ERROR_ACCESS_DENIED) => SpawnError::PermissionDenied { program, source },
        Some(ERROR_DIRECTORY) => SpawnError::BadCwd {
            cwd: cwd.to_owned(),
            source,
        },
        _ => SpawnError::Other { program, source },
    }
}

/// Create the process suspended, put it in a new job, resume it.
fn spawn_raw(spec: RawSpawn<'_>) -> io::Result<Started> {
    let job = Job::new()?;
    let application = cmdline::to_wide_nul(spec.application.as_os_str())?;
    let cwd = spec
        .cwd
        .map(|c| cmdline::to_wide_nul(c.as_os_str()))
        .transpose()?;
    let mut command_line = spec.command_line;

    // The handles the child inherits, each once (the list refuses duplicates).
    let mut inherit: Vec<HANDLE> = Vec::with_capacity(3);
    for h in [&spec.stdin, &spec.stdout, &spec.stderr] {
        let raw = h.as_raw_handle();
        if !inherit.contains(&raw) {
            inherit.push(raw);
        }
    }
    let attributes = AttributeList::with_handle_list(&inherit)?;

    // SAFETY: all-zero is a valid value of these plain C structs.
    let mut info: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    info.StartupInfo.cb = std::mem::size_of::<STARTUPINFOEXW>() as u32;
    info.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    info.StartupInfo.hStdInput = spec.stdin.as_raw_handle();
    info.StartupInfo.hStdOutput = spec.stdout.as_raw_handle();
    info.StartupInfo.hStdError = spec.stderr.as_raw_handle();
    info.lpAttributeList = attributes.as_ptr();
    // SAFETY: as above.
    let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };

    let flags =
        spec.flags | CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT | EXTENDED_STARTUPINFO_PRESENT;
    {
        let _guard = SPAWN_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        for &h in &inherit {
            // SAFETY: a handle we own.
            if unsafe { SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT) } == 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: every pointer is valid for the call: NUL-terminated strings, a writable
        // command line, an environment block matching CREATE_UNICODE_ENVIRONMENT, the
        // attribute list initialised above.
        let ok = unsafe {
            CreateProcessW(
                application.as_ptr(),
                command_line.as_mut_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                TRUE,
                flags,
                spec.env_block
                    .as_ref()
                    .map_or(std::ptr::null(), |b| b.as_ptr().cast::<c_void>()),
                cwd.as_ref().map_or(std::ptr::null(), Vec::as_ptr),
                &raw const info.StartupInfo,
                &raw mut pi,
            )
        };
        let err = io::Error::last_os_error();
        // The child has its copies now; ours close here, inside the lock.
        drop((spec.stdin, spec.stdout, spec.stderr));
        if ok == 0 {
            return Err(err);
        }
    }
    // SAFETY: fresh handles from CreateProcessW that nothing else owns.
    let (process, thread) = unsafe {
        (
            OwnedHandle::from_raw_handle(pi.hProcess),
            OwnedHandle::from_raw_handle(pi.hThread),
        )
    };
    if let Err(e) = job.assign(process.as_handle()) {
        // SAFETY: our process handle; the child never ran.
        unsafe { TerminateProcess(process.as_raw_handle(), TERMINATED_EXIT_CODE) };
        return Err(e);
    }
    // SAFETY: the main thread's handle.
    if unsafe { ResumeThread(thread.as_raw_handle()) } == u32::MAX {
        let e = io::Error::last_os_error();
        // The job still holds the suspended child; dropping it ends the child.
        return Err(e);
    }
    Ok(Started {
        pid: pi.dwProcessId,
        process,
        job,
    })
}

/// A `PROC_THREAD_ATTRIBUTE_LIST` with one attribute, the list of handles to inherit.
struct AttributeList {
    buf: Vec<usize>,
    // The list points into this; it must live as long as the attribute list.
    handles: Box<[HANDLE]>,
}

impl AttributeList {
    fn with_handle_list(handles: &[HANDLE]) -> io::Result<AttributeList> {
        let mut size = 0usize;
        // SAFETY: a size query with a null list, as documented; it "fails" on purpose.
        unsafe { InitializeProcThreadAttributeList(std::ptr::null_mut(), 1, 0, &raw mut size) };
        if size == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0usize; size.div_ceil(std::mem::size_of::<usize>())];
        let handles: Box<[HANDLE]> = handles.into();
        // SAFETY: `buf` holds at least `size` bytes, suitably aligned.
        if unsafe {
            InitializeProcThreadAttributeList(buf.as_mut_ptr().cast(), 1, 0, &raw mut size)
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        let list = AttributeList { buf, handles };
        // SAFETY: an initialised list with room for one attribute; the handle array lives
        // in `list` as long as the list does.
        let ok = unsafe {
            UpdateProcThreadAttribute(
                list.as_ptr(),
                0,
                PROC_THREAD_ATTRIBUTE_HANDLE_LIST as usize,
                list.handles.as_ptr().cast(),
                std::mem::size_of_val::<[HANDLE]>(&list.handles),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(list)
    }

    fn as_ptr(&self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buf.as_ptr().cast_mut().cast()
    }
}

impl Drop for AttributeList {
    fn drop(&mut self) {
        // SAFETY: an initialised list, deleted once.
        unsafe { DeleteProcThreadAttributeList(self.as_ptr()) };
    }
}

/// `NUL`, not inheritable yet (see [`spawn_raw`]).
fn open_nul(access: u32) -> io::Result<OwnedHandle> {
    let name = cmdline::to_wide_nul(OsStr::new("NUL"))?;
    // SAFETY: a NUL-terminated name; no security attributes; no template.
    let h = unsafe {
        CreateFileW(
            name.as_ptr(),
            access,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_ATTRIBUTE_NORMAL,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle that nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// A pipe for one output stream: our end reads asynchronously (overlapped, on tokio's
/// reactor), the child's end is a plain synchronous handle, as programs expect of their
/// stdout. A named pipe with a unique name, one instance, local clients only.
fn output_pipe() -> io::Result<(OutputPipe, OwnedHandle)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // SAFETY: plain call.
    let me = unsafe { GetCurrentProcessId() };
    let name = format!(
        r"\\.\pipe\warden-{me}-{}-{:016x}",
        COUNTER.fetch_add(1, Ordering::Relaxed),
        fastrand::u64(..)
    );
    let wide_name = cmdline::to_wide_nul(OsStr::new(&name))?;
    let create = |mode| {
        // SAFETY: a NUL-terminated name, no security attributes (not inheritable).
        unsafe {
            CreateNamedPipeW(
                wide_name.as_ptr(),
                PIPE_ACCESS_OUTBOUND | FILE_FLAG_FIRST_PIPE_INSTANCE,
                mode,
                1,
                64 * 1024,
                64 * 1024,
                0,
                std::ptr::null(),
            )
        }
    };
    let base = PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT;
    let mut h = create(base | PIPE_REJECT_REMOTE_CLIENTS);
    if h == INVALID_HANDLE_VALUE
        && io::Error::last_os_error().raw_os_error() == Some(ERROR_INVALID_PARAMETER as i32)
    {
        // A system that does not know the flag.
        h = create(base);
    }
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle that nothing else owns.
    let theirs = unsafe { OwnedHandle::from_raw_handle(h) };
    let pipe = ClientOptions::new().read(true).write(false).open(&name)?;
    Ok((OutputPipe { pipe }, theirs))
}

fn creation_time(process: &OwnedHandle) -> u64 {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: a valid process handle and out-pointers.
    let ok = unsafe {
        GetProcessTimes(
            process.as_raw_handle(),
            &raw mut created,
            &raw mut exited,
            &raw mut kernel,
            &raw mut user,
        )
    };
    if ok == 0 {
        return 0;
    }
    (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime)
}

/// `System32` and the Windows directory, searched after `PATH` (from warden's own
/// `SystemRoot`, which Windows always sets).
fn system_dirs() -> Vec<PathBuf> {
    let root = std::env::var_os("SystemRoot")
        .or_else(|| std::env::var_os("windir"))
        .map_or_else(|| PathBuf::from(r"C:\Windows"), PathBuf::from);
    vec![root.join("System32"), root]
}

/// Run `warden __ctrl-c PID` (warden's own executable) detached from any console, in a job
/// of its own, and wait for it.
fn run_ctrl_c_helper(pid: u32) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    let args = [
        OsString::from(Child::CTRL_C_HELPER_SUBCOMMAND),
        OsString::from(pid.to_string()),
    ];
    let started = spawn_raw(RawSpawn {
        application: &exe,
        command_line: cmdline::command_line(exe.as_os_str(), &args)?,
        env_block: None,
        cwd: None,
        flags: DETACHED_PROCESS,
        stdin: open_nul(GENERIC_READ)?,
        stdout: open_nul(GENERIC_WRITE)?,
        stderr: open_nul(GENERIC_WRITE)?,
    })?;
    let millis = CTRL_C_HELPER_TIMEOUT.as_millis() as u32;
    // SAFETY: a valid process handle.
    if unsafe { WaitForSingleObject(started.process.as_raw_handle(), millis) } != WAIT_OBJECT_0 {
        // Dropping the job ends the helper.
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the ctrl-c helper did not finish",
        ));
    }
    let mut code = 0u32;
    // SAFETY: a valid process handle and out-pointer.
    unsafe { GetExitCodeProcess(started.process.as_raw_handle(), &raw mut code) };
    match code {
        0 => Ok(()),
        2 => Err(io::Error::other(format!(
            "could not attach to the console of process {pid}"
        ))),
        3 => Err(io::Error::other(format!(
            "could not raise CTRL_C on the console of process {pid}"
        ))),
        other => Err(io::Error::other(format!(
            "the ctrl-c helper `{} {} {pid}` exited with code {other} (is the hidden subcommand wired?)",
            exe.display(),
            Child::CTRL_C_HELPER_SUBCOMMAND
        ))),
    }
}

/// Post `WM_CLOSE` to every top-level window owned by one of `pids`; returns how many.
fn post_wm_close(pids: &[u32]) -> usize {
    struct Search<'a> {
        pids: &'a [u32],
        posted: usize,
    }
    unsafe extern "system" fn visit(hwnd: HWND, lparam: LPARAM) -> BOOL {
        // SAFETY: `lparam` is the `Search` passed to EnumWindows below, alive for the call.
        let search = unsafe { &mut *(lparam as *mut Search<'_>) };
        let mut pid = 0u32;
        // SAFETY: a window handle given by EnumWindows; a valid out-pointer.
        unsafe { GetWindowThreadProcessId(hwnd, &raw mut pid) };
        // SAFETY: as above; posting does not wait for the window.
        if search.pids.contains(&pid) && unsafe { PostMessageW(hwnd, WM_CLOSE, 0, 0) } != 0 {
            search.posted += 1;
        }
        TRUE
    }
    let mut search = Search { pids, posted: 0 };
    // SAFETY: the callback only uses `search`, which outlives the call.
    unsafe { EnumWindows(Some(visit), (&raw mut search) as LPARAM) };
    search.posted
}

pub(super) fn init_supervisor() -> io::Result<()> {
    job::init()
}

pub(super) fn signal_name(_num: i32) -> Option<&'static str> {
    None
}

/// Always 0 on Windows: every child runs in a job with kill-on-close, which the kernel
/// closes when warden exits for whatever reason (even a crash or `TerminateProcess`), so
/// no process of a previous warden can be left over.
pub(super) fn kill_leftovers(_records: &[GroupRecord], _marker: &str) -> usize {
    0
}

/// Terminate every job still open; returns how many processes were in them.
pub(super) fn kill_all_descendants() -> usize {
    job::kill_all(TERMINATED_EXIT_CODE)
}

/// Wait until every job still open is empty.
pub(super) async fn wait_no_children(timeout: Duration) -> bool {
    job::wait_all_empty(timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_and_pipe_are_send() {
        fn is_send<T: Send>() {}
        is_send::<Child>();
        is_send::<OutputPipe>();
    }
}
