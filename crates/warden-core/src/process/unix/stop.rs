//! The graceful steps of a stop on Unix: one signal to the tree. Ctrl-C and `WM_CLOSE` are
//! Windows steps and do not apply here.

use std::io;

use super::child::Child;
use crate::model::StopMethod;
use crate::process::{Signal, StepOutcome, StopStep};

/// `[Signal(stop_signal)]`: `stop_method` is a Windows setting.
pub(crate) fn stop_steps(stop_signal: Signal, _stop_method: &[StopMethod]) -> Vec<StopStep> {
    vec![StopStep::Signal(stop_signal)]
}

impl Child {
    /// Apply one graceful step of a stop (see [`crate::process::stop_steps`]):
    /// [`StopStep::Signal`] sends the signal as [`Child::signal`] does (a group that is gone
    /// already counts as applied); [`StopStep::CtrlC`] and [`StopStep::WmClose`] are
    /// [`StepOutcome::NotApplicable`]. An error means the signal reached no process.
    #[allow(
        clippy::unused_async,
        reason = "the same signature as on Windows, where the Ctrl-C step waits for a helper"
    )]
    pub async fn apply_stop_step(&self, step: StopStep) -> io::Result<StepOutcome> {
        match step {
            StopStep::Signal(sig) => self.signal(sig).map(|()| StepOutcome::Applied),
            StopStep::CtrlC | StopStep::WmClose => Ok(StepOutcome::NotApplicable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_stops_with_the_stop_signal_whatever_stop_method_says() {
        assert_eq!(
            stop_steps(
                Signal::Int,
                &[
                    StopMethod::CtrlC,
                    StopMethod::WmClose,
                    StopMethod::Terminate
                ]
            ),
            [StopStep::Signal(Signal::Int)]
        );
        assert_eq!(
            stop_steps(Signal::Term, &[]),
            [StopStep::Signal(Signal::Term)]
        );
    }
}
