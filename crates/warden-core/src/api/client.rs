//! A small async client of the control API, for the CLI.
//!
//! ```no_run
//! # async fn demo() -> Result<(), warden_core::api::client::ClientError> {
//! use warden_core::api::client::Client;
//! let mut client = Client::connect(std::path::Path::new(".warden/warden.sock")).await?;
//! for s in client.status(&[]).await?.services {
//!     println!("{} {}", s.name, s.state.as_str());
//! }
//! # Ok(()) }
//! ```
//!
//! [`ClientError::NotRunning`] means nobody listens on the socket (the CLI exits with 3 and
//! hints `warden up -d`); [`ClientError::Api`] is an error answer of warden, with its status
//! code, its message and the whole JSON body.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;

use crate::config::Secret;
use crate::model::Stream;
use crate::proto::error::CONFIG_ERROR;
use crate::proto::{
    Action, ErrorBody, ErrorDetail, FollowItem, LogLineJson, LogsResponse, ReloadReport,
    RotateReport, ServiceStatus, ShutdownAnswer, StatusReport,
};

/// An error of a client call.
#[derive(Debug, thiserror::Error)]
// `Api` carries a whole service status (with its health figures): an error is rare, its size
// does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ClientError {
    /// No socket file, or nobody answers on it.
    #[error("warden is not running (nothing listens on {})", path.display())]
    NotRunning { path: PathBuf },
    #[error("cannot connect to {what}")]
    Connect {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The socket, or the process serving it, belongs to another user: its answers could be
    /// anyone's, so it is not asked anything.
    #[error(
        "refusing to use {}: it belongs to uid {owner}, neither you (uid {own}) nor root",
        path.display()
    )]
    Untrusted { path: PathBuf, owner: u32, own: u32 },
    #[error("the connection to warden failed")]
    Http(#[from] hyper::Error),
    /// warden answered with an error status.
    #[error("warden answered {status}: {}", body.error)]
    Api { status: u16, body: ErrorBody },
    /// `reload`: the config file has errors (each `FILE:LINE:COL: message`); nothing changed.
    #[error("the config has {} error(s); nothing was changed", .0.len())]
    Config(Vec<String>),
    #[error("unexpected answer from warden ({what})")]
    Decode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Clone)]
enum Target {
    #[cfg(unix)]
    Unix(PathBuf),
    #[cfg(windows)]
    Pipe(String),
    Tcp {
        addr: SocketAddr,
        token: Secret,
    },
}

/// A connection to warden's control API. Calls take `&mut self`: one request at a time.
pub struct Client {
    target: Target,
    sender: SendRequest<Empty<Bytes>>,
    conn: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

async fn handshake<I>(io: I) -> Result<(SendRequest<Empty<Bytes>>, JoinHandle<()>), ClientError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
    // The connection's errors reach the caller through `send_request`.
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, task))
}

/// Before trusting a Unix socket's answers: the socket file (not following a symlink) and
/// the process that listens on it must both be the current user's or root's. Otherwise
/// another user could have put a server of theirs in warden's place.
#[cfg(unix)]
#[allow(clippy::result_large_err)] // the same error type as every call of the client
fn trust_socket(path: &Path, stream: &tokio::net::UnixStream) -> Result<(), ClientError> {
    use std::os::unix::fs::MetadataExt;
    let own = crate::api::transport::unix::own_uid();
    let connect_err = |source| ClientError::Connect {
        what: path.display().to_string(),
        source,
    };
    let file_owner = std::fs::symlink_metadata(path).map_err(connect_err)?.uid();
    let server = stream.peer_cred().map_err(connect_err)?.uid();
    for owner in [file_owner, server] {
        if !crate::api::transport::peer_allowed(owner, own) {
            return Err(ClientError::Untrusted {
                path: path.to_owned(),
                owner,
                own,
            });
        }
    }
    Ok(())
}

