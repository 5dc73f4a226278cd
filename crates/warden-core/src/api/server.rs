//! The control API server: HTTP/1.1 with JSON bodies, versioned under `/v1/`.
//!
//! It is served on a Unix socket in the state dir ([`serve_unix`]: mode 0600, and only a peer
//! with warden's own uid or root gets an answer other than 403), and optionally on TCP
//! ([`serve_tcp`]: every request needs `Authorization: Bearer <token>`). Any other transport
//! (a Windows named pipe) plugs in through [`serve_connection`], which takes any
//! `AsyncRead + AsyncWrite` connection.
//!
//! Each connection is its own task, request bodies are bounded, headers must arrive within
//! [`HEADER_TIMEOUT`], so no client can block another or crash warden. `docs/api.yaml`
//! describes every path.
//!
//! The server drives the engine through the [`Backend`] trait, implemented by
//! [`engine::Handle`](crate::engine::Handle); tests may plug in a fake.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::types::{ServiceStatus, StatusReport};
use super::wire::{FollowItem, LogLineJson, LogsResponse, parse_action};
use crate::config::{self, Config, ProcessEnv, Secret};
use crate::engine::{Action, EngineError, Handle, ReloadReport};
use crate::logs::{LogLine, ServiceLogs, Stream};

/// The largest request body accepted (no endpoint takes a body today).
pub const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once per listener; more are closed at once.
pub const MAX_CONNECTIONS: usize = 512;
/// `n` of `GET .../logs` when not given.
pub const DEFAULT_TAIL: usize = 100;
/// Chunks buffered between a follow stream's task and its connection.
const FOLLOW_BUFFER: usize = 64;

/// A boxed future, for the object-safe [`Backend`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The in-memory tail and the live lines of one service.
pub trait LogSource: Send + Sync {
    /// The last `n` lines, oldest first, of one stream or both.
    fn tail(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine>;
    /// Every line from now on.
    fn subscribe(&self) -> broadcast::Receiver<LogLine>;
}

impl LogSource for ServiceLogs {
    fn tail(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine> {
        ServiceLogs::tail(self, n, stream)
    }

    fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        ServiceLogs::subscribe(self)
    }
}

/// What the server asks of the engine. [`Handle`] is the real one.
pub trait Backend: Send + Sync + 'static {
    /// `None`: the engine is gone (warden is shutting down).
    fn status(&self) -> BoxFuture<'_, Option<StatusReport>>;
    /// Start, stop or restart a service; resolves once it took effect.
    fn act<'a>(&'a self, action: Action, name: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;
    fn logs<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn LogSource>, EngineError>>;
    /// Apply a validated config; `None`: the engine is gone.
    fn reload(&self, config: Config) -> BoxFuture<'_, Option<ReloadReport>>;
}

impl Backend for Handle {
    fn status(&self) -> BoxFuture<'_, Option<StatusReport>> {
        Box::pin(Handle::status(self))
    }

    fn act<'a>(&'a self, action: Action, name: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Handle::act(self, action, name))
    }

    fn logs<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn LogSource>, EngineError>> {
        Box::pin(async move {
            Handle::logs(self, name)
                .await
                .map(|l| l as Arc<dyn LogSource>)
        })
    }

    fn reload(&self, config: Config) -> BoxFuture<'_, Option<ReloadReport>> {
        Box::pin(Handle::reload(self, config))
    }
}

/// What every request handler shares.
pub struct ApiContext {
    backend: Arc<dyn Backend>,
    config_path: PathBuf,
    shutdown: mpsc::Sender<()>,
}

impl ApiContext {
    /// `config_path`: the file `POST /v1/reload` re-reads. `shutdown` gets one `()` when a
    /// client asks warden to shut down (`POST /v1/shutdown`); give it room for one message.
    pub fn new(handle: Handle, config_path: PathBuf, shutdown: mpsc::Sender<()>) -> ApiContext {
        ApiContext::with_backend(Arc::new(handle), config_path, shutdown)
    }

    /// Like [`ApiContext::new`] over any [`Backend`] (tests use fakes).
    pub fn with_backend(
        backend: Arc<dyn Backend>,
        config_path: PathBuf,
        shutdown: mpsc::Sender<()>,
    ) -> ApiContext {
        ApiContext {
            backend,
            config_path,
            shutdown,
        }
    }
}

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

/// A running listener. Dropping it (or [`ApiServer::stop`]) closes the listener, ends every
/// connection, and removes the socket file.
#[must_use = "the server stops when this is dropped"]
pub struct ApiServer {
    task: JoinHandle<()>,
    endpoint: Endpoint,
}

enum Endpoint {
    #[cfg(unix)]
    Unix(unix::SocketFile),
    #[cfg(windows)]
    Pipe,
    Tcp(SocketAddr),
}

