//! The control API: the HTTP server over the engine ([`server`]), the transports it is
//! served on ([`transport`]), and the client the CLI uses ([`client`]). The JSON contract
//! itself is [`crate::proto`].

pub mod client;
pub mod server;
pub mod transport;

#[cfg(windows)]
pub use transport::pipe;
