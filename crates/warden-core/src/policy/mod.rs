//! Restart decisions as pure functions of the config, the history and the event.
//!
//! Nothing here touches a process or a clock: the caller passes `now` and a random number,
//! so every rule is unit-tested directly.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{Backoff, RestartPolicy, StartLimit};
use crate::process::ExitStatus;

/// Does `policy` want a restart after the main process ended with `status`?
///
/// A spawn error is passed as `None` and counts as a failure.
pub fn wants_restart(
    policy: RestartPolicy,
    success_codes: &[i32],
    status: Option<ExitStatus>,
) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::Never => false,
        RestartPolicy::OnFailure => !is_success(success_codes, status),
    }
}

/// Is this end a success in the sense of `success_codes`? A signal never is.
pub fn is_success(success_codes: &[i32], status: Option<ExitStatus>) -> bool {
    matches!(status, Some(ExitStatus::Code(c)) if success_codes.contains(&c))
}

/// The delay before the `n`-th consecutive restart (`n >= 1`):
/// `initial × factor^(n-1)`, capped at `max`, then scaled by `1 + jitter × (2r − 1)` where
/// `r` in `[0, 1)` is the caller's random number.
///
/// Total for any input (the config bounds the values, but this never panics even beyond
/// them): an infinite or NaN product is `max`, a result too big for a `Duration` is `max`.
pub fn backoff_delay(backoff: &Backoff, n: u32, r: f64) -> Duration {
    if backoff.initial.is_zero() {
        return Duration::ZERO;
    }
    let exp = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
    let max = backoff.max.as_secs_f64();
    let base = backoff.initial.as_secs_f64() * backoff.factor.powi(exp);
    let capped = if base.is_finite() { base.min(max) } else { max };
    let jitter = if backoff.jitter.is_finite() {
        backoff.jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let r = if r.is_finite() {
        r.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let secs = (capped * (1.0 + jitter * (2.0 * r - 1.0))).max(0.0);
    Duration::try_from_secs_f64(secs).unwrap_or(backoff.max)
}

/// The memory a service keeps between runs to decide on restarts.
#[derive(Debug, Clone, Default)]
pub struct RestartHistory {
    /// Consecutive restarts since the last run that lasted `reset_after`.
    pub consecutive: u32,
    /// Start times within the start-limit window, oldest first.
    pub starts: VecDeque<Instant>,
}

/// What to do about a start that is about to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartVerdict {
    Go,
    /// More than `count` starts within `window`: the service fails and stays failed.
    LimitHit {
        count: u32,
        window: Duration,
    },
}

impl RestartHistory {
    /// Record a start at `now` and say whether the start limit allows it.
    pub fn record_start(&mut self, limit: Option<StartLimit>, now: Instant) -> StartVerdict {
        let Some(limit) = limit else {
            return StartVerdict::Go;
        };
        while let Some(&first) = self.starts.front() {
            if now.saturating_duration_since(first) >= limit.window {
                self.starts.pop_front();
            } else {
                break;
            }
        }
        self.starts.push_back(now);
        if self.starts.len() > limit.count as usize {
            StartVerdict::LimitHit {
                count: limit.count,
                window: limit.window,
            }
        } else {
            StartVerdict::Go
        }
    }

    /// Forget the history: a start by hand begins anew.
    pub fn reset(&mut self) {
        self.consecutive = 0;
        self.starts.clear();
    }
}

/// What follows the end of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterExit {
    /// Start again after `delay` (the `attempt`-th consecutive restart).
    Restart { delay: Duration, attempt: u32 },
    /// The policy does not restart: the service rests in `exited`, or in `failed` when the
    /// program could not even be started.
    Rest { failed: bool },
}

