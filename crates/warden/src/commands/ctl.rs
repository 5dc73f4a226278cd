//! The commands that talk to a running warden over its control endpoint: `up -d`, `down`,
//! `status`, `start`, `stop`, `restart`, `reload` (and what `logs` shares with them).

use std::time::{Duration, Instant};

use warden_core::api::client::{Client, ClientError};
use warden_core::config::{self, Config, ProcessEnv, Secret};
use warden_core::engine::Action;
use warden_core::proto::{ErrorDetail, ServiceStatus, State};

use crate::Failure;
use crate::cli::{ActArgs, ConfigArg, Target};
use warden_core::daemon::endpoint::{self, Address};

/// The config of the warden to talk to. A config with errors still names its state dir
/// well enough to find a running warden: fall back to the defaults next to the file.
fn target_config(target: &Target) -> Result<Config, Failure> {
    let path = super::config_path(&ConfigArg::from(target));
    match config::load(&path, &ProcessEnv) {
        Ok(c) => Ok(c),
        Err(errors) => {
            // Only the location matters here; an empty config with the same path gives the
            // default state dir.
            let fallback = config::load_str("", &path, &ProcessEnv)
                .map_err(|_| super::config_failure(&errors))?;
            let what = if path.exists() {
                "has errors"
            } else {
                "does not exist"
            };
            super::warn(&format!(
                "warden: warning: {} {what}; looking for warden in its default state dir",
                path.display()
            ));
            Ok(fallback)
        }
    }
}

/// The one "warden is not running" failure (exit 3): where nothing answers and, when known,
/// how to start warden there.
fn not_running(at: &str, hint: Option<&str>) -> Failure {
    let hint = hint.map_or_else(String::new, |h| format!("; {h}"));
    Failure::new(
        crate::exit::NOT_RUNNING,
        format!("warden is not running (nothing answers on {at}){hint}"),
    )
}

/// How to reach a warden: its local endpoint, or its TCP API (`--api`) with a token.
#[derive(Clone)]
pub enum Dialer {
    Local {
        addr: Address,
        /// How to start that warden, for the not-running message.
        start_hint: String,
    },
    Tcp {
        given: String,
        addr: std::net::SocketAddr,
        token: Secret,
    },
}

impl Dialer {
    /// Where it connects, for messages.
    pub fn describe(&self) -> String {
        match self {
            Dialer::Local { addr, .. } => addr.to_string(),
            Dialer::Tcp { given, .. } => given.clone(),
        }
    }

    /// One connection attempt.
    pub async fn dial(&self) -> Result<Client, ClientError> {
        match self {
            #[cfg(unix)]
            Dialer::Local {
                addr: Address::Socket(p),
                ..
            } => Client::connect(p).await,
            #[cfg(windows)]
            Dialer::Local {
                addr: Address::Pipe(p),
                ..
            } => Client::connect_pipe(p).await,
            Dialer::Tcp { addr, token, .. } => Client::connect_tcp(*addr, token.clone()).await,
        }
    }

    /// Nothing answers here (exit 3), with the hint that fits: how to start a local warden,
    /// or, over `--api`, what to check (the remote warden's `api` key, the tunnel).
    pub fn not_running(&self) -> Failure {
        match self {
            Dialer::Local { start_hint, .. } => {
                not_running(&self.describe(), Some(start_hint.as_str()))
            }
            Dialer::Tcp { given, .. } => Failure::new(
                crate::exit::NOT_RUNNING,
                format!("nothing answers on {given} (is warden's `api` set, and the tunnel up?)"),
            ),
        }
    }

    /// A failed call in words: "not running" as [`Dialer::not_running`] says it, anything
    /// else as [`client_failure`].
    pub fn failure(&self, e: &ClientError) -> Failure {
        match e {
            ClientError::NotRunning { .. } => self.not_running(),
            other => client_failure(other),
        }
    }
}

/// How to start the warden of an installed instance, for the not-running message: the OS
/// service, through `warden start -n NAME` (or the service manager's own command).
fn instance_hint(name: &str) -> String {
    crate::os::start_hint(name).unwrap_or_else(|| format!("start it with `warden start -n {name}`"))
}

