//! One module per command.

mod check;
pub(crate) mod ctl;
mod logs;
mod up;

use std::fmt::Write as _;
use std::path::PathBuf;

use warden_core::config::{self, Config, ConfigErrors, ProcessEnv};

use crate::Failure;
use crate::cli::{Cli, Command, ConfigArg};

pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Check { config, strict } => check::run(&config, strict),
        Command::Up {
            config,
            attach,
            detach: false,
        } => up::run(&config, attach),
        Command::Up {
            config,
            detach: true,
            ..
        } => ctl::up_detached(&config),
        Command::Down { target } => ctl::down(&target),
        Command::Status {
            target,
            names,
            json,
            no_color,
        } => ctl::status(&target, &names, json, no_color),
        Command::Start(args) => ctl::act(warden_core::engine::Action::Start, &args),
        Command::Stop(args) => ctl::act(warden_core::engine::Action::Stop, &args),
        Command::Restart(args) => ctl::act(warden_core::engine::Action::Restart, &args),
        Command::Logs {
            config,
            name,
            n,
            lines,
            instance,
            follow,
            stream,
            timestamps,
            remote,
        } => {
            let (lines, instance) = ctl::split_logs_n(&n, lines, instance)?;
            let target = crate::cli::Target {
                config,
                instance,
                remote,
            };
            let args = logs::LogsArgs {
                name,
                lines,
                follow,
                stream,
                timestamps,
            };
            logs::run(&target, &args)
        }
        Command::Reload { target } => ctl::reload(&target),
        Command::Ui { target, no_color } => crate::ui::run(&target, no_color),
        Command::Install(args) => crate::os::install(&args),
        Command::Uninstall { name, purge, scope } => crate::os::uninstall(&name, purge, scope),
        Command::ServiceRun { name, config } => crate::os::service_run(&name, &config),
        Command::CtrlC { pid } => crate::os::ctrl_c(pid),
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

/// A config with errors, for a command that would have acted on it (`up`, `up -d`,
/// `install`, the Windows service): every error, then `warden: N error(s); nothing was
/// changed`.
pub fn config_failure(e: &ConfigErrors) -> Failure {
    errors_failure(e, "; nothing was changed")
}

/// Every error of `e` on its own line, then `warden: N error(s)` and `tail`.
pub fn errors_failure(e: &ConfigErrors, tail: &str) -> Failure {
    let mut msg = String::new();
    for err in &e.errors {
        msg.push_str(&err.to_string());
        msg.push('\n');
    }
    let _ = write!(msg, "warden: {} error(s){tail}", e.errors.len());
    // Each error line carries FILE:LINE:COL, so they are printed without the `warden:` prefix.
    Failure::usage(format!("config error in {}\n{msg}", e.file.display()))
}

/// Print each warning of `config` on stderr, as `FILE:LINE:COL: warning: ...`.
pub fn warn_all(config: &Config) {
    for w in &config.warnings {
        warn(&w.to_string());
    }
}

/// Print `text` on stdout. Every command prints through here: a reader that went away
/// (`warden check | true`, `| head`) ends the command quietly with exit 0, as ripgrep does,
/// instead of a panic.
pub fn say(text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::reader_gone()),
        Err(e) => Err(Failure::failed(format!("cannot write to stdout: {e}"))),
    }
}

/// Print `text` (a line) on stderr; a closed stderr is ignored.
pub fn warn(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// `error: cause: cause`.
pub fn chain(err: &dyn std::error::Error) -> String {
    warden_core::engine::service::error_chain(err)
}

/// The runtime every async command uses. Two worker threads at most, whatever the number of
/// CPUs: a supervisor waits far more than it computes, and each worker costs a stack and a
/// malloc arena of idle memory (tokio's default is one per CPU). Two, not one, so that a
/// log write stuck on a slow disk does not stall the control API too.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(2));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the runtime: {e}")))
}
