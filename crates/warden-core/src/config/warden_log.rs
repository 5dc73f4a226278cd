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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::WardenLog;
    use crate::config::{ConfigError, load_str};

    const SERVICE: &str = "\n[services.web]\ncommand = \"a\"\n";

    fn load(warden: &str) -> Result<WardenLog, Vec<ConfigError>> {
        let text = format!("[warden]\n{warden}{SERVICE}");
        load_str(&text, Path::new("/x/warden.toml"), &BTreeMap::new())
            .map(|c| c.warden.log)
            .map_err(|e| e.errors)
    }

    #[test]
    fn defaults_are_10_mib_and_5_files() {
        let log = load("").expect("valid");
        assert_eq!((log.max_size, log.keep), (10 << 20, 5));
        assert_eq!(log, WardenLog::default());
    }

    #[test]
    fn both_forms_of_the_table_are_read() {
        let log = load("log = { max_size = \"1MiB\", keep = 2 }\n").expect("inline");
        assert_eq!((log.max_size, log.keep), (1 << 20, 2));
        let text = format!("[warden.log]\nmax_size = \"2KiB\"\n{SERVICE}");
        let config = load_str(&text, Path::new("/x/warden.toml"), &BTreeMap::new());
        assert_eq!(config.expect("table").warden.log.max_size, 2048);
    }

    #[test]
    fn out_of_bounds_values_and_unknown_keys_are_positioned_errors() {
        let errors =
            load("log = { max_size = 10, keep = 0, compress = true }\n").expect_err("invalid");
        let got: Vec<(usize, usize, &str)> = errors
            .iter()
            .map(|e| (e.line, e.col, e.message.as_str()))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.contains(&(
            2,
            20,
            "log.max_size must be between 1KiB and 1TiB (1024 and 1099511627776 bytes), found 10"
        )));
        assert!(got.contains(&(2, 31, "keep must be between 1 and 1000, found 0")));
        assert!(
            got.iter()
                .any(|(l, _, m)| *l == 2 && m.contains("unknown key \"compress\" in [warden.log]")),
            "{got:?}"
        );
        assert!(load("log = \"big\"\n").is_err(), "a table is expected");
    }
}
