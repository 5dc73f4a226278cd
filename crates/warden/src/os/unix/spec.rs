//! What a systemd unit or a launchd plist says about one installed instance: filled in by
//! `prepare.rs` from the options and the config, turned into text by `systemd_unit.rs` and
//! `launchd_plist.rs` (pure functions, tested on every OS).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Scope;

/// The open-files limit of warden and, through it, of its services: 1,000 services need
/// about 2,000 pipe descriptors.
pub const NOFILE: u32 = 65_536;
/// How much longer than warden's own `shutdown_timeout` the service manager waits before
/// it kills what is left: warden kills and reaps within that margin.
pub const STOP_MARGIN: Duration = Duration::from_secs(15);
/// The first line of every file install generates; uninstall removes only such files.
pub const GENERATED: &str = "# Written by `warden install";

/// One installed instance, as its unit or plist describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    pub name: String,
    pub scope: Scope,
    pub description: String,
    /// The warden binary, absolute.
    pub exe: PathBuf,
    /// The config `warden up -c` runs, absolute.
    pub config: PathBuf,
    /// `--user ACCOUNT` (system scope only).
    pub user: Option<String>,
    /// Units this one needs, normalised (`postgresql.service`).
    pub depends_on: Vec<String>,
    /// `--start auto`: enabled (systemd), `RunAtLoad` (launchd).
    pub autostart: bool,
    pub harden: bool,
    /// The config's `shutdown_timeout`.
    pub shutdown_timeout: Duration,
    /// The quick form: systemd creates (and hands to `User=`) the state, log and runtime
    /// folders, `warden/NAME` under its own roots.
    pub managed_dirs: bool,
    /// What warden writes (state, logs, socket folder): writable under `--harden`.
    pub writable: Vec<PathBuf>,
    /// launchd: where warden's own output goes (`<state_dir>/warden.log`).
    pub log_file: PathBuf,
}

impl UnitSpec {
    /// Whole seconds the service manager waits for warden to stop.
    pub fn stop_timeout_secs(&self) -> u64 {
        let t = self.shutdown_timeout.saturating_add(STOP_MARGIN);
        t.as_secs() + u64::from(t.subsec_nanos() > 0)
    }
}
