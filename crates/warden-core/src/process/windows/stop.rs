//! The graceful steps of a stop on Windows: a console Ctrl-C through the `warden __ctrl-c PID`
//! helper, `WM_CLOSE` to the tree's windows; and the helper's own body.

use std::ffi::OsString;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::path::PathBuf;
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
use super::spawn::{RawSpawn, Started, open_nul, spawn_raw};
use super::wait::ExitWatch;
use crate::model::StopMethod;
use crate::process::{Signal, StepOutcome, StopStep};

/// How long a Ctrl-C step waits for the `__ctrl-c` helper to finish.
const CTRL_C_HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Each step of `stop_method` but `terminate`, which is the kill that follows the graceful
/// steps anyway (`stop_signal` is a Unix setting, rejected by the config here).
pub(crate) fn stop_steps(_stop_signal: Signal, stop_method: &[StopMethod]) -> Vec<StopStep> {
    stop_method
        .iter()
        .filter_map(|method| match method {
            StopMethod::CtrlC => Some(StopStep::CtrlC),
            StopMethod::WmClose => Some(StopStep::WmClose),
            StopMethod::Terminate => None,
        })
        .collect()
}

/// The exit codes of `warden __ctrl-c PID` ([`Child::ctrl_c_helper_main`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HelperExit {
    /// `CTRL_C_EVENT` was raised on the console of the process.
    Sent = 0,
    /// The process has no console to attach to (or is gone).
    NoConsole = 2,
    /// Attached, but the event could not be raised.
    NotRaised = 3,
}

impl HelperExit {
    fn from_code(code: u32) -> Option<HelperExit> {
        [
            HelperExit::Sent,
            HelperExit::NoConsole,
            HelperExit::NotRaised,
        ]
        .into_iter()
        .find(|e| *e as u32 == code)
    }
}

impl Child {
    /// The hidden subcommand of the `warden` binary that runs
    /// [`Child::ctrl_c_helper_main`]: `warden __ctrl-c PID`.
    pub const CTRL_C_HELPER_SUBCOMMAND: &'static str = "__ctrl-c";

    /// Apply one graceful step of a stop (see [`crate::process::stop_steps`]):
    ///
    /// - [`StopStep::CtrlC`]: a `CTRL_C_EVENT` on the child's own console, which every
    ///   process of the tree attached to it receives (a program that started its children
    ///   with a console of their own, or detached, has to pass it on itself). Done by
    ///   `warden __ctrl-c PID` (see [`Child::ctrl_c_helper_main`]), which this waits for
    ///   asynchronously, up to 10 s. [`StepOutcome::NotApplicable`] when no process of the
    ///   tree has a console to attach to.
    /// - [`StopStep::WmClose`]: `WM_CLOSE` posted to every top-level window of every
    ///   process in the job; [`StepOutcome::NotApplicable`] when there is no such window.
    /// - [`StopStep::Signal`]: [`Signal::Kill`] ends the job, as [`Child::kill_tree`];
    ///   other signals do not exist here and are [`StepOutcome::NotApplicable`].
    ///
    /// When no process of the tree is left, every step does nothing and is
    /// [`StepOutcome::Applied`] (the wait that follows returns at once). Dropping the future
    /// ends the helper.
    pub async fn apply_stop_step(&self, step: StopStep) -> io::Result<StepOutcome> {
        match step {
            StopStep::Signal(Signal::Kill) => self.kill_tree().map(|()| StepOutcome::Applied),
            StopStep::Signal(_) => Ok(StepOutcome::NotApplicable),
            StopStep::WmClose => self.wm_close(),
            StopStep::CtrlC => {
                let pids = self.console_candidates()?;
                if pids.is_empty() {
                    return Ok(StepOutcome::Applied);
                }
                let mut last_err = None;
                for pid in pids {
                    let result = match CtrlCHelper::start(pid) {
                        Ok(mut helper) => helper.finish().await,
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(HelperExit::Sent) => return Ok(StepOutcome::Applied),
                        Ok(HelperExit::NoConsole) => {}
                        Ok(HelperExit::NotRaised) => last_err = Some(not_raised(pid)),
                        Err(e) => last_err = Some(e),
                    }
                }
                last_err.map_or(Ok(StepOutcome::NotApplicable), Err)
            }
        }
    }

