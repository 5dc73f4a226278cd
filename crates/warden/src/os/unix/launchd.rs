//! macOS: the instance as a launchd job (a launch daemon, or a launch agent in user scope),
//! driven through `launchctl bootstrap`/`bootout`. The same functions as `systemd.rs`.

use std::path::Path;
use std::process::{Command, Stdio};

use super::paths::label;
use super::spec::UnitSpec;
use crate::Failure;
use crate::cli::Scope;

/// What the job is called in messages.
pub const KIND: &str = "launchd job";

pub fn render(spec: &UnitSpec) -> String {
    super::launchd_plist::render(spec)
}

/// `system`, or `gui/UID` for the user's agents.
fn domain(scope: Scope) -> String {
    match scope {
        Scope::System => "system".to_owned(),
        // SAFETY: getuid cannot fail.
        Scope::User => format!("gui/{}", unsafe { libc::getuid() }),
    }
}

fn launchctl(args: &[&str]) -> Result<(), String> {
    let out = Command::new("launchctl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run launchctl: {e}"))?;
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

fn step(args: &[&str]) -> Result<(), Failure> {
    launchctl(args)
        .map_err(|e| Failure::failed(format!("`launchctl {}` failed: {e}", args.join(" "))))
}

/// launchd always runs on macOS; the user's GUI domain exists only while they are logged in.
pub fn check_running(scope: Scope) -> Result<(), Failure> {
    let d = domain(scope);
    launchctl(&["print", &d]).map_err(|e| {
        Failure::failed(format!(
            "cannot reach launchd's {d} domain ({e}); log in graphically for --scope user, or run `warden up -d` instead"
        ))
    })
}

/// Load the plist (`RunAtLoad` starts it at once with `--start auto`).
pub fn register(spec: &UnitSpec, plist: &Path) -> Result<(), Failure> {
    let d = domain(spec.scope);
    let target = format!("{d}/{}", label(&spec.name));
    // A job disabled earlier would not load.
    step(&["enable", &target])?;
    step(&["bootstrap", &d, &plist.to_string_lossy()])
}

/// Start it now.
pub fn start(spec: &UnitSpec) -> Result<(), Failure> {
    let target = format!("{}/{}", domain(spec.scope), label(&spec.name));
    launchctl(&["kickstart", &target]).map_err(|e| {
        Failure::failed(format!(
            "installed, but {target} did not start: {e}; see `launchctl print {target}`"
        ))
    })
}

/// How it starts, for the install message.
pub fn start_word(spec: &UnitSpec) -> &'static str {
    if spec.autostart {
        "loaded, runs at load and at boot"
    } else {
        "loaded: `launchctl kickstart` starts it"
    }
}

/// Stop and unload the job; what did not work, as warnings.
pub fn unregister(name: &str, scope: Scope, plist: &Path) -> Vec<String> {
    let d = domain(scope);
    let target = format!("{d}/{}", label(name));
    let mut warnings = Vec::new();
    if let Err(e) = launchctl(&["bootout", &target]) {
        // Not loaded: nothing to stop; the plist goes anyway.
        warnings.push(format!("`launchctl bootout {target}`: {e}"));
    }
    let _ = plist;
    warnings
}

/// `warden start|stop|restart -n NAME`: `launchctl kickstart` (`-k` kills a running one
/// first), or `launchctl kill SIGTERM` (warden stops gracefully and exits 0, which
/// `KeepAlive = { SuccessfulExit = false }` leaves stopped).
pub fn control(name: &str, scope: Scope, verb: &str) -> Result<(), Failure> {
    let target = format!("{}/{}", domain(scope), label(name));
    match verb {
        "start" => step(&["kickstart", &target]),
        "restart" => step(&["kickstart", "-k", &target]),
        _ => step(&["kill", "SIGTERM", &target]),
    }
}

/// The command that starts the instance by hand, for hints.
pub fn start_command(name: &str, scope: Scope) -> String {
    format!("launchctl kickstart {}/{}", domain(scope), label(name))
}

/// Nothing to reload: launchd forgot the job at bootout.
#[allow(clippy::unnecessary_wraps, reason = "the same signature as systemd.rs")]
pub fn forget(_scope: Scope) -> Result<(), Failure> {
    Ok(())
}
