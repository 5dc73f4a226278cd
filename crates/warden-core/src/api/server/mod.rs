//! The control API server: HTTP/1.1 with JSON bodies, versioned under `/v1/`.
//!
//! It is served on a Unix socket in the state dir ([`serve_unix`]: mode 0600, and only a peer
//! with warden's own uid or root gets an answer other than 403), on a Windows named pipe
//! (`serve_pipe`), and optionally on TCP ([`serve_tcp`]: every request needs
//! `Authorization: Bearer <token>`). Any other transport plugs in through
//! [`serve_connection`], which takes any `AsyncRead + AsyncWrite` connection.
//!
//! Every client's cost is bounded: the request head within [`HEADER_TIMEOUT`] and
//! [`MAX_HEAD`] bytes, read by warden itself so every refusal is a JSON error; two pools of
//! connections per listener (waiting for their head, served; see
//! [`super::transport`]); request bodies of [`MAX_BODY`]; a write that stalls
//! for [`WRITE_STALL`]; at most [`MAX_FOLLOWERS`] log streams of [`FOLLOW_BUDGET`] each.
//! `docs/api.yaml` describes every path and limit.
//!
//! The server drives the engine through the [`Backend`] trait, implemented by
//! [`engine::Handle`](crate::engine::Handle); tests may plug in a fake. The files, in the
//! order a request meets them: `connection` (one connection: the limits, then HTTP),
//! `head` (the request head), `conn_io` (what the HTTP library reads and writes through),
//! `routes` (the route table), `query` (query strings), `handlers` (one per route),
//! `follow` (log streams), `body` (the answers).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::transport::{self, Accept};
pub use super::transport::{MAX_CONNECTIONS, ServeError, constant_time_eq, peer_allowed};
use crate::config::Secret;
use crate::engine::metrics::MetricsReport;
use crate::engine::{EngineError, Handle, ReloadError};
use crate::logs::{LogLine, Rotation, ServiceLogs};
use crate::model::Stream;
use crate::proto::{Action, ReloadReport, StatusReport};

mod body;
mod config_view;
mod conn_io;
mod connection;
mod follow;
mod handlers;
mod head;
mod metrics; // health: GET /health and GET /metrics
mod query;
mod routes;

pub use conn_io::WRITE_STALL;
pub use connection::{serve_connection, serve_forbidden};
pub use follow::{FOLLOW_BUDGET, FOLLOW_CHUNK};
pub use head::MAX_HEAD;
pub use routes::ROUTES;

/// The largest request body accepted (no endpoint takes a body today).
pub const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send a request's head (and then its body, if any): long
/// enough for any real client, short enough that a slow one holds its place briefly.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Log streams (`logs?follow=true`) open at once, over all listeners; one more gets 503.
/// Each costs at most about [`FOLLOW_BUDGET`] of memory.
pub const MAX_FOLLOWERS: usize = 256;
/// `n` of `GET .../logs` when not given.
pub const DEFAULT_TAIL: usize = 100;
/// `timeout` of `GET /v1/status?until=up` when not given, and its largest value.
pub const DEFAULT_UP_WAIT: Duration = Duration::from_secs(60);
pub const MAX_UP_WAIT: Duration = Duration::from_secs(3600);

/// A boxed future, for the object-safe [`Backend`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The in-memory tail and the live lines of one service.
pub trait LogSource: Send + Sync {
    /// The last `n` lines, oldest first, of one stream or both.
    fn tail(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine>;
    /// Every line from now on.
    fn subscribe(&self) -> broadcast::Receiver<LogLine>;
    /// Rotate the files now (`POST /v1/rotate`): each file with what became of it. Blocking
    /// file work: called off the async threads.
    fn rotate(&self) -> Vec<(std::path::PathBuf, Rotation)>;
}

impl LogSource for ServiceLogs {
    fn tail(&self, n: usize, stream: Option<Stream>) -> Vec<LogLine> {
        ServiceLogs::tail(self, n, stream)
    }

    fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        ServiceLogs::subscribe(self)
    }

    fn rotate(&self) -> Vec<(std::path::PathBuf, Rotation)> {
        ServiceLogs::rotate(self)
    }
}

/// What the server asks of the engine. [`Handle`] is the real one.
pub trait Backend: Send + Sync + 'static {
    /// `None`: the engine is gone (warden is shutting down).
    fn status(&self) -> BoxFuture<'_, Option<StatusReport>>;
    /// Start, stop or restart a service; resolves once it took effect.
    fn act<'a>(&'a self, action: Action, name: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;
    /// As `act`, with what a start started first (`depends_on`; see
    /// [`Handle::act_reporting`]). A backend without dependencies starts nothing first.
    fn act_reporting<'a>(
        &'a self,
        action: Action,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, EngineError>> {
        Box::pin(async move { self.act(action, name).await.map(|()| Vec::new()) })
    }
    fn logs<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn LogSource>, EngineError>>;
    /// Re-read the config file and apply it (see [`Handle::reload`]).
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>>;
    /// The config of every service in force (what the engine runs, not what the file says
    /// now); `None` once the engine is gone.
    fn config_in_force(&self) -> Option<Arc<Vec<Arc<crate::config::ServiceConfig>>>>;
    /// Resolves once no service is on its way up any more (see [`Handle::settled`]); the
    /// server bounds the wait. A backend without starts has nothing to wait for.
    fn settled(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// What `/health` and `/metrics` read; `None` once the engine is gone (or for a backend
    /// without them).
    fn metrics(&self) -> BoxFuture<'_, Option<MetricsReport>> {
        Box::pin(async { None })
    }
}

