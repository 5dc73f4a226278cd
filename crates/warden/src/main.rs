//! `warden`: turn any program into a reliable, long-running service.
//!
//! Exit codes (all commands): see [`exit`].

mod cli;
mod commands;
pub mod exit;
mod os;
mod render;
mod ui;

use std::io::Write as _;
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
        Failure::new(exit::FAILED, message)
    }

    /// Exit 2: the command line or the config is wrong.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(exit::USAGE, message)
    }

    /// Exit 0 without a word: whoever read our output is gone (`warden check | true`).
    pub fn reader_gone() -> Failure {
        Failure::new(exit::OK, "")
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::failed(format!("{e:#}"))
    }
}

fn main() -> ExitCode {
    os::tune_allocator();
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                // A closed stderr is no reason to panic.
                let _ = writeln!(std::io::stderr(), "warden: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}
