//! The commands that talk to a running warden over its control endpoint. (Being wired.)

use crate::Failure;
use crate::cli::{ActArgs, ConfigArg, StreamArg, Target};
use warden_core::engine::Action;

fn pending() -> Failure {
    Failure::failed("not wired yet")
}

pub fn up_detached(_c: &ConfigArg) -> Result<(), Failure> {
    Err(pending())
}
pub fn down(_t: &Target) -> Result<(), Failure> {
    Err(pending())
}
pub fn status(_t: &Target, _names: &[String], _json: bool) -> Result<(), Failure> {
    Err(pending())
}
pub fn act(_a: Action, _args: &ActArgs) -> Result<(), Failure> {
    Err(pending())
}
pub fn logs(
    _t: &Target,
    _name: &str,
    _lines: usize,
    _follow: bool,
    _s: Option<StreamArg>,
) -> Result<(), Failure> {
    Err(pending())
}
pub fn reload(_t: &Target) -> Result<(), Failure> {
    Err(pending())
}

/// `-n` of `warden logs`: numbers are a line count, anything else names an instance.
pub fn split_logs_n(
    n: &[String],
    lines: Option<usize>,
    instance: Option<String>,
) -> Result<(usize, Option<String>), Failure> {
    let mut count = lines;
    let mut inst = instance;
    for v in n {
        if let Ok(k) = v.parse::<usize>() {
            count = Some(k);
        } else if inst.is_none() {
            inst = Some(v.clone());
        } else {
            return Err(Failure::new(
                2,
                format!("-n {v}: expected a number of lines (an instance is named already)"),
            ));
        }
    }
    Ok((count.unwrap_or(100), inst))
}
