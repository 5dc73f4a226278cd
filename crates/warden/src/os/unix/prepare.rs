//! `warden install`'s options checked (every bad one is a usage error naming it) and turned
//! into a [`Plan`]: the paths, the config (generated for the quick form, validated either
//! way) and the [`UnitSpec`] the unit or plist is written from. Nothing is written here.

use std::path::{Path, PathBuf};

use warden_core::config::{self, Config, ProcessEnv};

use super::account::{self, Account};
use super::paths::Paths;
use super::spec::{GENERATED, UnitSpec};
use crate::Failure;
use crate::cli::{Scope, StartType};
use crate::os::InstallOptions;
use crate::os::quick::{Extras, check_name, literal};

/// What install will do.
#[derive(Debug)]
pub struct Plan {
    pub spec: UnitSpec,
    pub paths: Paths,
    /// The quick form's generated config (written to `paths.config`).
    pub quick: Option<String>,
    /// A `-c` install: the file that `paths.config` points to (a symlink), unless it is
    /// `paths.config` itself.
    pub pointer_to: Option<PathBuf>,
    /// `--user`: the account that gets the folders install creates.
    pub account: Option<Account>,
    pub now: bool,
    /// The generated config holds `--env` values (secrets): mode 0600, owned by `--user`.
    pub private_config: bool,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::usage(message)
}

/// Unit types systemd knows; a dependency without one of them is a `.service`.
const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "target",
    "mount",
    "automount",
    "device",
    "path",
    "timer",
    "swap",
    "slice",
    "scope",
];

/// `--depends-on postgresql` is `postgresql.service`; the name is checked, since it is
/// written into the unit file.
pub fn unit_dependency(dep: &str) -> Result<String, Failure> {
    let ok = !dep.is_empty()
        && dep.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.' | b'\\' | b'@')
        });
    if !ok {
        return Err(usage(format!(
            "--depends-on \"{}\": not a systemd unit name (letters, digits and \":-_.\\@\" only)",
            dep.escape_debug()
        )));
    }
    let typed = dep
        .rsplit_once('.')
        .is_some_and(|(_, ext)| UNIT_TYPES.contains(&ext));
    Ok(if typed {
        dep.to_owned()
    } else {
        format!("{dep}.service")
    })
}

/// A value written into a unit file or plist: one line of printable text.
fn one_line(flag: &str, value: &str) -> Result<(), Failure> {
    if value.chars().any(char::is_control) {
        return Err(usage(format!(
            "{flag} \"{}\": control characters and line breaks are not allowed",
            value.escape_debug()
        )));
    }
    Ok(())
}

/// The options that mean nothing here.
fn refuse_windows_only(opts: &InstallOptions) -> Result<bool, Failure> {
    if opts.display_name.is_some() {
        return Err(usage(
            "--display-name is for Windows services; use --description here",
        ));
    }
    if opts.password_file.is_some() {
        return Err(usage(
            "--password-file is for Windows accounts; here warden runs as --user ACCOUNT without a password",
        ));
    }
    match opts.start {
        StartType::Auto => Ok(true),
        StartType::Manual => Ok(false),
        StartType::Delayed | StartType::Disabled => Err(usage(format!(
            "--start {}: that start type is Windows-only; use --start auto (start at boot) or --start manual",
            if opts.start == StartType::Delayed {
                "delayed"
            } else {
                "disabled"
            }
        ))),
    }
}

/// `--user`: an account that exists, and only in system scope.
fn account_of(opts: &InstallOptions) -> Result<Option<Account>, Failure> {
    let Some(user) = &opts.user else {
        return Ok(None);
    };
    if opts.scope == Scope::User {
        return Err(usage(
            "--user is for --scope system: a user-scope unit always runs as you (--scope says where it is installed, --user who runs it)",
        ));
    }
    one_line("--user", user)?;
    account::by_name(user).map(Some).ok_or_else(|| {
        usage(format!(
            "--user {user}: no such account on this machine (create it first, e.g. `useradd --system {user}`)"
        ))
    })
}

/// The services of the raw config text whose `user` key names someone other than
/// `account`, as `(service, user)`. Read from the TOML itself, before validation.
pub fn foreign_users(text: &str, account: &str) -> Vec<(String, String)> {
    let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    let Some(services) = doc.get("services").and_then(toml_edit::Item::as_table_like) else {
        return Vec::new();
    };
    services
        .iter()
        .filter_map(|(name, item)| {
            let user = item.as_table_like()?.get("user")?.as_str()?;
            (user != account).then(|| (name.to_owned(), user.to_owned()))
        })
        .collect()
}

