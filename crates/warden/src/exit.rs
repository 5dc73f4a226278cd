//! warden's exit codes, the same for every command. Scripts rely on them; never renumber.

/// Done.
pub const OK: u8 = 0;
/// The operation failed (a service did not start, warden could not supervise, ...).
pub const FAILED: u8 = 1;
/// The command line or the config is wrong; nothing was changed.
pub const USAGE: u8 = 2;
/// warden is not running (nothing answers on its control endpoint).
pub const NOT_RUNNING: u8 = 3;
