//! `warden check`: validate the config.

use crate::Failure;
use crate::cli::ConfigArg;

pub fn run(arg: &ConfigArg) -> Result<(), Failure> {
    let config = super::load_config(arg)?;
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    super::say(&format!(
        "{}: OK, {} service{}{}\n",
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