/// Per-service `user` keys must be the account warden runs as, unless warden runs as root
/// (only root can start a program as another user).
fn check_users(
    file: &Path,
    opts: &InstallOptions,
    account: Option<&Account>,
) -> Result<(), Failure> {
    let (runs_as, why) = match (account, opts.scope) {
        (Some(a), _) => (a.name.clone(), format!("--user {}", a.name)),
        (None, Scope::User) => match account::current() {
            Some(me) if me.uid != 0 => (me.name, "--scope user".to_owned()),
            _ => return Ok(()),
        },
        (None, Scope::System) => return Ok(()),
    };
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(()); // load() reports it
    };
    let foreign = foreign_users(&text, &runs_as);
    if foreign.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = foreign
        .iter()
        .map(|(s, u)| format!("service \"{s}\" has user = \"{u}\""))
        .collect();
    Err(usage(format!(
        "{}: {}, but warden will run as \"{runs_as}\" ({why}), and only root can start a service as another user; remove those user keys, or install without --user so that warden runs as root",
        file.display(),
        list.join(", ")
    )))
}

/// A program named after `--`, as an absolute path: a path as given (made absolute), or a
/// bare name searched in `PATH` (the service manager will not have the installer's `PATH`).
fn resolve_program(program: &str) -> Result<PathBuf, Failure> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let p = Path::new(program);
    if program.contains('/') {
        let abs = std::path::absolute(p).map_err(|e| usage(format!("program {program}: {e}")))?;
        return if executable(&abs) {
            Ok(abs)
        } else if abs.exists() {
            Err(usage(format!(
                "program {}: not an executable file",
                abs.display()
            )))
        } else {
            Err(usage(format!("program not found: {}", abs.display())))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(p))
        .find(|c| executable(c))
        .ok_or_else(|| usage(format!("program not found in PATH: {program}")))
}

fn lit_path(p: &Path) -> String {
    literal(&p.to_string_lossy())
}

/// The config of `warden install NAME -- PROGRAM ARGS...`: one service NAME running the
/// program (absolute) in `--cwd` or the program's folder, with the `--env` variables; logs,
/// state and socket where `paths` say.
pub fn quick_config(
    name: &str,
    program: &Path,
    args: &[String],
    extras: &Extras,
    paths: &Paths,
    socket: &Path,
) -> String {
    let mut command = vec![lit_path(program)];
    command.extend(args.iter().map(|a| literal(a)));
    let cwd = extras
        .cwd
        .as_deref()
        .or_else(|| program.parent())
        .unwrap_or(&paths.state_dir);
    format!(
        "{GENERATED} {name}`; `warden uninstall {name} --purge` removes it.\n\
         # Edit it, then `warden reload -n {name}` applies the change.\n\
         \n\
         [warden]\n\
         log_dir = {}\n\
         state_dir = {}\n\
         socket = {}\n\
         \n\
         [services.{name}]\n\
         command = [{}]\n\
         cwd = {}\n\
         {}",
        lit_path(&paths.log_dir),
        lit_path(&paths.state_dir),
        lit_path(socket),
        command.join(", "),
        lit_path(cwd),
        extras.env_line(),
    )
}

fn default_description(name: &str, config: &Config) -> String {
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    let list = match names.len() {
        0 => String::new(),
        1..=4 => format!(": {}", names.join(", ")),
        n => format!(": {} and {} more", names[..3].join(", "), n - 3),
    };
    format!("{name}, supervised by warden{list}")
}

