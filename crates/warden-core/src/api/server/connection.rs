//! HTTP/1.1 over one connection of any transport, with the limits that keep one client from
//! hurting the others.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::StatusCode;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::body::error;
use super::handlers::handle;
use super::{ApiContext, HEADER_TIMEOUT};
use crate::api::transport::Peer;

/// Serve one trusted connection (its peer was checked by the caller) until the client closes
/// it. Any transport fits: a Unix socket, a Windows named pipe, an in-memory duplex.
pub async fn serve_connection<I>(io: I, ctx: Arc<ApiContext>) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve(io, ctx, Peer::Trusted).await
}

/// Serve one connection of `peer` until the client closes it.
pub(super) async fn serve<I>(io: I, ctx: Arc<ApiContext>, peer: Peer) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let token = match peer {
        Peer::Refused => return serve_forbidden(io).await,
        Peer::Trusted => None,
        Peer::Bearer(token) => Some(token),
    };
    let svc = service_fn(move |req| {
        let (ctx, token) = (ctx.clone(), token.clone());
        async move { Ok::<_, Infallible>(handle(req, ctx, token.as_deref()).await) }
    });
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(io), svc)
        .await
}

/// Answer a connection whose peer may not use the API: 403 to its request, then close it.
/// (For transports whose peer check happens outside this module.)
pub async fn serve_forbidden<I>(io: I) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(|_req| async {
        let mut resp = error(
            StatusCode::FORBIDDEN,
            "only warden's own user or root may use this socket",
        );
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        Ok::<_, Infallible>(resp)
    });
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(io), svc)
        .await
}
