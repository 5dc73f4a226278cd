//! The control endpoint of a running warden: the HTTP API on `<state_dir>/warden.sock`
//! (Unix) or a named pipe (Windows), plus the optional TCP listener of `[warden] api`.

#[cfg(unix)]
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use warden_core::api::server::{self, ApiContext, ApiServer, ServeError};
use warden_core::config::{Config, Secret};
use warden_core::engine::Handle;

use crate::Failure;
use crate::supervisor::Ask;

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
        Address::Socket(config.warden.state_dir.join("warden.sock"))
    }
    #[cfg(windows)]
    {
        match instance {
            Some(name) => instance_address(name),
            None => Address::Pipe(format!(
                r"\\.\pipe\warden-{}",
                warden_core::state::instance_marker(&config.path)
            )),
        }
    }
}

/// The endpoint of the installed Windows service instance `name`.
#[cfg(windows)]
pub fn instance_address(name: &str) -> Address {
    Address::Pipe(format!(
        r"\\.\pipe\warden-{}",
        crate::os::instance_pipe_id(name)
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
    asks: mpsc::Sender<Ask>,
) -> Result<Running, Failure> {
    let (shutdown_tx, mut shutdown_rx) = mpsc::channel(1);
    let forward = tokio::spawn(async move {
        while shutdown_rx.recv().await.is_some() {
            if asks.send(Ask::Stop).await.is_err() {
                break;
            }
        }
    });
    let ctx = Arc::new(ApiContext::new(handle, config.path.clone(), shutdown_tx));
    let mut servers = Vec::new();
    let addr = address(config, instance);
    let local =
        serve_local(&addr, ctx.clone()).map_err(|e| serve_failure(&addr.to_string(), &e))?;
    servers.push(local);
    if let Some(api) = config.warden.api {
        let token = match &config.warden.api_token {
            Some(t) => t.clone(),
            None => generated_token(config)?,
        };
        let tcp = server::serve_tcp(api, token, ctx)
            .await
            .map_err(|e| serve_failure(&api.to_string(), &e))?;
        servers.push(tcp);
    }
    Ok(Running {
        _servers: servers,
        _forward: forward,
    })
}

#[cfg(unix)]
fn serve_local(addr: &Address, ctx: Arc<ApiContext>) -> Result<ApiServer, ServeError> {
    let Address::Socket(path) = addr;
    server::serve_unix(path, ctx)
}

#[cfg(windows)]
fn serve_local(addr: &Address, ctx: Arc<ApiContext>) -> Result<ApiServer, ServeError> {
    let Address::Pipe(name) = addr;
    server::serve_pipe(name, ctx)
}

fn serve_failure(what: &str, e: &ServeError) -> Failure {
    Failure::failed(format!(
        "cannot serve the control API on {what}: {}",
        crate::commands::chain(e)
    ))
}

/// A loopback `api` without a configured token still needs one: make a random one, kept in
/// `<state_dir>/api.token` (readable by the owner only).
fn generated_token(config: &Config) -> Result<Secret, Failure> {
    let path = config.warden.state_dir.join("api.token");
    let token = warden_core::util::random_token()
        .map_err(|e| Failure::failed(format!("cannot make an API token: {e}")))?;
    warden_core::state::write_private(&path, token.as_bytes())
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))?;
    eprintln!("warden: the TCP API token is in {}", path.display());
    Ok(Secret(token))
}
