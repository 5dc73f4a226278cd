//! `warden up`: supervise the services in the foreground (or detached with `-d`).

use tokio::sync::mpsc;

use warden_core::daemon::{self, Options};

use crate::Failure;
use crate::cli::ConfigArg;

pub fn run(arg: &ConfigArg, attach: bool) -> Result<(), Failure> {
    let config = super::load_config(arg)?;
    let rt = super::runtime()?;
    let result = rt.block_on(async move {
        let (tx, rx) = mpsc::channel(8);
        daemon::forward_signals(tx.clone())
            .map_err(|e| Failure::failed(format!("cannot listen for signals: {e}")))?;
        let opts = Options {
            attach,
            interactive: std::io::IsTerminal::is_terminal(&std::io::stdin()),
            requests: rx,
            requests_tx: tx,
            on_ready: Box::new(|| {}),
            instance: None,
            on_stopping: Box::new(|| {}),
        };
        daemon::supervise(config, opts)
            .await
            .map_err(|e| Failure::failed(super::chain(&e)))
    });
    // Everything warden started is gone by now; do not wait for idle runtime threads.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}