impl ApiServer {
    /// The address of a TCP listener (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.endpoint {
            Endpoint::Tcp(a) => Some(*a),
            #[cfg(unix)]
            Endpoint::Unix(_) => None,
            #[cfg(windows)]
            Endpoint::Pipe => None,
        }
    }

    /// The socket path of a Unix listener.
    pub fn socket_path(&self) -> Option<&Path> {
        match &self.endpoint {
            #[cfg(unix)]
            Endpoint::Unix(f) => Some(f.path()),
            #[cfg(windows)]
            Endpoint::Pipe => None,
            Endpoint::Tcp(_) => None,
        }
    }

    /// Stop accepting, end every connection, remove the socket file; returns once the
    /// listener is closed.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
        #[cfg(unix)]
        if let Endpoint::Unix(f) = &self.endpoint {
            f.remove();
        }
    }
}

/// Serve the API on the Unix socket `path` (normally `<state_dir>/warden.sock`).
///
/// A socket file left by a dead warden is replaced; one that answers is an error
/// ([`ServeError::AlreadyListening`]). The socket is mode 0600 before the first connection
/// is accepted, and each peer's uid is checked: warden's own or root, else 403.
///
/// Call it inside a Tokio runtime; the server runs on a task of its own until the returned
/// [`ApiServer`] is dropped or stopped.
#[cfg(unix)]
pub fn serve_unix(path: &Path, ctx: Arc<ApiContext>) -> Result<ApiServer, ServeError> {
    let (listener, file) = unix::bind(path)?;
    let task = tokio::spawn(unix::serve(listener, ctx));
    Ok(ApiServer {
        task,
        endpoint: Endpoint::Unix(file),
    })
}

/// Serve the API on the named pipe `name` (`\\.\pipe\warden-<id>`): the first instance of
/// that name, readable by SYSTEM, the Administrators and warden's own account only.
#[cfg(windows)]
pub fn serve_pipe(name: &str, ctx: Arc<ApiContext>) -> Result<ApiServer, ServeError> {
    let task = super::pipe::bind(name, ctx).map_err(|source| match source.raw_os_error() {
        // ERROR_ACCESS_DENIED / ERROR_PIPE_BUSY: another instance owns the name.
        Some(5 | 231) => ServeError::AlreadyListening {
            path: PathBuf::from(name),
        },
        _ => ServeError::Io {
            op: "cannot create the pipe",
            what: name.to_owned(),
            source,
        },
    })?;
    Ok(ApiServer {
        task,
        endpoint: Endpoint::Pipe,
    })
}

/// Serve the API on TCP at `addr`; every request must carry `Authorization: Bearer <token>`.
pub async fn serve_tcp(
    addr: SocketAddr,
    token: Secret,
    ctx: Arc<ApiContext>,
) -> Result<ApiServer, ServeError> {
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
    let token = Arc::new(token);
    let task = tokio::spawn(accept_loop(listener, move |stream: TcpStream| {
        let _ = stream.set_nodelay(true);
        serve(stream, ctx.clone(), Some(token.clone()))
    }));
    Ok(ApiServer {
        task,
        endpoint: Endpoint::Tcp(local),
    })
}

/// Serve one trusted connection (its peer was checked by the caller) until the client closes
/// it. Any transport fits: a Unix socket, a Windows named pipe, an in-memory duplex.
pub async fn serve_connection<I>(io: I, ctx: Arc<ApiContext>) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    serve(io, ctx, None).await
}

async fn serve<I>(
    io: I,
    ctx: Arc<ApiContext>,
    token: Option<Arc<Secret>>,
) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
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
/// (For transports whose peer check happens outside this module, such as a named pipe.)
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

/// A listener of any transport: [`accept_loop`] serves what it accepts.
pub(super) trait Accept: Send + 'static {
    type Conn: Send + 'static;
    /// The next connection. Cancel-safe: no connection is lost when the future is dropped.
    fn accept(&mut self) -> impl Future<Output = io::Result<Self::Conn>> + Send;
}

impl Accept for TcpListener {
    type Conn = TcpStream;
    async fn accept(&mut self) -> io::Result<TcpStream> {
        TcpListener::accept(self).await.map(|(stream, _)| stream)
    }
}

/// Accept connections until the task is aborted; each one is served by `serve_one` on a task
/// of its own, at most [`MAX_CONNECTIONS`] at once (more are closed at once). An error of
/// one connection concerns that client only (it hung up, sent garbage) and is dropped.
pub(super) async fn accept_loop<L, F, Fut, E>(mut listener: L, mut serve_one: F)
where
    L: Accept,
    F: FnMut(L::Conn) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    if conns.len() < MAX_CONNECTIONS {
                        let served = serve_one(conn);
                        conns.spawn(async move {
                            let _ = served.await;
                        });
                    }
                }
                Err(e) => accept_failed(&e).await,
            },
            Some(_) = conns.join_next() => {}
        }
    }
}

/// After a failed `accept`: an error of that one connection is skipped at once. Any other
/// (out of file descriptors or handles) has no event that tells when it is over, so wait a
/// little before accepting again rather than spin.
async fn accept_failed(e: &io::Error) {
    if !matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    ) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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

