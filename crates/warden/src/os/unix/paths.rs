//! Where an installed instance lives, for both scopes (issue 11):
//!
//! | | system | user |
//! | --- | --- | --- |
//! | config | `/etc/warden/NAME/warden.toml` | `~/.config/warden/NAME/warden.toml` |
//! | logs | `/var/log/warden/NAME` | `~/.local/state/warden/NAME/logs` |
//! | state (survives a reboot) | `/var/lib/warden/NAME` | `~/.local/state/warden/NAME` |
//! | control socket | `/run/warden/NAME/` (macOS `/var/run`) | `$XDG_RUNTIME_DIR/warden/NAME/` |
//! | unit | `/etc/systemd/system/warden-NAME.service` | `~/.config/systemd/user/` |
//! | plist (macOS) | `/Library/LaunchDaemons/warden.NAME.plist` | `~/Library/LaunchAgents/` |
//!
//! `$XDG_CONFIG_HOME` and `$XDG_STATE_HOME` replace `~/.config` and `~/.local/state` when
//! set. For tests only, `WARDEN_INSTALL_ROOT=DIR` puts every system path under `DIR`
//! (`DIR/etc/warden/...`, and the check for a running systemd, `DIR/run/systemd/system`).

use std::path::{Path, PathBuf};

use crate::Failure;
use crate::cli::Scope;

/// Test only: the directory every system path is put under.
pub const ROOT_ENV: &str = "WARDEN_INSTALL_ROOT";

/// The `/` of the system paths (`WARDEN_INSTALL_ROOT` in tests).
pub fn root() -> PathBuf {
    match std::env::var_os(ROOT_ENV) {
        Some(r) if Path::new(&r).is_absolute() => PathBuf::from(r),
        _ => PathBuf::from("/"),
    }
}

/// `/etc/...` under [`root`].
pub fn system_path(abs: &str) -> PathBuf {
    root().join(abs.trim_start_matches('/'))
}

/// Every path of one installed instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub scope: Scope,
    /// The folder of the config, created by install.
    pub config_dir: PathBuf,
    /// The instance's config: the generated one, or a symlink to the `-c` file.
    pub config: PathBuf,
    pub log_dir: PathBuf,
    pub state_dir: PathBuf,
    /// The unit file or plist.
    pub unit: PathBuf,
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

fn home() -> Result<PathBuf, Failure> {
    env_dir("HOME").ok_or_else(|| {
        Failure::failed("--scope user needs $HOME (an absolute path) to find your folders")
    })
}

/// launchd's label of the instance `name`.
pub fn label(name: &str) -> String {
    format!("warden.{name}")
}

/// `warden-NAME.service` (systemd) or `warden.NAME` (launchd's label).
pub fn unit_name(name: &str) -> String {
    if cfg!(target_os = "macos") {
        label(name)
    } else {
        format!("warden-{name}.service")
    }
}

fn unit_path(name: &str, scope: Scope) -> Result<PathBuf, Failure> {
    let unit = unit_name(name);
    Ok(match (scope, cfg!(target_os = "macos")) {
        (Scope::System, false) => system_path("/etc/systemd/system").join(unit),
        (Scope::User, false) => config_home()?.join("systemd/user").join(unit),
        (Scope::System, true) => system_path("/Library/LaunchDaemons").join(unit + ".plist"),
        (Scope::User, true) => home()?.join("Library/LaunchAgents").join(unit + ".plist"),
    })
}

fn config_home() -> Result<PathBuf, Failure> {
    env_dir("XDG_CONFIG_HOME").map_or_else(|| Ok(home()?.join(".config")), Ok)
}

fn state_home() -> Result<PathBuf, Failure> {
    env_dir("XDG_STATE_HOME").map_or_else(|| Ok(home()?.join(".local/state")), Ok)
}

impl Paths {
    pub fn new(name: &str, scope: Scope) -> Result<Paths, Failure> {
        let (config_dir, log_dir, state_dir) = match scope {
            Scope::System => (
                system_path("/etc/warden").join(name),
                system_path("/var/log/warden").join(name),
                system_path("/var/lib/warden").join(name),
            ),
            Scope::User => {
                let state = state_home()?.join("warden").join(name);
                (
                    config_home()?.join("warden").join(name),
                    state.join("logs"),
                    state,
                )
            }
        };
        Ok(Paths {
            scope,
            config: config_dir.join("warden.toml"),
            config_dir,
            log_dir,
            state_dir,
            unit: unit_path(name, scope)?,
        })
    }

    /// The folder of the control socket: cleared at boot, so nothing else lives there.
    /// User scope needs `$XDG_RUNTIME_DIR` on Linux; on macOS, without it, the state dir.
    pub fn runtime_dir(&self, name: &str) -> Result<PathBuf, Failure> {
        match self.scope {
            Scope::System if cfg!(target_os = "macos") => {
                Ok(system_path("/var/run/warden").join(name))
            }
            Scope::System => Ok(system_path("/run/warden").join(name)),
            Scope::User => match env_dir("XDG_RUNTIME_DIR") {
                Some(dir) => Ok(dir.join("warden").join(name)),
                None if cfg!(target_os = "macos") => Ok(self.state_dir.clone()),
                None => Err(Failure::failed(
                    "--scope user needs $XDG_RUNTIME_DIR (your runtime dir, which systemd sets when you log in) for the control socket",
                )),
            },
        }
    }
}

/// `path` for messages: `~/...` under `$HOME`.
fn tilde(path: &Path) -> String {
    match env_dir("HOME").and_then(|h| path.strip_prefix(h).ok().map(Path::to_path_buf)) {
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    }
}

/// The config of the installed instance `name` (`-n NAME`): the system scope's, then the
/// user scope's. A `-c` install's entry is a symlink to the file the unit runs, which is
/// returned itself, so that relative paths in it mean what they mean to the running warden.
pub fn instance_config(name: &str) -> Result<PathBuf, Failure> {
    crate::os::quick::check_name(name)?;
    let mut looked = Vec::new();
    for scope in [Scope::System, Scope::User] {
        let Ok(paths) = Paths::new(name, scope) else {
            continue;
        };
        if let Ok(target) = std::fs::read_link(&paths.config) {
            return Ok(paths.config_dir.join(target));
        }
        if paths.config.exists() {
            return Ok(paths.config);
        }
        looked.push(tilde(&paths.config));
    }
    Err(Failure::usage(format!(
        "no installed instance \"{name}\" (no {}); `warden install {name} ...` installs one",
        looked.join(", no ")
    )))
}
