//! Acting on services and on the config: the action names of
//! `POST /v1/services/{name}/{action}` and the answer of `POST /v1/reload`.

use serde::{Deserialize, Serialize};

/// Start, stop or restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Start, Action::Stop, Action::Restart];

    /// The path segment: `start`, `stop`, `restart`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
        }
    }

    /// The inverse of [`Action::name`].
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == s)
    }
}

/// What a reload did (`POST /v1/reload`, 200).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    /// Changed services that were not running (stopped by hand, exited, failed): they take
    /// the new config at their next start.
    #[serde(default)]
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    /// `[warden]` settings that changed but take effect only when warden restarts.
    pub needs_warden_restart: Vec<String>,
    /// Services whose (re)start failed, with the reason.
    pub errors: Vec<String>,
    /// What is wrong with the new config but did not stop the reload (a program not found),
    /// one `FILE:LINE:COL: warning: ...` line each. Empty in an older warden's answer.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl ReloadReport {
    /// `added a; restarted b; removed c; 2 unchanged`: the line `warden reload` prints and
    /// warden logs.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (what, names) in [
            ("added", &self.added),
            ("restarted", &self.restarted),
            ("removed", &self.removed),
        ] {
            if !names.is_empty() {
                parts.push(format!("{what} {}", names.join(", ")));
            }
        }
        if !self.updated.is_empty() {
            parts.push(format!(
                "updated {} (not running: the new config applies at the next start)",
                self.updated.join(", ")
            ));
        }
        parts.push(format!("{} unchanged", self.unchanged.len()));
        if !self.needs_warden_restart.is_empty() {
            parts.push(format!(
                "changes to {} take effect when warden restarts",
                self.needs_warden_restart.join(", ")
            ));
        }
        for e in &self.errors {
            parts.push(format!("error: {e}"));
        }
        parts.join("; ")
    }
}

/// `POST /v1/rotate` (every service) and `POST /v1/services/{name}/rotate`, 200: what
/// `warden rotate` did to each log file, in config order, stdout's file before stderr's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateReport {
    pub files: Vec<RotatedFile>,
}

/// One log file of a [`RotateReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedFile {
    pub service: String,
    /// The file warden writes (it starts empty after a rotation).
    pub path: String,
    pub outcome: RotateOutcome,
    /// `rotated`: where the old content went (`PATH.1`, or `PATH.1.gz`, written in the
    /// background, with `compress = true`).
    pub to: Option<String>,
    /// `failed`: why.
    pub error: Option<String>,
}

/// What became of one log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotateOutcome {
    /// Moved aside; a fresh file was opened.
    Rotated,
    /// Left as it is: there was nothing in it.
    Empty,
    /// Not rotated (see `error`); the service's output is not lost.
    Failed,
}

impl RotateReport {
    /// Files that could not be rotated.
    pub fn failed(&self) -> impl Iterator<Item = &RotatedFile> {
        self.files
            .iter()
            .filter(|f| f.outcome == RotateOutcome::Failed)
    }
}

/// `POST /v1/shutdown`, 202.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownAnswer {
    pub shutting_down: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
        assert_eq!(Action::parse("kill"), None);
    }

    #[test]
    fn reload_summary_lists_what_changed() {
        let r = ReloadReport {
            added: vec!["a".into()],
            restarted: vec!["b".into(), "c".into()],
            unchanged: vec!["d".into()],
            errors: vec!["b: cannot start".into()],
            ..ReloadReport::default()
        };
        assert_eq!(
            r.summary(),
            "added a; restarted b, c; 1 unchanged; error: b: cannot start"
        );
    }
}
