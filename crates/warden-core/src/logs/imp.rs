//! The log writer and pumps. (Skeleton: replaced by the real one.)

use std::sync::Arc;
use std::time::SystemTime;

use tokio::io::AsyncRead;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::Stream;
use crate::config::LogConfig;

/// Called with a message to show on warden's own stderr (a write failed, writing works again).
pub type Reporter = Arc<dyn Fn(&str) + Send + Sync>;

/// One line of a service's output, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Increases by one for each line of this service, both streams together.
    pub seq: u64,
    pub stream: Stream,
    pub at: SystemTime,
    pub bytes: Vec<u8>,
}

/// The logs of one service: its files, its in-memory tail, its followers.
pub struct ServiceLogs {
    _p: (),
}

impl ServiceLogs {
    /// Open (create) the service's log files per `cfg`; keep the last `tail_lines` lines in
    /// memory.
    pub fn open(
        _service: &str,
        _cfg: &LogConfig,
        _reporter: Reporter,
    ) -> std::io::Result<Arc<ServiceLogs>> {
        Ok(Arc::new(ServiceLogs { _p: () }))
    }

    /// Apply a changed `[services.NAME.log]` (reload): later lines follow the new settings.
    pub fn reconfigure(&self, _cfg: &LogConfig) -> std::io::Result<()> {
        Ok(())
    }

    /// Drain `pipe` until EOF into this service's logs as `stream`.
    pub fn pump<R>(self: &Arc<Self>, pipe: R, _stream: Stream) -> JoinHandle<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        tokio::spawn(async move { drop(pipe) })
    }

    /// The last `n` lines, oldest first, of one stream or both.
    pub fn tail(&self, _n: usize, _stream: Option<Stream>) -> Vec<LogLine> {
        Vec::new()
    }

    /// Every line from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        broadcast::channel(1).1
    }
}