    /// One step of `stop_method`, blocking (the engine's current call; it moves to
    /// [`Child::apply_stop_step`]):
    ///
    /// - [`StopMethod::CtrlC`]: as [`StopStep::CtrlC`], waiting for the helper in this
    ///   thread; an error if no process of the tree has a console.
    /// - [`StopMethod::WmClose`]: as [`StopStep::WmClose`]; an error of kind
    ///   [`io::ErrorKind::NotFound`] if there is no window (so the caller can go on to the
    ///   next method at once).
    /// - [`StopMethod::Terminate`]: as [`Child::kill_tree`].
    ///
    /// When no process of the tree is left, `CtrlC` and `WmClose` do nothing and succeed.
    pub fn request_stop(&self, method: StopMethod) -> io::Result<()> {
        match method {
            StopMethod::Terminate => self.kill_tree(),
            StopMethod::CtrlC => {
                let mut last_err = None;
                for pid in self.console_candidates()? {
                    match CtrlCHelper::start(pid).and_then(CtrlCHelper::finish_blocking) {
                        Ok(HelperExit::Sent) => return Ok(()),
                        Ok(HelperExit::NoConsole) => last_err = Some(no_console(pid)),
                        Ok(HelperExit::NotRaised) => last_err = Some(not_raised(pid)),
                        Err(e) => last_err = Some(e),
                    }
                }
                last_err.map_or(Ok(()), Err)
            }
            StopMethod::WmClose => match self.wm_close()? {
                StepOutcome::Applied => Ok(()),
                StepOutcome::NotApplicable => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no top-level window belongs to the service's processes",
                )),
            },
        }
    }

    /// The processes whose console a Ctrl-C goes to, in order: the main process's first;
    /// if it is gone, any process left in the job (some, such as a console host, have none
    /// to attach to).
    fn console_candidates(&self) -> io::Result<Vec<u32>> {
        let mut pids = self.job.process_ids()?;
        pids.sort_by_key(|&p| p != self.pid);
        Ok(pids)
    }

    /// `WM_CLOSE` to the job's windows: applied if any got it, or if the job is empty.
    fn wm_close(&self) -> io::Result<StepOutcome> {
        let pids = self.job.process_ids()?;
        if pids.is_empty() || post_wm_close(&pids) > 0 {
            Ok(StepOutcome::Applied)
        } else {
            Ok(StepOutcome::NotApplicable)
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
        let exit = unsafe {
            FreeConsole();
            if AttachConsole(pid) == 0 {
                HelperExit::NoConsole
            } else {
                // Ignore the event here (the flag is this process's own).
                SetConsoleCtrlHandler(None, TRUE);
                let sent = GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0);
                FreeConsole();
                if sent == 0 {
                    HelperExit::NotRaised
                } else {
                    HelperExit::Sent
                }
            }
        };
        exit as i32
    }
}

fn no_console(pid: u32) -> io::Error {
    io::Error::other(format!("could not attach to the console of process {pid}"))
}

fn not_raised(pid: u32) -> io::Error {
    io::Error::other(format!(
        "could not raise CTRL_C on the console of process {pid}"
    ))
}

/// A running `warden __ctrl-c PID` (warden's own executable), detached from any console, in
/// a job of its own: dropping it ends the helper.
struct CtrlCHelper {
    exe: PathBuf,
    target: u32,
    // Drop order matters: the registered wait goes before the process handle it waits on.
    exit: ExitWatch,
    started: Started,
}

impl CtrlCHelper {
    fn start(target: u32) -> io::Result<CtrlCHelper> {
        let exe = std::env::current_exe()?;
        let args = [
            OsString::from(Child::CTRL_C_HELPER_SUBCOMMAND),
            OsString::from(target.to_string()),
        ];
        let started = spawn_raw(RawSpawn {
            application: &exe,
            command_line: cmdline::command_line(exe.as_os_str(), &args)?,
            env_block: None,
            cwd: None,
            flags: DETACHED_PROCESS,
            stdin: open_nul(GENERIC_READ)?,
            stdout: open_nul(GENERIC_WRITE)?,
            stderr: None,
            memory_max: None,
        })?;
        let exit = ExitWatch::new(&started.process)?;
        Ok(CtrlCHelper {
            exe,
            target,
            exit,
            started,
        })
    }

    /// Wait (asynchronously, at most [`CTRL_C_HELPER_TIMEOUT`]) for the helper to exit.
    async fn finish(&mut self) -> io::Result<HelperExit> {
        let exited = tokio::time::timeout(CTRL_C_HELPER_TIMEOUT, self.exit.rx.wait_for(|e| *e))
            .await
            .is_ok_and(|r| r.is_ok());
        if exited {
            self.exit_code()
        } else {
            Err(timed_out())
        }
    }

    /// Wait in this thread, at most [`CTRL_C_HELPER_TIMEOUT`].
    fn finish_blocking(self) -> io::Result<HelperExit> {
        let millis = CTRL_C_HELPER_TIMEOUT.as_millis() as u32;
        // SAFETY: a valid process handle.
        if unsafe { WaitForSingleObject(self.started.process.as_raw_handle(), millis) }
            != WAIT_OBJECT_0
        {
            return Err(timed_out());
        }
        self.exit_code()
    }

    /// The helper's exit code, once it exited.
    fn exit_code(&self) -> io::Result<HelperExit> {
        let mut code = 0u32;
        // SAFETY: a valid process handle and out-pointer.
        if unsafe { GetExitCodeProcess(self.started.process.as_raw_handle(), &raw mut code) } == 0 {
            return Err(io::Error::last_os_error());
        }
        HelperExit::from_code(code).ok_or_else(|| {
            io::Error::other(format!(
                "the ctrl-c helper `{} {} {}` exited with code {code} (is the hidden subcommand wired?)",
                self.exe.display(),
                Child::CTRL_C_HELPER_SUBCOMMAND,
                self.target,
            ))
        })
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the ctrl-c helper did not finish")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_steps_are_stop_method_without_terminate() {
        let all = [
            StopMethod::CtrlC,
            StopMethod::WmClose,
            StopMethod::Terminate,
        ];
        assert_eq!(
            stop_steps(Signal::Term, &all),
            [StopStep::CtrlC, StopStep::WmClose]
        );
        assert_eq!(
            stop_steps(Signal::Term, &[StopMethod::Terminate, StopMethod::WmClose]),
            [StopStep::WmClose]
        );
        assert!(stop_steps(Signal::Term, &[StopMethod::Terminate]).is_empty());
    }

    #[test]
    fn helper_exit_codes_round_trip() {
        for e in [
            HelperExit::Sent,
            HelperExit::NoConsole,
            HelperExit::NotRaised,
        ] {
            assert_eq!(HelperExit::from_code(e as u32), Some(e));
        }
        assert_eq!(HelperExit::from_code(1), None);
    }
}
