//! warden's engine: a typed config, a supervisor that owns one task per service, the portable
//! process layer, log capture with rotation, and the control API served to the CLI.
//!
//! The binary crate (`warden`) is a thin CLI over this library.

pub mod api;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod health;
pub mod logs;
pub mod model;
pub mod policy;
pub mod process;
pub mod proto;
pub mod state;
pub mod util;