/// Check the options and build the plan.
pub fn plan(opts: &InstallOptions) -> Result<Plan, Failure> {
    let name = opts.name.as_str();
    check_name(name)?;
    let autostart = refuse_windows_only(opts)?;
    if cfg!(target_os = "macos") {
        if opts.harden {
            return Err(usage(
                "--harden sandboxes a systemd unit; launchd has no such settings",
            ));
        }
        if !opts.depends_on.is_empty() {
            return Err(usage(
                "--depends-on: launchd has no dependencies between jobs",
            ));
        }
    }
    match (&opts.config, opts.program.is_empty()) {
        (Some(_), false) => {
            return Err(usage(
                "give either -c FILE or the program after `--`, not both",
            ));
        }
        (None, true) => {
            return Err(usage(format!(
                "what should the service run? `warden install {name} -c FILE` or `warden install {name} -- PROGRAM ARGS...`"
            )));
        }
        _ => {}
    }
    let extras = Extras::parse(&opts.env, opts.cwd.as_deref(), !opts.program.is_empty())?;
    let account = account_of(opts)?;
    let depends_on = opts
        .depends_on
        .iter()
        .map(|d| unit_dependency(d))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(d) = &opts.description {
        one_line("--description", d)?;
    }
    let paths = Paths::new(name, opts.scope)?;
    let exe = std::env::current_exe()
        .and_then(std::path::absolute)
        .map_err(|e| Failure::failed(format!("cannot find warden's own binary: {e}")))?;

    let (config, quick, pointer_to) = match (&opts.config, opts.program.split_first()) {
        (Some(file), _) => {
            let abs =
                std::path::absolute(file).map_err(|e| usage(format!("{}: {e}", file.display())))?;
            check_users(&abs, opts, account.as_ref())?;
            let config =
                config::load(&abs, &ProcessEnv).map_err(|e| crate::commands::config_failure(&e))?;
            let pointer = (abs != paths.config).then_some(abs);
            (config, None, pointer)
        }
        (None, Some((program, args))) => {
            let program = resolve_program(program)?;
            let socket = if cfg!(target_os = "macos") && account.is_some() {
                // launchd makes no runtime folder for the account, and /var/run is root's.
                paths.state_dir.join("warden.sock")
            } else {
                paths.runtime_dir(name)?.join("warden.sock")
            };
            let text = quick_config(name, &program, args, &extras, &paths, &socket);
            let config = config::load_str(&text, &paths.config, &ProcessEnv)
                .map_err(|e| crate::commands::config_failure(&e))?;
            (config, Some(text), None)
        }
        (None, None) => return Err(usage("no program given after `--`")),
    };

    let socket_dir = config
        .warden
        .socket
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf);
    let mut writable = vec![
        config.warden.state_dir.clone(),
        config.warden.log_dir.clone(),
    ];
    writable.extend(socket_dir);
    writable.dedup();
    let spec = UnitSpec {
        name: name.to_owned(),
        scope: opts.scope,
        description: opts
            .description
            .clone()
            .unwrap_or_else(|| default_description(name, &config)),
        exe,
        config: config.path.clone(),
        user: account.as_ref().map(|a| a.name.clone()),
        depends_on,
        autostart,
        harden: opts.harden,
        shutdown_timeout: config.warden.shutdown_timeout,
        managed_dirs: quick.is_some(),
        writable,
        log_file: config.warden.state_dir.join("warden.log"),
    };
    Ok(Plan {
        spec,
        paths,
        quick,
        pointer_to,
        account,
        now: opts.now,
        private_config: !extras.env.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_become_unit_names() {
        assert_eq!(
            unit_dependency("postgresql").ok(),
            Some("postgresql.service".into())
        );
        assert_eq!(
            unit_dependency("network-online.target").ok(),
            Some("network-online.target".into())
        );
        assert_eq!(unit_dependency("app@1").ok(), Some("app@1.service".into()));
        assert_eq!(unit_dependency("a.b").ok(), Some("a.b.service".into()));
        for bad in ["", "a b", "a\nExecStart=/bin/sh", "x;y"] {
            assert_eq!(
                unit_dependency(bad).expect_err(bad).code,
                crate::exit::USAGE
            );
        }
    }

    #[test]
    fn foreign_users_are_read_from_the_raw_toml() {
        let text = r#"
[services.a]
command = "x"
user = "app"
[services.b]
command = "x"
user = "me"
[services.c]
command = "x"
"#;
        assert_eq!(
            foreign_users(text, "me"),
            [("a".to_owned(), "app".to_owned())]
        );
        assert!(foreign_users(text, "app").len() == 1);
        assert!(foreign_users("not [ toml", "me").is_empty());
    }

    #[test]
    fn the_quick_config_is_valid_and_expands_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let paths = Paths {
            scope: Scope::System,
            config_dir: tmp.path().join("etc"),
            config: tmp.path().join("etc/warden.toml"),
            log_dir: tmp.path().join("log"),
            state_dir: tmp.path().join("lib"),
            unit: tmp.path().join("unit"),
        };
        let socket = tmp.path().join("run/warden.sock");
        let prog = tmp.path().join("bin dir/sync");
        std::fs::create_dir(tmp.path().join("bin dir")).expect("mkdir");
        let args = ["--home".to_owned(), "${HOME} $$ \"q\" \\".to_owned()];
        let extras = Extras {
            env: vec![("TOKEN".into(), "a$b".into())],
            cwd: Some(tmp.path().to_path_buf()),
        };
        let text = quick_config("sync", &prog, &args, &extras, &paths, &socket);
        assert!(text.starts_with(GENERATED), "{text}");
        let config = config::load_str(&text, &paths.config, &ProcessEnv).expect("valid");
        assert_eq!(config.warden.log_dir, paths.log_dir);
        assert_eq!(config.warden.state_dir, paths.state_dir);
        assert_eq!(config.warden.socket, Some(socket.clone()));
        let svc = config.service("sync").expect("service");
        assert_eq!(
            svc.command,
            [
                prog.to_string_lossy().into_owned(),
                args[0].clone(),
                args[1].clone()
            ]
        );
        assert_eq!(svc.cwd, tmp.path());
        assert_eq!(svc.env.get("TOKEN").map(String::as_str), Some("a$b"));
        let text = quick_config("sync", &prog, &[], &Extras::default(), &paths, &socket);
        let config = config::load_str(&text, &paths.config, &ProcessEnv).expect("valid");
        assert_eq!(
            config.service("sync").expect("service").cwd,
            tmp.path().join("bin dir")
        );
    }
}
