//! The user database: accounts and groups by name, and an account's supplementary groups.
//! Read in the parent (never between fork and exec: none of this is async-signal-safe).

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::process::Account;

/// The first buffer size for `getpwnam_r`/`getgrnam_r`; doubled on `ERANGE`.
const FIRST_BUFFER: usize = 1 << 10;
/// The largest buffer tried (a group with thousands of members needs a big one).
const MAX_BUFFER: usize = 1 << 22;
/// The most supplementary groups read (Linux's `NGROUPS_MAX` is 65536).
const MAX_GROUPS: usize = 1 << 16;

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn path_of(p: *const libc::c_char) -> PathBuf {
    if p.is_null() {
        return PathBuf::new();
    }
    // SAFETY: a NUL-terminated string inside the buffer the call filled.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    PathBuf::from(OsStr::from_bytes(bytes))
}

pub(crate) fn lookup_account(name: &str) -> io::Result<Option<Account>> {
    let c = c_name(name)?;
    lookup_r(|buf| {
        // SAFETY: all-zero is a valid passwd; the call fills it in.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: valid pointers, `buf` of its length.
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &raw mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut result,
            )
        };
        // The strings point into `buf`: copied out before it goes.
        let found = (rc == 0 && !result.is_null()).then(|| Account {
            name: name.to_owned(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home: path_of(pwd.pw_dir),
            shell: path_of(pwd.pw_shell),
        });
        (rc, found)
    })
}

pub(crate) fn lookup_group(name: &str) -> io::Result<Option<u32>> {
    let c = c_name(name)?;
    lookup_r(|buf| {
        // SAFETY: all-zero is a valid group; the call fills it in.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: valid pointers, `buf` of its length.
        let rc = unsafe {
            libc::getgrnam_r(
                c.as_ptr(),
                &raw mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut result,
            )
        };
        (rc, (rc == 0 && !result.is_null()).then_some(grp.gr_gid))
    })
}

/// Run a `get*nam_r` call with a buffer that doubles on `ERANGE` (up to a bound); `call`
/// returns the call's code and what it found. `Ok(None)`: no such entry.
fn lookup_r<T>(
    mut call: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, Option<T>),
) -> io::Result<Option<T>> {
    let mut size = FIRST_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        let (rc, found) = call(&mut buf);
        if rc == libc::ERANGE && size < MAX_BUFFER {
            size *= 2;
            continue;
        }
        // ENOENT, ESRCH, EBADF, EPERM all mean "not found" for some libc.
        return match rc {
            0 => Ok(found),
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => Ok(None),
            rc => Err(io::Error::from_raw_os_error(rc)),
        };
    }
}

/// The groups of account `name` whose primary group is `gid` (`gid` first), as
/// `initgroups` would set them.
pub(super) fn group_list(name: &str, gid: libc::gid_t) -> io::Result<Vec<libc::gid_t>> {
    let c = c_name(name)?;
    let mut count: libc::c_int = 64;
    loop {
        let mut groups: Vec<GroupId> = vec![0; count as usize];
        let asked = count;
        // SAFETY: `groups` holds `count` entries; the call writes at most that many and sets
        // `count` to how many there are.
        let rc = unsafe {
            libc::getgrouplist(
                c.as_ptr(),
                gid as GroupId,
                groups.as_mut_ptr(),
                &raw mut count,
            )
        };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return Ok(groups.into_iter().map(|g| g as libc::gid_t).collect());
        }
        // -1: the list was too small; `count` says how many are needed (glibc), or not
        // (macOS leaves it): grow.
        let next = if count > asked { count } else { asked * 2 };
        if next as usize > MAX_GROUPS {
            return Err(io::Error::other(format!(
                "user {name} is in more than {MAX_GROUPS} groups"
            )));
        }
        count = next;
    }
}

#[cfg(target_vendor = "apple")]
type GroupId = libc::c_int;
#[cfg(not(target_vendor = "apple"))]
type GroupId = libc::gid_t;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_nobody_are_found_and_a_made_up_name_is_not() {
        let root = lookup_account("root")
            .expect("lookup")
            .expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(!root.home.as_os_str().is_empty());
        assert_eq!(
            lookup_account("no-such-user-wardentest").expect("lookup"),
            None
        );
        assert_eq!(
            lookup_group("no-such-group-wardentest").expect("lookup"),
            None
        );
        let groups = group_list("root", 0).expect("groups");
        assert!(groups.contains(&0), "{groups:?}");
    }
}