/// Whether a connecting peer may use the Unix socket: warden's own uid, or root.
pub fn peer_allowed(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == own_uid || peer_uid == 0
}

/// Whether a request's `Authorization` header carries `token`.
fn authorized(req: &Request<Incoming>, token: &Secret) -> bool {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    let Some(given) = value.as_bytes().strip_prefix(b"Bearer ") else {
        return false;
    };
    constant_time_eq(token.0.as_bytes(), given)
}

// ---------------------------------------------------------------------------------------
// Routing

/// A request's target, once its path and method are known to be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Status,
    Service(String),
    Act(String, Action),
    Logs(String),
    Config(String),
    Reload,
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RouteError {
    NotFound,
    /// The path exists; these methods are allowed on it.
    Method(&'static str),
    /// A path segment is not valid percent-encoded UTF-8.
    BadPath,
}

fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    let rest = path.strip_prefix("/v1/").ok_or(RouteError::NotFound)?;
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| percent_decode(s).ok_or(RouteError::BadPath))
        .collect::<Result<_, _>>()?;
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (route, allow) = match parts.as_slice() {
        ["status"] => (Route::Status, "GET"),
        ["reload"] => (Route::Reload, "POST"),
        ["shutdown"] => (Route::Shutdown, "POST"),
        ["services", name] if !name.is_empty() => (Route::Service((*name).to_owned()), "GET"),
        ["services", name, "logs"] if !name.is_empty() => (Route::Logs((*name).to_owned()), "GET"),
        ["services", name, "config"] if !name.is_empty() => {
            (Route::Config((*name).to_owned()), "GET")
        }
        ["services", name, action] if !name.is_empty() => match parse_action(action) {
            Some(a) => (Route::Act((*name).to_owned(), a), "POST"),
            None => return Err(RouteError::NotFound),
        },
        _ => return Err(RouteError::NotFound),
    };
    if method.as_str() == allow {
        Ok(route)
    } else {
        Err(RouteError::Method(allow))
    }
}

/// Decode `%XX` escapes (and, with `plus`, `+` as a space); `None` if malformed or not UTF-8.
fn decode(s: &str, plus: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn percent_decode(s: &str) -> Option<String> {
    decode(s, false)
}

/// A bad query: 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BadQuery(String);

/// The `key=value` pairs of a query string, decoded, in order.
fn parse_query(query: Option<&str>) -> Result<Vec<(String, String)>, BadQuery> {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return Ok(Vec::new());
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (decode(k, true), decode(v, true)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(BadQuery(format!("malformed query parameter {pair:?}"))),
            }
        })
        .collect()
}

/// The query of one route, validated: unknown keys, repeated keys and bad values are errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Query {
    names: Vec<String>,
    wait: Option<bool>,
    n: Option<usize>,
    stream: Option<Stream>,
    follow: Option<bool>,
}

fn parse_bool(key: &str, v: &str) -> Result<bool, BadQuery> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(BadQuery(format!("{key}={v:?}: expected true or false"))),
    }
}

fn validate_query(route: &Route, pairs: Vec<(String, String)>) -> Result<Query, BadQuery> {
    let allowed: &[&str] = match route {
        Route::Status => &["name"],
        Route::Act(..) => &["wait"],
        Route::Logs(_) => &["n", "stream", "follow"],
        Route::Service(_) | Route::Config(_) | Route::Reload | Route::Shutdown => &[],
    };
    let mut q = Query::default();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            let hint = if allowed.is_empty() {
                "this path takes no query parameters".to_owned()
            } else {
                format!("known: {}", allowed.join(", "))
            };
            return Err(BadQuery(format!("unknown query parameter {k:?} ({hint})")));
        }
        if k != "name" {
            if seen.contains(&k) {
                return Err(BadQuery(format!("query parameter {k:?} given twice")));
            }
            seen.push(k.clone());
        }
        match k.as_str() {
            "name" => q.names.push(v),
            "wait" => q.wait = Some(parse_bool(&k, &v)?),
            "follow" => q.follow = Some(parse_bool(&k, &v)?),
            "n" => {
                q.n = Some(
                    v.parse()
                        .map_err(|_| BadQuery(format!("n={v:?}: expected a number of lines")))?,
                );
            }
            "stream" => {
                q.stream = Some(match v.as_str() {
                    "out" => Stream::Out,
                    "err" => Stream::Err,
                    _ => return Err(BadQuery(format!("stream={v:?}: expected out or err"))),
                });
            }
            _ => {}
        }
    }
    Ok(q)
}

// ---------------------------------------------------------------------------------------
// Responses

/// A response body: a whole JSON document, or a stream of chunks (follow).
struct ApiBody(BodyKind);

enum BodyKind {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().0 {
            BodyKind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            BodyKind::Stream(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.0, BodyKind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            BodyKind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            BodyKind::Full(None) => SizeHint::with_exact(0),
            BodyKind::Stream(_) => SizeHint::default(),
        }
    }
}

