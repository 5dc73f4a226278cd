//! [`ExitWatch`]: the main process's exit, watched with `RegisterWaitForSingleObject` (the
//! system's wait threads call back; the callback sets a `watch`).

use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, OwnedHandle};

use tokio::sync::watch;
use windows_sys::Win32::Foundation::{BOOLEAN, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Threading::{
    INFINITE, RegisterWaitForSingleObject, UnregisterWaitEx, WT_EXECUTEONLYONCE,
};

/// Watches the main process's handle with `RegisterWaitForSingleObject`.
pub(super) struct ExitWatch {
    wait: RawWait,
    // Boxed: its address is the callback's context and must not move.
    _tx: Box<watch::Sender<bool>>,
    pub(super) rx: watch::Receiver<bool>,
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
    pub(super) fn new(process: &OwnedHandle) -> io::Result<ExitWatch> {
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
