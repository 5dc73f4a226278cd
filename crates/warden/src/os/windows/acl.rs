//! File ACLs for the account a service runs as: `warden install --user ACCOUNT` grants it
//! read access to the config and modify access to the log and state folders, so a service
//! that does not run as `LocalSystem` can still write its logs.
//!
//! An entry is merged into the existing DACL (`SetEntriesInAclW` with `GRANT_ACCESS` keeps
//! the canonical order and the inherited entries).

use std::io;
use std::path::Path;
use std::ptr;

use windows_sys::Win32::Foundation::{ERROR_INSUFFICIENT_BUFFER, ERROR_SUCCESS, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSidToSidW, EXPLICIT_ACCESS_W, GRANT_ACCESS,
    GetNamedSecurityInfoW, NO_MULTIPLE_TRUSTEE, SE_FILE_OBJECT, SetEntriesInAclW,
    SetNamedSecurityInfoW, TRUSTEE_IS_SID, TRUSTEE_IS_UNKNOWN, TRUSTEE_W,
};
use windows_sys::Win32::Security::{
    ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorControl, GetSecurityDescriptorDacl,
    LookupAccountNameW, NO_INHERITANCE, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
    PSID, SE_DACL_PROTECTED, SID_NAME_USE, SUB_CONTAINERS_AND_OBJECTS_INHERIT, SidTypeUnknown,
    UNPROTECTED_DACL_SECURITY_INFORMATION,
};
use windows_sys::Win32::Storage::FileSystem::{
    DELETE, FILE_GENERIC_EXECUTE, FILE_GENERIC_READ, FILE_GENERIC_WRITE,
};

use super::eventlog::wide;

/// What an account may do with a file or folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and execute (the config).
    Read,
    /// Read, write, execute, delete (the log and state folders: rotation renames and
    /// deletes files).
    Modify,
}

impl Access {
    pub fn mask(self) -> u32 {
        match self {
            Access::Read => FILE_GENERIC_READ | FILE_GENERIC_EXECUTE,
            Access::Modify => {
                FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE | DELETE
            }
        }
    }
}

#[cfg(test)]
/// The allow entry [`grant`] adds, as SDDL: `(A;OICI;0x1301bf;;;S-1-5-19)` for a folder
/// (inherited by what is created inside), `(A;;0x1200a9;;;SID)` for a file.
pub fn ace_sddl(sid: &str, access: Access, folder: bool) -> String {
    format!(
        "(A;{};{:#x};;;{sid})",
        if folder { "OICI" } else { "" },
        access.mask()
    )
}

/// A security identifier, in its binary form.
#[derive(Clone, PartialEq, Eq)]
pub struct Sid(Vec<u8>);

impl std::fmt::Debug for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_string_sid() {
            Ok(s) => write!(f, "Sid({s})"),
            Err(_) => write!(f, "Sid(?)"),
        }
    }
}

/// Memory Windows allocated with `LocalAlloc`, freed on drop.
struct Local<T>(*mut T);

impl<T> Drop for Local<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by the API that returned it, freed once.
            unsafe { LocalFree(self.0.cast()) };
        }
    }
}

