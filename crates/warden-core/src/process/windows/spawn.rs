//! [`spawn`]: resolve the program, create the process suspended, inside a fresh Job Object
//! and with only its three standard handles inheritable, then resume it.

#[cfg(test)]
use std::ffi::OsString;
use std::ffi::{OsStr, c_void};
use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_DIRECTORY, ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND, FILETIME,
    GENERIC_READ, GENERIC_WRITE, HANDLE, HANDLE_FLAG_INHERIT, INVALID_HANDLE_VALUE,
    SetHandleInformation, TRUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ, FILE_SHARE_WRITE, OPEN_EXISTING,
};
use windows_sys::Win32::System::Threading::{
    CREATE_NO_WINDOW, CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT, CreateProcessW,
    DeleteProcThreadAttributeList, EXTENDED_STARTUPINFO_PRESENT, GetProcessTimes,
    InitializeProcThreadAttributeList, LPPROC_THREAD_ATTRIBUTE_LIST,
    PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROC_THREAD_ATTRIBUTE_JOB_LIST, PROCESS_CREATION_FLAGS,
    PROCESS_INFORMATION, ResumeThread, STARTF_USESTDHANDLES, STARTUPINFOEXW, TerminateProcess,
    UpdateProcThreadAttribute,
};

use super::job::Job;
use super::pipe::output_pipe;
use super::wait::ExitWatch;
use super::{Child, TERMINATED_EXIT_CODE, cmdline};
use crate::process::{Output, SpawnError, SpawnSpec};

/// Serialises the window in which a spawn's child-side handles are inheritable, so that no
/// other spawn of this process can inherit them (belt and braces with the handle list,
/// which some Windows-likes ignore).
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// What the raw spawn needs, already encoded.
pub(super) struct RawSpawn<'a> {
    pub(super) application: &'a Path,
    pub(super) command_line: Vec<u16>,
    pub(super) env_block: Option<Vec<u16>>,
    pub(super) cwd: Option<&'a Path>,
    pub(super) flags: PROCESS_CREATION_FLAGS,
    pub(super) stdin: OwnedHandle,
    pub(super) stdout: OwnedHandle,
    /// `None`: the very handle of `stdout` is the child's stderr too (one pipe for both).
    pub(super) stderr: Option<OwnedHandle>,
    /// The job's memory limit (`memory_limit`), set before the child runs.
    pub(super) memory_max: Option<u64>,
}

pub(super) struct Started {
    pub(super) pid: u32,
    pub(super) process: OwnedHandle,
    pub(super) job: Job,
}