impl Target {
    async fn open(&self) -> Result<(SendRequest<Empty<Bytes>>, JoinHandle<()>), ClientError> {
        match self {
            #[cfg(unix)]
            Target::Unix(path) => match tokio::net::UnixStream::connect(path).await {
                Ok(stream) => {
                    trust_socket(path, &stream)?;
                    handshake(stream).await
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    Err(ClientError::NotRunning { path: path.clone() })
                }
                Err(source) => Err(ClientError::Connect {
                    what: path.display().to_string(),
                    source,
                }),
            },
            #[cfg(windows)]
            Target::Pipe(name) => {
                let mut pause = std::time::Duration::from_millis(5);
                loop {
                    match tokio::net::windows::named_pipe::ClientOptions::new().open(name) {
                        Ok(pipe) => return handshake(pipe).await,
                        // ERROR_PIPE_BUSY: every instance is taken; another comes soon.
                        Err(e)
                            if crate::api::transport::pipe::all_instances_busy(&e)
                                && pause < std::time::Duration::from_secs(2) =>
                        {
                            tokio::time::sleep(pause).await;
                            pause *= 2;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            return Err(ClientError::NotRunning {
                                path: PathBuf::from(name),
                            });
                        }
                        Err(source) => {
                            return Err(ClientError::Connect {
                                what: name.clone(),
                                source,
                            });
                        }
                    }
                }
            }
            Target::Tcp { addr, .. } => match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    handshake(stream).await
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    Err(ClientError::NotRunning {
                        path: PathBuf::from(addr.to_string()),
                    })
                }
                Err(source) => Err(ClientError::Connect {
                    what: addr.to_string(),
                    source,
                }),
            },
        }
    }

    fn request(&self, method: Method, path_and_query: &str) -> Request<Empty<Bytes>> {
        let mut req = Request::new(Empty::new());
        *req.method_mut() = method;
        *req.uri_mut() = path_and_query.parse().unwrap_or_default();
        let headers = req.headers_mut();
        match self {
            #[cfg(unix)]
            Target::Unix(_) => {
                headers.insert(header::HOST, HeaderValue::from_static("warden"));
            }
            #[cfg(windows)]
            Target::Pipe(_) => {
                headers.insert(header::HOST, HeaderValue::from_static("warden"));
            }
            Target::Tcp { addr, token } => {
                if let Ok(host) = HeaderValue::from_str(&addr.to_string()) {
                    headers.insert(header::HOST, host);
                }
                if let Ok(auth) = HeaderValue::from_str(&format!("Bearer {}", token.0)) {
                    headers.insert(header::AUTHORIZATION, auth);
                }
            }
        }
        req
    }
}

impl Client {
    /// Connect to warden's Unix socket (`<state_dir>/warden.sock`).
    #[cfg(unix)]
    pub async fn connect(socket: &Path) -> Result<Client, ClientError> {
        Client::open(Target::Unix(socket.to_owned())).await
    }

    /// Connect to warden's named pipe (`\\.\pipe\warden-<id>`).
    #[cfg(windows)]
    pub async fn connect_pipe(name: &str) -> Result<Client, ClientError> {
        Client::open(Target::Pipe(name.to_owned())).await
    }

    /// Connect to warden's Unix socket (Unix only; use [`Client::connect_pipe`] on Windows).
    #[cfg(not(unix))]
    #[allow(clippy::unused_async)] // the same signature as on Unix
    pub async fn connect(socket: &Path) -> Result<Client, ClientError> {
        Err(ClientError::Connect {
            what: socket.display().to_string(),
            source: std::io::Error::from(std::io::ErrorKind::Unsupported),
        })
    }

    /// Connect to warden's TCP listener (`[warden] api`), sending `token` with each request.
    pub async fn connect_tcp(addr: SocketAddr, token: Secret) -> Result<Client, ClientError> {
        Client::open(Target::Tcp { addr, token }).await
    }

    async fn open(target: Target) -> Result<Client, ClientError> {
        let (sender, conn) = target.open().await?;
        Ok(Client {
            target,
            sender,
            conn,
        })
    }

