//! The commands that talk to a running warden over its control endpoint: `up -d`, `down`,
//! `status`, `start`, `stop`, `restart`, `reload` (and what `logs` shares with them).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use warden_core::api::client::{Client, ClientError};
use warden_core::config::{self, Config, ProcessEnv, Secret};
use warden_core::engine::Action;
use warden_core::proto::ErrorDetail;

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

fn not_running(addr: &str) -> Failure {
    Failure::new(
        crate::exit::NOT_RUNNING,
        format!("warden is not running (nothing answers on {addr}); start it with `warden up -d`"),
    )
}

/// How to reach a warden: its local endpoint, or its TCP API (`--api`) with a token.
#[derive(Clone)]
pub enum Dialer {
    Local(Address),
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
            Dialer::Local(a) => a.to_string(),
            Dialer::Tcp { given, .. } => given.clone(),
        }
    }

    /// One connection attempt.
    pub async fn dial(&self) -> Result<Client, ClientError> {
        match self {
            #[cfg(unix)]
            Dialer::Local(Address::Socket(p)) => Client::connect(p).await,
            #[cfg(windows)]
            Dialer::Local(Address::Pipe(p)) => Client::connect_pipe(p).await,
            Dialer::Tcp { addr, token, .. } => Client::connect_tcp(*addr, token.clone()).await,
        }
    }
}

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
    Ok((Dialer::Local(addr), config))
}

/// Connect to the warden of `target`; also returns its config (`None` for an installed
/// instance, which is found by its name alone, or for `--api`).
pub(super) async fn connect(target: &Target) -> Result<(Client, Option<Config>), Failure> {
    let (dialer, config) = dialer(target).await?;
    Ok((open(&dialer).await?, config))
}

/// One connection through `dialer`, its failure in words.
async fn open(dialer: &Dialer) -> Result<Client, Failure> {
    match dialer.dial().await {
        Ok(c) => Ok(c),
        Err(ClientError::NotRunning { .. }) if matches!(dialer, Dialer::Tcp { .. }) => {
            Err(Failure::new(
                crate::exit::NOT_RUNNING,
                format!(
                    "nothing answers on {} (is warden's `api` set, and the tunnel up?)",
                    dialer.describe()
                ),
            ))
        }
        Err(ClientError::NotRunning { .. }) => Err(not_running(&dialer.describe())),
        Err(e) => Err(client_failure(&e)),
    }
}

/// Two configs that share a state dir reach the same warden: refuse to act for the one it
/// does not run (issue 8, E.14), so that `down -c B.toml` never stops A's services.
async fn same_config(client: &mut Client, config: &Config, dialer: &Dialer) -> Result<(), Failure> {
    let report = client.status(&[]).await.map_err(|e| client_failure(&e))?;
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

pub fn client_failure(e: &ClientError) -> Failure {
    match e {
        ClientError::NotRunning { path } => Failure::new(
            crate::exit::NOT_RUNNING,
            format!(
                "warden is not running (nothing answers on {}); start it with `warden up -d`",
                path.display()
            ),
        ),
        ClientError::Config(errors) => {
            let mut msg = errors.join("\n");
            let _ = write!(
                msg,
                "
warden: {} error(s); nothing was changed",
                errors.len()
            );
            Failure::usage(format!("config error\n{msg}"))
        }
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
            crate::render::status_table(&report, color)
        };
        super::say(&text)
    })
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
        let names: Vec<String> = if args.all {
            client
                .status(&[])
                .await
                .map_err(|e| client_failure(&e))?
                .services
                .into_iter()
                .map(|s| s.name)
                .collect()
        } else {
            args.names.clone()
        };
        // All at once, as `down` does: three services that take 2 s to stop take 2 s, not 6.
        // The answers are printed in the order the names were given.
        let wait = !args.no_wait;
        let tasks: Vec<_> = names
            .iter()
            .map(|name| {
                let (dial, name) = (dial.clone(), name.clone());
                tokio::spawn(async move {
                    let mut c = dial.dial().await?;
                    c.act(&name, action, wait).await
                })
            })
            .collect();
        let mut failed = Vec::new();
        for (name, task) in names.iter().zip(tasks) {
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
                    super::say(&format!("{name}: {verb}{pid}\n"))?;
                }
                Err(e) => {
                    let f = client_failure(&e);
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
            n => Err(Failure::failed(format!(
                "{n} of {} service(s) failed",
                names.len()
            ))),
        }
    })
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
}
