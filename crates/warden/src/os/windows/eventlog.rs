//! The Windows Event Log: the event source `warden` (registered at install) and
//! [`report_event`], which service mode uses for its own events (started, stopped, a
//! config error).
//!
//! The source's `EventMessageFile` is warden.exe, which has no message table: Event Viewer
//! then shows "the description for Event ID N cannot be found" followed by warden's text,
//! which is still the whole message. (A message table resource would need a resource
//! compiler in the build; a later improvement.)

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{ERROR_SUCCESS, HANDLE};
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, EVENTLOG_ERROR_TYPE, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
    REPORT_EVENT_TYPE, RegisterEventSourceW, ReportEventW,
};
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_LOCAL_MACHINE, KEY_SET_VALUE, REG_DWORD, REG_EXPAND_SZ, REG_OPTION_NON_VOLATILE,
    RegCloseKey, RegCreateKeyExW, RegSetValueExW,
};

/// The event source's name (shared by every installed warden service).
pub const SOURCE: &str = "warden";

/// Its registry key under `HKEY_LOCAL_MACHINE`.
pub const SOURCE_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\warden";

/// Error, warning and information (`EVENTLOG_ERROR_TYPE | WARNING | INFORMATION`).
const TYPES_SUPPORTED: u32 = 7;

/// How serious an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLevel {
    Info,
    Warning,
    Error,
}

impl EventLevel {
    fn raw(self) -> REPORT_EVENT_TYPE {
        match self {
            EventLevel::Info => EVENTLOG_INFORMATION_TYPE,
            EventLevel::Warning => EVENTLOG_WARNING_TYPE,
            EventLevel::Error => EVENTLOG_ERROR_TYPE,
        }
    }

    /// The event id: one per level (1 information, 2 warning, 3 error), so a filter in Event
    /// Viewer or `Get-WinEvent` can pick warden's errors.
    pub fn event_id(self) -> u32 {
        match self {
            EventLevel::Info => 1,
            EventLevel::Warning => 2,
            EventLevel::Error => 3,
        }
    }
}

pub fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(Some(0)).collect()
}

/// An open registry key, closed on drop.
struct Key(HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: a key opened by RegCreateKeyExW, closed once.
        unsafe { RegCloseKey(self.0) };
    }
}

fn check(code: u32) -> io::Result<()> {
    if code == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code as i32))
    }
}

/// Register (or update) the event source `warden` with `exe` as its message file. Needs an
/// elevated prompt (it writes under `HKEY_LOCAL_MACHINE`).
pub fn register_source(exe: &Path) -> io::Result<()> {
    let mut key: HKEY = ptr::null_mut();
    let subkey = wide(SOURCE_KEY);
    // SAFETY: valid NUL-terminated strings; out-pointer to a local.
    check(unsafe {
        RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            subkey.as_ptr(),
            0,
            ptr::null(),
            REG_OPTION_NON_VOLATILE,
            KEY_SET_VALUE,
            ptr::null(),
            &raw mut key,
            ptr::null_mut(),
        )
    })?;
    let key = Key(key);
    let file = wide(exe);
    let name = wide("EventMessageFile");
    // SAFETY: the data pointer and its length in bytes (NUL included) describe `file`.
    check(unsafe {
        RegSetValueExW(
            key.0,
            name.as_ptr(),
            0,
            REG_EXPAND_SZ,
            file.as_ptr().cast(),
            (file.len() * 2) as u32,
        )
    })?;
    let name = wide("TypesSupported");
    let types = TYPES_SUPPORTED.to_le_bytes();
    // SAFETY: four bytes of a DWORD.
    check(unsafe {
        RegSetValueExW(
            key.0,
            name.as_ptr(),
            0,
            REG_DWORD,
            types.as_ptr(),
            types.len() as u32,
        )
    })
}

/// The process's event source handle, opened once (`DeregisterEventSource` at exit is
/// unnecessary: the handle lives as long as the process).
struct Source(HANDLE);

// SAFETY: an event source handle may be used from any thread.
unsafe impl Send for Source {}
// SAFETY: ReportEventW is thread-safe.
unsafe impl Sync for Source {}

impl Drop for Source {
    fn drop(&mut self) {
        // SAFETY: a handle from RegisterEventSourceW, deregistered once.
        unsafe { DeregisterEventSource(self.0) };
    }
}

fn source() -> Option<&'static Source> {
    static SOURCE_HANDLE: OnceLock<Option<Source>> = OnceLock::new();
    SOURCE_HANDLE
        .get_or_init(|| {
            let name = wide(SOURCE);
            // SAFETY: a NUL-terminated name; NULL server = this computer.
            let h = unsafe { RegisterEventSourceW(ptr::null(), name.as_ptr()) };
            (!h.is_null()).then_some(Source(h))
        })
        .as_ref()
}

/// Write `msg` to the Application event log under the source `warden`. Best effort: the
/// event log being unavailable is never a reason to stop supervising; `false` if the event
/// could not be written.
pub fn report_event(level: EventLevel, msg: &str) -> bool {
    let Some(src) = source() else {
        return false;
    };
    let text = wide(msg);
    let strings = [text.as_ptr()];
    // SAFETY: one valid NUL-terminated string; no SID, no raw data.
    let ok = unsafe {
        ReportEventW(
            src.0,
            level.raw(),
            0,
            level.event_id(),
            ptr::null_mut(),
            1,
            0,
            strings.as_ptr(),
            ptr::null(),
        )
    };
    ok != 0
}

/// What uninstall did with the event source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFate {
    /// It was the last warden service: the source's key is gone.
    Removed,
    /// Other warden services still write to it.
    Kept(Vec<String>),
    /// There was none (the install could not register it).
    Absent,
}

/// The warden services of `all` other than `uninstalled` (service names are
/// case-insensitive).
pub fn other_services(all: Vec<String>, uninstalled: &str) -> Vec<String> {
    all.into_iter()
        .filter(|n| !n.eq_ignore_ascii_case(uninstalled))
        .collect()
}

/// After `uninstalled` was deleted: remove the event source `warden` unless another warden
/// service is left. Needs an elevated prompt, as uninstall does.
pub fn remove_source_if_unused(uninstalled: &str) -> io::Result<SourceFate> {
    let others = other_services(super::registry::warden_services()?, uninstalled);
    if !others.is_empty() {
        return Ok(SourceFate::Kept(others));
    }
    Ok(if super::registry::delete_key(SOURCE_KEY)? {
        SourceFate::Removed
    } else {
        SourceFate::Absent
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_stays_while_another_warden_service_uses_it() {
        let all = vec!["Sync".to_owned(), "web".to_owned()];
        assert_eq!(other_services(all.clone(), "sync"), ["web"]);
        assert!(other_services(vec!["sync".to_owned()], "SYNC").is_empty());
    }

    #[test]
    fn levels_map_to_event_types_and_ids() {
        assert_eq!(EventLevel::Info.raw(), EVENTLOG_INFORMATION_TYPE);
        assert_eq!(EventLevel::Warning.raw(), EVENTLOG_WARNING_TYPE);
        assert_eq!(EventLevel::Error.raw(), EVENTLOG_ERROR_TYPE);
        assert_eq!(
            TYPES_SUPPORTED,
            u32::from(EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE)
        );
    }

    #[test]
    fn report_event_does_not_panic_without_a_registered_source() {
        // Under Wine the event log is a stub that accepts everything; on Windows an
        // unregistered source still logs (with a generic message file).
        let _ = report_event(EventLevel::Info, "warden unit test event");
    }
}