type Resp = Response<ApiBody>;

fn respond(status: StatusCode, content_type: &'static str, body: ApiBody) -> Resp {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_response(status: StatusCode, value: &impl Serialize) -> Resp {
    match serde_json::to_vec(value) {
        Ok(data) => respond(
            status,
            "application/json",
            ApiBody(BodyKind::Full(Some(data.into()))),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode the answer: {e}"),
        ),
    }
}

fn error(status: StatusCode, message: &str) -> Resp {
    json_response(status, &json!({ "error": message }))
}

fn unknown_service(name: &str, known: &[String]) -> Resp {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({ "error": format!("no service named {name:?}"), "known": known }),
    )
}

fn shutting_down() -> Resp {
    error(StatusCode::SERVICE_UNAVAILABLE, "warden is shutting down")
}

fn engine_error(e: EngineError, status: Option<&ServiceStatus>) -> Resp {
    match e {
        EngineError::UnknownService { name, known } => unknown_service(&name, &known),
        EngineError::ShuttingDown => shutting_down(),
        EngineError::Failed { name, reason } => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": format!("{name}: {reason}"), "service": name, "reason": reason, "status": status }),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Handlers

async fn handle(req: Request<Incoming>, ctx: Arc<ApiContext>, token: Option<&Secret>) -> Resp {
    if let Some(token) = token
        && !authorized(&req, token)
    {
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <token>)",
        );
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return resp;
    }
    let route = match route(req.method(), req.uri().path()) {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": format!("no such path: {}", req.uri().path()) }),
            );
        }
        Err(RouteError::BadPath) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the path is not valid percent-encoded UTF-8",
            );
        }
        Err(RouteError::Method(allow)) => {
            let msg = format!(
                "{} is not allowed on {} (use {allow})",
                req.method(),
                req.uri().path()
            );
            let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, &msg);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            return resp;
        }
    };
    let query = match parse_query(req.uri().query()).and_then(|pairs| validate_query(&route, pairs))
    {
        Ok(q) => q,
        Err(BadQuery(msg)) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    // No endpoint takes a body; read what is sent (bounded in size and time) so the
    // connection stays usable.
    if let Err(resp) = drain_body(req.into_body()).await {
        return resp;
    }
    match route {
        Route::Status => status(&ctx, &query.names).await,
        Route::Service(name) => service(&ctx, &name).await,
        Route::Act(name, action) => act(ctx, name, action, query.wait.unwrap_or(true)).await,
        Route::Logs(name) => {
            let n = query.n.unwrap_or(DEFAULT_TAIL);
            logs(&ctx, &name, n, query.stream, query.follow.unwrap_or(false)).await
        }
        Route::Config(name) => {
            let (status, body) = super::config_view::answer(&ctx.config_path, &name).await;
            json_response(status, &body)
        }
        Route::Reload => reload(&ctx).await,
        Route::Shutdown => shutdown(&ctx),
    }
}

/// Read and discard a request body: at most [`MAX_BODY`] bytes within [`HEADER_TIMEOUT`].
async fn drain_body(body: Incoming) -> Result<(), Resp> {
    let close = |mut resp: Resp| {
        // The rest of the body is not read: the connection cannot be reused.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        resp
    };
    let too_large = || {
        close(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than {MAX_BODY} bytes"),
        ))
    };
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    match tokio::time::timeout(HEADER_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(close(error(
            StatusCode::BAD_REQUEST,
            "cannot read the request body",
        ))),
        Err(_) => Err(close(error(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        ))),
    }
}

async fn status(ctx: &ApiContext, names: &[String]) -> Resp {
    let Some(mut report) = ctx.backend.status().await else {
        return shutting_down();
    };
    if !names.is_empty() {
        if let Some(missing) = names
            .iter()
            .find(|n| !report.services.iter().any(|s| &s.name == *n))
        {
            let known: Vec<String> = report.services.into_iter().map(|s| s.name).collect();
            return unknown_service(missing, &known);
        }
        report.services.retain(|s| names.contains(&s.name));
    }
    json_response(StatusCode::OK, &report)
}

/// The current status of `name`, or the response to send instead.
async fn find_service(ctx: &ApiContext, name: &str) -> Result<ServiceStatus, Resp> {
    let report = ctx.backend.status().await.ok_or_else(shutting_down)?;
    let known: Vec<String> = report.services.iter().map(|s| s.name.clone()).collect();
    report
        .services
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| unknown_service(name, &known))
}

async fn service(ctx: &ApiContext, name: &str) -> Resp {
    match find_service(ctx, name).await {
        Ok(s) => json_response(StatusCode::OK, &s),
        Err(resp) => resp,
    }
}

