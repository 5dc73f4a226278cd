//! HTTP/1.1 over one connection of any transport, with the limits that keep one client from
//! hurting the others:
//!
//! 1. warden reads the request head itself ([`head`](super::head)): within
//!    [`HEADER_TIMEOUT`], at most [`MAX_HEAD`] bytes, while the connection sits in its
//!    listener's waiting pool (where a newer connection may evict it);
//! 2. it answers what is wrong with it (400, 431, 408, 403 for another user, 401 without
//!    the token, 503 when full) itself, always with a JSON [`ErrorBody`];
//! 3. only then does the connection count as served, and the HTTP library gets it, the
//!    head already read put back in front. One request per connection: each answer says
//!    `Connection: close`, so that every request head passes step 1.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body::BodyKind;
use super::conn_io::ConnIo;
use super::handlers::handle;
use super::head::{Head, HeadError, MAX_HEAD, read_head};
use super::{ApiContext, HEADER_TIMEOUT};
use crate::api::transport::{Admission, MAX_SERVING, Peer, Waiting, bearer_matches};
use crate::proto::ErrorBody;

/// How long writing an answer of warden's own and closing may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// After such an answer, how long (and how many bytes) to read what the client still sends,
/// so that closing does not reset the connection before the client read the answer.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: u64 = 64 * 1024;

/// What the 401 says.
const UNAUTHORIZED: &str = "missing or wrong bearer token (Authorization: Bearer <token>)";
/// What the 403 says.
const FORBIDDEN: &str = "only warden's own user or root may use this socket";

/// Serve one trusted connection (its peer was checked by the caller) until the client closes
/// it. Any transport fits: a Unix socket, a Windows named pipe, an in-memory duplex.
pub async fn serve_connection<I>(io: I, ctx: Arc<ApiContext>) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve(io, ctx, Peer::Trusted, Admission::new().arrive()).await
}

/// Answer a connection whose peer may not use the API: 403 to its request, then close it.
/// (For transports whose peer check happens outside this module.)
pub async fn serve_forbidden<I>(mut io: I) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Some((head, _)) = request_head(&mut io, Admission::new().arrive()).await {
        let head_only = head.method == Method::HEAD;
        answer(
            &mut io,
            head_only,
            StatusCode::FORBIDDEN,
            FORBIDDEN,
            &[],
            Linger::Yes,
        )
        .await;
    }
    Ok(())
}

/// Read the request head, or answer why not and return `None`.
async fn request_head<I>(io: &mut I, mut waiting: Waiting) -> Option<(Head, Waiting)>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let read = tokio::select! {
        read = tokio::time::timeout(HEADER_TIMEOUT, read_head(&mut *io)) => read,
        () = waiting.evicted() => {
            let msg = "too many connections are waiting to send their request; try again";
            answer(io, false, StatusCode::SERVICE_UNAVAILABLE, msg, &[], Linger::No).await;
            return None;
        }
    };
    match read {
        Ok(Ok(head)) => Some((head, waiting)),
        Ok(Err(HeadError::Gone)) => None,
        Ok(Err(e)) => {
            answer(io, false, e.status(), &e.message(), &[], Linger::Yes).await;
            None
        }
        Err(_) => {
            let msg = format!(
                "the request head did not arrive within {}s",
                HEADER_TIMEOUT.as_secs()
            );
            answer(
                io,
                false,
                StatusCode::REQUEST_TIMEOUT,
                &msg,
                &[],
                Linger::No,
            )
            .await;
            None
        }
    }
}

/// Serve one connection of `peer`, which holds the place `waiting` in its listener's pools.
pub(super) async fn serve<I>(
    mut io: I,
    ctx: Arc<ApiContext>,
    peer: Peer,
    waiting: Waiting,
) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some((head, waiting)) = request_head(&mut io, waiting).await else {
        return Ok(());
    };
    let head_only = head.method == Method::HEAD;
    match &peer {
        Peer::Trusted => {}
        Peer::Refused => {
            answer(
                &mut io,
                head_only,
                StatusCode::FORBIDDEN,
                FORBIDDEN,
                &[],
                Linger::Yes,
            )
            .await;
            return Ok(());
        }
        Peer::Bearer(token) => {
            if !ctx.access.without_token(&head.path)
                && !bearer_matches(head.authorization.as_deref(), token)
            {
                let auth = [("www-authenticate", "Bearer")];
                answer(
                    &mut io,
                    head_only,
                    StatusCode::UNAUTHORIZED,
                    UNAUTHORIZED,
                    &auth,
                    Linger::Yes,
                )
                .await;
                return Ok(());
            }
        }
    }
    let Ok(serving) = waiting.admit() else {
        let msg = format!("warden serves {MAX_SERVING} connections already; try again");
        answer(
            &mut io,
            head_only,
            StatusCode::SERVICE_UNAVAILABLE,
            &msg,
            &[],
            Linger::Yes,
        )
        .await;
        return Ok(());
    };
    let io = ConnIo::new(head.bytes, io);
    let streaming = io.streaming_flag();
    let svc = service_fn(move |req| {
        let (ctx, streaming) = (ctx.clone(), streaming.clone());
        async move {
            let resp = handle(req, ctx).await;
            if matches!(resp.body().0, BodyKind::Stream(_)) {
                // A follow stream: its memory is bounded by its budget; a reader may pause.
                streaming.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Ok::<_, Infallible>(resp)
        }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD * 2)
        .keep_alive(false)
        .serve_connection(TokioIo::new(io), svc)
        .await;
    drop(serving);
    served
}

/// Answer with `status` and a JSON [`ErrorBody`] (its headers only with `head_only`), then
/// close the connection. Bounded in time: a client that does not read loses the answer.
async fn answer<I>(
    io: &mut I,
    head_only: bool,
    status: StatusCode,
    message: &str,
    extra: &[(&str, &str)],
    linger: Linger,
) where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let body = serde_json::to_vec(&ErrorBody::new(message)).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    for (name, value) in extra {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&body);
    }
    let sent = tokio::time::timeout(ANSWER_TIMEOUT, async {
        io.write_all(&bytes).await?;
        io.flush().await?;
        io.shutdown().await
    })
    .await;
    if matches!(sent, Ok(Ok(()))) && linger == Linger::Yes {
        let mut sink = tokio::io::sink();
        let mut rest = (&mut *io).take(LINGER_BYTES);
        let _ = tokio::time::timeout(LINGER, tokio::io::copy(&mut rest, &mut sink)).await;
    }
}

/// Whether the client may have sent more than was read (a body, the rest of a head too
/// large): then closing at once could reset the connection before the client read the
/// answer, so read on a little first. Not for a client that sent nothing or only part of a
/// head, all of it read: it is closed at once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Linger {
    Yes,
    No,
}