impl Sid {
    /// Parse `S-1-5-19`.
    pub fn from_string(s: &str) -> io::Result<Sid> {
        let text = wide(s);
        let mut psid: PSID = ptr::null_mut();
        // SAFETY: NUL-terminated string; out-pointer to a local.
        if unsafe { ConvertStringSidToSidW(text.as_ptr(), &raw mut psid) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let owned = Local(psid);
        // SAFETY: a valid SID allocated by the call above.
        let len = unsafe { windows_sys::Win32::Security::GetLengthSid(owned.0) } as usize;
        // SAFETY: `len` bytes of the SID.
        let bytes = unsafe { std::slice::from_raw_parts(owned.0.cast::<u8>(), len) };
        Ok(Sid(bytes.to_vec()))
    }

    /// Look an account name up (`NT SERVICE\sync`, `DOMAIN\user`).
    pub fn lookup(account: &str) -> io::Result<Sid> {
        let name = wide(account);
        let mut sid_len = 0u32;
        let mut dom_len = 0u32;
        let mut kind: SID_NAME_USE = SidTypeUnknown;
        // SAFETY: size query: null buffers with zero lengths.
        unsafe {
            LookupAccountNameW(
                ptr::null(),
                name.as_ptr(),
                ptr::null_mut(),
                &raw mut sid_len,
                ptr::null_mut(),
                &raw mut dom_len,
                &raw mut kind,
            )
        };
        let err = io::Error::last_os_error();
        if sid_len == 0 || err.raw_os_error() != Some(ERROR_INSUFFICIENT_BUFFER as i32) {
            return Err(err);
        }
        let mut sid = vec![0u8; sid_len as usize];
        let mut dom = vec![0u16; dom_len.max(1) as usize];
        // SAFETY: buffers of the sizes given.
        let ok = unsafe {
            LookupAccountNameW(
                ptr::null(),
                name.as_ptr(),
                sid.as_mut_ptr().cast(),
                &raw mut sid_len,
                dom.as_mut_ptr(),
                &raw mut dom_len,
                &raw mut kind,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Sid(sid))
    }

    pub fn as_psid(&self) -> PSID {
        self.0.as_ptr().cast_mut().cast()
    }

    /// `S-1-5-19`.
    pub fn to_string_sid(&self) -> io::Result<String> {
        let mut out: *mut u16 = ptr::null_mut();
        // SAFETY: a valid SID; out-pointer to a local, freed by `Local`.
        if unsafe { ConvertSidToStringSidW(self.as_psid(), &raw mut out) } == 0 {
            return Err(io::Error::last_os_error());
        }
        let owned = Local(out);
        Ok(from_wide_ptr(owned.0))
    }
}

fn from_wide_ptr(p: *const u16) -> String {
    let mut len = 0;
    // SAFETY: a NUL-terminated string returned by Windows.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` valid u16s.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The DACL of the file or folder `name` (NUL-terminated), and the security descriptor that
/// owns it (the DACL points into it: keep the descriptor while using the DACL).
fn dacl_of(name: &[u16]) -> io::Result<(*mut ACL, Local<core::ffi::c_void>)> {
    let mut old: *mut ACL = ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: NUL-terminated path; out-pointers to locals; `sd` owns `old`.
    let code = unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            &raw mut old,
            ptr::null_mut(),
            &raw mut sd,
        )
    };
    if code != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(code as i32));
    }
    Ok((old, Local(sd)))
}

/// Add an allow entry for `sid` with `access` to the DACL of `path` (a folder's entry is
/// inherited by everything created inside it).
pub fn grant(path: &Path, sid: &Sid, access: Access) -> io::Result<()> {
    let folder = path.is_dir();
    let name = wide(path);
    let (old, _sd) = dacl_of(&name)?;
    let new = merged(old, sid, access, folder)?;
    // SAFETY: a valid ACL built above.
    let code = unsafe {
        SetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            new.0,
            ptr::null(),
        )
    };
    if code != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(code as i32));
    }
    Ok(())
}

/// `old` (may be null: no DACL) with an allow entry for `sid` merged in.
fn merged(old: *const ACL, sid: &Sid, access: Access, folder: bool) -> io::Result<Local<ACL>> {
    let entry = EXPLICIT_ACCESS_W {
        grfAccessPermissions: access.mask(),
        grfAccessMode: GRANT_ACCESS,
        grfInheritance: if folder {
            SUB_CONTAINERS_AND_OBJECTS_INHERIT
        } else {
            NO_INHERITANCE
        },
        Trustee: TRUSTEE_W {
            pMultipleTrustee: ptr::null_mut(),
            MultipleTrusteeOperation: NO_MULTIPLE_TRUSTEE,
            TrusteeForm: TRUSTEE_IS_SID,
            TrusteeType: TRUSTEE_IS_UNKNOWN,
            ptstrName: sid.as_psid().cast(),
        },
    };
    let mut new: *mut ACL = ptr::null_mut();
    // SAFETY: one entry whose SID outlives the call; `old` may be null.
    let code = unsafe { SetEntriesInAclW(1, &raw const entry, old, &raw mut new) };
    if code != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(code as i32));
    }
    Ok(Local(new))
}

/// The DACL of a file that holds secrets (the quick form's config with `--env`): SYSTEM and
/// Administrators only, not inherited from its folder (`%ProgramData%` lets every user read).
/// `grant` adds the service's account to it.
pub const PRIVATE_SDDL: &str = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";

/// Set the DACL of `path` from SDDL (`D:P...` protects it from inheritance).
pub fn set_dacl_sddl(path: &Path, sddl: &str) -> io::Result<()> {
    use windows_sys::Win32::Security::Authorization::{
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    };
    let text = wide(sddl);
    let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: NUL-terminated SDDL; out-pointer freed by `Local`.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            text.as_ptr(),
            SDDL_REVISION_1,
            &raw mut sd,
            ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let sd = Local(sd);
    set_dacl_of(path, sd.0)
}

