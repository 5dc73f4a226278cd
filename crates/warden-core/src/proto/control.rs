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