/// The hint for a config's own warden.
const UP_HINT: &str = "start it with `warden up -d`";

/// `--api HOST:PORT --token-file FILE`: the address (resolved once) and the token.
async fn remote_dialer(api: &str, token_file: Option<&std::path::Path>) -> Result<Dialer, Failure> {
    let file = token_file.ok_or_else(|| Failure::usage("--api needs --token-file FILE"))?;
    let token = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?
        .trim()
        .to_owned();
    if token.is_empty() {
        return Err(Failure::usage(format!("{} is empty", file.display())));
    }
    let addr = tokio::net::lookup_host(api)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Failure::usage(format!("--api {api}: expected HOST:PORT")))?;
    Ok(Dialer::Tcp {
        given: api.to_owned(),
        addr,
        token: Secret(token),
    })
}

/// How to reach the warden of `target`, and its config (`None` for an installed instance
/// or `--api`). If a warden answers there, it is checked to run this very config (see
/// [`same_config`]): every command and `warden ui` go through here.
pub async fn dialer(target: &Target) -> Result<(Dialer, Option<Config>), Failure> {
    let (dialer, config) = locate(target).await?;
    if let Some(cfg) = &config
        && let Ok(mut client) = dialer.dial().await
    {
        same_config(&mut client, cfg, &dialer).await?;
    }
    Ok((dialer, config))
}

/// Where the warden of `target` is, without asking it anything.
async fn locate(target: &Target) -> Result<(Dialer, Option<Config>), Failure> {
    if let Some(api) = &target.remote.api {
        return Ok((
            remote_dialer(api, target.remote.token_file.as_deref()).await?,
            None,
        ));
    }
    let (addr, config) = match &target.instance {
        #[cfg(unix)]
        Some(name) => {
            let path = crate::os::unix::instance_config(name)?;
            let config = target_config(&Target {
                config: Some(path),
                instance: None,
                remote: crate::cli::Remote::default(),
            })?;
            (endpoint::address(&config, None), Some(config))
        }
        #[cfg(windows)]
        Some(name) => (endpoint::instance_address(name), None),
        None => {
            let config = target_config(target)?;
            (endpoint::address(&config, None), Some(config))
        }
    };
    let start_hint = match &target.instance {
        Some(name) => instance_hint(name),
        None => UP_HINT.to_owned(),
    };
    Ok((Dialer::Local { addr, start_hint }, config))
}

/// Connect to the warden of `target`; also returns its config (`None` for an installed
/// instance, which is found by its name alone, or for `--api`).
pub(super) async fn connect(target: &Target) -> Result<(Client, Option<Config>), Failure> {
    let (dialer, config) = dialer(target).await?;
    Ok((open(&dialer).await?, config))
}

/// One connection through `dialer`, its failure in words.
async fn open(dialer: &Dialer) -> Result<Client, Failure> {
    dialer.dial().await.map_err(|e| dialer.failure(&e))
}

/// Two configs that share a state dir reach the same warden: refuse to act for the one it
/// does not run (issue 8, E.14), so that `down -c B.toml` never stops A's services.
async fn same_config(client: &mut Client, config: &Config, dialer: &Dialer) -> Result<(), Failure> {
    // Only `warden.config` is read: the status of one service this config names carries it
    // (1,000 services would otherwise be sent and parsed twice per command). A warden that
    // does not know that name runs another config, or an older one: the whole status says.
    let one = config.services.first().map(|s| s.name.as_str());
    let report = match one {
        Some(name) => match client.status(&[name]).await {
            Err(ClientError::Api { .. }) => None,
            other => Some(other),
        },
        None => None,
    };
    let report = match report {
        Some(r) => r,
        None => client.status(&[]).await,
    }
    .map_err(|e| client_failure(&e))?;
    let running = std::path::Path::new(&report.warden.config);
    let same = |a: &std::path::Path, b: &std::path::Path| match (a.canonicalize(), b.canonicalize())
    {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if same(running, &config.path) {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "the warden on {} runs {}, not {}: both configs use the state dir {}; give each config its own state_dir",
        dialer.describe(),
        running.display(),
        config.path.display(),
        config.warden.state_dir.display()
    )))
}

