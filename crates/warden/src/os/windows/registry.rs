//! The few registry reads and deletes uninstall needs: which services are warden's (their
//! `ImagePath` runs `warden service-run`), and removing the event source's key.

use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::{
    ERROR_FILE_NOT_FOUND, ERROR_MORE_DATA, ERROR_NO_MORE_ITEMS, ERROR_SUCCESS,
};
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_LOCAL_MACHINE, KEY_READ, RRF_NOEXPAND, RRF_RT_REG_EXPAND_SZ, RRF_RT_REG_SZ,
    RegCloseKey, RegDeleteKeyW, RegEnumKeyExW, RegGetValueW, RegOpenKeyExW,
};

use super::eventlog::wide;

/// Where the SCM keeps every service's settings.
const SERVICES_KEY: &str = r"SYSTEM\CurrentControlSet\Services";

/// An open registry key, closed on drop.
struct Key(HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: a key opened by RegOpenKeyExW, closed once.
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

fn open(subkey: &str) -> io::Result<Key> {
    let mut key: HKEY = ptr::null_mut();
    let name = wide(subkey);
    // SAFETY: a NUL-terminated name; out-pointer to a local.
    check(unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, name.as_ptr(), 0, KEY_READ, &raw mut key) })?;
    Ok(Key(key))
}

/// A string value (`REG_SZ` or `REG_EXPAND_SZ`, unexpanded) of `key\sub`.
fn string_value(key: &Key, sub: &str, value: &str) -> Option<String> {
    let sub = wide(sub);
    let value = wide(value);
    let flags = RRF_RT_REG_SZ | RRF_RT_REG_EXPAND_SZ | RRF_NOEXPAND;
    let mut bytes = 0u32;
    // SAFETY: valid names; a NULL buffer asks for the size only.
    let rc = unsafe {
        RegGetValueW(
            key.0,
            sub.as_ptr(),
            value.as_ptr(),
            flags,
            ptr::null_mut(),
            ptr::null_mut(),
            &raw mut bytes,
        )
    };
    if rc != ERROR_SUCCESS {
        return None;
    }
    let mut buf = vec![0u16; bytes as usize / 2 + 1];
    let mut bytes = (buf.len() * 2) as u32;
    // SAFETY: the buffer holds `bytes` bytes.
    let rc = unsafe {
        RegGetValueW(
            key.0,
            sub.as_ptr(),
            value.as_ptr(),
            flags,
            ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &raw mut bytes,
        )
    };
    if rc != ERROR_SUCCESS {
        return None;
    }
    let len = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    Some(String::from_utf16_lossy(&buf[..len]))
}

/// The names of the installed services that run `warden service-run`.
pub fn warden_services() -> io::Result<Vec<String>> {
    let key = open(SERVICES_KEY)?;
    let mut names = Vec::new();
    // A key name has at most 255 characters.
    let mut buf = vec![0u16; 256];
    for index in 0.. {
        let mut len = buf.len() as u32;
        // SAFETY: `buf` holds `len` characters; the other out-pointers are optional.
        let rc = unsafe {
            RegEnumKeyExW(
                key.0,
                index,
                buf.as_mut_ptr(),
                &raw mut len,
                ptr::null(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        match rc {
            ERROR_NO_MORE_ITEMS => break,
            // Longer than a service name can be: not a service of ours.
            ERROR_MORE_DATA => continue,
            other => check(other)?,
        }
        let name = String::from_utf16_lossy(&buf[..len as usize]);
        if string_value(&key, &name, "ImagePath")
            .is_some_and(|cmd| super::scm::config_of_command_line(&cmd).is_some())
        {
            names.push(name);
        }
    }
    Ok(names)
}

/// Delete the key `subkey` of `HKEY_LOCAL_MACHINE` (it has no subkeys); `false` when it
/// did not exist.
pub fn delete_key(subkey: &str) -> io::Result<bool> {
    let name = wide(subkey);
    // SAFETY: a NUL-terminated name.
    match unsafe { RegDeleteKeyW(HKEY_LOCAL_MACHINE, name.as_ptr()) } {
        ERROR_SUCCESS => Ok(true),
        ERROR_FILE_NOT_FOUND => Ok(false),
        other => Err(io::Error::from_raw_os_error(other as i32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_services_key_can_be_listed_and_a_missing_key_is_not_an_error() {
        // Every test prefix and Windows has services; none of them is named like this.
        let names = warden_services().expect("list the services");
        assert!(!names.iter().any(|n| n == "warden-no-such-service"));
        assert!(!delete_key(r"SOFTWARE\warden-test-no-such-key").expect("delete"));
    }
}
