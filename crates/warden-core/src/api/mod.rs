//! The control API: the HTTP server over the engine, and the client the CLI uses. The JSON
//! contract itself is [`crate::proto`].

pub mod client;
#[cfg(windows)]
pub mod pipe;
pub mod server;