    /// Send a request; reconnect once if the kept-alive connection was closed by warden.
    async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        if self.sender.is_closed() || self.sender.ready().await.is_err() {
            let (sender, conn) = self.target.open().await?;
            self.conn.abort();
            self.sender = sender;
            self.conn = conn;
            self.sender.ready().await?;
        }
        let resp = self
            .sender
            .send_request(self.target.request(method, path_and_query))
            .await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Send a request and decode a 2xx answer as `T`; anything else is [`ClientError::Api`].
    async fn call<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        what: &'static str,
    ) -> Result<T, ClientError> {
        let (status, body) = self.send(method, path).await?;
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode { what, source })
    }

    /// `GET /v1/status`, of every service or only of `names`.
    pub async fn status(&mut self, names: &[&str]) -> Result<StatusReport, ClientError> {
        let query: Vec<String> = names
            .iter()
            .map(|n| format!("name={}", encode(n)))
            .collect();
        let path = if query.is_empty() {
            "/v1/status".to_owned()
        } else {
            format!("/v1/status?{}", query.join("&"))
        };
        self.call(Method::GET, &path, "status").await
    }

    /// `GET /v1/status?until=up&timeout_ms=T`: the status once no service is on its way up any
    /// more (each is up, or its start ended otherwise), or after `timeout` (at most 1 h).
    pub async fn status_when_up(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<StatusReport, ClientError> {
        let path = format!("/v1/status?until=up&timeout_ms={}", timeout.as_millis());
        self.call(Method::GET, &path, "status").await
    }

    /// `GET /v1/services/{name}`.
    pub async fn service(&mut self, name: &str) -> Result<ServiceStatus, ClientError> {
        self.call(
            Method::GET,
            &format!("/v1/services/{}", encode(name)),
            "service status",
        )
        .await
    }

    /// `GET /v1/services/{name}/config`: its settings as written (no secret).
    pub async fn service_config(
        &mut self,
        name: &str,
    ) -> Result<crate::proto::config::ServiceConfigView, ClientError> {
        let path = format!("/v1/services/{}/config", encode(name));
        let (status, body) = self.send(Method::GET, &path).await?;
        if let Some(e) = config_errors(status, &body) {
            return Err(e);
        }
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode {
            what: "service config",
            source,
        })
    }

    /// Start, stop or restart `name`. With `wait`, returns the status once the action took
    /// effect; without, at once with the status before it.
    pub async fn act(
        &mut self,
        name: &str,
        action: Action,
        wait: bool,
    ) -> Result<ServiceStatus, ClientError> {
        let mut path = format!("/v1/services/{}/{}", encode(name), action.name());
        if !wait {
            path.push_str("?wait=false");
        }
        self.call(Method::POST, &path, "service status").await
    }

    /// The last `n` lines of `name`'s output (one stream or both), oldest first.
    pub async fn logs(
        &mut self,
        name: &str,
        n: usize,
        stream: Option<Stream>,
    ) -> Result<Vec<LogLineJson>, ClientError> {
        let path = logs_path(name, n, stream, false);
        let resp: LogsResponse = self.call(Method::GET, &path, "log lines").await?;
        Ok(resp.lines)
    }

    /// The last `n` lines, then every new line until the [`LogFollower`] is dropped. Uses a
    /// connection of its own, so this client stays usable.
    pub async fn follow_logs(
        &self,
        name: &str,
        n: usize,
        stream: Option<Stream>,
    ) -> Result<LogFollower, ClientError> {
        let (mut sender, conn) = self.target.open().await?;
        let req = self
            .target
            .request(Method::GET, &logs_path(name, n, stream, true));
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                conn.abort();
                return Err(e.into());
            }
        };
        let status = resp.status();
        if !status.is_success() {
            let body = resp.into_body().collect().await?.to_bytes();
            conn.abort();
            return Err(api_error(status, &body));
        }
        Ok(LogFollower {
            body: resp.into_body(),
            buf: BytesMut::new(),
            _sender: sender,
            conn,
        })
    }

    /// Re-read the config file warden was started with and apply it.
    pub async fn reload(&mut self) -> Result<ReloadReport, ClientError> {
        let (status, body) = self.send(Method::POST, "/v1/reload").await?;
        if let Some(e) = config_errors(status, &body) {
            return Err(e);
        }
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|source| ClientError::Decode {
            what: "reload report",
            source,
        })
    }

    /// Rotate the log files of `name`, or of every service, now.
    pub async fn rotate(&mut self, name: Option<&str>) -> Result<RotateReport, ClientError> {
        let path = match name {
            Some(n) => format!("/v1/services/{}/rotate", encode(n)),
            None => "/v1/rotate".to_owned(),
        };
        self.call(Method::POST, &path, "rotate report").await
    }

    /// Ask warden to stop every service and exit; returns once warden accepted.
    pub async fn shutdown(&mut self) -> Result<(), ClientError> {
        let _: ShutdownAnswer = self
            .call(Method::POST, "/v1/shutdown", "shutdown answer")
            .await?;
        Ok(())
    }
}

