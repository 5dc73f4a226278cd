//! Durations (`"250ms"`, `"1h30m"`, `"1.5s"`) and sizes (`"10MiB"`, `"500KB"`).

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A duration: one or more `NUMBER UNIT` parts (units `ms`, `s`, `m`, `h`, `d`; a number
/// may have a fraction), or a bare `"0"`.
pub(super) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let nanos = sum_parts(s, |unit| match unit {
        "ns" => Some(1),
        "us" | "µs" => Some(1_000),
        "ms" => Some(1_000_000),
        "s" => Some(NANOS_PER_SEC),
        "m" => Some(60 * NANOS_PER_SEC),
        "h" => Some(3_600 * NANOS_PER_SEC),
        "d" => Some(86_400 * NANOS_PER_SEC),
        _ => None,
    })?;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
    Some(Duration::new(secs, (nanos % NANOS_PER_SEC) as u32))
}

/// A size in bytes: a plain integer, or a number and a unit: `B`, `KB`/`MB`/`GB`/`TB`
/// (powers of 1000) or `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024). Units ignore case.
pub(super) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let (number, unit) = split_number(s)?;
    let factor: u128 = match unit.trim().to_ascii_lowercase().as_str() {
        "b" => 1,
        "kb" | "k" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    u64::try_from(scale(number, factor)?).ok()
}

/// Sum `NUMBER UNIT` parts (optionally separated by spaces), each scaled by `unit_factor`.
fn sum_parts(s: &str, unit_factor: impl Fn(&str) -> Option<u128>) -> Option<u128> {
    let mut rest = s;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let (number, after) = split_number(rest)?;
        let unit_len = after
            .char_indices()
            .find(|(_, c)| !c.is_alphabetic())
            .map_or(after.len(), |(i, _)| i);
        let factor = unit_factor(&after[..unit_len])?;
        total = total.checked_add(scale(number, factor)?)?;
        rest = after[unit_len..].trim_start();
    }
    Some(total)
}

/// Split a leading decimal number (`"12"`, `"1.5"`) from the rest.
fn split_number(s: &str) -> Option<(&str, &str)> {
    let len = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(s.len(), |(i, _)| i);
    let number = &s[..len];
    let valid = number.bytes().any(|b| b.is_ascii_digit())
        && number.matches('.').count() <= 1
        && !number.starts_with('.')
        && !number.ends_with('.');
    valid.then(|| (number, &s[len..]))
}

/// `number * factor`, exactly, dropping what is below one unit of the result.
fn scale(number: &str, factor: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let int: u128 = int.parse().ok()?;
    let mut total = int.checked_mul(factor)?;
    if !frac.is_empty() {
        let digits = u32::try_from(frac.len()).ok().filter(|d| *d <= 18)?;
        let frac_value: u128 = frac.parse().ok()?;
        total = total.checked_add(frac_value.checked_mul(factor)? / 10u128.pow(digits))?;
    }
    Some(total)
}
