//! The graceful steps of a stop on Windows: a console Ctrl-C through the `warden __ctrl-c PID`
//! helper, `WM_CLOSE` to the tree's windows; and the helper's own body.

use std::ffi::OsString;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    BOOL, GENERIC_READ, GENERIC_WRITE, HWND, LPARAM, TRUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::System::Console::{
    AttachConsole, CTRL_C_EVENT, FreeConsole, GenerateConsoleCtrlEvent, SetConsoleCtrlHandler,
};
use windows_sys::Win32::System::Threading::{
    DETACHED_PROCESS, GetExitCodeProcess, WaitForSingleObject,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    EnumWindows, GetWindowThreadProcessId, PostMessageW, WM_CLOSE,
};

use super::Child;
use super::cmdline;
use super::spawn::{RawSpawn, open_nul, spawn_raw};
use crate::model::StopMethod;

/// How long [`Child::request_stop`] waits for the `__ctrl-c` helper to finish.
const CTRL_C_HELPER_TIMEOUT: Duration = Duration::from_secs(10);

impl Child {
    /// The hidden subcommand of the `warden` binary that runs
    /// [`Child::ctrl_c_helper_main`]: `warden __ctrl-c PID`.
    pub const CTRL_C_HELPER_SUBCOMMAND: &'static str = "__ctrl-c";

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