/// A failed call in words. Prefer [`Dialer::failure`], which knows the hint for "not running".
pub fn client_failure(e: &ClientError) -> Failure {
    match e {
        ClientError::NotRunning { path } => not_running(&path.display().to_string(), None),
        ClientError::Config(errors) => super::config_errors(None, errors, super::NOTHING_CHANGED),
        ClientError::Api { body, .. } => match &body.detail {
            ErrorDetail::UnknownService { known } if !known.is_empty() => {
                Failure::failed(format!("{} (known: {})", body.error, known.join(", ")))
            }
            ErrorDetail::Failed { reason, .. } if !body.error.contains(reason.as_str()) => {
                Failure::failed(format!("{}: {reason}", body.error))
            }
            _ => Failure::failed(body.error.clone()),
        },
        other => Failure::failed(super::chain(other)),
    }
}

pub(super) fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    super::runtime()?.block_on(f)
}

/// `warden up -d`: start warden in the background (as `warden up --own-log` plus
/// `extra`); return once it answers.
pub fn up_detached(arg: &ConfigArg, extra: &[&str]) -> Result<(), Failure> {
    let config = super::load_config(arg)?;
    let target = Target {
        config: Some(config.path.clone()),
        ..Target::default()
    };
    block_on(async {
        if let Ok((mut c, _)) = connect(&target).await {
            let pid = c
                .status(&[])
                .await
                .map_or_else(|_| "?".into(), |s| s.warden.pid.to_string());
            return Err(Failure::failed(format!("already running (pid {pid})")));
        }
        super::warn_all(&config);
        let fail = |e: warden_core::state::StateError| Failure::failed(super::chain(&e));
        warden_core::state::secure_dir(&config.warden.state_dir, 0o700).map_err(fail)?;
        let log_path = config.warden.state_dir.join("warden.log");
        let log = warden_core::state::open_private_log(&log_path).map_err(fail)?;
        let start_offset = log.metadata().map_or(0, |m| m.len());
        let exe = std::env::current_exe()
            .map_err(|e| Failure::failed(format!("cannot find warden's own binary: {e}")))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("up")
            .arg("-c")
            .arg(&config.path)
            .arg("--own-log")
            .args(extra)
            .current_dir(&config.dir);
        cmd.stdin(std::process::Stdio::null());
        cmd.stdout(
            log.try_clone()
                .map_err(|e| Failure::failed(e.to_string()))?,
        );
        cmd.stderr(log);
        detach(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| Failure::failed(format!("cannot start warden: {e}")))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| Failure::failed(e.to_string()))?
            {
                let text = std::fs::read(&log_path).unwrap_or_default();
                let tail =
                    String::from_utf8_lossy(text.get(start_offset as usize..).unwrap_or_default())
                        .into_owned();
                return Err(Failure::new(
                    status
                        .code()
                        .map_or(crate::exit::FAILED, |c| c.clamp(1, 255) as u8),
                    tail.trim().trim_start_matches("warden: ").to_owned(),
                ));
            }
            if let Ok((mut c, _)) = connect(&target).await
                && c.status(&[]).await.is_ok()
            {
                return super::say(&format!(
                    "warden is running (pid {}); its log: {}\n",
                    child.id(),
                    log_path.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(Failure::failed(format!(
                    "warden (pid {}) did not answer within 30s; see {}",
                    child.id(),
                    log_path.display()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    })
}

/// Its own session, no terminal (Unix); no console window (Windows).
fn detach(cmd: &mut std::process::Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        const DETACHED_PROCESS: u32 = 0x0000_0008;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        cmd.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP);
    }
}

/// `warden down`: stop every service, then wait until warden has exited.
pub fn down(target: &Target) -> Result<(), Failure> {
    block_on(async {
        #[cfg(windows)]
        if let Some(instance) = &target.instance {
            return crate::os::scm_action(instance, Action::Stop);
        }
        let (mut client, config) = connect(target).await?;
        let pid = client
            .status(&[])
            .await
            .map_err(|e| client_failure(&e))?
            .warden
            .pid;
        client.shutdown().await.map_err(|e| client_failure(&e))?;
        // Over --api there is no lock file to wait on.
        let Some(config) = config else {
            super::say(&format!(
                "warden (pid {pid}) is stopping every service and will exit\n"
            ))?;
            return Ok(());
        };
        // warden holds the state dir's lock until it exits: waiting for the lock is waiting
        // for the exit.
        let lock = config.warden.state_dir.join("warden.lock");
        let limit = config
            .warden
            .shutdown_timeout
            .saturating_add(Duration::from_secs(30));
        let waited = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let f = std::fs::File::open(&lock)?;
            f.lock()?;
            f.unlock()
        });
        match tokio::time::timeout(limit, waited).await {
            Ok(Ok(Ok(()))) => {
                super::say(&format!(
                    "warden (pid {pid}) stopped every service and exited\n"
                ))?;
                Ok(())
            }
            Ok(Ok(Err(e))) => Err(Failure::failed(format!(
                "cannot wait for warden to exit: {e}"
            ))),
            Ok(Err(e)) => Err(Failure::failed(e.to_string())),
            Err(_) => Err(Failure::failed(format!(
                "warden (pid {pid}) is still running after {}s",
                limit.as_secs()
            ))),
        }
    })
}

/// `warden status`.
pub fn status(
    target: &Target,
    names: &[String],
    json: bool,
    no_color: bool,
) -> Result<(), Failure> {
    block_on(async {
        let (mut client, _) = connect(target).await?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let report = client
            .status(&names)
            .await
            .map_err(|e| client_failure(&e))?;
        let text = if json {
            serde_json::to_string_pretty(&report).map_err(|e| Failure::failed(e.to_string()))?
                + "\n"
        } else {
            use std::io::IsTerminal;
            let color = crate::render::use_color(no_color, std::io::stdout().is_terminal());
            crate::render::status_table(&report, color, crate::render::terminal_width())
                + "\n"
                + &crate::render::tracking_line(report.warden.tracking)
                + "\n"
        };
        super::say(&text)
    })
}

/// `, after starting its dependencies db, migrate`: what a start started first
/// (`depends_on`), less what this command starts by name anyway; empty when nothing was.
fn started_first(first: &[String], steps: &[Step]) -> String {
    let named = |n: &String| steps.iter().any(|s| matches!(s, Step::Act(a) if a == n));
    let first: Vec<&str> = first
        .iter()
        .filter(|n| !named(n))
        .map(String::as_str)
        .collect();
    match first.as_slice() {
        [] => String::new(),
        [one] => format!(", after starting its dependency {one}"),
        many => format!(", after starting its dependencies {}", many.join(", ")),
    }
}

/// `warden start|stop|restart NAME... | --all`.
pub fn act(action: Action, args: &ActArgs) -> Result<(), Failure> {
    #[cfg(windows)]
    if let Some(instance) = &args.target.instance
        && args.names.is_empty()
        && !args.all
    {
        return crate::os::scm_action(instance, action);
    }
    if args.names.is_empty() && !args.all {
        return Err(Failure::usage("name the services to act on, or use --all"));
    }
    block_on(async {
        let (dial, _) = dialer(&args.target).await?;
        // Not running: say so once, before anything is asked.
        let mut client = open(&dial).await?;
        let services = client
            .status(&[])
            .await
            .map_err(|e| dial.failure(&e))?
            .services;
        // Every name is checked before any service is touched.
        let steps = plan(action, &args.names, args.all, &services)?;
        // All at once, as `down` does: three services that take 2 s to stop take 2 s, not 6.
        // The answers are printed in the order the names were given.
        let wait = !args.no_wait;
        let tasks: Vec<_> = steps
            .iter()
            .map(|step| match step {
                Step::Act(name) => {
                    let (dial, name) = (dial.clone(), name.clone());
                    Some(tokio::spawn(async move {
                        let mut c = dial.dial().await?;
                        c.act(&name, action, wait).await
                    }))
                }
                Step::Leave { .. } => None,
            })
            .collect();
        let mut failed = Vec::new();
        let mut acted = 0;
        for (step, task) in steps.iter().zip(tasks) {
            let (name, task) = match (step, task) {
                (Step::Act(name), Some(task)) => (name, task),
                (Step::Leave { name, state, why }, _) => {
                    super::say(&format!("{name}: left {} ({why})\n", state.as_str()))?;
                    continue;
                }
                (Step::Act(_), None) => continue,
            };
            acted += 1;
            let result = task
                .await
                .map_err(|e| Failure::failed(format!("{name}: {e}")))?;
            match result {
                Ok(s) => {
                    let pid = s.pid.map_or_else(String::new, |p| format!(" (pid {p})"));
                    let verb = if args.no_wait {
                        "asked"
                    } else {
                        s.state.as_str()
                    };
                    let first = started_first(&s.started_first, &steps);
                    super::say(&format!("{name}: {verb}{pid}{first}\n"))?;
                }
                Err(e) => {
                    let f = dial.failure(&e);
                    // The API's message may name the service already ("web: cannot start").
                    let msg = f
                        .message
                        .strip_prefix(&format!("{name}: "))
                        .unwrap_or(&f.message);
                    super::warn(&format!("warden: {name}: {msg}"));
                    failed.push((name.clone(), f));
                }
            }
        }
        match failed.len() {
            0 => Ok(()),
            _ if failed
                .iter()
                .all(|(_, f)| f.code == crate::exit::NOT_RUNNING) =>
            {
                Err(failed.remove(0).1)
            }
            n => Err(Failure::failed(format!("{n} of {acted} service(s) failed"))),
        }
    })
}

/// What `start`/`stop`/`restart` does with one service.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Act(String),
    /// `restart --all` leaves a service at rest as it is.
    Leave {
        name: String,
        state: State,
        why: String,
    },
}

