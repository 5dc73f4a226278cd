//! warden at boot on Linux (a systemd unit) and macOS (a launchd job), and the
//! `sd_notify` messages warden sends when systemd runs it.
//!
//! `warden install NAME (-c FILE | -- PROGRAM ARGS...)`, in order:
//! 1. `prepare.rs` checks the options and the config (exit 2 for either), and builds the
//!    [`spec::UnitSpec`]; `--print` writes the unit (`systemd_unit.rs`) or plist
//!    (`launchd_plist.rs`) to stdout and stops there.
//! 2. The service manager must run (`systemd.rs`/`launchd.rs`: `check_running`), else exit 1.
//! 3. The files, where `paths.rs` says: the quick form's generated config, or a symlink to
//!    the `-c` file (so `-n NAME` finds it), the log and state folders, the unit or plist.
//! 4. `register` (daemon-reload, enable / bootstrap), then `start` with `--now`. A failure
//!    before the start takes back every file written.
//!
//! `warden uninstall NAME [--purge]` stops, disables and removes the unit; `--purge` also
//! removes the generated config, the logs and the state, never a `-c` install's own files.

mod account;
mod files;
#[cfg(any(target_os = "macos", test))]
mod launchd_plist;
pub mod notify;
mod paths;
mod prepare;
mod spec;
#[cfg(any(not(target_os = "macos"), test))]
mod systemd_unit;

/// See [`super::tune_allocator`]: glibc's malloc with one arena.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_allocator() {
    // SAFETY: mallopt only sets a parameter of the allocator; `main` calls this before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg_attr(target_os = "linux", path = "systemd.rs")]
#[cfg_attr(target_os = "macos", path = "launchd.rs")]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "macos")),
    path = "unsupported.rs"
)]
mod manager;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use warden_core::config::{self, ProcessEnv};
use warden_core::engine::Action;

use crate::Failure;
use crate::cli::Scope;
use crate::commands::{say, warn};
use crate::os::InstallOptions;
use files::{Entry, Written};
pub use paths::instance_config;
use paths::{Paths, unit_name};

/// `warden install`.
pub fn install(opts: &InstallOptions) -> Result<(), Failure> {
    let plan = prepare::plan(opts)?;
    let text = manager::render(&plan.spec);
    if opts.print {
        return say(&text);
    }
    let spec = &plan.spec;
    let paths = &plan.paths;
    let unit = unit_name(&spec.name);
    manager::check_running(spec.scope)?;
    if paths.unit.symlink_metadata().is_ok() {
        return Err(Failure::failed(format!(
            "{} {unit} is installed already ({}); `warden uninstall {}` first",
            manager::KIND,
            paths.unit.display(),
            spec.name
        )));
    }
    let entry = files::classify(&paths.config);
    match (&entry, &plan.quick) {
        (Entry::Missing | Entry::Pointer(_), _) | (Entry::Generated, Some(_)) => {}
        // `-c` names the instance's config path itself.
        (Entry::Mine | Entry::Generated, None) if plan.pointer_to.is_none() => {}
        (Entry::Generated, None) => {
            return Err(Failure::failed(format!(
                "{} holds the generated config of an earlier install of \"{}\"; remove it first (its logs and state are in {} and {})",
                paths.config.display(),
                spec.name,
                paths.log_dir.display(),
                paths.state_dir.display()
            )));
        }
        (Entry::Mine, _) => {
            return Err(Failure::failed(format!(
                "{} exists and was not written by `warden install`; install it with `-c {}`, or move it away",
                paths.config.display(),
                paths.config.display()
            )));
        }
    }

    let mut written = Written::default();
    let result = write_files(&plan, &text, &entry, &mut written)
        .and_then(|()| manager::register(spec, &paths.unit));
    if let Err(f) = result {
        written.undo();
        let _ = manager::forget(spec.scope);
        return Err(f);
    }
    say(&format!(
        "installed {} {unit} ({}); config {}\n",
        manager::KIND,
        manager::start_word(spec),
        spec.config.display()
    ))?;
    if plan.now {
        manager::start(spec)?;
        say(&format!("{unit} is running\n"))?;
    }
    Ok(())
}

/// The config (or the pointer to it), the quick form's folders, and the unit file.
fn write_files(
    plan: &prepare::Plan,
    unit_text: &str,
    entry: &Entry,
    w: &mut Written,
) -> Result<(), Failure> {
    let paths = &plan.paths;
    let owner = plan.account.as_ref().map(|a| (a.uid, a.gid));
    w.create_dir(&paths.config_dir, 0o755, None)?;
    if let Entry::Pointer(_) = entry {
        files::remove_file(&paths.config)?;
    }
    if let Some(text) = &plan.quick {
        if plan.private_config {
            // `--env` values are secrets: only warden's account reads them.
            w.write_file(&paths.config, text, 0o600)?;
            if let Some((uid, gid)) = owner {
                files::chown(&paths.config, uid, gid)?;
            }
        } else {
            w.write_file(&paths.config, text, 0o644)?;
        }
        w.create_dir(&paths.state_dir, 0o700, owner)?;
        w.create_dir(&paths.log_dir, 0o750, owner)?;
    } else if let Some(target) = &plan.pointer_to {
        w.symlink(target, &paths.config)?;
    }
    if let Some(dir) = paths.unit.parent() {
        w.create_dir(dir, 0o755, None)?;
    }
    w.write_file(&paths.unit, unit_text, 0o644)
}

