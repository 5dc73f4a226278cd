//! The whole JSON contract of the control API, shared by the server and the client: one type
//! per answer and one for every error. Fields may be added; none is ever renamed. Plain data
//! over [`crate::model`]: no logic, no dependency on the engine.

pub mod config;
pub mod control;
pub mod error;
pub mod health;
pub mod logs;
pub mod status;

pub use control::{Action, ReloadReport, RotateOutcome, RotateReport, RotatedFile, ShutdownAnswer};
pub use error::{ErrorBody, ErrorDetail};
pub use health::{HealthReport, ServiceHealth, Verdict};
pub use logs::{FollowItem, LogLineJson, LogsResponse};
pub use status::{Health, LastExit, ServiceStatus, State, StatusReport, Tracking, WardenInfo};