/// Give `to` the DACL of `from`, its protection from inheritance included: a file that
/// replaces another (`warden set` writes a new file and renames it) keeps who may read it.
pub fn copy_dacl(from: &Path, to: &Path) -> io::Result<()> {
    let (_, sd) = dacl_of(&wide(from))?;
    set_dacl_of(to, sd.0)
}

/// Set the DACL (and its protection) of `sd` on `path`.
fn set_dacl_of(path: &Path, sd: PSECURITY_DESCRIPTOR) -> io::Result<()> {
    let mut present = 0;
    let mut defaulted = 0;
    let mut dacl: *mut ACL = ptr::null_mut();
    let mut control = 0u16;
    let mut revision = 0u32;
    // SAFETY: a valid security descriptor; out-pointers to locals (the DACL points into it).
    let ok = unsafe {
        GetSecurityDescriptorDacl(sd, &raw mut present, &raw mut dacl, &raw mut defaulted) != 0
            && GetSecurityDescriptorControl(sd, &raw mut control, &raw mut revision) != 0
    };
    if !ok {
        return Err(io::Error::last_os_error());
    }
    let protection = if control & SE_DACL_PROTECTED != 0 {
        PROTECTED_DACL_SECURITY_INFORMATION
    } else {
        UNPROTECTED_DACL_SECURITY_INFORMATION
    };
    let name = wide(path);
    // SAFETY: a NUL-terminated path and a DACL that lives in `sd` for the call.
    let code = unsafe {
        SetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | protection,
            ptr::null_mut(),
            ptr::null_mut(),
            dacl,
            ptr::null(),
        )
    };
    if code != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(code as i32));
    }
    Ok(())
}

