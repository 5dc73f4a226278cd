//! Health: probes (http, tcp, exec; `log_line` is read by the engine from the output), the
//! pure decision of what their results mean ([`Tracker`]), and the seam through which the
//! engine runs them ([`Prober`]: [`OsProber`] in production, a fake in the engine's tests).
//!
//! A probe reports; it never acts. Its timeout is enforced on the whole probe (resolving,
//! connecting, writing, reading), so a peer that accepts and never answers fails it in time.

mod decide;
mod http;

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

pub use crate::proto::Health;
pub use decide::{Tracker, Transition};

use crate::config::Probe;
use crate::process::{self, Output, SpawnSpec};
use crate::util::fmt_duration;

/// A boxed probe: `Err` carries what failed, in words.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// How an `exec` probe runs: like the service's command (its cwd and environment).
#[derive(Debug, Clone, Default)]
pub struct ExecEnv {
    pub cwd: PathBuf,
    pub clear_env: bool,
    pub env: Vec<(OsString, OsString)>,
    /// The service's user, group and limits: a probe never runs as root for a service that
    /// does not.
    pub credentials: process::Credentials,
}

/// Runs one probe to its end or its timeout.
pub trait Prober: Send + Sync + 'static {
    /// `log_line` is not run here (the engine matches output lines): it fails at once.
    fn probe<'a>(
        &'a self,
        probe: &'a Probe,
        timeout: Duration,
        exec: &'a ExecEnv,
    ) -> ProbeFuture<'a>;

    /// A resource sample of the tree of `pid` (`None`: not sampled on this OS).
    fn sample(&self, pid: u32) -> Option<process::TreeSample> {
        process::sample_tree(pid)
    }
}

/// The real probes.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsProber;

impl Prober for OsProber {
    fn probe<'a>(
        &'a self,
        probe: &'a Probe,
        timeout: Duration,
        exec: &'a ExecEnv,
    ) -> ProbeFuture<'a> {
        Box::pin(run(probe, timeout, exec))
    }
}

/// Run `probe` with its `timeout` enforced on the whole of it.
pub async fn run(probe: &Probe, timeout: Duration, exec: &ExecEnv) -> Result<(), String> {
    let timed_out = || {
        format!(
            "{}: no answer within {}",
            probe.kind(),
            fmt_duration(timeout)
        )
    };
    match probe {
        Probe::Http(h) => tokio::time::timeout(timeout, http::check(h))
            .await
            .unwrap_or_else(|_| Err(timed_out())),
        Probe::Tcp(addr) => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("tcp {addr}: {e}")),
                Err(_) => Err(timed_out()),
            }
        }
        Probe::Exec(argv) => run_exec(argv, timeout, exec).await,
        Probe::LogLine(_) => Err("log_line: no matching line yet".into()),
    }
}

/// Spawn `argv` like a service command (own group, no shell), wait up to `timeout`, kill the
/// whole tree when it does not end in time.
async fn run_exec(argv: &[String], timeout: Duration, exec: &ExecEnv) -> Result<(), String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("exec: empty command".into());
    };
    let spec = SpawnSpec {
        program: program.into(),
        args: args.iter().map(Into::into).collect(),
        cwd: exec.cwd.clone(),
        clear_env: exec.clear_env,
        env: exec.env.clone(),
        output: Output::Null,
        credentials: exec.credentials.clone(),
        confinement: None,
    };
    let mut child = KillOnDrop(process::spawn(&spec).map_err(|e| format!("exec: {e}"))?);
    let Ok(status) = tokio::time::timeout(timeout, child.0.wait()).await else {
        let _ = child.0.kill_tree();
        // Reaped by warden's reaper; its tree is gone after the kill.
        let _ = tokio::time::timeout(Duration::from_secs(5), child.0.wait()).await;
        let _ = child.0.wait_tree_gone(Duration::from_secs(5)).await;
        return Err(format!("exec: no exit within {}", fmt_duration(timeout)));
    };
    // What it left in its group goes too (on the guard's drop).
    drop(child);
    match status {
        process::ExitStatus::Code(0) => Ok(()),
        other => Err(format!("exec: exited with {other}")),
    }
}

/// An exec probe's process: its whole tree is killed when the probe ends, however it ends.
/// The engine bounds the whole probe by the same timeout and drops it when that fires
/// first, or when the run ends (its probe task aborted): without this guard the probe's
/// process lived on, and a hanging probe piled up one more process per interval (found by
/// the chaos suite's scenario 10).
struct KillOnDrop(process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill_tree();
    }
}
