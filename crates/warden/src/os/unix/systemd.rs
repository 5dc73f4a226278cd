//! Linux: the instance as a systemd unit, driven through `systemctl` (`--user` in user
//! scope). The same functions as `launchd.rs`.

use std::path::Path;
use std::process::{Command, Stdio};

use super::paths::{system_path, unit_name};
use super::spec::UnitSpec;
use crate::Failure;
use crate::cli::Scope;

/// What the unit is called in messages.
pub const KIND: &str = "systemd unit";

pub fn render(spec: &UnitSpec) -> String {
    super::systemd_unit::render(spec)
}

/// Run `systemctl [--user] ARGS`; its stderr (or stdout) when it fails.
fn systemctl(scope: Scope, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("systemctl");
    if scope == Scope::User {
        cmd.arg("--user");
    }
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let text = [&out.stderr, &out.stdout]
        .iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_owned())
        .find(|t| !t.is_empty())
        .unwrap_or_else(|| format!("exited with {}", out.status));
    Err(text)
}

fn command_line(scope: Scope, args: &[&str]) -> String {
    let user = if scope == Scope::User { " --user" } else { "" };
    format!("systemctl{user} {}", args.join(" "))
}

/// Is a systemd there to install into? System scope: `/run/systemd/system` exists (how
/// systemd itself tells it booted the machine). User scope: `systemctl --user` reaches
/// the user's manager.
pub fn check_running(scope: Scope) -> Result<(), Failure> {
    match scope {
        Scope::System => {
            let marker = system_path("/run/systemd/system");
            if marker.is_dir() {
                Ok(())
            } else {
                Err(Failure::failed(format!(
                    "systemd is not running on this machine ({} does not exist: a container or a CI box?), so there is nothing to install into; run `warden up -d` instead, or `warden install ... --print` to see the unit",
                    marker.display()
                )))
            }
        }
        Scope::User => systemctl(scope, &["show-environment"]).map_err(|e| {
            Failure::failed(format!(
                "cannot reach your systemd user manager (`systemctl --user`: {e}); log in with a session that runs one, or run `warden up -d` instead"
            ))
        }),
    }
}

fn step(scope: Scope, args: &[&str]) -> Result<(), Failure> {
    systemctl(scope, args)
        .map_err(|e| Failure::failed(format!("`{}` failed: {e}", command_line(scope, args))))
}

/// Make systemd see the new unit, and enable it with `--start auto`.
pub fn register(spec: &UnitSpec, _unit: &Path) -> Result<(), Failure> {
    step(spec.scope, &["daemon-reload"])?;
    if spec.autostart {
        step(spec.scope, &["enable", &unit_name(&spec.name)])?;
    }
    Ok(())
}

/// Start it and wait until warden said READY=1 (`Type=notify`).
pub fn start(spec: &UnitSpec) -> Result<(), Failure> {
    let unit = unit_name(&spec.name);
    systemctl(spec.scope, &["start", &unit]).map_err(|e| {
        let journal = if spec.scope == Scope::User {
            "journalctl --user -u"
        } else {
            "journalctl -u"
        };
        Failure::failed(format!(
            "installed, but {unit} did not start: {e}; see `{journal} {unit}`"
        ))
    })
}

/// How it starts, for the install message.
pub fn start_word(spec: &UnitSpec) -> &'static str {
    if spec.autostart {
        "enabled"
    } else {
        "not enabled: `systemctl start` starts it"
    }
}

/// Stop and disable the unit; what did not work, as warnings.
pub fn unregister(name: &str, scope: Scope, _unit: &Path) -> Vec<String> {
    let unit = unit_name(name);
    let mut warnings = Vec::new();
    for verb in ["stop", "disable"] {
        if let Err(e) = systemctl(scope, &[verb, &unit]) {
            warnings.push(format!("`{}`: {e}", command_line(scope, &[verb, &unit])));
        }
    }
    warnings
}

/// `warden start|stop|restart -n NAME`: `systemctl [--user] VERB warden-NAME.service`
/// (`start` returns once warden said READY=1).
pub fn control(name: &str, scope: Scope, verb: &str) -> Result<(), Failure> {
    step(scope, &[verb, &unit_name(name)])
}

/// The command that starts the instance by hand, for hints.
pub fn start_command(name: &str, scope: Scope) -> String {
    command_line(scope, &["start", &unit_name(name)])
}

/// After the unit file is gone: make systemd forget it.
pub fn forget(scope: Scope) -> Result<(), Failure> {
    step(scope, &["daemon-reload"])
}