#[cfg(test)]
/// The DACL of `path` as SDDL (`D:...`), to check what [`grant`] did.
pub fn dacl_sddl(path: &Path) -> io::Result<String> {
    use windows_sys::Win32::Security::Authorization::{
        ConvertSecurityDescriptorToStringSecurityDescriptorW, SDDL_REVISION_1,
    };
    let name = wide(path);
    let (_, sd) = dacl_of(&name)?;
    let mut out: *mut u16 = ptr::null_mut();
    // SAFETY: a valid security descriptor; out-pointer freed by `Local`.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd.0,
            SDDL_REVISION_1,
            DACL_SECURITY_INFORMATION,
            &raw mut out,
            ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let out = Local(out);
    Ok(from_wide_ptr(out.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use windows_sys::Win32::Security::Authorization::SDDL_REVISION_1;

    #[test]
    fn ace_sddl_of_a_folder_is_inherited_modify() {
        assert_eq!(
            ace_sddl("S-1-5-19", Access::Modify, true),
            "(A;OICI;0x1301bf;;;S-1-5-19)"
        );
        assert_eq!(
            ace_sddl("S-1-5-20", Access::Read, false),
            "(A;;0x1200a9;;;S-1-5-20)"
        );
    }

    #[test]
    fn the_ace_we_build_is_valid_sddl() {
        use windows_sys::Win32::Security::Authorization::ConvertStringSecurityDescriptorToSecurityDescriptorW;
        for (access, folder) in [(Access::Modify, true), (Access::Read, false)] {
            let sddl = format!("D:{}", ace_sddl("S-1-5-19", access, folder));
            let text = wide(&sddl);
            let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
            // SAFETY: NUL-terminated SDDL; out-pointer freed by `Local`.
            let ok = unsafe {
                ConvertStringSecurityDescriptorToSecurityDescriptorW(
                    text.as_ptr(),
                    SDDL_REVISION_1,
                    &raw mut sd,
                    ptr::null_mut(),
                )
            };
            assert_ne!(ok, 0, "{sddl}: {}", io::Error::last_os_error());
            drop(Local(sd));
        }
    }

    #[test]
    fn well_known_sids_round_trip() {
        for s in ["S-1-5-18", "S-1-5-19", "S-1-5-20"] {
            let sid = Sid::from_string(s).expect("parse");
            assert_eq!(sid.to_string_sid().expect("format"), s);
        }
    }

    /// The DACL of an SDDL string with `sid` merged in, as SDDL again.
    fn merge_sddl(before: &str, sid: &str, access: Access, folder: bool) -> String {
        use windows_sys::Win32::Security::Authorization::{
            ConvertSecurityDescriptorToStringSecurityDescriptorW,
            ConvertStringSecurityDescriptorToSecurityDescriptorW,
        };
        use windows_sys::Win32::Security::{
            GetSecurityDescriptorDacl, InitializeSecurityDescriptor, SECURITY_DESCRIPTOR,
            SetSecurityDescriptorDacl,
        };
        let text = wide(before);
        let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: NUL-terminated SDDL; out-pointer freed by `Local`.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &raw mut sd,
                ptr::null_mut(),
            )
        };
        assert_ne!(ok, 0, "{before}");
        let sd = Local(sd);
        let (mut present, mut defaulted) = (0, 0);
        let mut old: *mut ACL = ptr::null_mut();
        // SAFETY: a valid descriptor; out-pointers to locals.
        let ok = unsafe {
            GetSecurityDescriptorDacl(sd.0, &raw mut present, &raw mut old, &raw mut defaulted)
        };
        assert_ne!(ok, 0);
        let sid = Sid::from_string(sid).expect("sid");
        let new = merged(old, &sid, access, folder).expect("merge");
        // SAFETY: a zeroed SECURITY_DESCRIPTOR is the buffer InitializeSecurityDescriptor fills.
        let mut abs: SECURITY_DESCRIPTOR = unsafe { std::mem::zeroed() };
        let psd: PSECURITY_DESCRIPTOR = (&raw mut abs).cast();
        // SAFETY: `abs` outlives its uses; the DACL `new` too.
        unsafe {
            assert_ne!(InitializeSecurityDescriptor(psd, 1), 0);
            assert_ne!(SetSecurityDescriptorDacl(psd, 1, new.0, 0), 0);
        }
        let mut out: *mut u16 = ptr::null_mut();
        // SAFETY: a valid descriptor; out-pointer freed by `Local`.
        let ok = unsafe {
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                psd,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &raw mut out,
                ptr::null_mut(),
            )
        };
        assert_ne!(ok, 0);
        let out = Local(out);
        from_wide_ptr(out.0)
    }

    #[test]
    fn the_merged_dacl_keeps_the_old_entries_and_adds_ours() {
        // SDDL abbreviates SYSTEM as SY, LocalService as LS, NetworkService as NS. The new
        // explicit entry goes first (what Wine does; both orders are canonical).
        let aces = |sddl: &str| {
            let mut v: Vec<String> = sddl
                .trim_start_matches("D:")
                .split_inclusive(')')
                .map(str::to_owned)
                .collect();
            v.sort();
            v
        };
        let got = merge_sddl("D:(A;OICI;FA;;;SY)", "S-1-5-19", Access::Modify, true);
        assert_eq!(
            aces(&got),
            ["(A;OICI;0x1301bf;;;LS)", "(A;OICI;FA;;;SY)"],
            "{got}"
        );
        let got = merge_sddl("D:(A;;FA;;;SY)", "S-1-5-20", Access::Read, false);
        assert_eq!(aces(&got), ["(A;;0x1200a9;;;NS)", "(A;;FA;;;SY)"], "{got}");
    }

    #[test]
    fn grant_on_a_real_folder_succeeds() {
        // Windows stores the entry; Wine accepts the call but keeps its synthesized DACL
        // (checked: the read-back lacks it), so only success is asserted here; the entry
        // itself is checked above.
        let dir = tempfile::tempdir().expect("tempdir");
        let sid = Sid::from_string("S-1-5-19").expect("sid");
        grant(dir.path(), &sid, Access::Modify).expect("grant");
        assert!(dacl_sddl(dir.path()).expect("read back").starts_with("D:"));
    }

    #[test]
    fn a_private_file_keeps_its_dacl_when_another_file_replaces_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let secret = tmp.path().join("warden.toml");
        let next = tmp.path().join("warden.toml.partial");
        std::fs::write(&secret, "x").expect("write");
        std::fs::write(&next, "y").expect("write");
        set_dacl_sddl(&secret, PRIVATE_SDDL).expect("private");
        copy_dacl(&secret, &next).expect("copy");
        // Wine accepts ACLs without applying them; where they are applied (Windows), the
        // copy reads back as the original.
        if let (Ok(a), Ok(b)) = (dacl_sddl(&secret), dacl_sddl(&next)) {
            assert_eq!(a, b);
        }
        assert!(set_dacl_sddl(&secret, "not sddl").is_err());
    }
}
