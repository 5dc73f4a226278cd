//! The control API: the status types (the JSON contract shared by the daemon and the CLI).

pub mod client;
pub mod config_view;
#[cfg(windows)]
pub mod pipe;
pub mod server;
pub mod types;
pub mod wire;
