//! The control API on a Windows named pipe: `\\.\pipe\warden-<id>`, created with the
//! first-instance flag (no other process can squat the name) and a DACL that admits only
//! SYSTEM, the Administrators and the account warden runs as.

use std::ffi::c_void;
use std::io;

use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
    TokenUser,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::{Accept, Peer, ServeError};

/// The SDDL of the pipe: protected DACL, full access for SYSTEM, Administrators and `user`.
pub fn pipe_sddl(user_sid: &str) -> String {
    format!("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;{user_sid})")
}

/// A security descriptor made from SDDL, freed on drop.
struct Descriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is a block of memory that is only read after creation.
unsafe impl Send for Descriptor {}
// SAFETY: as above.
unsafe impl Sync for Descriptor {}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW with LocalAlloc.
        unsafe {
            LocalFree(self.0.cast());
        }
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn descriptor(sddl: &str) -> io::Result<Descriptor> {
    let text = wide(sddl);
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `text` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor.
    let ok = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            text.as_ptr(),
            SDDL_REVISION_1,
            &raw mut sd,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Descriptor(sd))
}

/// The SID of the account this process runs as, as text (`S-1-5-...`).
pub fn current_user_sid() -> io::Result<String> {
    struct Token(HANDLE);
    impl Drop for Token {
        fn drop(&mut self) {
            // SAFETY: a handle we opened.
            unsafe {
                CloseHandle(self.0);
            }
        }
    }
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo handle of the current process; `token` receives a real handle.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let token = Token(token);
    let mut len = 0u32;
    // SAFETY: asks for the size only.
    unsafe { GetTokenInformation(token.0, TokenUser, std::ptr::null_mut(), 0, &raw mut len) };
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    // SAFETY: `buf` holds `len` bytes, 8-aligned for TOKEN_USER.
    if unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buf.as_mut_ptr().cast(),
            len,
            &raw mut len,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: GetTokenInformation filled a TOKEN_USER at the start of `buf`.
    let user = unsafe { &*buf.as_ptr().cast::<TOKEN_USER>() };
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: the SID lives in `buf`; `text` receives a LocalAlloc'd string.
    if unsafe { ConvertSidToStringSidW(user.User.Sid, &raw mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a NUL-terminated UTF-16 string from ConvertSidToStringSidW.
    let sid = unsafe {
        let mut n = 0;
        while *text.add(n) != 0 {
            n += 1;
        }
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, n));
        LocalFree(text.cast());
        s
    };
    Ok(sid)
}

fn create(name: &str, first: bool, sd: &Descriptor) -> io::Result<NamedPipeServer> {
    let mut attrs = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.0,
        bInheritHandle: 0,
    };
    let mut opts = ServerOptions::new();
    opts.first_pipe_instance(first).reject_remote_clients(true);
    // SAFETY: `attrs` and the descriptor it points to outlive the call.
    unsafe {
        opts.create_with_security_attributes_raw(
            name,
            std::ptr::from_mut(&mut attrs).cast::<c_void>(),
        )
    }
}

/// The pipe's name and the instance that waits for the next client. Its peers are
/// [`Peer::Trusted`]: the DACL let them in.
pub struct Listener {
    name: String,
    sd: Descriptor,
    server: NamedPipeServer,
}

impl Accept for Listener {
    type Conn = NamedPipeServer;

    /// A connected instance. A new instance takes the waiting one's place first, so a client
    /// always finds the name. If it cannot be created (out of handles), the error goes to
    /// the accept loop, which waits a little; the instance stays connected and is handed out
    /// on the next try.
    async fn accept(&mut self) -> io::Result<(NamedPipeServer, Peer)> {
        loop {
            let connected = self.server.connect().await;
            let next = create(&self.name, false, &self.sd)?;
            let client = std::mem::replace(&mut self.server, next);
            // An error: that client left before it was connected; wait for the next one.
            if connected.is_ok() {
                return Ok((client, Peer::Trusted));
            }
        }
    }
}

/// `ERROR_ACCESS_DENIED`: the name exists and is not ours.
const ERROR_ACCESS_DENIED: i32 = 5;
/// `ERROR_PIPE_BUSY`: every instance of the name is taken.
pub const ERROR_PIPE_BUSY: i32 = 231;

/// Whether an error of creating a pipe instance means another process owns the name.
fn name_taken(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(ERROR_ACCESS_DENIED | ERROR_PIPE_BUSY)
    )
}

/// Whether an error of opening a pipe (as a client) means every instance is busy, so
/// another one comes soon.
pub fn all_instances_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ERROR_PIPE_BUSY)
}

/// Create the first instance of `name` now, so a name in use is an error at once
/// ([`ServeError::AlreadyListening`]).
pub fn bind(name: &str) -> Result<Listener, ServeError> {
    let io_err = |source| ServeError::Io {
        op: "cannot create the pipe",
        what: name.to_owned(),
        source,
    };
    let sd = descriptor(&pipe_sddl(&current_user_sid().map_err(io_err)?)).map_err(io_err)?;
    let server = create(name, true, &sd).map_err(|e| {
        if name_taken(&e) {
            ServeError::AlreadyListening {
                path: std::path::PathBuf::from(name),
            }
        } else {
            io_err(e)
        }
    })?;
    Ok(Listener {
        name: name.to_owned(),
        sd,
        server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dacl_admits_system_admins_and_the_user_only() {
        let sddl = pipe_sddl("S-1-5-21-1-2-3-1001");
        assert_eq!(
            sddl,
            "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;S-1-5-21-1-2-3-1001)"
        );
        assert!(descriptor(&sddl).is_ok(), "Windows accepts the SDDL");
    }

    #[test]
    fn the_current_user_has_a_sid() {
        let sid = current_user_sid().expect("sid");
        assert!(sid.starts_with("S-1-"), "{sid}");
    }
}
