//! The command line, parsed raw by clap; `commands` turns it into actions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "Turn any program into a reliable, long-running service."
)]
#[command(
    after_help = "Exit codes: 0 done, 1 the operation failed, 2 usage or config error, 3 warden is not running."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Which warden a command talks to: the one of a config file, or an installed instance
/// (a Windows service; a systemd unit or launchd job on Linux and macOS).
#[derive(Debug, Args, Clone, Default)]
pub struct Target {
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        help = "The config file [default: $WARDEN_CONFIG or ./warden.toml]"
    )]
    pub config: Option<PathBuf>,
    /// An installed instance (see `warden install`)
    #[arg(short = 'n', long = "instance", value_name = "NAME")]
    pub instance: Option<String>,
    #[command(flatten)]
    pub remote: Remote,
}

/// A warden reached over its TCP API (`[warden] api`) instead of the local socket.
#[derive(Debug, Args, Clone, Default)]
pub struct Remote {
    /// A warden's TCP API, e.g. the local end of `ssh -L 9100:127.0.0.1:9100 HOST`; the
    /// token travels in plain HTTP
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["config", "instance"], requires = "token_file")]
    pub api: Option<String>,
    /// The bearer token for --api, read from this file (e.g. a copy of `<state_dir>/api.token`)
    #[arg(long, value_name = "FILE", requires = "api")]
    pub token_file: Option<PathBuf>,
}

/// Just the config file.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArg {
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        help = "The config file [default: $WARDEN_CONFIG or ./warden.toml]"
    )]
    pub config: Option<PathBuf>,
}