async fn act(ctx: Arc<ApiContext>, name: String, action: Action, wait: bool) -> Resp {
    if !wait {
        let current = match find_service(&ctx, &name).await {
            Ok(s) => s,
            Err(resp) => return resp,
        };
        tokio::spawn(async move {
            // Nobody waits for the outcome: it shows in the status and warden's events.
            let _ = ctx.backend.act(action, &name).await;
        });
        return json_response(StatusCode::ACCEPTED, &current);
    }
    let result = ctx.backend.act(action, &name).await;
    let after = find_service(&ctx, &name).await;
    match (result, after) {
        (Ok(()), Ok(s)) => json_response(StatusCode::OK, &s),
        (Ok(()), Err(resp)) => resp,
        (Err(e), after) => engine_error(e, after.ok().as_ref()),
    }
}

async fn logs(
    ctx: &ApiContext,
    name: &str,
    n: usize,
    stream: Option<Stream>,
    follow: bool,
) -> Resp {
    let source = match ctx.backend.logs(name).await {
        Ok(s) => s,
        Err(e) => return engine_error(e, None),
    };
    if !follow {
        let lines = source
            .tail(n, stream)
            .iter()
            .map(LogLineJson::from)
            .collect();
        return json_response(StatusCode::OK, &LogsResponse { lines });
    }
    // Subscribe before reading the tail so no line falls between them; duplicates are
    // skipped by their sequence number.
    let live = source.subscribe();
    // Every line up to here is in the backlog or was left out of it on purpose (older than
    // the last `n`, or of the other stream): a refill after a lag must not send it. Read
    // before the backlog: a line written after this read is live, so it is never skipped.
    let start_after = source.tail(1, None).last().map(|l| l.seq);
    let backlog = source.tail(n, stream);
    // Hold the logs only weakly: when the service goes away, the stream ends.
    let recover = Arc::downgrade(&source);
    drop(source);
    let (tx, rx) = mpsc::channel(FOLLOW_BUFFER);
    tokio::spawn(follow_task(
        backlog,
        start_after,
        live,
        stream,
        tx,
        Some(recover),
    ));
    respond(
        StatusCode::OK,
        "application/x-ndjson",
        ApiBody(BodyKind::Stream(rx)),
    )
}

fn ndjson(item: &impl Serialize) -> Bytes {
    let mut data = serde_json::to_vec(item).unwrap_or_default();
    data.push(b'\n');
    data.into()
}

/// The task behind a follow stream: the backlog, then every new line of `filter`'s stream,
/// as NDJSON chunks into `out`. A reader that falls behind never slows the service: the
/// broadcast drops lines for it; the task then refills what it missed from the in-memory
/// tail (`recover`, held weakly so a removed service still ends the stream), and only lines
/// the tail no longer holds are reported as `{"dropped": N}`. Ends when the reader hangs up
/// (`out` closes) or the service's logs go away.
async fn follow_task(
    backlog: Vec<LogLine>,
    start_after: Option<u64>,
    mut live: broadcast::Receiver<LogLine>,
    filter: Option<Stream>,
    out: mpsc::Sender<Bytes>,
    recover: Option<std::sync::Weak<dyn LogSource>>,
) {
    let mut follow = Follow {
        last: backlog.last().map(|l| l.seq).max(start_after),
        filter,
        chunk: Vec::new(),
    };
    for line in &backlog {
        follow.push(line);
        if follow.chunk.len() >= FOLLOW_CHUNK && !follow.flush(&out).await {
            return;
        }
    }
    if !follow.flush(&out).await {
        return;
    }
    loop {
        let first = tokio::select! {
            () = out.closed() => return,
            r = live.recv() => r,
        };
        // Take whatever else is already there too, so a burst travels in few chunks.
        let mut next = Some(first);
        while let Some(received) = next.take() {
            match received {
                Ok(line) => follow.take(&line),
                Err(RecvError::Lagged(n)) => {
                    let Some(source) = recover.as_ref().and_then(std::sync::Weak::upgrade) else {
                        if recover.is_some() {
                            return;
                        }
                        follow
                            .chunk
                            .extend_from_slice(&ndjson(&FollowItem::Dropped { dropped: n }));
                        break;
                    };
                    let missed = source.tail(usize::MAX, None);
                    drop(source);
                    follow.refill(&missed, n);
                }
                Err(RecvError::Closed) => {
                    let _ = follow.flush(&out).await;
                    return;
                }
            }
            if follow.chunk.len() < FOLLOW_CHUNK {
                next = match live.try_recv() {
                    Ok(l) => Some(Ok(l)),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Some(Err(RecvError::Lagged(n)))
                    }
                    Err(broadcast::error::TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                    Err(broadcast::error::TryRecvError::Empty) => None,
                };
            }
        }
        if !follow.flush(&out).await {
            return;
        }
    }
}

/// Flush a follow chunk at about this size.
const FOLLOW_CHUNK: usize = 64 << 10;

/// The state of one follow stream: the last sequence number sent (or skipped by the filter)
/// and the chunk being built.
struct Follow {
    last: Option<u64>,
    filter: Option<Stream>,
    chunk: Vec<u8>,
}

