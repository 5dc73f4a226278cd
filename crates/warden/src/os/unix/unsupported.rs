//! A Unix without systemd or launchd support in warden: install says so. The same
//! functions as `systemd.rs`.

use std::path::Path;

use super::spec::UnitSpec;
use crate::Failure;
use crate::cli::Scope;

pub const KIND: &str = "unit";

fn unsupported() -> Failure {
    Failure::failed(
        "warden installs into systemd (Linux) and launchd (macOS) only; run `warden up -d` from this system's init instead",
    )
}

pub fn render(spec: &UnitSpec) -> String {
    super::systemd_unit::render(spec)
}

pub fn check_running(_scope: Scope) -> Result<(), Failure> {
    Err(unsupported())
}

pub fn register(_spec: &UnitSpec, _unit: &Path) -> Result<(), Failure> {
    Err(unsupported())
}

pub fn start(_spec: &UnitSpec) -> Result<(), Failure> {
    Err(unsupported())
}

pub fn start_word(_spec: &UnitSpec) -> &'static str {
    ""
}

pub fn unregister(_name: &str, _scope: Scope, _unit: &Path) -> Vec<String> {
    Vec::new()
}

pub fn forget(_scope: Scope) -> Result<(), Failure> {
    Ok(())
}

pub fn control(_name: &str, _scope: Scope, _verb: &str) -> Result<(), Failure> {
    Err(unsupported())
}

pub fn start_command(_name: &str, _scope: Scope) -> String {
    String::new()
}
