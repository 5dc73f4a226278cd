//! `warden`: turn any program into a reliable, long-running service.
//!
//! Exit codes (all commands): 0 done; 1 the operation failed; 2 usage or config error;
//! 3 warden is not running.

mod cli;
mod commands;
mod endpoint;
mod os;
mod render;
mod supervisor;
mod ui;

use std::process::ExitCode;

use clap::Parser;

/// A failure with a deliberate exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// Exit 1: the operation failed.
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure::new(1, message)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::failed(format!("{e:#}"))
    }
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("warden: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}
