//! What `warden uninstall NAME [--purge]` removes and keeps, after the service is deleted,
//! and the lines that say so:
//!
//! - the quick form (`%ProgramData%\warden\NAME`): `--purge` removes that folder (the
//!   generated config, the logs and the state); folders an edited config moved elsewhere
//!   are kept, and so is everything without `--purge`;
//! - a `-c FILE` install: the file and its log and state folders are the user's, kept
//!   whatever `--purge` says;
//! - the event source `warden`: removed with the last warden service.

use std::path::{Path, PathBuf};

use warden_core::config::{self, Config, ProcessEnv};

use super::super::eventlog::{self, SourceFate};
use super::quick::instance_dir;
use crate::Failure;

/// The lines of the report.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub removed: Vec<String>,
    pub kept: Vec<String>,
}

impl Report {
    pub fn text(&self) -> String {
        let mut out = String::new();
        for r in &self.removed {
            out.push_str("removed ");
            out.push_str(r);
            out.push('\n');
        }
        for k in &self.kept {
            out.push_str("kept ");
            out.push_str(k);
            out.push('\n');
        }
        out
    }
}

/// Paths compared as Windows does: case-insensitive, either separator.
fn same(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| p.to_string_lossy().replace('/', "\\").to_lowercase();
    norm(a) == norm(b)
}

fn inside(p: &Path, dir: &Path) -> bool {
    let norm = |p: &Path| p.to_string_lossy().replace('/', "\\").to_lowercase();
    let (p, d) = (norm(p), norm(dir));
    p == d || p.starts_with(&format!("{}\\", d.trim_end_matches('\\')))
}

/// What happens to the files of the service `name` whose command line named `config`.
/// `loaded` is that config as it reads now (`None` if it cannot be read). Pure: the caller
/// removes what [`plan`] says.
pub fn plan(
    name: &str,
    config: Option<&Path>,
    loaded: Option<&Config>,
    purge: bool,
) -> (Option<PathBuf>, Report) {
    let dir = instance_dir(name);
    let quick = config.is_none_or(|c| same(c, &dir.join("warden.toml")));
    let mut report = Report::default();
    let folders = |c: &Config| {
        [
            (c.warden.log_dir.clone(), "its logs"),
            (c.warden.state_dir.clone(), "its state"),
        ]
    };
    if quick {
        if !purge {
            report
                .kept
                .push(format!("{} (`--purge` removes it)", dir.display()));
            return (None, report);
        }
        if let Some(c) = loaded {
            for (d, _) in folders(c) {
                if !inside(&d, &dir) {
                    report
                        .kept
                        .push(format!("{} (set in the edited config)", d.display()));
                }
            }
        }
        return (Some(dir), report);
    }
    let file = config.unwrap_or(&dir);
    report.kept.push(format!(
        "{} (the config given to `install -c`)",
        file.display()
    ));
    if let Some(c) = loaded {
        for (d, what) in folders(c) {
            report.kept.push(format!("{} ({what})", d.display()));
        }
    }
    (None, report)
}

/// Remove what `plan` says, and the event source if this was the last warden service; the
/// report of it all.
pub fn purge(name: &str, config: Option<&Path>, purge: bool) -> Result<Report, Failure> {
    let loaded = config.and_then(|c| config::load(c, &ProcessEnv).ok());
    let (remove, mut report) = plan(name, config, loaded.as_ref(), purge);
    // Only folders that exist are reported.
    report.kept.retain(|k| {
        let path = k.rsplit_once(" (").map_or(k.as_str(), |(p, _)| p);
        Path::new(path).exists()
    });
    if let Some(dir) = remove {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => report.removed.push(format!(
                "{} (the generated config, logs and state)",
                dir.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Failure::failed(format!(
                    "cannot remove {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    match eventlog::remove_source_if_unused(name) {
        Ok(SourceFate::Removed) => report.removed.push(format!(
            "the event log source \"{}\" (no warden service is left)",
            eventlog::SOURCE
        )),
        Ok(SourceFate::Kept(others)) => report.kept.push(format!(
            "the event log source \"{}\" (used by {})",
            eventlog::SOURCE,
            others.join(", ")
        )),
        Ok(SourceFate::Absent) => {}
        Err(e) => crate::commands::warn(&format!(
            "warden: warning: cannot remove the event log source \"{}\": {e}",
            eventlog::SOURCE
        )),
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_at(text: &str, path: &Path) -> Config {
        config::load_str(text, path, &ProcessEnv).expect("valid")
    }

    #[test]
    fn a_quick_install_is_purged_whole_and_kept_whole_without_purge() {
        let dir = instance_dir("sync");
        let cfg = dir.join("warden.toml");
        let (remove, report) = plan("sync", Some(&cfg), None, true);
        assert_eq!(remove, Some(dir.clone()));
        assert!(report.kept.is_empty(), "{report:?}");
        let (remove, report) = plan("sync", Some(&cfg), None, false);
        assert_eq!(remove, None);
        assert_eq!(
            report.kept,
            [format!("{} (`--purge` removes it)", dir.display())]
        );
    }

    #[test]
    fn folders_an_edited_quick_config_moved_are_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = instance_dir("sync");
        let elsewhere = tmp.path().join("logs");
        let text = format!(
            "[warden]\nlog_dir = {}\nstate_dir = {}\n[services.sync]\ncommand = \"x\"\n",
            crate::os::quick::toml_str(&elsewhere.to_string_lossy()),
            crate::os::quick::toml_str(&dir.join("state").to_string_lossy()),
        );
        let c = config_at(&text, &dir.join("warden.toml"));
        let (remove, report) = plan("sync", Some(&dir.join("warden.toml")), Some(&c), true);
        assert_eq!(remove, Some(dir));
        assert_eq!(
            report.kept,
            [format!(
                "{} (set in the edited config)",
                elsewhere.display()
            )]
        );
    }

    #[test]
    fn a_config_install_keeps_its_file_logs_and_state_even_with_purge() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("warden.toml");
        let c = config_at("[services.a]\ncommand = \"x\"\n", &file);
        let (remove, report) = plan("apps", Some(&file), Some(&c), true);
        assert_eq!(remove, None);
        assert_eq!(
            report.kept,
            [
                format!("{} (the config given to `install -c`)", file.display()),
                format!("{} (its logs)", c.warden.log_dir.display()),
                format!("{} (its state)", c.warden.state_dir.display()),
            ]
        );
        assert!(report.text().starts_with("kept "), "{}", report.text());
    }
}
