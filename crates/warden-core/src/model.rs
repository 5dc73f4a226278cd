//! Portable value types that every layer shares: what a config names, what a process layer
//! sends, what the API reports. No dependency on any other module of warden-core.

use std::fmt;

/// A signal that warden can send to a service, named as in the config (`stop_signal`).
///
/// On Unix each variant is the signal of the same name. On Windows signals do not exist:
/// `stop_signal` is rejected by the config there, and [`Child::signal`] only supports
/// [`Signal::Kill`], which terminates the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Int,
    Term,
    Hup,
    Quit,
    Kill,
    Usr1,
    Usr2,
}

impl Signal {
    pub const ALL: [Signal; 7] = [
        Signal::Int,
        Signal::Term,
        Signal::Hup,
        Signal::Quit,
        Signal::Kill,
        Signal::Usr1,
        Signal::Usr2,
    ];

    /// The config name: `"TERM"`, `"INT"`, ...
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "INT",
            Signal::Term => "TERM",
            Signal::Hup => "HUP",
            Signal::Quit => "QUIT",
            Signal::Kill => "KILL",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
        }
    }

    /// Parse `"TERM"`, `"SIGTERM"`, `"term"`.
    pub fn parse(s: &str) -> Option<Signal> {
        let up = s.trim().to_ascii_uppercase();
        let bare = up.strip_prefix("SIG").unwrap_or(&up);
        Signal::ALL.into_iter().find(|sig| sig.name() == bare)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

/// What happens after the main process exits (`restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The config name: `"always"`, `"on-failure"`, `"never"`.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::Always => "always",
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Never => "never",
        }
    }
}

/// What an exit of the main process leads to, per exit code (`exit_actions`, like NSSM's
/// `AppExit`). It overrides `restart` and `success_codes` for that code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitAction {
    /// Restart, with the backoff and start limit of the restart policy.
    Restart,
    /// Stay exited.
    Exit,
    /// Stop every service and end warden with a failure code, so that the service manager
    /// above warden (the SCM's recovery, systemd's `Restart=`, a container runtime) sees it.
    StopWarden,
}

impl ExitAction {
    /// The config name: `"restart"`, `"exit"`, `"stop-warden"`.
    pub fn name(self) -> &'static str {
        match self {
            ExitAction::Restart => "restart",
            ExitAction::Exit => "exit",
            ExitAction::StopWarden => "stop-warden",
        }
    }
}

/// `exit_actions = { 0 = "exit", 2 = "stop-warden", default = "restart" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitActions {
    /// Per exit code.
    pub codes: Vec<(i32, ExitAction)>,
    /// For every other code, and for a death by signal.
    pub default: Option<ExitAction>,
}

impl ExitActions {
    /// The action for an exit with `code` (`None`: killed by a signal); `None` when the
    /// restart policy decides.
    pub fn for_code(&self, code: Option<i32>) -> Option<ExitAction> {
        code.and_then(|c| self.codes.iter().find(|(k, _)| *k == c).map(|(_, a)| *a))
            .or(self.default)
    }
}

/// What warden does once no service will run again (`[warden] when_all_ended`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WhenAllEnded {
    /// Keep running (and answering) with nothing to supervise.
    #[default]
    Keep,
    /// Stop: warden exits (a Windows service stops), with a failure code if any failed.
    Stop,
}

/// One graceful step of stopping a process on Windows (`stop_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMethod {
    CtrlC,
    WmClose,
    Terminate,
}

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