pub(crate) fn spawn(spec: &SpawnSpec) -> Result<Child, SpawnError> {
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
            // health: never the host's systemd variables
            std::env::vars_os()
                .filter(|(k, _)| !crate::process::HOST_MANAGER_VARS.iter().any(|v| k == v))
                .collect()
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

    let (stdout, stdout_theirs, stderr, stderr_theirs) = match spec.output {
        Output::Separate => {
            let (ours_out, theirs_out) = output_pipe().map_err(other)?;
            let (ours_err, theirs_err) = output_pipe().map_err(other)?;
            (Some(ours_out), theirs_out, Some(ours_err), Some(theirs_err))
        }
        Output::Joined => {
            // One pipe; its write end is both hStdOutput and hStdError.
            let (ours, theirs) = output_pipe().map_err(other)?;
            (Some(ours), theirs, None, None)
        }
        Output::Null => (None, open_nul(GENERIC_WRITE).map_err(other)?, None, None),
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
        memory_max: spec.confinement.as_ref().and_then(|c| c.memory_max),
    })
    .map_err(|source| classify(&program, &spec.cwd, source))?;

    let exit = ExitWatch::new(&started.process).map_err(other)?;
    // Resource samples find the job by its main process.
    started.job.set_main(started.pid);
    Ok(Child {
        pid: started.pid,
        start_time: creation_time(&started.process),
        stdout,
        stderr,
        status: None,
        exit,
        process: started.process,
        job: started.job,
        followed: false,
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

/// Create the process suspended and already in a new job, resume it.
///
/// The job is given to `CreateProcessW` itself (`PROC_THREAD_ATTRIBUTE_JOB_LIST`, Windows 10
/// and later): a child created first and assigned after would, if warden died in between
/// (a SIGKILL in a crash storm did it under Wine), stay suspended forever in no job, where
/// nothing ever ends it. Only where the attribute is refused (older Windows) is the child
/// assigned after its creation, with that window.
pub(super) fn spawn_raw(spec: RawSpawn<'_>) -> io::Result<Started> {
    let job = Job::new(spec.memory_max)?;
    let application = cmdline::to_wide_nul(spec.application.as_os_str())?;
    let cwd = spec
        .cwd
        .map(|c| cmdline::to_wide_nul(c.as_os_str()))
        .transpose()?;
    let mut command_line = spec.command_line;

    let stderr = spec
        .stderr
        .as_ref()
        .map_or_else(|| spec.stdout.as_raw_handle(), AsRawHandle::as_raw_handle);
    // The handles the child inherits, each once (the list refuses duplicates).
    let mut inherit: Vec<HANDLE> = Vec::with_capacity(3);
    for raw in [
        spec.stdin.as_raw_handle(),
        spec.stdout.as_raw_handle(),
        stderr,
    ] {
        if !inherit.contains(&raw) {
            inherit.push(raw);
        }
    }
    let attributes = AttributeList::new(&inherit, job.as_raw_handle())?;

    // SAFETY: all-zero is a valid value of these plain C structs.
    let mut info: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
    info.StartupInfo.cb = std::mem::size_of::<STARTUPINFOEXW>() as u32;
    info.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    info.StartupInfo.hStdInput = spec.stdin.as_raw_handle();
    info.StartupInfo.hStdOutput = spec.stdout.as_raw_handle();
    info.StartupInfo.hStdError = stderr;
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
    if !attributes.has_job
        && let Err(e) = job.assign(process.as_handle())
    {
        // SAFETY: our process handle; the child never ran.
        unsafe { TerminateProcess(process.as_raw_handle(), TERMINATED_EXIT_CODE) };
        return Err(e);
    }
    drop(attributes);
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

/// A `PROC_THREAD_ATTRIBUTE_LIST` with the list of handles to inherit and, where the system
/// takes it, the job the process is created in.
struct AttributeList {
    buf: Vec<usize>,
    // The list points into these; they must live as long as the attribute list.
    handles: Box<[HANDLE]>,
    jobs: Box<[HANDLE; 1]>,
    /// The job list attribute was taken: the process is created in the job.
    has_job: bool,
}

impl AttributeList {
    fn new(handles: &[HANDLE], job: HANDLE) -> io::Result<AttributeList> {
        const COUNT: u32 = 2;
        let mut size = 0usize;
        // SAFETY: a size query with a null list, as documented; it "fails" on purpose.
        unsafe { InitializeProcThreadAttributeList(std::ptr::null_mut(), COUNT, 0, &raw mut size) };
        if size == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0usize; size.div_ceil(std::mem::size_of::<usize>())];
        // SAFETY: `buf` holds at least `size` bytes, suitably aligned.
        if unsafe {
            InitializeProcThreadAttributeList(buf.as_mut_ptr().cast(), COUNT, 0, &raw mut size)
        } == 0
        {
            return Err(io::Error::last_os_error());
        }
        let mut list = AttributeList {
            buf,
            handles: handles.into(),
            jobs: Box::new([job]),
            has_job: false,
        };
        list.update(
            PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
            list.handles.as_ptr().cast(),
            std::mem::size_of_val::<[HANDLE]>(&list.handles),
        )?;
        // Refused before Windows 10: then the caller assigns the job after the creation.
        list.has_job = list
            .update(
                PROC_THREAD_ATTRIBUTE_JOB_LIST,
                list.jobs.as_ptr().cast(),
                std::mem::size_of_val::<[HANDLE; 1]>(&list.jobs),
            )
            .is_ok();
        Ok(list)
    }

    /// Add one attribute whose value (`size` bytes at `value`) lives in `self`.
    fn update(&self, attribute: u32, value: *const c_void, size: usize) -> io::Result<()> {
        // SAFETY: an initialised list with room for this attribute; `value` points into a
        // box of `self` that lives as long as the list.
        let ok = unsafe {
            UpdateProcThreadAttribute(
                self.as_ptr(),
                0,
                attribute as usize,
                value,
                size,
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
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
pub(super) fn open_nul(access: u32) -> io::Result<OwnedHandle> {
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

pub(super) fn creation_time(process: &OwnedHandle) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use windows_sys::Win32::System::JobObjects::IsProcessInJob;

    #[test]
    fn the_job_list_attribute_is_taken() {
        let job = Job::new(None).expect("a job");
        let nul = open_nul(GENERIC_READ).expect("NUL");
        let list = AttributeList::new(&[nul.as_raw_handle()], job.as_raw_handle())
            .expect("an attribute list");
        assert!(
            list.has_job,
            "PROC_THREAD_ATTRIBUTE_JOB_LIST refused: children would be assigned after creation"
        );
    }

    #[test]
    fn a_child_is_born_in_its_job() {
        let cmd = system_dirs()[0].join("cmd.exe");
        let args = [OsString::from("/c"), OsString::from("exit 7")];
        let started = spawn_raw(RawSpawn {
            application: &cmd,
            command_line: cmdline::command_line(cmd.as_os_str(), &args).expect("a command line"),
            env_block: None,
            cwd: None,
            flags: CREATE_NO_WINDOW,
            stdin: open_nul(GENERIC_READ).expect("NUL"),
            stdout: open_nul(GENERIC_WRITE).expect("NUL"),
            stderr: None,
            memory_max: None,
        })
        .expect("cmd.exe starts");
        let mut inside = 0;
        // SAFETY: valid process and job handles, and an out-pointer.
        let ok = unsafe {
            IsProcessInJob(
                started.process.as_raw_handle(),
                started.job.as_raw_handle(),
                &raw mut inside,
            )
        };
        assert_ne!(ok, 0, "{}", io::Error::last_os_error());
        assert_ne!(inside, 0, "the child is not in its job");
    }
}
