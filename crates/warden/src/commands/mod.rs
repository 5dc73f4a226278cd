//! One module per command.

mod check;
mod up;

use std::path::PathBuf;

use warden_core::config::{self, Config, ConfigErrors, ProcessEnv};

use crate::Failure;
use crate::cli::{Cli, Command, ConfigArg};

pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Check { config } => check::run(&config),
        Command::Up { config, attach } => up::run(&config, attach),
    }
}

/// The config path the user means (`-c`, `WARDEN_CONFIG`, `./warden.toml`).
pub fn config_path(arg: &ConfigArg) -> PathBuf {
    config::resolve_path(arg.config.as_deref())
}

/// Load and validate the config, or fail with exit 2 and every error listed.
pub fn load_config(arg: &ConfigArg) -> Result<Config, Failure> {
    let path = config_path(arg);
    config::load(&path, &ProcessEnv).map_err(|e| config_failure(&e))
}

pub fn config_failure(e: &ConfigErrors) -> Failure {
    let mut msg = String::new();
    for err in &e.errors {
        msg.push_str(&err.to_string());
        msg.push('\n');
    }
    msg.push_str(&format!("warden: {} error(s); nothing was changed", e.errors.len()));
    // Each error line carries FILE:LINE:COL, so they are printed without the `warden:` prefix.
    Failure::new(2, format!("config error in {}\n{msg}", e.file.display()))
}

/// `error: cause: cause`.
pub fn chain(err: &dyn std::error::Error) -> String {
    warden_core::engine::service::error_chain(err)
}
