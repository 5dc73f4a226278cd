//! The transports of the control API: a Unix socket ([`unix`]), TCP ([`tcp`]) and a Windows
//! named pipe (`pipe`), each a listener behind the one [`Accept`] trait, served by the one
//! [`accept_loop`]. Each accepted connection comes with its [`Peer`]: what the transport
//! knows about who is on the other end (checked by the OS, refused, or to be checked by its
//! bearer token). The HTTP on top is [`super::server`]'s business.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::config::Secret;

mod admission;
#[cfg(windows)]
pub mod pipe;
pub mod tcp;
#[cfg(unix)]
pub mod unix;

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("another warden is listening on {}", path.display())]
    AlreadyListening { path: PathBuf },
    #[error("{} exists and is not a socket; remove it or choose another state dir", path.display())]
    NotASocket { path: PathBuf },
    #[error("the API token is empty")]
    EmptyToken,
    #[error("{op} {what}")]
    Io {
        op: &'static str,
        what: String,
        #[source]
        source: io::Error,
    },
}

pub use admission::{Admission, Full, MAX_SERVING, MAX_WAITING, Serving, Waiting};

/// Connections served at once per listener (the serving pool of [`Admission`]).
pub const MAX_CONNECTIONS: usize = MAX_SERVING;
/// Connection tasks per listener at most: both pools and those being answered and closed
/// (an evicted or refused connection is told why before it goes, within a few seconds).
/// A last resort against a burst faster than that: one more is closed at once.
const MAX_TASKS: usize = MAX_WAITING + MAX_SERVING + 2048;

/// Who is on the other end of a connection, as far as its transport can tell.
#[derive(Clone)]
pub enum Peer {
    /// The OS vouched for it: warden's own user or root (Unix socket), or an account the
    /// pipe's DACL admits.
    Trusted,
    /// The OS says it is another user: it gets 403, whatever it asks.
    Refused,
    /// Anyone who can reach the port: each request must carry this bearer token.
    Bearer(Arc<Secret>),
}

/// A listener of any transport: [`accept_loop`] serves what it accepts.
pub trait Accept: Send + 'static {
    type Conn: Send + 'static;
    /// The next connection and its peer. Cancel-safe: no connection is lost when the future
    /// is dropped.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Conn, Peer)>> + Send;
}

/// Accept connections until the task is aborted; each one is served by `serve_one` on a task
/// of its own, with its place in the waiting pool of the listener's [`Admission`]. An error
/// of one connection concerns that client only (it hung up, sent garbage) and is dropped.
pub async fn accept_loop<L, F, Fut, E>(mut listener: L, mut serve_one: F)
where
    L: Accept,
    F: FnMut(L::Conn, Peer, Waiting) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
{
    let admission = Admission::new();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((conn, peer)) => {
                    if conns.len() < MAX_TASKS {
                        let served = serve_one(conn, peer, admission.arrive());
                        conns.spawn(async move {
                            let _ = served.await;
                        });
                    }
                }
                Err(e) => accept_failed(&e, &admission).await,
            },
            Some(_) = conns.join_next() => {}
        }
    }
}

/// After a failed `accept`: an error of that one connection is skipped at once. Any other
/// (out of file descriptors or handles) has no event that tells when it is over: the oldest
/// connection still waiting for its request is evicted to free one, or, if none waits,
/// the loop waits a little before accepting again rather than spin.
async fn accept_failed(e: &io::Error, admission: &Admission) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) {
        return;
    }
    let pause = if admission.evict_oldest() { 10 } else { 100 };
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

/// Compare two secrets in time that depends only on their lengths: the bytes are xor-folded
/// without an early exit; a length mismatch fails after the same loop.
pub fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    let same_len = expected.len() == given.len();
    let mut diff = 0u8;
    for (i, &e) in expected.iter().enumerate() {
        // With a length mismatch, compare against `e` itself: same work, result ignored.
        let g = if same_len { given[i] } else { e };
        diff |= std::hint::black_box(e ^ g);
    }
    // `&`, not `&&`: no branch on the outcome of the loop.
    #[allow(clippy::needless_bitwise_bool)]
    let equal = same_len & (diff == 0);
    equal
}

/// Whether an `Authorization` header value carries `token`: `Bearer <token>`, the scheme in
/// any case and followed by one or more spaces (RFC 9110, 11.1 and 11.4).
pub fn bearer_matches(authorization: Option<&[u8]>, token: &Secret) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let Some((scheme, rest)) = value.split_at_checked(6) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return false;
    }
    let given = rest.trim_ascii_start();
    constant_time_eq(token.0.as_bytes(), given)
}

/// Whether a connecting peer may use the Unix socket: warden's own uid, or root.
pub fn peer_allowed(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == own_uid || peer_uid == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_secrets() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"x3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"s3cret", b"s3crets"));
        assert!(!constant_time_eq(b"s3cret", b""));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let token = Secret("tok".into());
        for ok in [
            "Bearer tok",
            "bearer tok",
            "BEARER tok",
            "bEaReR tok",
            "Bearer   tok",
        ] {
            assert!(bearer_matches(Some(ok.as_bytes()), &token), "{ok:?}");
        }
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Bearertok",
            "Bearer tok2",
            "Basic tok",
            "tok",
            "Bearer\ttok",
            "Bearer to",
            "XBearer tok",
        ] {
            assert!(!bearer_matches(Some(bad.as_bytes()), &token), "{bad:?}");
        }
        assert!(!bearer_matches(None, &token));
    }

    #[test]
    fn peer_must_be_warden_or_root() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000));
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(1001, 1000));
        assert!(!peer_allowed(1000, 0));
    }
}
