//! The API on TCP (`[warden] api`): anyone who can reach the port may connect, so every
//! connection is a [`Peer::Bearer`] that must show the token.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

use super::{Accept, Peer, ServeError};
use crate::config::Secret;

/// A TCP listener whose peers must carry `token`.
pub struct Listener {
    listener: TcpListener,
    token: Arc<Secret>,
}

/// Listen on `addr`; returns the listener and its address (with the port the OS chose for
/// port 0).
pub async fn bind(addr: SocketAddr, token: Secret) -> Result<(Listener, SocketAddr), ServeError> {
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
    let listener = TcpListener::bind(addr)
        .await
        .map_err(io_err("cannot listen on"))?;
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
