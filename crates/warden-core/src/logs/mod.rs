//! Log capture: a pump per output stream reads the child's pipe, cuts whole lines and hands
//! them to the service's writer, which appends them to files with size rotation (gzip off
//! the hot path), optional timestamps, a dropped-bytes marker after a failed write, and an
//! in-memory tail for `warden logs`.
//!
//! Contract used by the engine:
//! - [`ServiceLogs::open`] once per service (and [`ServiceLogs::reconfigure`] on reload);
//! - [`ServiceLogs::pump`] for each pipe of each run of the child; the pump ends at EOF,
//!   after writing a last line that had no newline;
//! - [`ServiceLogs::tail`] and [`ServiceLogs::subscribe`] for the control API and `--attach`;
//! - [`ServiceLogs::rotate`] for `warden rotate` (`POST /v1/rotate`).

mod capture;
pub mod encoding;
mod leftovers;
mod own_log;
mod scan;
mod settings;
mod tail;
mod writer;

pub use capture::{LogCounts, LogLine, Reporter, ServiceLogs};
pub use own_log::OwnLog;
pub use settings::{LogConfig, StderrTarget};
pub use writer::Rotation;

pub use crate::model::Stream;