impl Follow {
    fn push(&mut self, line: &LogLine) {
        self.last = Some(line.seq);
        if self.filter.is_none_or(|f| f == line.stream) {
            self.chunk
                .extend_from_slice(&ndjson(&LogLineJson::from(line)));
        }
    }

    /// A live line: skip what was sent already.
    fn take(&mut self, line: &LogLine) {
        if self.last.is_none_or(|s| line.seq > s) {
            self.push(line);
        }
    }

    /// After a lag of `n` lines: send what the tail still holds; report what it lost.
    fn refill(&mut self, tail: &[LogLine], n: u64) {
        let missed: Vec<&LogLine> = tail
            .iter()
            .filter(|l| self.last.is_none_or(|s| l.seq > s))
            .collect();
        // Sequence numbers start at 0 for each service.
        let expected = self.last.map_or(0, |s| s + 1);
        let gap = missed
            .first()
            .map_or(n, |first| first.seq.saturating_sub(expected));
        if gap > 0 {
            self.chunk
                .extend_from_slice(&ndjson(&FollowItem::Dropped { dropped: gap }));
        }
        for l in missed {
            self.push(l);
        }
    }

    /// Send the chunk; `false` when the reader hung up.
    async fn flush(&mut self, out: &mpsc::Sender<Bytes>) -> bool {
        if self.chunk.is_empty() {
            return true;
        }
        out.send(Bytes::from(std::mem::take(&mut self.chunk)))
            .await
            .is_ok()
    }
}

async fn reload(ctx: &ApiContext) -> Resp {
    let path = ctx.config_path.clone();
    let loaded = match tokio::task::spawn_blocking(move || config::load(&path, &ProcessEnv)).await {
        Ok(l) => l,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("reading the config failed: {e}"),
            );
        }
    };
    match loaded {
        Err(errors) => {
            let list: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
            json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({ "error": "config", "file": errors.file.display().to_string(), "errors": list }),
            )
        }
        Ok(config) => match ctx.backend.reload(config).await {
            Some(report) => json_response(StatusCode::OK, &report),
            None => shutting_down(),
        },
    }
}

fn shutdown(ctx: &ApiContext) -> Resp {
    match ctx.shutdown.try_send(()) {
        // Full: a shutdown is already on its way.
        Ok(()) | Err(mpsc::error::TrySendError::Full(())) => {
            json_response(StatusCode::ACCEPTED, &json!({ "shutting_down": true }))
        }
        Err(mpsc::error::TrySendError::Closed(())) => shutting_down(),
    }
}

