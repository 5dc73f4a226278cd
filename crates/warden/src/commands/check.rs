//! `warden check`: validate the config; print its warnings, or with `--strict` fail on them.

use warden_core::config::{self, ConfigErrors, ProcessEnv};

use crate::Failure;
use crate::cli::ConfigArg;

pub fn run(arg: &ConfigArg, strict: bool) -> Result<(), Failure> {
    let path = super::config_path(arg);
    // `check` changes nothing, so its last line is only the count.
    let config = config::load(&path, &ProcessEnv).map_err(|e| super::errors_failure(&e, ""))?;
    if strict && !config.warnings.is_empty() {
        let errors = ConfigErrors {
            file: path,
            errors: config.warnings.into_iter().map(|w| w.0).collect(),
        };
        return Err(super::errors_failure(
            &errors,
            " (warnings are errors with --strict)",
        ));
    }
    super::warn_all(&config);
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    let warnings = match config.warnings.len() {
        0 => String::new(),
        1 => "; 1 warning".to_owned(),
        n => format!("; {n} warnings"),
    };
    super::say(&format!(
        "{}: OK, {} service{}{}{warnings}\n",
        config.path.display(),
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        }
    ))
}