impl From<&Target> for ConfigArg {
    fn from(t: &Target) -> ConfigArg {
        ConfigArg {
            config: t.config.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamArg {
    Out,
    Err,
}

/// How `warden up` prints its events and the services' output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartType {
    Auto,
    Delayed,
    Manual,
    Disabled,
}

/// Where an instance is installed (Linux and macOS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scope {
    /// For the whole machine, started at boot (a systemd system unit, a launch daemon); needs root
    System,
    /// For you, started when you log in (a systemd --user unit, a launch agent)
    User,
}

#[derive(Debug, Args, Clone)]
pub struct ActArgs {
    #[command(flatten)]
    pub target: Target,
    /// The services to act on
    #[arg(value_name = "NAME", conflicts_with = "all")]
    pub names: Vec<String>,
    /// Every service of the config
    #[arg(long)]
    pub all: bool,
    /// Return at once instead of waiting for the service to reach its state
    #[arg(long)]
    pub no_wait: bool,
}

/// `warden install`'s options.
#[derive(Debug, Args, Clone)]
pub struct InstallArgs {
    /// The instance's name (the Windows service; `warden-NAME.service`; launchd `warden.NAME`)
    pub name: String,
    /// The config to run; without it, give the program after `--`
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub display_name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// auto: start at boot (enabled); manual: installed only; delayed, disabled: Windows only
    #[arg(long, value_enum, default_value = "auto")]
    pub start: StartType,
    /// The account warden runs as. Windows: `LocalSystem` (default), `LocalService`,
    /// `NetworkService`, "NT SERVICE\NAME" or DOMAIN\user; elsewhere a user name (`User=`)
    #[arg(long)]
    pub user: Option<String>,
    /// The password of a DOMAIN\user account, read from this file
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Another service this one needs (repeatable): a Windows service, a systemd unit
    #[arg(long, value_name = "UNIT")]
    pub depends_on: Vec<String>,
    /// Start the service after installing it
    #[arg(long)]
    pub now: bool,
    /// Linux and macOS: for the whole machine or for you
    #[arg(long, value_enum, default_value = "system")]
    pub scope: Scope,
    /// systemd: sandbox warden and every service it starts (read-only /usr, /etc and homes,
    /// a private /tmp, no new privileges; see the README)
    #[arg(long)]
    pub harden: bool,
    /// Linux and macOS: write the systemd unit or launchd plist to stdout; install nothing
    #[arg(long)]
    pub print: bool,
    /// The quick form: an environment variable of the program (repeatable); values are
    /// secrets, never printed
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The quick form: the program's working directory [default: the program's folder]
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// The program and its arguments (the quick form)
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    pub program: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config: exit 0 with a summary (and any warnings), or 2 listing every error.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Treat warnings (a program not found) as errors: exit 2.
        #[arg(long)]
        strict: bool,
    },
    /// Supervise the services (in the foreground; Ctrl-C stops them all gracefully).
    Up {
        #[command(flatten)]
        config: ConfigArg,
        /// Also print every output line of the services as `NAME | line`.
        #[arg(long, conflicts_with = "detach")]
        attach: bool,
        /// Run in the background; return once warden answers, printing its pid.
        #[arg(short = 'd', long)]
        detach: bool,
        /// With -d: return once every autostart service is up; exit 1 naming those that are not
        #[arg(long, requires = "detach")]
        wait: bool,
        /// How long --wait waits, at most 1h
        #[arg(
            long,
            value_name = "DURATION",
            default_value = "60s",
            requires = "wait"
        )]
        wait_timeout: String,
        /// Forget every service stopped by hand first: they start like the others
        #[arg(long)]
        reset: bool,
        /// json: every event and output line as one JSON object per line on stdout (for
        /// container log collectors; implies --attach)
        #[arg(long, value_enum, default_value = "text", conflicts_with = "detach")]
        log_format: LogFormat,
        /// Write the events into `<state_dir>/warden.log`, rotated (what `up -d` starts)
        #[arg(long, hide = true)]
        own_log: bool,
    },
    /// Stop every service gracefully, then warden exits.
    Down {
        #[command(flatten)]
        target: Target,
    },
    /// Show the services and their state.
    Status {
        #[command(flatten)]
        target: Target,
        /// Only these services
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// Print the JSON of the control API
        #[arg(long)]
        json: bool,
        /// No colours (also when `NO_COLOR` is set)
        #[arg(long)]
        no_color: bool,
    },
    /// Start services (and wait until they run).
    Start(ActArgs),
    /// Stop services (and wait until they stopped); they stay stopped until started again.
    Stop(ActArgs),
    /// Restart services.
    Restart(ActArgs),
    /// Show the last lines of a service's output (or of every service's, each line prefixed
    /// `NAME |`), and follow it with -f.
    Logs {
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: Option<PathBuf>,
        /// The service [default: every service, merged by time]
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// How many lines [default: 100]; a value that is not a number names an installed
        /// instance, as for the other commands (`warden logs -n sync sync -f`)
        #[arg(short = 'n', value_name = "N|INSTANCE")]
        n: Vec<String>,
        /// How many lines
        #[arg(long, value_name = "N")]
        lines: Option<usize>,
        /// An installed instance (see `warden install`)
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// Keep printing new lines until Ctrl-C
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only one stream (a service with `stderr = "stdout"` has only `out`)
        #[arg(long, value_enum)]
        stream: Option<StreamArg>,
        /// Start each line with the time warden read it (RFC 3339 UTC, milliseconds),
        /// whatever `log.timestamps` says for the file
        #[arg(long)]
        timestamps: bool,
        /// No colours in the `NAME |` prefixes (also when `NO_COLOR` is set)
        #[arg(long)]
        no_color: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Rotate log files now (every service's, or NAME's): each becomes FILE.1 (FILE.1.gz with
    /// `compress`) and a fresh file is begun, cut between two lines; an empty file is left.
    Rotate {
        #[command(flatten)]
        target: Target,
        /// Only this service [default: every service]
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
    /// A live dashboard: every service, the logs of the selected one, actions by key (? lists
    /// the keys, q quits).
    Ui {
        #[command(flatten)]
        target: Target,
        /// No colours (also when `NO_COLOR` is set); states are words anyway
        #[arg(long)]
        no_color: bool,
    },
    /// Re-read the config and apply the difference; a bad config changes nothing (exit 2).
    Reload {
        #[command(flatten)]
        target: Target,
    },
    /// Make warden start at boot: a Windows service, a systemd unit, a launchd job.
    Install(InstallArgs),
    /// Stop and remove what `warden install` installed.
    Uninstall {
        name: String,
        /// Also remove the generated config, the logs and the state
        #[arg(long)]
        purge: bool,
        /// Linux and macOS: only look in this scope [default: system, then user]
        #[arg(long, value_enum)]
        scope: Option<Scope>,
    },
    /// Change one key of an installed instance's config (checked first; a bad value changes
    /// nothing), then reload the running instance.
    Set {
        /// The installed instance (see `warden install`)
        #[arg(short = 'n', long = "instance", value_name = "NAME")]
        instance: String,
        /// A dotted key: `services.SVC.restart`, `warden.shutdown_timeout`,
        /// `services.SVC.env.KEY`; a key without `services.`/`warden.` is one of the
        /// service named like the instance (the quick form's): `restart`
        key: String,
        /// A TOML value (`5`, `true`, `["a", "b"]`, `"text"`); anything else is a string
        value: String,
    },
    /// Open an installed instance's config in $EDITOR (notepad on Windows), check it, and
    /// reload the running instance; an invalid edit changes nothing.
    Edit {
        /// The installed instance (see `warden install`)
        #[arg(short = 'n', long = "instance", value_name = "NAME")]
        instance: String,
    },
    /// Run as a Windows service (the SCM starts this; not for people).
    #[command(hide = true, name = "service-run")]
    ServiceRun {
        #[arg(long)]
        name: String,
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
    /// Deliver a console Ctrl-C to one process tree (internal, Windows).
    #[command(hide = true, name = "__ctrl-c")]
    CtrlC { pid: u32 },
}
