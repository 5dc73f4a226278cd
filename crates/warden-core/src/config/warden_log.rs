//! `[warden] log = { max_size, keep }`: the rotation of warden's own log (`warden.log` in
//! the state dir, written by `warden up -d`, a launchd job and the Windows service). Bounded
//! exactly like a service's `log.max_size` and `log.keep`.

use super::limits::{MAX_KEEP, MAX_LOG_SIZE, MIN_LOG_SIZE};
use super::reader::{Reader, Section};

const KEYS: &[&str] = &["max_size", "keep"];

/// `[warden] log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WardenLog {
    /// Default 10 MiB; between 1 KiB and 1 TiB.
    pub max_size: u64,
    /// Default 5 rotated files; between 1 and 1000.
    pub keep: u32,
}

impl Default for WardenLog {
    fn default() -> WardenLog {
        WardenLog {
            max_size: 10 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// Read `log` of `[warden]`; on errors the defaults stand in and the errors are recorded.
pub(super) fn read_warden_log(r: &mut Reader<'_>, warden: Section<'_>) -> WardenLog {
    let mut log = WardenLog::default();
    let Some(section) = warden.field("log").and_then(|f| r.section(f)) else {
        return log;
    };
    r.check_keys(section, KEYS, "[warden.log]");
    if let Some(f) = section.field("max_size") {
        match r.size(f) {
            Some(size) if (MIN_LOG_SIZE..=MAX_LOG_SIZE).contains(&size) => log.max_size = size,
            Some(size) => r.error(
                f.pos(),
                format!(
                    "log.max_size must be between 1KiB and 1TiB ({MIN_LOG_SIZE} and {MAX_LOG_SIZE} bytes), found {size}"
                ),
                None,
            ),
            None => {}
        }
    }
    if let Some(keep) = section
        .field("keep")
        .and_then(|f| r.integer_in(f, 1, MAX_KEEP))
    {
        log.keep = keep as u32;
    }
    log
}
