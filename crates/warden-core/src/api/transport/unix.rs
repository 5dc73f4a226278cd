//! The API's Unix socket (`<state_dir>/warden.sock`): mode 0600, a stale socket of a dead
//! warden replaced, a live one refused, and each peer's uid checked (warden's own or root).

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use super::{Accept, Peer, ServeError, peer_allowed};

/// The socket file we bound; removed on drop only if it is still ours.
pub struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl SocketFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the socket file, unless another one took its place.
    pub fn remove(&self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ServeError + 'a {
    move |source| ServeError::Io {
        op,
        what: path.display().to_string(),
        source,
    }
}

/// The listener of a Unix socket: each peer is [`Peer::Trusted`] or [`Peer::Refused`].
pub struct Listener {
    listener: UnixListener,
    own_uid: u32,
}

/// Bind `path`, replacing a dead warden's socket, and restrict it to mode 0600.
pub fn bind(path: &Path) -> Result<(Listener, SocketFile), ServeError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ServeError::NotASocket {
                path: path.to_owned(),
            });
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(ServeError::AlreadyListening {
                    path: path.to_owned(),
                });
            }
            // Nobody answers: a dead warden's socket.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)
                    .map_err(io_err("cannot remove the stale socket", path))?;
            }
            Err(e) => return Err(io_err("cannot check the existing socket", path)(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot inspect", path)(e)),
    }
    let listener = UnixListener::bind(path).map_err(io_err("cannot listen on", path))?;
    // Before the first accept: only warden's user may connect. (Connecting needs write
    // permission, so the moment between bind and chmod never lets others in with a
    // usual umask; the peer check covers the rest.)
    let secured = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::symlink_metadata(path));
    match secured {
        Ok(meta) => Ok((
            Listener {
                listener,
                own_uid: own_uid(),
            },
            SocketFile {
                path: path.to_owned(),
                id: (meta.dev(), meta.ino()),
            },
        )),
        Err(e) => {
            let _ = std::fs::remove_file(path);
            Err(io_err("cannot restrict the permissions of", path)(e))
        }
    }
}

/// The effective uid of this process.
pub fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

impl Accept for Listener {
    type Conn = UnixStream;

    async fn accept(&mut self) -> io::Result<(UnixStream, Peer)> {
        let (stream, _) = self.listener.accept().await?;
        let allowed = stream
            .peer_cred()
            .is_ok_and(|c| peer_allowed(c.uid(), self.own_uid));
        let peer = if allowed {
            Peer::Trusted
        } else {
            Peer::Refused
        };
        Ok((stream, peer))
    }
}