/// For tests of the routing table: every (method, path template) the server answers.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/status"),
    ("GET", "/v1/services/{name}"),
    ("POST", "/v1/services/{name}/start"),
    ("POST", "/v1/services/{name}/stop"),
    ("POST", "/v1/services/{name}/restart"),
    ("GET", "/v1/services/{name}/logs"),
    ("GET", "/v1/services/{name}/config"),
    ("POST", "/v1/reload"),
    ("POST", "/v1/shutdown"),
];

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use tokio::net::{UnixListener, UnixStream};

    use super::{Accept, ApiContext, ServeError, accept_loop, peer_allowed, serve_forbidden};

    /// The socket file we bound; removed on drop only if it is still ours.
    pub(super) struct SocketFile {
        path: PathBuf,
        id: (u64, u64),
    }

    impl SocketFile {
        pub(super) fn path(&self) -> &Path {
            &self.path
        }

        pub(super) fn remove(&self) {
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

    pub(super) fn bind(path: &Path) -> Result<(UnixListener, SocketFile), ServeError> {
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
                listener,
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

    fn own_uid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    impl Accept for UnixListener {
        type Conn = UnixStream;
        async fn accept(&mut self) -> io::Result<UnixStream> {
            UnixListener::accept(self).await.map(|(stream, _)| stream)
        }
    }

    /// Serve `listener`; a peer that is neither warden's user nor root gets 403.
    pub(super) async fn serve(listener: UnixListener, ctx: Arc<ApiContext>) {
        let own = own_uid();
        accept_loop(listener, move |stream: UnixStream| {
            let allowed = stream.peer_cred().is_ok_and(|c| peer_allowed(c.uid(), own));
            let ctx = ctx.clone();
            async move {
                if allowed {
                    super::serve(stream, ctx, None).await
                } else {
                    serve_forbidden(stream).await
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

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
    fn peer_must_be_warden_or_root() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000));
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(1001, 1000));
        assert!(!peer_allowed(1000, 0));
    }

    #[test]
    fn routes_match_paths_and_methods() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(route(&get, "/v1/status"), Ok(Route::Status));
        assert_eq!(
            route(&get, "/v1/services/web"),
            Ok(Route::Service("web".into()))
        );
        assert_eq!(
            route(&get, "/v1/services/a%20b"),
            Ok(Route::Service("a b".into()))
        );
        assert_eq!(
            route(&post, "/v1/services/web/restart"),
            Ok(Route::Act("web".into(), Action::Restart))
        );
        assert_eq!(
            route(&get, "/v1/services/web/logs"),
            Ok(Route::Logs("web".into()))
        );
        assert_eq!(route(&post, "/v1/reload"), Ok(Route::Reload));
        assert_eq!(route(&post, "/v1/shutdown"), Ok(Route::Shutdown));
        assert_eq!(route(&post, "/v1/status"), Err(RouteError::Method("GET")));
        assert_eq!(
            route(&get, "/v1/services/web/stop"),
            Err(RouteError::Method("POST"))
        );
        assert_eq!(
            route(&Method::DELETE, "/v1/reload"),
            Err(RouteError::Method("POST"))
        );
        for p in [
            "/",
            "/v1",
            "/v1/",
            "/v2/status",
            "/v1/status/",
            "/v1/services",
            "/v1/services/",
            "/v1/services//stop",
        ] {
            assert_eq!(route(&get, p), Err(RouteError::NotFound), "{p}");
        }
        assert_eq!(
            route(&post, "/v1/services/web/kill"),
            Err(RouteError::NotFound)
        );
        assert_eq!(route(&get, "/v1/services/%ff"), Err(RouteError::BadPath));
        assert_eq!(route(&get, "/v1/services/%4"), Err(RouteError::BadPath));
    }

    #[test]
    fn every_route_is_listed() {
        for (method, template) in ROUTES {
            let path = template.replace("{name}", "x");
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            assert!(route(&method, &path).is_ok(), "{method} {path}");
        }
    }

    fn q(route: &Route, query: &str) -> Result<Query, BadQuery> {
        parse_query(Some(query)).and_then(|p| validate_query(route, p))
    }

    #[test]
    fn queries_are_validated() {
        let logs = Route::Logs("x".into());
        let got = q(&logs, "n=5&stream=err&follow=true").expect("valid");
        assert_eq!(
            (got.n, got.stream, got.follow),
            (Some(5), Some(Stream::Err), Some(true))
        );
        assert!(q(&logs, "n=-1").is_err());
        assert!(q(&logs, "n=abc").is_err());
        assert!(q(&logs, "stream=both").is_err());
        assert!(q(&logs, "follow=yes").is_err());
        assert!(q(&logs, "n=1&n=2").is_err());
        assert!(q(&logs, "lines=3").is_err());
        let st = q(&Route::Status, "name=a&name=b%20c&name=d+e").expect("valid");
        assert_eq!(st.names, ["a", "b c", "d e"]);
        assert!(q(&Route::Reload, "x=1").is_err());
        assert!(
            q(&Route::Act("a".into(), Action::Stop), "wait=false")
                .expect("valid")
                .wait
                == Some(false)
        );
        assert!(q(&Route::Status, "name=%zz").is_err());
        assert_eq!(q(&Route::Status, "").expect("empty"), Query::default());
    }

    fn line(seq: u64, stream: Stream) -> LogLine {
        LogLine {
            seq,
            stream,
            at: std::time::UNIX_EPOCH,
            bytes: format!("line {seq}").into_bytes(),
        }
    }

    /// The reading end of a follow stream, one NDJSON item at a time (a chunk may hold
    /// several).
    struct Items {
        rx: mpsc::Receiver<Bytes>,
        pending: std::collections::VecDeque<Value>,
    }

    impl Items {
        fn new(rx: mpsc::Receiver<Bytes>) -> Items {
            Items {
                rx,
                pending: std::collections::VecDeque::new(),
            }
        }

        async fn next(&mut self) -> Value {
            if self.pending.is_empty() {
                let chunk = tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
                    .await
                    .expect("in time")
                    .expect("a chunk");
                assert_eq!(chunk.last(), Some(&b'\n'), "chunks hold whole lines");
                self.pending.extend(
                    chunk
                        .split(|b| *b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(|l| serde_json::from_slice::<Value>(l).expect("json")),
                );
            }
            self.pending.pop_front().expect("an item")
        }

        /// Nothing more is queued now.
        fn assert_idle(&mut self) {
            assert!(self.pending.is_empty(), "left: {:?}", self.pending);
            assert!(self.rx.try_recv().is_err(), "no chunk waits");
        }
    }

    /// A log source whose tail is set by the test.
    struct TailOnly(std::sync::Mutex<Vec<LogLine>>);

    impl LogSource for TailOnly {
        fn tail(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine> {
            let all = self.0.lock().expect("lock");
            let lines: Vec<LogLine> = all
                .iter()
                .filter(|l| stream.is_none_or(|s| s == l.stream))
                .cloned()
                .collect();
            lines[lines.len().saturating_sub(n)..].to_vec()
        }

        fn subscribe(&self) -> broadcast::Receiver<LogLine> {
            unreachable!("the test subscribes itself")
        }
    }

    // The tests run on one thread: the follow task runs only while the test awaits, so what
    // it has received at each step is known exactly.
    #[tokio::test]
    async fn follow_skips_duplicates_filters_and_reports_lag() {
        let (tx, live) = broadcast::channel(2);
        let (out, rx) = mpsc::channel(8);
        let mut items = Items::new(rx);
        // Lines 1..=2 are the backlog; 2 also arrives live (subscribed before the tail).
        tx.send(line(2, Stream::Out)).expect("send");
        let task = tokio::spawn(follow_task(
            vec![line(1, Stream::Out), line(2, Stream::Out)],
            None,
            live,
            Some(Stream::Out),
            out,
            None,
        ));
        assert_eq!(items.next().await["seq"], 1);
        assert_eq!(items.next().await["seq"], 2);
        tx.send(line(3, Stream::Err)).expect("send");
        tx.send(line(4, Stream::Out)).expect("send");
        assert_eq!(items.next().await["seq"], 4, "the err line is filtered");
        // Overflow the broadcast (capacity 2) before the task reads: 5..=7 are lost.
        for seq in 5..=9 {
            tx.send(line(seq, Stream::Out)).expect("send");
        }
        assert_eq!(items.next().await, serde_json::json!({ "dropped": 3 }));
        assert_eq!(items.next().await["seq"], 8);
        assert_eq!(items.next().await["seq"], 9);
        items.assert_idle();
        // The reader hangs up: the task ends although no line comes.
        drop(items);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("task ends")
            .expect("no panic");
    }

    #[tokio::test]
    async fn a_lag_is_refilled_from_the_tail_and_only_the_lost_lines_are_counted() {
        // Sequence numbers start at 0: a follower that saw nothing yet expects line 0 first.
        let source = Arc::new(TailOnly(std::sync::Mutex::new(Vec::new())));
        let weak = Arc::downgrade(&(source.clone() as Arc<dyn LogSource>));
        let (tx, live) = broadcast::channel(2);
        let (out, rx) = mpsc::channel(8);
        let mut items = Items::new(rx);
        let task = tokio::spawn(follow_task(
            Vec::new(),
            None,
            live,
            Some(Stream::Out),
            out,
            Some(weak),
        ));
        tokio::task::yield_now().await;
        // 0..=5 are written while the follower does not read; the tail still holds them all.
        for seq in 0..=5 {
            let stream = if seq == 3 { Stream::Err } else { Stream::Out };
            source.0.lock().expect("lock").push(line(seq, stream));
            tx.send(line(seq, stream)).expect("send");
        }
        for seq in [0, 1, 2, 4, 5] {
            assert_eq!(items.next().await["seq"], seq, "refilled, nothing dropped");
        }
        items.assert_idle();
        // 6..=11 are written; the tail has lost 6 and 7 by now.
        {
            let mut tail = source.0.lock().expect("lock");
            tail.clear();
            tail.extend((8..=11).map(|seq| line(seq, Stream::Out)));
        }
        for seq in 6..=11 {
            tx.send(line(seq, Stream::Out)).expect("send");
        }
        assert_eq!(items.next().await, serde_json::json!({ "dropped": 2 }));
        for seq in 8..=11 {
            assert_eq!(items.next().await["seq"], seq);
        }
        items.assert_idle();
        // The service goes away: the stream ends.
        drop(source);
        tx.send(line(12, Stream::Out)).expect("send");
        tx.send(line(13, Stream::Out)).expect("send");
        tx.send(line(14, Stream::Out)).expect("send");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("task ends")
            .expect("no panic");
    }

    #[tokio::test]
    async fn follow_skips_what_preceded_it_after_a_lag() {
        // n = 0: nothing is sent of lines 0..=4, which were there before the follow began.
        let tail: Vec<LogLine> = (0..=4).map(|seq| line(seq, Stream::Out)).collect();
        let source = Arc::new(TailOnly(std::sync::Mutex::new(tail)));
        let weak = Arc::downgrade(&(source.clone() as Arc<dyn LogSource>));
        let (tx, live) = broadcast::channel(1);
        let (out, rx) = mpsc::channel(8);
        let mut items = Items::new(rx);
        let task = tokio::spawn(follow_task(
            Vec::new(),
            Some(4),
            live,
            None,
            out,
            Some(weak),
        ));
        tokio::task::yield_now().await;
        for seq in 5..=7 {
            source.0.lock().expect("lock").push(line(seq, Stream::Out));
            tx.send(line(seq, Stream::Out)).expect("send");
        }
        for seq in 5..=7 {
            assert_eq!(items.next().await["seq"], seq);
        }
        items.assert_idle();
        drop(items);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("task ends")
            .expect("no panic");
    }

    #[tokio::test]
    async fn follow_ends_when_the_logs_go_away() {
        let (tx, live) = broadcast::channel::<LogLine>(4);
        let (out, mut rx) = mpsc::channel(8);
        let task = tokio::spawn(follow_task(Vec::new(), None, live, None, out, None));
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("task ends")
            .expect("no panic");
        assert!(rx.recv().await.is_none());
    }
}
