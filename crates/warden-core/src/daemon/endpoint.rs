//! The control endpoint of a running warden: the HTTP API on `<state_dir>/warden.sock`
//! (Unix) or a named pipe (Windows), plus the optional TCP listener of `[warden] api`.

#[cfg(unix)]
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{DaemonError, Request};
use crate::api::server::{self, Access, ApiContext, ApiServer, ServeError};
use crate::config::{Config, Secret};
use crate::engine::Handle;
#[cfg(windows)]
use crate::state::layout;
use crate::state::layout::Layout;

/// Where a warden's control endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    #[cfg(unix)]
    Socket(PathBuf),
    #[cfg(windows)]
    Pipe(String),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            #[cfg(unix)]
            Address::Socket(p) => write!(f, "{}", p.display()),
            #[cfg(windows)]
            Address::Pipe(p) => f.write_str(p),
        }
    }
}

/// The endpoint of the warden that runs `config` (or the installed instance `instance`).
pub fn address(config: &Config, instance: Option<&str>) -> Address {
    #[cfg(unix)]
    {
        let _ = instance;
        Address::Socket(
            config
                .warden
                .socket
                .clone()
                .unwrap_or_else(|| Layout::new(&config.warden.state_dir).socket()),
        )
    }
    #[cfg(windows)]
    {
        match instance {
            Some(name) => instance_address(name),
            None => Address::Pipe(format!(
                r"\\.\pipe\warden-{}",
                crate::state::instance_marker(&config.path)
            )),
        }
    }
}

/// The endpoint of the installed Windows service instance `name`.
#[cfg(windows)]
pub fn instance_address(name: &str) -> Address {
    Address::Pipe(format!(
        r"\\.\pipe\warden-{}",
        layout::instance_pipe_id(name)
    ))
}

/// The servers of a running warden; dropping it closes them.
pub struct Running {
    _servers: Vec<ApiServer>,
    _forward: tokio::task::JoinHandle<()>,
}

/// Start serving the API for `handle`. `instance`: the Windows service name, if any.
pub async fn serve(
    config: &Config,
    instance: Option<&str>,
    handle: Handle,
    requests: mpsc::Sender<Request>,
) -> Result<Running, DaemonError> {
    let (shutdown_tx, mut shutdown_rx) = mpsc::channel(1);
    let forward = tokio::spawn(async move {
        while shutdown_rx.recv().await.is_some() {
            if requests.send(Request::Stop).await.is_err() {
                break;
            }
        }
    });
    let metrics_public = config.warden.health.metrics_public;
    let ctx = ApiContext::new(handle, shutdown_tx).with_access(Access {
        metrics_public,
        monitoring_only: false,
    });
    let ctx = Arc::new(ctx);
    let mut servers = Vec::new();
    let addr = address(config, instance);
    let local = serve_local(&addr, ctx.clone()).map_err(|e| serve_failure(&addr.to_string(), e))?;
    servers.push(local);
    // One token for both TCP listeners (`api` and `http`), generated once if not configured.
    let mut token: Option<Secret> = config.warden.api_token.clone();
    let mut token = || -> Result<Secret, DaemonError> {
        if let Some(t) = &token {
            return Ok(t.clone());
        }
        let t = generated_token(config)?;
        token = Some(t.clone());
        Ok(t)
    };
    if let Some(api) = config.warden.api {
        let tcp = server::serve_tcp(api, token()?, ctx.clone())
            .await
            .map_err(|e| serve_failure(&api.to_string(), e))?;
        servers.push(tcp);
    }
    // health: `[warden] http`, /health and /metrics only, by the TCP API's token rules.
    if let Some(http) = config.warden.health.http {
        let monitoring = Arc::new(ctx.with_access(Access {
            metrics_public,
            monitoring_only: true,
        }));
        let listener = server::serve_tcp(http, token()?, monitoring)
            .await
            .map_err(|e| serve_failure(&http.to_string(), e))?;
        servers.push(listener);
    }
    Ok(Running {
        _servers: servers,
        _forward: forward,
    })
}

#[cfg(unix)]
fn serve_local(addr: &Address, ctx: Arc<ApiContext>) -> Result<ApiServer, ServeError> {
    let Address::Socket(path) = addr;
    // A `socket` outside the state dir may sit in a runtime dir that a reboot emptied: its
    // folder is made 0700, missing parents 0755 (other instances may need to pass them).
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        let mut missing: Vec<&std::path::Path> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .collect();
        missing.reverse();
        for d in missing {
            let mode = if d == dir { 0o700 } else { 0o755 };
            std::fs::DirBuilder::new()
                .mode(mode)
                .create(d)
                .map_err(|source| ServeError::Io {
                    op: "cannot create the socket's directory",
                    what: d.display().to_string(),
                    source,
                })?;
        }
    }
    server::serve_unix(path, ctx)
}

#[cfg(windows)]
fn serve_local(addr: &Address, ctx: Arc<ApiContext>) -> Result<ApiServer, ServeError> {
    let Address::Pipe(name) = addr;
    server::serve_pipe(name, ctx)
}

fn serve_failure(what: &str, source: ServeError) -> DaemonError {
    DaemonError::Serve {
        what: what.to_owned(),
        source,
    }
}

/// A loopback `api` without a configured token still needs one: make a random one, kept in
/// `<state_dir>/api.token` (readable by the owner only).
fn generated_token(config: &Config) -> Result<Secret, DaemonError> {
    let path = Layout::new(&config.warden.state_dir).api_token();
    let token = crate::util::random_token().map_err(DaemonError::Random)?;
    crate::state::write_private(&path, token.as_bytes()).map_err(|source| DaemonError::Token {
        path: path.clone(),
        source,
    })?;
    eprintln!("warden: the TCP API token is in {}", path.display());
    Ok(Secret(token))
}