/// A running `logs?follow=true` stream. Dropping it hangs up.
pub struct LogFollower {
    body: Incoming,
    buf: BytesMut,
    _sender: SendRequest<Empty<Bytes>>,
    conn: JoinHandle<()>,
}

impl LogFollower {
    /// The next line or `{"dropped": N}`; `None` when warden ended the stream (the service
    /// was removed, or warden stopped).
    pub async fn next(&mut self) -> Result<Option<FollowItem>, ClientError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let item =
                    serde_json::from_slice(&line[..pos]).map_err(|source| ClientError::Decode {
                        what: "log line",
                        source,
                    })?;
                return Ok(Some(item));
            }
            match self.body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                None => return Ok(None),
            }
        }
    }
}

impl Drop for LogFollower {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

fn logs_path(name: &str, n: usize, stream: Option<Stream>, follow: bool) -> String {
    let mut path = format!("/v1/services/{}/logs?n={n}", encode(name));
    if let Some(s) = stream {
        path.push_str("&stream=");
        path.push_str(s.as_str());
    }
    if follow {
        path.push_str("&follow=true");
    }
    path
}

/// A 422 with the config's errors, as [`ClientError::Config`].
fn config_errors(status: StatusCode, body: &[u8]) -> Option<ClientError> {
    if status != StatusCode::UNPROCESSABLE_ENTITY {
        return None;
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            error,
            detail: ErrorDetail::Config { errors, .. },
        }) if error == CONFIG_ERROR => Some(ClientError::Config(errors)),
        _ => None,
    }
}

/// An error answer; a body that is not an [`ErrorBody`] gets the status's own words.
fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    let body = serde_json::from_slice(body)
        .unwrap_or_else(|_| ErrorBody::new(status.canonical_reason().unwrap_or("error")));
    ClientError::Api {
        status: status.as_u16(),
        body,
    }
}

/// Percent-encode everything but unreserved characters (a path segment or query value).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(encode("web-1.a_b~"), "web-1.a_b~");
        assert_eq!(encode("a b/c?&é"), "a%20b%2Fc%3F%26%C3%A9");
    }

    #[test]
    fn error_answers_keep_message_and_body() {
        let e = api_error(
            StatusCode::NOT_FOUND,
            br#"{"error":"no service named \"x\"","known":["a"]}"#,
        );
        match e {
            ClientError::Api { status, body } => {
                assert_eq!(status, 404);
                assert_eq!(body, ErrorBody::unknown_service("x", vec!["a".into()]));
            }
            other => panic!("unexpected {other:?}"),
        }
        match api_error(StatusCode::BAD_GATEWAY, b"not json") {
            ClientError::Api { body, .. } => assert_eq!(body, ErrorBody::new("Bad Gateway")),
            other => panic!("unexpected {other:?}"),
        }
    }
}
