//! Small helpers shared across modules.

use std::time::{Duration, Instant, SystemTime};

/// `now + d`, or the latest instant within reach when that overflows: never panics, unlike
/// `Instant + Duration`.
pub fn instant_after(now: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        if let Some(t) = now.checked_add(d) {
            return t;
        }
        // Halving ends at zero, and `now + 0` always fits.
        d /= 2;
    }
}

/// A tokio deadline `d` from now (see [`instant_after`]).
pub fn deadline_in(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    tokio::time::Instant::from_std(instant_after(now.into_std(), d))
}

/// A short human duration: `250ms`, `1.2s`, `5m12s`, `2h03m`, `3d04h`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A random token of 32 hex digits (128 bits) for the TCP API: `SipHash` outputs keyed by
/// std's `RandomState`, whose keys come from the OS's secure random source.
pub fn random_token() -> String {
    use std::hash::BuildHasher;
    let state = std::collections::hash_map::RandomState::new();
    let a = state.hash_one(0x5741_5244_454e_u64);
    let b = state.hash_one(std::time::SystemTime::now());
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_millis(1234)), "1.2s");
        assert_eq!(fmt_duration(Duration::from_secs(312)), "5m12s");
        assert_eq!(fmt_duration(Duration::from_secs(2 * 3600 + 180)), "2h03m");
        assert_eq!(
            fmt_duration(Duration::from_secs(3 * 86_400 + 4 * 3600)),
            "3d04h"
        );
    }
}
