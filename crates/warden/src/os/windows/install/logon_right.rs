//! `--user DOMAIN\user`: a user account can run a service only with the "log on as a
//! service" right (`SeServiceLogonRight`); without it the SCM refuses to start the service
//! (error 1069). `services.msc` grants it when an account is entered there; `sc create`
//! does not, and neither does `CreateService`. So install checks the account's rights
//! (`LsaEnumerateAccountRights`) and adds this one when it is missing
//! (`LsaAddAccountRights`), and says so.
//!
//! [`ensure`] is the decision, over the [`Lsa`] seam: unit-tested with a recording fake;
//! [`Policy`] is the real local security policy.

use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::NTSTATUS;
use windows_sys::Win32::Security::Authentication::Identity::{
    LSA_HANDLE, LSA_OBJECT_ATTRIBUTES, LSA_UNICODE_STRING, LsaAddAccountRights, LsaClose,
    LsaEnumerateAccountRights, LsaFreeMemory, LsaNtStatusToWinError, LsaOpenPolicy,
    POLICY_CREATE_ACCOUNT, POLICY_LOOKUP_NAMES,
};

use super::super::acl::Sid;

/// The right a service account needs.
pub const RIGHT: &str = "SeServiceLogonRight";

/// `STATUS_OBJECT_NAME_NOT_FOUND`: the account has no rights at all (no LSA account yet).
const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC000_0034_u32 as NTSTATUS;

/// The account rights of the local security policy, as [`ensure`] uses them.
pub trait Lsa {
    /// The rights the account holds (empty when it has none).
    fn rights(&self, sid: &Sid) -> io::Result<Vec<String>>;
    /// Give the account `right`.
    fn add_right(&self, sid: &Sid, right: &str) -> io::Result<()>;
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The account had the right already.
    Had,
    /// The right was added.
    Granted,
}

/// Give the account [`RIGHT`] unless it has it.
pub fn ensure(lsa: &dyn Lsa, sid: &Sid) -> io::Result<Outcome> {
    if lsa
        .rights(sid)?
        .iter()
        .any(|r| r.eq_ignore_ascii_case(RIGHT))
    {
        return Ok(Outcome::Had);
    }
    lsa.add_right(sid, RIGHT)?;
    Ok(Outcome::Granted)
}

fn check(status: NTSTATUS) -> io::Result<()> {
    if status == 0 {
        Ok(())
    } else {
        // SAFETY: a plain conversion of a status code.
        let code = unsafe { LsaNtStatusToWinError(status) };
        Err(io::Error::from_raw_os_error(code as i32))
    }
}

/// The local security policy, opened to look up and add account rights; closed on drop.
pub struct Policy(LSA_HANDLE);

impl Policy {
    /// Open the local policy (needs an elevated prompt, as install does).
    pub fn open() -> io::Result<Policy> {
        // SAFETY: all-zero object attributes are what LsaOpenPolicy expects (reserved).
        let mut attrs: LSA_OBJECT_ATTRIBUTES = unsafe { std::mem::zeroed() };
        attrs.Length = std::mem::size_of::<LSA_OBJECT_ATTRIBUTES>() as u32;
        let mut handle: LSA_HANDLE = 0;
        // SAFETY: NULL system name = this computer; out-pointer to a local.
        check(unsafe {
            LsaOpenPolicy(
                ptr::null(),
                &raw const attrs,
                (POLICY_LOOKUP_NAMES | POLICY_CREATE_ACCOUNT) as u32,
                &raw mut handle,
            )
        })?;
        Ok(Policy(handle))
    }
}

impl Drop for Policy {
    fn drop(&mut self) {
        // SAFETY: a handle from LsaOpenPolicy, closed once.
        unsafe { LsaClose(self.0) };
    }
}

impl Lsa for Policy {
    fn rights(&self, sid: &Sid) -> io::Result<Vec<String>> {
        let mut list: *mut LSA_UNICODE_STRING = ptr::null_mut();
        let mut count = 0u32;
        // SAFETY: a valid policy handle and SID; out-pointers to locals.
        let status = unsafe {
            LsaEnumerateAccountRights(self.0, sid.as_psid(), &raw mut list, &raw mut count)
        };
        if status == STATUS_OBJECT_NAME_NOT_FOUND {
            return Ok(Vec::new());
        }
        check(status)?;
        let mut out = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            // SAFETY: the call returned `count` strings at `list`.
            let s = unsafe { &*list.add(i) };
            let len = usize::from(s.Length / 2);
            // SAFETY: `Buffer` holds `Length` bytes.
            let chars = unsafe { std::slice::from_raw_parts(s.Buffer, len) };
            out.push(String::from_utf16_lossy(chars));
        }
        if !list.is_null() {
            // SAFETY: memory the LSA allocated, freed once.
            unsafe { LsaFreeMemory(list.cast()) };
        }
        Ok(out)
    }

    fn add_right(&self, sid: &Sid, right: &str) -> io::Result<()> {
        let mut text: Vec<u16> = right.encode_utf16().collect();
        let bytes = (text.len() * 2) as u16;
        let name = LSA_UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: text.as_mut_ptr(),
        };
        // SAFETY: a valid policy handle and SID; one string that outlives the call.
        check(unsafe { LsaAddAccountRights(self.0, sid.as_psid(), &raw const name, 1) })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Records what was asked; holds the rights it was given.
    struct Fake {
        rights: Vec<String>,
        calls: RefCell<Vec<String>>,
        fail_add: bool,
    }

    impl Lsa for Fake {
        fn rights(&self, sid: &Sid) -> io::Result<Vec<String>> {
            let who = sid.to_string_sid()?;
            self.calls.borrow_mut().push(format!("rights {who}"));
            Ok(self.rights.clone())
        }
        fn add_right(&self, sid: &Sid, right: &str) -> io::Result<()> {
            let who = sid.to_string_sid()?;
            self.calls.borrow_mut().push(format!("add {who} {right}"));
            if self.fail_add {
                Err(io::Error::from_raw_os_error(5))
            } else {
                Ok(())
            }
        }
    }

    fn fake(rights: &[&str], fail_add: bool) -> Fake {
        Fake {
            rights: rights.iter().map(|r| (*r).to_owned()).collect(),
            calls: RefCell::new(Vec::new()),
            fail_add,
        }
    }

    const USER: &str = "S-1-5-21-1-2-3-1001";

    #[test]
    fn a_missing_right_is_added_once() {
        let sid = Sid::from_string(USER).expect("sid");
        let lsa = fake(&["SeBatchLogonRight"], false);
        assert_eq!(ensure(&lsa, &sid).expect("ensure"), Outcome::Granted);
        assert_eq!(
            *lsa.calls.borrow(),
            [
                format!("rights {USER}"),
                format!("add {USER} SeServiceLogonRight")
            ]
        );
    }

    #[test]
    fn a_right_held_already_is_not_added_again() {
        let sid = Sid::from_string(USER).expect("sid");
        let lsa = fake(&["seservicelogonright"], false);
        assert_eq!(ensure(&lsa, &sid).expect("ensure"), Outcome::Had);
        assert_eq!(*lsa.calls.borrow(), [format!("rights {USER}")]);
    }

    #[test]
    fn a_refused_grant_is_an_error() {
        let sid = Sid::from_string(USER).expect("sid");
        let lsa = fake(&[], true);
        assert!(ensure(&lsa, &sid).is_err());
    }
}
