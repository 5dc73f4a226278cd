//! Small helpers shared across modules.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// Open `path` with `opts` without following a symlink (or, on Windows, any reparse point)
/// at its last component: in a directory another user could once write, a planted link must
/// never send warden's writes elsewhere. Unix: `O_NOFOLLOW` (`extra_flags` are added, such as
/// `O_NONBLOCK`); Windows: `FILE_FLAG_OPEN_REPARSE_POINT` opens the link itself, which is
/// then refused.
pub fn open_nofollow(opts: &mut OpenOptions, path: &Path, extra_flags: i32) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | extra_flags);
        opts.open(path).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                symlink_refused()
            } else {
                e
            }
        })
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
        use windows_sys::Win32::Storage::FileSystem::{
            FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_OPEN_REPARSE_POINT,
        };
        let _ = extra_flags;
        opts.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
        let file = opts.open(path)?;
        if file.metadata()?.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(symlink_refused());
        }
        Ok(file)
    }
}

fn symlink_refused() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "it is a symbolic link, which warden does not follow here",
    )
}

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

/// A random token of 32 hex digits (128 bits) for the TCP API, straight from the OS's
/// secure random source (`getrandom(2)` on Linux, `getentropy` on macOS, `ProcessPrng` on
/// Windows). No fallback: without the OS's randomness there is no token.
pub fn random_token() -> io::Result<String> {
    use std::fmt::Write as _;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| io::Error::other(format!("the OS's random source failed: {e}")))?;
    let mut token = String::with_capacity(32);
    for b in bytes {
        let _ = write!(token, "{b:02x}");
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_token_is_128_bits_from_the_os() {
        let tokens: Vec<String> = (0..512)
            .map(|_| random_token().expect("OS randomness"))
            .collect();
        for t in &tokens {
            assert_eq!(t.len(), 32);
            assert!(t.bytes().all(|b| b.is_ascii_hexdigit()), "{t}");
        }
        let distinct: std::collections::BTreeSet<&String> = tokens.iter().collect();
        assert_eq!(distinct.len(), tokens.len(), "every token differs");
        // Every bit position is set about half of the time (512 draws: 256 ± 5 sigma).
        for bit in 0..128 {
            let ones = tokens
                .iter()
                .filter(|t| {
                    let byte =
                        u8::from_str_radix(&t[bit / 8 * 2..bit / 8 * 2 + 2], 16).expect("hex");
                    byte & (1 << (bit % 8)) != 0
                })
                .count();
            assert!((199..=313).contains(&ones), "bit {bit}: {ones} of 512");
        }
    }

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
