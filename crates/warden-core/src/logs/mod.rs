//! Log capture: a pump per output stream reads the child's pipe, cuts whole lines and hands
//! them to the service's writer, which appends them to files with size rotation (gzip off
//! the hot path), optional timestamps, a dropped-bytes marker after a failed write, and an
//! in-memory tail for `warden logs`.
//!
//! Contract used by the engine:
//! - [`ServiceLogs::open`] once per service (and [`ServiceLogs::reconfigure`] on reload);
//! - [`ServiceLogs::pump`] for each pipe of each run of the child; the pump ends at EOF,
//!   after writing a last line that had no newline;
//! - [`ServiceLogs::tail`] and [`ServiceLogs::subscribe`] for the control API and `--attach`.

pub mod encoding;
mod imp;
mod scan;
mod tail;
mod writer;

pub use imp::{LogLine, Reporter, ServiceLogs};

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    #[serde(rename = "out")]
    Out,
    #[serde(rename = "err")]
    Err,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Out => "out",
            Stream::Err => "err",
        }
    }
}
