//! One module per command.

mod check;
pub(crate) mod ctl;
mod edit;
mod logs;
mod up;

use std::fmt::Write as _;
use std::path::PathBuf;

use warden_core::config::{self, Config, ConfigErrors, ProcessEnv};

use crate::Failure;
use crate::cli::{Cli, Command, ConfigArg};

/// `warden start|stop|restart`: with `-n NAME` and no service names, the installed OS
/// service itself.
fn act(action: warden_core::engine::Action, args: &crate::cli::ActArgs) -> Result<(), Failure> {
    if let Some(instance) = &args.target.instance
        && args.names.is_empty()
        && !args.all
    {
        return crate::os::service_action(instance, action);
    }
    ctl::act(action, args)
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Check { config, strict } => check::run(&config, strict),
        Command::Up {
            config,
            attach,
            detach,
            wait,
            wait_timeout,
            reset,
            log_format,
            own_log,
        } => {
            let opts = up::UpOptions {
                attach,
                json: log_format == crate::cli::LogFormat::Json,
                own_log,
                reset,
            };
            if detach {
                up::detached(&config, &opts, wait.then_some(wait_timeout.as_str()))
            } else {
                up::run(&config, &opts)
            }
        }
        Command::Down { target } => ctl::down(&target),
        Command::Status {
            target,
            names,
            json,
            no_color,
        } => ctl::status(&target, &names, json, no_color),
        Command::Start(args) => act(warden_core::engine::Action::Start, &args),
        Command::Stop(args) => act(warden_core::engine::Action::Stop, &args),
        Command::Restart(args) => act(warden_core::engine::Action::Restart, &args),
        Command::Logs {
            config,
            name,
            n,
            lines,
            instance,
            follow,
            stream,
            timestamps,
            no_color,
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
                no_color,
            };
            logs::run(&target, &args)
        }
        Command::Reload { target } => ctl::reload(&target),
        Command::Rotate { target, name } => logs::rotate(&target, name.as_deref()),
        Command::Ui { target, no_color } => crate::ui::run(&target, no_color),
        Command::Install(args) => crate::os::install(&args),
        Command::Uninstall { name, purge, scope } => crate::os::uninstall(&name, purge, scope),
        Command::Set {
            instance,
            key,
            value,
        } => edit::set(&instance, &key, &value),
        Command::Edit { instance } => edit::edit(&instance),
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
    errors_failure(e, NOTHING_CHANGED)
}

/// The end of the message of a config error that stopped a command from acting.
pub const NOTHING_CHANGED: &str = "; nothing was changed";

/// Every error of `e` on its own line, then `warden: N error(s)` and `tail`.
pub fn errors_failure(e: &ConfigErrors, tail: &str) -> Failure {
    let lines: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
    config_errors(Some(&e.file), &lines, tail)
}

/// The one formatter of config errors (the local config's, or those a running warden
/// answered a reload with): `config error in FILE`, each error on its own line, then
/// `warden: N error(s)` and `tail`. Exit 2.
pub fn config_errors(file: Option<&std::path::Path>, errors: &[String], tail: &str) -> Failure {
    let mut msg = match file {
        Some(f) => format!("config error in {}\n", f.display()),
        None => "config error\n".to_owned(),
    };
    for err in errors {
        msg.push_str(err);
        msg.push('\n');
    }
    // Each error line carries FILE:LINE:COL, so they are printed without the `warden:` prefix.
    let _ = write!(msg, "warden: {} error(s){tail}", errors.len());
    Failure::usage(msg)
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