/// The services to act on, in the order given (each once), decided before any is touched:
/// an unknown name fails the whole command (exit 1), so that `restart web nosuch` restarts
/// nothing. `--all` means every service, except that `restart --all` restarts only what
/// runs or is about to (pending, starting, running, backoff, stopping): a service stopped
/// by hand, one that exited or one that failed is left as it is, and said so.
fn plan(
    action: Action,
    names: &[String],
    all: bool,
    services: &[ServiceStatus],
) -> Result<Vec<Step>, Failure> {
    if all {
        return Ok(services
            .iter()
            .map(|s| match (action, s.state) {
                (Action::Restart, State::Stopped | State::Exited | State::Failed) => Step::Leave {
                    name: s.name.clone(),
                    state: s.state,
                    why: s.reason.clone().unwrap_or_else(|| "at rest".into()),
                },
                _ => Step::Act(s.name.clone()),
            })
            .collect());
    }
    let mut wanted: Vec<&String> = Vec::new();
    for n in names {
        if !wanted.contains(&n) {
            wanted.push(n);
        }
    }
    let unknown: Vec<String> = wanted
        .iter()
        .filter(|&&n| !services.iter().any(|s| &s.name == n))
        .map(|n| format!("{n:?}"))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        let what = if unknown.len() == 1 {
            "service named"
        } else {
            "services named"
        };
        return Err(Failure::failed(format!(
            "no {what} {} (known: {}); nothing was done",
            unknown.join(", "),
            known.join(", ")
        )));
    }
    Ok(wanted.into_iter().map(|n| Step::Act(n.clone())).collect())
}

