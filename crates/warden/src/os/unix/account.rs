//! Accounts from the user database (`getpwnam_r`, `getpwuid_r`): does `--user ACCOUNT`
//! exist, its ids for the folders install creates, and the name of the user running warden.

use std::ffi::{CStr, CString};

/// An account of the user database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The largest buffer tried for one entry of the user database.
const MAX_BUF: usize = 1 << 20;

/// Look up one entry by name (`Some(name)`) or by uid.
fn lookup(by: Result<&CStr, libc::uid_t>) -> Option<Account> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: an all-zero passwd is a valid value of a plain C struct.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` outlives the use of `pwd`.
        let rc = unsafe {
            match by {
                Ok(name) => libc::getpwnam_r(
                    name.as_ptr(),
                    &raw mut pwd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &raw mut found,
                ),
                Err(uid) => libc::getpwuid_r(
                    uid,
                    &raw mut pwd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &raw mut found,
                ),
            }
        };
        if rc == libc::ERANGE && buf.len() < MAX_BUF {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: getpwnam_r succeeded, so pw_name points at a C string inside `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned();
        return Some(Account {
            name,
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        });
    }
}

/// The account called `name`, if it exists.
pub fn by_name(name: &str) -> Option<Account> {
    let cname = CString::new(name).ok()?;
    lookup(Ok(&cname))
}

/// The account warden runs as (its effective uid).
pub fn current() -> Option<Account> {
    // SAFETY: geteuid cannot fail.
    lookup(Err(unsafe { libc::geteuid() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_exists_and_a_made_up_name_does_not() {
        let root = by_name("root").expect("root");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(by_name("no-such-user-for-warden-tests").is_none());
        assert!(by_name("nul\0inside").is_none());
        assert!(current().is_some());
    }
}
