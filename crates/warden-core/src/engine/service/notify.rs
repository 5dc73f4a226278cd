//! `notify = true`: the systemd notify protocol. Before each start warden binds
//! `<state_dir>/notify/NAME.sock` and gives the child `NOTIFY_SOCKET` (and, with `watchdog`,
//! `WATCHDOG_USEC`). A task per run reads the datagrams: a message from a process outside the
//! service's tree (Linux: by the sender's credentials) is ignored; `READY=1` makes the
//! service up, `WATCHDOG=1` pings, `WATCHDOG_USEC=` changes the watchdog, `STATUS=`,
//! `STOPPING=1`, `MAINPID=` and `EXTEND_TIMEOUT_USEC=` are taken note of. No ping for
//! `watchdog` ends the run with the reason `watchdog timeout`.

// On Windows `notify` is a config error: the types stand, nothing makes them.
#![cfg_attr(
    not(unix),
    allow(dead_code, clippy::unnecessary_wraps, clippy::unused_async)
)]

#[cfg(unix)]
pub(super) use imp::*;

/// A bound notify socket (none exists on Windows, where `notify` is a config error).
#[cfg(unix)]
pub(super) type Socket = crate::process::NotifySocket;
#[cfg(not(unix))]
pub(super) type Socket = std::convert::Infallible;

#[cfg(not(unix))]
pub(super) fn bind(
    _cfg: &crate::config::ServiceConfig,
    _state_dir: &std::path::Path,
    _spec: &mut crate::process::SpawnSpec,
) -> Result<Option<Socket>, String> {
    Ok(None)
}

#[cfg(not(unix))]
pub(super) async fn listen(
    sock: Socket,
    _pid: u32,
    _watchdog: Option<std::time::Duration>,
    _tx: super::probe::ResultTx,
) {
    match sock {}
}

/// What the notify task tells the service task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Note {
    Ready,
    Status(String),
    Stopping,
    WatchdogTimeout,
}

/// Parse one datagram: `KEY=VALUE` lines.
pub(super) fn parse(msg: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(msg)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(unix)]
mod imp {
    use std::ffi::OsString;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::super::probe::ProbeResult;
    use super::{Note, parse};
    use crate::config::ServiceConfig;
    use crate::process::{NotifySocket, SpawnSpec};
    use crate::state::layout::Layout;

    /// Bind the socket of `cfg` (when `notify = true`) and add its variables to `spec`.
    pub(in super::super) fn bind(
        cfg: &ServiceConfig,
        state_dir: &std::path::Path,
        spec: &mut SpawnSpec,
    ) -> Result<Option<NotifySocket>, String> {
        if !cfg.health.notify {
            return Ok(None);
        }
        let path = Layout::new(state_dir).notify_socket(&cfg.name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("notify: cannot create {}: {e}", dir.display()))?;
        }
        let sock = NotifySocket::bind(&path)
            .map_err(|e| format!("notify: cannot bind {}: {e}", path.display()))?;
        spec.env
            .push(("NOTIFY_SOCKET".into(), OsString::from(path.as_os_str())));
        if let Some(w) = cfg.health.watchdog {
            spec.env
                .push(("WATCHDOG_USEC".into(), w.as_micros().to_string().into()));
        }
        Ok(Some(sock))
    }

    /// Read the messages of the run of `pid` until the run ends (the task is aborted) or the
    /// watchdog expires.
    pub(in super::super) async fn listen(
        sock: NotifySocket,
        pid: u32,
        mut watchdog: Option<Duration>,
        tx: crate::engine::service::probe::ResultTx,
    ) {
        let mut last_ping = Instant::now();
        loop {
            let deadline = watchdog.map(|w| last_ping + w);
            let got = tokio::select! {
                r = sock.recv() => r,
                () = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let _ = tx.send(Box::new(ProbeResult::Notify(Note::WatchdogTimeout))).await;
                    return;
                }
            };
            let Ok((msg, sender)) = got else {
                continue;
            };
            if sender.is_some_and(|s| !crate::process::in_tree(s, pid)) {
                continue; // a stranger's message
            }
            for (key, value) in parse(&msg) {
                let note = match key.as_str() {
                    "READY" if value == "1" => Some(Note::Ready),
                    "STATUS" => Some(Note::Status(value)),
                    "STOPPING" if value == "1" => Some(Note::Stopping),
                    "WATCHDOG" if value == "1" => {
                        last_ping = Instant::now();
                        None
                    }
                    "WATCHDOG" if value == "trigger" => Some(Note::WatchdogTimeout),
                    "WATCHDOG_USEC" => {
                        if let Ok(us) = value.parse::<u64>() {
                            watchdog = (us > 0).then(|| Duration::from_micros(us));
                            last_ping = Instant::now();
                        }
                        None
                    }
                    // MAINPID, EXTEND_TIMEOUT_USEC: noted, nothing to do yet.
                    _ => None,
                };
                if let Some(note) = note {
                    let end = note == Note::WatchdogTimeout;
                    if tx.send(Box::new(ProbeResult::Notify(note))).await.is_err() || end {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_key_value_lines() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=Ready to accept connections\nbogus\n"),
            vec![
                ("READY".to_owned(), "1".to_owned()),
                (
                    "STATUS".to_owned(),
                    "Ready to accept connections".to_owned()
                )
            ]
        );
    }
}