/// `warden reload`.
pub fn reload(target: &Target) -> Result<(), Failure> {
    block_on(async {
        let (mut client, _) = connect(target).await?;
        let report = client.reload().await.map_err(|e| client_failure(&e))?;
        // The warnings as warden saw them: the PATH that counts is the one it passes on.
        for w in &report.warnings {
            super::warn(w);
        }
        super::say(&format!("reloaded: {}\n", report.summary()))?;
        if report.errors.is_empty() {
            Ok(())
        } else {
            Err(Failure::failed("some services did not start"))
        }
    })
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
            return Err(Failure::usage(format!(
                "-n {v}: expected a number of lines (an instance is named already)"
            )));
        }
    }
    Ok((count.unwrap_or(100), inst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_names_the_dependencies_it_started_less_those_named_anyway() {
        let steps = [Step::Act("api".into()), Step::Act("db".into())];
        let first = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            started_first(&names, &steps)
        };
        assert_eq!(first(&[]), "");
        assert_eq!(first(&["db"]), "", "db is started by name anyway");
        assert_eq!(
            first(&["db", "cache"]),
            ", after starting its dependency cache"
        );
        assert_eq!(
            first(&["cache", "migrate"]),
            ", after starting its dependencies cache, migrate"
        );
    }

    #[test]
    fn logs_n_is_a_count_or_an_instance() {
        assert_eq!(
            split_logs_n(&["50".into()], None, None).ok(),
            Some((50, None))
        );
        assert_eq!(
            split_logs_n(&["sync".into()], None, None).ok(),
            Some((100, Some("sync".into())))
        );
        assert_eq!(
            split_logs_n(&["sync".into(), "20".into()], None, None).ok(),
            Some((20, Some("sync".into())))
        );
        assert!(split_logs_n(&["a".into(), "b".into()], None, None).is_err());
    }

    fn svc(name: &str, state: State, reason: Option<&str>) -> ServiceStatus {
        ServiceStatus {
            reason: reason.map(Into::into),
            ..ServiceStatus::new(name, state)
        }
    }

    fn services() -> Vec<ServiceStatus> {
        vec![
            svc("web", State::Running, None),
            svc("held", State::Stopped, Some("stopped by hand")),
            svc("crash", State::Backoff, Some("exited with code 1")),
            svc("done", State::Exited, Some("exited with code 0")),
            svc("flap", State::Failed, Some("start limit reached")),
            svc("new", State::Starting, None),
        ]
    }

    fn act(n: &str) -> Step {
        Step::Act(n.into())
    }

    #[test]
    fn an_unknown_name_stops_the_whole_plan() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        for action in Action::ALL {
            let err = plan(action, &names(&["web", "nosuch"]), false, &services())
                .expect_err("nosuch is unknown");
            assert_eq!(err.code, crate::exit::FAILED);
            assert!(
                err.message
                    .starts_with("no service named \"nosuch\" (known: web, held, "),
                "{}",
                err.message
            );
        }
        let err = plan(
            Action::Stop,
            &names(&["a", "web", "b", "a"]),
            false,
            &services(),
        )
        .expect_err("a and b are unknown");
        assert!(
            err.message
                .starts_with("no services named \"a\", \"b\" (known:"),
            "{}",
            err.message
        );
        assert_eq!(
            plan(
                Action::Stop,
                &names(&["held", "web", "held"]),
                false,
                &services()
            )
            .ok(),
            Some(vec![act("held"), act("web")]),
            "in the order given, each once"
        );
    }

    #[test]
    fn restart_all_leaves_what_is_at_rest() {
        let leave = |n: &str, state: State, why: &str| Step::Leave {
            name: n.into(),
            state,
            why: why.into(),
        };
        assert_eq!(
            plan(Action::Restart, &[], true, &services()).ok(),
            Some(vec![
                act("web"),
                leave("held", State::Stopped, "stopped by hand"),
                act("crash"),
                leave("done", State::Exited, "exited with code 0"),
                leave("flap", State::Failed, "start limit reached"),
                act("new"),
            ])
        );
        for action in [Action::Start, Action::Stop] {
            let all = plan(action, &[], true, &services()).expect("a plan");
            assert!(all.iter().all(|s| matches!(s, Step::Act(_))), "{all:?}");
            assert_eq!(all.len(), services().len());
        }
    }
}
