//! The command line, parsed raw by clap; `commands` turns it into actions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "warden", version, about = "Turn any program into a reliable, long-running service.")]
#[command(after_help = "Exit codes: 0 done, 1 the operation failed, 2 usage or config error, 3 warden is not running.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// The config file [default: $WARDEN_CONFIG or ./warden.toml]
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config: exit 0 with a summary, or 2 listing every error.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Supervise the services in the foreground (Ctrl-C stops them all gracefully).
    Up {
        #[command(flatten)]
        config: ConfigArg,
        /// Also print every output line of the services as `NAME | line`.
        #[arg(long)]
        attach: bool,
    },
}
