//! What a probe's result means: the pure function of `retries`, `start_period` and
//! `success_threshold`, without a clock (the caller passes how long the run has lasted).

use std::time::Duration;

use crate::config::Check;
use crate::proto::Health;

/// The health of one run as its probes tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    pub health: Health,
    /// Consecutive failures that counted.
    pub failures: u32,
    /// Consecutive successes.
    pub successes: u32,
    /// A probe passed in this run (ends `start_period` early, as in docker).
    pub passed_once: bool,
    /// The last failure, in words (for the reason of a restart).
    pub last_error: Option<String>,
}

/// A change of health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// `success_threshold` consecutive passes.
    Healthy,
    /// `retries` consecutive failures that counted.
    Unhealthy,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            health: Health::Unknown,
            failures: 0,
            successes: 0,
            passed_once: false,
            last_error: None,
        }
    }
}

impl Tracker {
    /// Record one result of `check`, `ran` after the run started; the change it makes, if
    /// any. A failure within `start_period`, before any pass, does not count.
    pub fn record(
        &mut self,
        check: &Check,
        ran: Duration,
        result: Result<(), String>,
    ) -> Option<Transition> {
        match result {
            Ok(()) => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                self.passed_once = true;
                if self.successes >= check.success_threshold && self.health != Health::Healthy {
                    self.health = Health::Healthy;
                    return Some(Transition::Healthy);
                }
                None
            }
            Err(e) => {
                self.successes = 0;
                self.last_error = Some(e);
                if ran < check.start_period && !self.passed_once {
                    return None;
                }
                self.failures = self.failures.saturating_add(1);
                if self.failures >= check.retries && self.health != Health::Unhealthy {
                    self.health = Health::Unhealthy;
                    return Some(Transition::Unhealthy);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Probe;

    fn check(retries: u32, start_period: u64, success_threshold: u32) -> Check {
        Check {
            probe: Probe::Tcp("h:1".into()),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries,
            start_period: Duration::from_secs(start_period),
            success_threshold,
        }
    }

    fn fail() -> Result<(), String> {
        Err("refused".into())
    }

    const T: Duration = Duration::from_secs(100);

    #[test]
    fn unknown_until_the_first_result_then_healthy_on_a_pass() {
        let c = check(3, 0, 1);
        let mut t = Tracker::default();
        assert_eq!(t.health, Health::Unknown);
        assert_eq!(t.record(&c, T, Ok(())), Some(Transition::Healthy));
        assert_eq!(t.record(&c, T, Ok(())), None, "no change, no transition");
    }

    #[test]
    fn retries_consecutive_failures_make_it_unhealthy_and_a_pass_resets_them() {
        let c = check(3, 0, 1);
        let mut t = Tracker::default();
        assert_eq!(t.record(&c, T, fail()), None);
        assert_eq!(t.record(&c, T, fail()), None);
        assert_eq!(t.record(&c, T, Ok(())), Some(Transition::Healthy));
        assert_eq!(t.record(&c, T, fail()), None);
        assert_eq!(t.record(&c, T, fail()), None);
        assert_eq!(t.record(&c, T, fail()), Some(Transition::Unhealthy));
        assert_eq!(t.last_error.as_deref(), Some("refused"));
        assert_eq!(t.record(&c, T, fail()), None, "unhealthy once");
    }

    #[test]
    fn failures_during_start_period_do_not_count_until_a_pass() {
        let c = check(1, 10, 1);
        let mut t = Tracker::default();
        for s in 0..10 {
            assert_eq!(
                t.record(&c, Duration::from_secs(s), fail()),
                None,
                "at {s}s"
            );
        }
        assert_eq!(t.health, Health::Unknown);
        assert_eq!(
            t.record(&c, Duration::from_secs(10), fail()),
            Some(Transition::Unhealthy)
        );

        let mut t = Tracker::default();
        assert_eq!(
            t.record(&c, Duration::from_secs(1), Ok(())),
            Some(Transition::Healthy)
        );
        assert_eq!(
            t.record(&c, Duration::from_secs(2), fail()),
            Some(Transition::Unhealthy),
            "a pass ends the start period"
        );
    }

    #[test]
    fn success_threshold_needs_consecutive_passes() {
        let c = check(1, 0, 3);
        let mut t = Tracker::default();
        assert_eq!(t.record(&c, T, Ok(())), None);
        assert_eq!(t.record(&c, T, Ok(())), None);
        assert_eq!(t.record(&c, T, fail()), Some(Transition::Unhealthy));
        assert_eq!(t.record(&c, T, Ok(())), None);
        assert_eq!(t.record(&c, T, Ok(())), None);
        assert_eq!(t.record(&c, T, Ok(())), Some(Transition::Healthy));
    }
}