impl Backend for Handle {
    fn status(&self) -> BoxFuture<'_, Option<StatusReport>> {
        Box::pin(Handle::status(self))
    }

    fn act<'a>(&'a self, action: Action, name: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Handle::act(self, action, name))
    }

    fn act_reporting<'a>(
        &'a self,
        action: Action,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, EngineError>> {
        Box::pin(Handle::act_reporting(self, action, name))
    }

    fn logs<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn LogSource>, EngineError>> {
        Box::pin(async move {
            Handle::logs(self, name)
                .await
                .map(|l| l as Arc<dyn LogSource>)
        })
    }

    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, ReloadError>> {
        Box::pin(Handle::reload(self))
    }

    fn config_in_force(&self) -> Option<Arc<Vec<Arc<crate::config::ServiceConfig>>>> {
        Handle::config_in_force(self)
    }

    fn settled(&self) -> BoxFuture<'_, ()> {
        Box::pin(Handle::settled(self))
    }

    fn metrics(&self) -> BoxFuture<'_, Option<MetricsReport>> {
        Box::pin(Handle::metrics(self))
    }
}

/// What every request handler shares.
pub struct ApiContext {
    backend: Arc<dyn Backend>,
    shutdown: mpsc::Sender<()>,
    /// One permit per open log stream.
    followers: Arc<Semaphore>,
    access: Access,
}

/// What a listener serves without a token, and whether it serves the API at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// `[warden] metrics_public`: `GET /metrics` without the token too.
    pub metrics_public: bool,
    /// `[warden] http`: only `/health` and `/metrics` (everything else is 404).
    pub monitoring_only: bool,
}

impl Access {
    /// Whether a request for `path` on a bearer transport may come without the token:
    /// `/health` always, `/metrics` with `metrics_public`.
    fn without_token(self, path: &str) -> bool {
        path == "/health" || (self.metrics_public && path == "/metrics")
    }
}

impl ApiContext {
    /// `shutdown` gets one `()` when a client asks warden to shut down
    /// (`POST /v1/shutdown`); give it room for one message.
    pub fn new(handle: Handle, shutdown: mpsc::Sender<()>) -> ApiContext {
        ApiContext::with_backend(Arc::new(handle), shutdown)
    }

    /// Like [`ApiContext::new`] over any [`Backend`] (tests use fakes).
    pub fn with_backend(backend: Arc<dyn Backend>, shutdown: mpsc::Sender<()>) -> ApiContext {
        ApiContext {
            backend,
            shutdown,
            followers: Arc::new(Semaphore::new(MAX_FOLLOWERS)),
            access: Access::default(),
        }
    }

    /// The same context with other [`Access`] rules (for the `[warden] http` listener, or
    /// `metrics_public`).
    #[must_use]
    pub fn with_access(&self, access: Access) -> ApiContext {
        ApiContext {
            backend: self.backend.clone(),
            shutdown: self.shutdown.clone(),
            followers: self.followers.clone(),
            access,
        }
    }
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
    Unix(transport::unix::SocketFile),
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
    let (listener, file) = transport::unix::bind(path)?;
    Ok(ApiServer {
        task: spawn_listener(listener, ctx),
        endpoint: Endpoint::Unix(file),
    })
}

/// Serve the API on the named pipe `name` (`\\.\pipe\warden-<id>`): the first instance of
/// that name, readable by SYSTEM, the Administrators and warden's own account only.
#[cfg(windows)]
pub fn serve_pipe(name: &str, ctx: Arc<ApiContext>) -> Result<ApiServer, ServeError> {
    let listener = transport::pipe::bind(name)?;
    Ok(ApiServer {
        task: spawn_listener(listener, ctx),
        endpoint: Endpoint::Pipe,
    })
}

/// Serve the API on TCP at `addr`; every request must carry `Authorization: Bearer <token>`.
#[allow(clippy::unused_async)] // async as it always was: the daemon awaits it
pub async fn serve_tcp(
    addr: SocketAddr,
    token: Secret,
    ctx: Arc<ApiContext>,
) -> Result<ApiServer, ServeError> {
    let (listener, local) = transport::tcp::bind(addr, token)?;
    Ok(ApiServer {
        task: spawn_listener(listener, ctx),
        endpoint: Endpoint::Tcp(local),
    })
}

/// Serve every connection of `listener` on a task of its own, until the task is aborted.
fn spawn_listener<L>(listener: L, ctx: Arc<ApiContext>) -> JoinHandle<()>
where
    L: Accept,
    L::Conn: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    tokio::spawn(transport::accept_loop(
        listener,
        move |conn, peer, waiting| connection::serve(conn, ctx.clone(), peer, waiting),
    ))
}
