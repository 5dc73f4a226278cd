//! Windows service integration. (Skeleton: replaced by the real one.)

use std::path::Path;

use super::InstallOptions;
use crate::Failure;

pub fn install(_opts: &InstallOptions) -> Result<(), Failure> {
    Err(Failure::failed("not implemented"))
}

pub fn uninstall(_name: &str, _purge: bool) -> Result<(), Failure> {
    Err(Failure::failed("not implemented"))
}

pub fn service_run(_name: &str, _config: &Path) -> Result<(), Failure> {
    Err(Failure::failed("not implemented"))
}

pub fn ctrl_c(_pid: u32) -> Result<(), Failure> {
    Err(Failure::failed("not implemented"))
}
