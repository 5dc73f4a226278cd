//! `warden up`: supervise the services in the foreground (or detached with `-d`). Under
//! systemd (`Type=notify`), it also tells systemd when it is ready and stopping, and pings
//! its watchdog (`os::unix::notify`).

use tokio::sync::mpsc;

use warden_core::daemon::{self, Options};

use crate::Failure;
use crate::cli::ConfigArg;

/// A callback of the daemon's life cycle (`Options::on_ready`, `on_stopping`).
type Hook = Box<dyn FnOnce() + Send>;

pub fn run(arg: &ConfigArg, attach: bool) -> Result<(), Failure> {
    // SAFETY: first thing, before any thread (the runtime's) exists.
    #[cfg(unix)]
    let host = unsafe { crate::os::unix::notify::Host::take_from_env() };
    let config = super::load_config(arg)?;
    let rt = super::runtime()?;
    let result = rt.block_on(async move {
        let (tx, rx) = mpsc::channel(8);
        daemon::forward_signals(tx.clone())
            .map_err(|e| Failure::failed(format!("cannot listen for signals: {e}")))?;
        #[cfg(unix)]
        let (on_ready, on_stopping): (Hook, Hook) = {
            host.spawn_watchdog();
            let count = config.services.len();
            let ready = host.clone();
            (
                Box::new(move || ready.ready(count)),
                Box::new(move || host.stopping()),
            )
        };
        #[cfg(not(unix))]
        let (on_ready, on_stopping): (Hook, Hook) = (Box::new(|| {}), Box::new(|| {}));
        let opts = Options {
            attach,
            interactive: std::io::IsTerminal::is_terminal(&std::io::stdin()),
            requests: rx,
            requests_tx: tx,
            on_ready,
            instance: None,
            on_stopping,
        };
        daemon::supervise(config, opts)
            .await
            .map_err(|e| Failure::failed(super::chain(&e)))
    });
    // Everything warden started is gone by now; do not wait for idle runtime threads.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}