/// Decide what follows a run that ended with `status` (None: the spawn failed) after
/// lasting `ran` (zero for a spawn error).
pub fn after_exit(
    policy: RestartPolicy,
    success_codes: &[i32],
    backoff: &Backoff,
    history: &mut RestartHistory,
    status: Option<ExitStatus>,
    ran: Duration,
    r: f64,
) -> AfterExit {
    if ran >= backoff.reset_after {
        history.consecutive = 0;
    }
    if !wants_restart(policy, success_codes, status) {
        return AfterExit::Rest {
            failed: status.is_none(),
        };
    }
    history.consecutive = history.consecutive.saturating_add(1);
    AfterExit::Restart {
        delay: backoff_delay(backoff, history.consecutive, r),
        attempt: history.consecutive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn policies_and_success_codes() {
        let ok = Some(ExitStatus::Code(0));
        let three = Some(ExitStatus::Code(3));
        let sig = Some(ExitStatus::Signal(9));
        assert!(wants_restart(RestartPolicy::Always, &[0], ok));
        assert!(!wants_restart(RestartPolicy::Never, &[0], three));
        assert!(!wants_restart(RestartPolicy::OnFailure, &[0], ok));
        assert!(wants_restart(RestartPolicy::OnFailure, &[0], three));
        assert!(!wants_restart(RestartPolicy::OnFailure, &[0, 3], three));
        assert!(wants_restart(RestartPolicy::OnFailure, &[0], sig));
        assert!(
            wants_restart(RestartPolicy::OnFailure, &[0], None),
            "a spawn error is a failure"
        );
    }

    #[test]
    fn backoff_grows_and_caps_without_jitter() {
        let b = Backoff {
            initial: ms(100),
            max: ms(1000),
            factor: 2.0,
            jitter: 0.0,
            reset_after: ms(30_000),
        };
        let got: Vec<u128> = (1..=6)
            .map(|n| backoff_delay(&b, n, 0.5).as_millis())
            .collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            backoff_delay(&b, 10_000, 0.5),
            ms(1000),
            "huge n stays capped"
        );
    }

    #[test]
    fn backoff_jitter_bounds() {
        let b = Backoff {
            initial: ms(1000),
            max: ms(10_000),
            factor: 2.0,
            jitter: 0.1,
            reset_after: ms(30_000),
        };
        assert_eq!(backoff_delay(&b, 1, 0.0), ms(900));
        assert_eq!(backoff_delay(&b, 1, 0.5), ms(1000));
        let hi = backoff_delay(&b, 1, 0.999_999);
        assert!(hi > ms(1099) && hi <= ms(1100), "{hi:?}");
    }

    #[test]
    fn consecutive_count_resets_after_a_long_run() {
        let b = Backoff {
            initial: ms(100),
            max: ms(10_000),
            factor: 2.0,
            jitter: 0.0,
            reset_after: ms(5000),
        };
        let mut h = RestartHistory::default();
        let fail = Some(ExitStatus::Code(1));
        let d = |h: &mut RestartHistory, ran| {
            after_exit(RestartPolicy::Always, &[0], &b, h, fail, ran, 0.5)
        };
        assert_eq!(
            d(&mut h, ms(10)),
            AfterExit::Restart {
                delay: ms(100),
                attempt: 1
            }
        );
        assert_eq!(
            d(&mut h, ms(10)),
            AfterExit::Restart {
                delay: ms(200),
                attempt: 2
            }
        );
        assert_eq!(
            d(&mut h, ms(10)),
            AfterExit::Restart {
                delay: ms(400),
                attempt: 3
            }
        );
        assert_eq!(
            d(&mut h, ms(5000)),
            AfterExit::Restart {
                delay: ms(100),
                attempt: 1
            }
        );
    }

    #[test]
    fn rest_when_policy_says_no() {
        let b = Backoff::default();
        let mut h = RestartHistory::default();
        let r = after_exit(
            RestartPolicy::Never,
            &[0],
            &b,
            &mut h,
            Some(ExitStatus::Code(1)),
            ms(1),
            0.5,
        );
        assert_eq!(r, AfterExit::Rest { failed: false });
        let r = after_exit(
            RestartPolicy::OnFailure,
            &[0],
            &b,
            &mut h,
            Some(ExitStatus::Code(0)),
            ms(1),
            0.5,
        );
        assert_eq!(r, AfterExit::Rest { failed: false });
        let r = after_exit(RestartPolicy::Never, &[0], &b, &mut h, None, ms(0), 0.5);
        assert_eq!(
            r,
            AfterExit::Rest { failed: true },
            "a spawn error that is not retried fails"
        );
        assert_eq!(h.consecutive, 0);
    }

    #[test]
    fn start_limit_window() {
        let limit = Some(StartLimit {
            count: 3,
            window: ms(1000),
        });
        let mut h = RestartHistory::default();
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(h.record_start(limit, t0 + ms(i * 100)), StartVerdict::Go);
        }
        assert_eq!(
            h.record_start(limit, t0 + ms(300)),
            StartVerdict::LimitHit {
                count: 3,
                window: ms(1000)
            }
        );
        // Outside the window the old starts no longer count.
        let mut h = RestartHistory::default();
        for i in 0..3 {
            h.record_start(limit, t0 + ms(i * 400));
        }
        assert_eq!(h.record_start(limit, t0 + ms(1300)), StartVerdict::Go);
        assert_eq!(
            RestartHistory::default().record_start(None, t0),
            StartVerdict::Go
        );
    }
}