/// `warden uninstall`.
pub fn uninstall(name: &str, purge: bool, scope: Option<Scope>) -> Result<(), Failure> {
    crate::os::quick::check_name(name)?;
    let unit = unit_name(name);
    let scopes = scope.map_or_else(|| vec![Scope::System, Scope::User], |s| vec![s]);
    let mut looked = Vec::new();
    let mut found = None;
    for s in scopes {
        match Paths::new(name, s) {
            Ok(p) if p.unit.symlink_metadata().is_ok() => {
                found = Some(p);
                break;
            }
            Ok(p) => looked.push(p.unit.display().to_string()),
            Err(_) => {}
        }
    }
    let Some(paths) = found else {
        return Err(Failure::failed(format!(
            "{} {unit} is not installed (no {})",
            manager::KIND,
            looked.join(", no ")
        )));
    };
    let text = std::fs::read_to_string(&paths.unit)
        .map_err(|e| Failure::failed(format!("cannot read {}: {e}", paths.unit.display())))?;
    if !text.contains(spec::GENERATED) {
        return Err(Failure::failed(format!(
            "{} was not written by `warden install`; remove it yourself",
            paths.unit.display()
        )));
    }

    let running = manager::check_running(paths.scope);
    match &running {
        Ok(()) => {
            for w in manager::unregister(name, paths.scope, &paths.unit) {
                warn(&format!("warden: warning: {w}"));
            }
        }
        Err(f) => warn(&format!(
            "warden: warning: {}; removing the files only",
            f.message
        )),
    }
    let mut report = Report::default();
    files::remove_file(&paths.unit)?;
    report.removed.push(paths.unit.clone());
    if running.is_ok()
        && let Err(f) = manager::forget(paths.scope)
    {
        warn(&format!("warden: warning: {}", f.message));
    }

    match files::classify(&paths.config) {
        Entry::Pointer(target) => {
            files::remove_file(&paths.config)?;
            report.removed.push(paths.config.clone());
            report.kept_config(&target, "the config given to `install -c`", purge);
        }
        Entry::Generated if purge => {
            let edited = config::load(&paths.config, &ProcessEnv).ok();
            files::remove_file(&paths.config)?;
            report.removed.push(paths.config.clone());
            let mut dirs = vec![paths.log_dir.clone(), paths.state_dir.clone()];
            dirs.extend(paths.runtime_dir(name).ok());
            for dir in dirs {
                if files::remove_tree(&dir)? {
                    report.removed.push(dir);
                }
            }
            // Folders an edited config moved elsewhere are not install's to remove.
            if let Some(c) = edited {
                for dir in [c.warden.log_dir, c.warden.state_dir] {
                    if dir != paths.log_dir && dir != paths.state_dir && dir.exists() {
                        report
                            .kept
                            .push(format!("{} (set in the edited config)", dir.display()));
                    }
                }
            }
        }
        Entry::Generated => {
            for p in [&paths.config, &paths.log_dir, &paths.state_dir] {
                if p.exists() {
                    report
                        .kept
                        .push(format!("{} (`--purge` removes it)", p.display()));
                }
            }
        }
        Entry::Mine => report.kept_config(&paths.config, "not written by install", purge),
        Entry::Missing => {}
    }
    if files::remove_empty_dir(&paths.config_dir) {
        report.removed.push(paths.config_dir.clone());
    }
    if purge {
        for dir in [&paths.config_dir, &paths.log_dir, &paths.state_dir] {
            if let Some(parent) = dir.parent() {
                files::remove_empty_dir(parent);
            }
        }
    }
    say(&format!(
        "uninstalled {} {unit}\n{}",
        manager::KIND,
        report.text()
    ))
}

/// The scope where the instance `name` is installed (its unit file exists), system first.
fn installed_scope(name: &str) -> Option<Paths> {
    [Scope::System, Scope::User]
        .into_iter()
        .filter_map(|s| Paths::new(name, s).ok())
        .find(|p| p.unit.symlink_metadata().is_ok())
}

/// `warden start|stop|restart -n NAME` with no service names: start, stop or restart the
/// installed unit (systemd) or job (launchd) itself, and wait as the service manager does.
pub fn service_action(name: &str, action: Action) -> Result<(), Failure> {
    crate::os::quick::check_name(name)?;
    let unit = unit_name(name);
    let Some(paths) = installed_scope(name) else {
        return Err(Failure::failed(format!(
            "{} {unit} is not installed; `warden install {name} ...` installs it",
            manager::KIND
        )));
    };
    let (verb, done) = match action {
        Action::Start => ("start", "running"),
        Action::Stop => ("stop", "stopped"),
        Action::Restart => ("restart", "running"),
    };
    manager::check_running(paths.scope)?;
    manager::control(name, paths.scope, verb)?;
    say(&format!("{unit}: {done}\n"))
}

/// For an installed instance that does not answer: how to start it.
pub fn start_hint(name: &str) -> Option<String> {
    let paths = installed_scope(name)?;
    Some(format!(
        "start it with `warden start -n {name}` (or `{}`)",
        manager::start_command(name, paths.scope)
    ))
}

/// What uninstall removed and kept, for its message.
#[derive(Default)]
struct Report {
    removed: Vec<PathBuf>,
    kept: Vec<String>,
}

impl Report {
    /// A config that is not install's: kept, and with `--purge` its folders too.
    fn kept_config(&mut self, file: &Path, why: &str, purge: bool) {
        self.kept.push(format!("{} ({why})", file.display()));
        if purge && let Ok(c) = config::load(file, &ProcessEnv) {
            for dir in [c.warden.log_dir, c.warden.state_dir] {
                if dir.exists() {
                    self.kept.push(format!("{} (its folder)", dir.display()));
                }
            }
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for p in &self.removed {
            let _ = writeln!(out, "removed {}", p.display());
        }
        for k in &self.kept {
            let _ = writeln!(out, "kept {k}");
        }
        out
    }
}
