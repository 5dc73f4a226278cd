//! `GET /health`: warden's own verdict for monitors and load balancers. It tells names and
//! states only: no pid, command, reason, log line or figure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::status::{Health, State};

/// `status` of `GET /health`: 200 with `healthy`, 503 with `unhealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Healthy,
    Unhealthy,
}

/// One service in `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub state: State,
    /// `null` without a health check.
    pub health: Option<Health>,
    /// Whether it counts for the verdict: not with `optional = true`, when stopped (by hand
    /// or `autostart = false`), or when a one-shot exited with a success code.
    pub counted: bool,
}

/// The body of `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    pub status: Verdict,
    pub uptime_ms: u64,
    /// Every service by name.
    pub services: BTreeMap<String, ServiceHealth>,
}
