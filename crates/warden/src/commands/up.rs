//! `warden up`: supervise the services in the foreground (or detached with `-d`, and with
//! `-d --wait` until every autostart service is up). Under systemd (`Type=notify`), it also
//! tells systemd when it is ready and stopping, and pings its watchdog
//! (`os::unix::notify`).

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;

use warden_core::config::Config;
use warden_core::daemon::{self, Options};
use warden_core::proto::{ServiceStatus, State};

use crate::Failure;
use crate::cli::{ConfigArg, Target};

/// A callback of the daemon's life cycle (`Options::on_ready`, `on_stopping`).
type Hook = Box<dyn FnOnce() + Send>;

/// The longest `--wait-timeout` (the API's bound of `until=up`).
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The flags of `warden up` that shape the daemon.
pub struct UpOptions {
    /// `--attach`: the services' output as `NAME | line` on stdout.
    pub attach: bool,
    /// `--log-format json`.
    pub json: bool,
    /// `--own-log` (hidden; what `up -d` starts): events into the rotated `warden.log`.
    pub own_log: bool,
    /// `--reset`: forget the services stopped by hand.
    pub reset: bool,
}

pub fn run(arg: &ConfigArg, up: &UpOptions) -> Result<(), Failure> {
    // SAFETY: first thing, before any thread (the runtime's) exists.
    #[cfg(unix)]
    let host = unsafe { crate::os::unix::notify::Host::take_from_env() };
    let config = super::load_config(arg)?;
    // A launchd job's stderr is `warden.log` itself: rotate it like `up -d` does.
    let own_log = up.own_log || stderr_is_own_log(&config);
    let rt = super::runtime()?;
    let result = rt.block_on(async move {
        let (tx, rx) = mpsc::channel(8);
        daemon::forward_signals(tx.clone())
            .map_err(|e| Failure::failed(format!("cannot listen for signals: {e}")))?;
        #[cfg(unix)]
        let (on_ready, on_stopping): (Hook, Hook) = {
            host.spawn_watchdog();
            let count = config.services.len();
            let ready = host.clone();
            (
                Box::new(move || ready.ready(count)),
                Box::new(move || host.stopping()),
            )
        };
        #[cfg(not(unix))]
        let (on_ready, on_stopping): (Hook, Hook) = (Box::new(|| {}), Box::new(|| {}));
        let opts = Options {
            attach: up.attach,
            interactive: std::io::IsTerminal::is_terminal(&std::io::stdin()),
            requests: rx,
            requests_tx: tx,
            on_ready,
            instance: None,
            on_stopping,
            json: up.json,
            own_log,
            reset: up.reset,
        };
        daemon::supervise(config, opts)
            .await
            .map_err(|e| Failure::failed(super::chain(&e)))
    });
    // Everything warden started is gone by now; do not wait for idle runtime threads.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

/// `warden up -d [--reset] [--wait [--wait-timeout D]]`.
pub fn detached(arg: &ConfigArg, up: &UpOptions, wait: Option<&str>) -> Result<(), Failure> {
    let timeout = wait.map(parse_wait_timeout).transpose()?;
    let extra: &[&str] = if up.reset { &["--reset"] } else { &[] };
    super::ctl::up_detached(arg, extra)?;
    match timeout {
        Some(t) => {
            // Which exit codes complete each one-shot (its `success_codes`).
            let config = super::load_config(arg)?;
            let success: HashMap<String, Vec<i32>> = config
                .services
                .into_iter()
                .map(|s| (s.name, s.success_codes))
                .collect();
            wait_until_up(arg, t, &success)
        }
        None => Ok(()),
    }
}

fn parse_wait_timeout(text: &str) -> Result<Duration, Failure> {
    match warden_core::config::parse_duration(text) {
        Some(d) if d <= MAX_WAIT => Ok(d),
        Some(_) => Err(Failure::usage(format!("--wait-timeout {text}: at most 1h"))),
        None => Err(Failure::usage(format!(
            "--wait-timeout {text}: expected a duration such as 30s or 2m"
        ))),
    }
}

/// Ask the warden just started for its status once no service is on its way up any more
/// (the engine's own notion of *up*, event driven on its side), then name those not up.
fn wait_until_up(
    arg: &ConfigArg,
    timeout: Duration,
    success: &HashMap<String, Vec<i32>>,
) -> Result<(), Failure> {
    let target = Target {
        config: Some(super::config_path(arg)),
        ..Target::default()
    };
    super::ctl::block_on(async {
        let (mut client, _) = super::ctl::connect(&target).await?;
        // The server answers within `timeout`; the margin only guards against a hang.
        let answer = tokio::time::timeout(
            timeout + Duration::from_secs(10),
            client.status_when_up(timeout),
        )
        .await
        .map_err(|_| Failure::failed("warden did not answer the wait for its services"))?;
        let report = answer.map_err(|e| super::ctl::client_failure(&e))?;
        up_verdict(&report.services, timeout, success)
    })
}

/// Every service is up, or completed (a one-shot that exited with one of its
/// `success_codes`, as `depends_on = { x = "completed" }` means it), or stopped on purpose
/// (`autostart = false`, stopped by hand): say how many of each. Otherwise exit 1 with the
/// reason of each one that is not.
fn up_verdict(
    services: &[ServiceStatus],
    timeout: Duration,
    success: &HashMap<String, Vec<i32>>,
) -> Result<(), Failure> {
    let completed =
        |s: &ServiceStatus| s.completed(success.get(&s.name).map_or(&[0][..], Vec::as_slice));
    let up = services
        .iter()
        .filter(|s| s.state == State::Running)
        .count();
    let not_up: Vec<String> = services
        .iter()
        .filter(|s| !matches!(s.state, State::Running | State::Stopped) && !completed(s))
        .map(|s| {
            let why = match (s.state, &s.reason) {
                // Waiting for a dependency that will not come (the wait settled on it).
                (State::Pending, Some(reason)) => format!("pending: {reason}"),
                (State::Pending | State::Starting | State::Stopping, _) => format!(
                    "still {} after {}",
                    s.state.as_str(),
                    warden_core::util::fmt_duration(timeout)
                ),
                (state, Some(reason)) => format!("{}: {reason}", state.as_str()),
                (state, None) => state.as_str().to_owned(),
            };
            format!("  {}: {why}", s.name)
        })
        .collect();
    if not_up.is_empty() {
        let names = |keep: &dyn Fn(&ServiceStatus) -> bool, with_reason: bool| {
            services
                .iter()
                .filter(|s| keep(s))
                .map(|s| match &s.reason {
                    Some(r) if with_reason => format!("{} ({r})", s.name),
                    _ => s.name.clone(),
                })
                .collect::<Vec<_>>()
        };
        let done = names(&completed, false);
        let stopped = names(&|s| s.state == State::Stopped, true);
        let mut rest = String::new();
        for (what, list) in [("completed", done), ("not started", stopped)] {
            if !list.is_empty() {
                rest = format!("{rest}; {what}: {}", list.join(", "));
            }
        }
        return super::say(&format!("{up} service(s) up{rest}\n"));
    }
    Err(Failure::failed(format!(
        "{} service(s) not up:\n{}",
        not_up.len(),
        not_up.join("\n")
    )))
}

/// Is warden's stderr the state dir's `warden.log` (a launchd job's `StandardErrorPath`)?
#[cfg(unix)]
fn stderr_is_own_log(config: &Config) -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let path = warden_core::state::layout::Layout::new(&config.warden.state_dir).log();
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match (std::fs::File::from(fd).metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Windows: `up -d` and the service say so themselves.
#[cfg(not(unix))]
fn stderr_is_own_log(_config: &Config) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, state: State, reason: Option<&str>) -> ServiceStatus {
        ServiceStatus {
            reason: reason.map(Into::into),
            ..ServiceStatus::new(name, state)
        }
    }

    #[test]
    fn the_verdict_names_each_service_not_up_with_its_reason() {
        let t = Duration::from_secs(5);
        let all = [
            svc("web", State::Running, None),
            svc("off", State::Stopped, Some("autostart = false")),
            svc("crash", State::Backoff, Some("exited with code 3")),
            svc("slow", State::Starting, None),
            svc("api", State::Pending, Some("waiting for db (stopped)")),
        ];
        let none = HashMap::new();
        let f = up_verdict(&all, t, &none).expect_err("not all up");
        assert_eq!(f.code, crate::exit::FAILED);
        assert_eq!(
            f.message,
            "3 service(s) not up:\n  crash: backoff: exited with code 3\n  slow: still starting after 5.0s\n  api: pending: waiting for db (stopped)"
        );
        assert!(up_verdict(&all[..2], t, &none).is_ok());
    }

    #[test]
    fn a_one_shot_that_exited_with_a_success_code_is_completed_not_down() {
        let t = Duration::from_secs(5);
        let exited = |name: &str, code: i32| ServiceStatus {
            last_exit: Some(warden_core::proto::LastExit {
                code: Some(code),
                signal: None,
                at: String::new(),
                ran_ms: 1100,
            }),
            ..svc(
                name,
                State::Exited,
                Some(&format!("exited with code {code}")),
            )
        };
        let all = [
            svc("api", State::Running, None),
            exited("migrate", 0),
            exited("seed", 2),
        ];
        let f = up_verdict(&all, t, &HashMap::new()).expect_err("seed failed");
        assert_eq!(
            f.message,
            "1 service(s) not up:\n  seed: exited: exited with code 2"
        );
        let codes = HashMap::from([("seed".to_owned(), vec![0, 2])]);
        assert!(up_verdict(&all, t, &codes).is_ok());
        // Killed by a signal is not completed, whatever the codes.
        let mut killed = exited("once", 0);
        killed.last_exit.as_mut().expect("an exit").signal = Some(9);
        assert!(up_verdict(&[killed], t, &HashMap::new()).is_err());
    }

    #[test]
    fn wait_timeout_is_a_bounded_duration() {
        assert_eq!(
            parse_wait_timeout("90s").ok(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(parse_wait_timeout("2h").map_err(|f| f.code).err(), Some(2));
        assert_eq!(
            parse_wait_timeout("soon").map_err(|f| f.code).err(),
            Some(2)
        );
    }
}
