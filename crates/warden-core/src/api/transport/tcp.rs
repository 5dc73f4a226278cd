//! The API on TCP (`[warden] api`): anyone who can reach the port may connect, so every
//! connection is a [`Peer::Bearer`] that must show the token.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::{Accept, Peer, ServeError};
use crate::config::Secret;

/// Connections the OS queues for warden to accept: a burst of clients waits there rather
/// than being refused (the usual default, 128, is quickly full).
const BACKLOG: u32 = 1024;

/// The OS's send buffer of each connection (it may double it): enough for every answer and
/// for a follow stream at full speed on loopback.
const SEND_BUFFER: u32 = 64 * 1024;

/// A TCP listener whose peers must carry `token`.
pub struct Listener {
    listener: TcpListener,
    token: Arc<Secret>,
}

/// Listen on `addr`; returns the listener and its address (with the port the OS chose for
/// port 0).
pub fn bind(addr: SocketAddr, token: Secret) -> Result<(Listener, SocketAddr), ServeError> {
    if token.0.is_empty() {
        return Err(ServeError::EmptyToken);
    }
    let io_err = |op| {
        move |source| ServeError::Io {
            op,
            what: addr.to_string(),
            source,
        }
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io_err("cannot create a socket for"))?;
    // As a plain bind does on Unix: a restarted warden gets its port back at once.
    #[cfg(unix)]
    socket
        .set_reuseaddr(true)
        .map_err(io_err("cannot set up"))?;
    // Accepted connections inherit it: what the OS buffers for a client that does not read
    // (a stalled log follower) stays small; warden's own buffers are bounded already.
    socket
        .set_send_buffer_size(SEND_BUFFER)
        .map_err(io_err("cannot set up"))?;
    socket.bind(addr).map_err(io_err("cannot listen on"))?;
    let listener = socket.listen(BACKLOG).map_err(io_err("cannot listen on"))?;
    let local = listener
        .local_addr()
        .map_err(io_err("cannot get the address of"))?;
    Ok((
        Listener {
            listener,
            token: Arc::new(token),
        },
        local,
    ))
}

impl Accept for Listener {
    type Conn = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, Peer)> {
        let (stream, _) = self.listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, Peer::Bearer(self.token.clone())))
    }
}
