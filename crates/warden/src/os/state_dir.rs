//! Where a config with errors keeps its state (and so `warden.log`): the Windows service
//! writes a config error at start there, where the instance's other events go.

use std::path::{Path, PathBuf};

use warden_core::config::{self, ProcessEnv};

/// The state dir the config at `path` sets (`[warden] state_dir`, resolved and expanded as
/// the loader does), even when the rest of the config has errors; the default one (`.warden`
/// next to the file) when it sets none or that key itself is wrong.
pub fn state_dir_despite_errors(path: &Path, text: &str) -> PathBuf {
    let set = text.parse::<toml_edit::DocumentMut>().ok().and_then(|doc| {
        doc.get("warden")?
            .get("state_dir")?
            .as_str()
            .map(str::to_owned)
    });
    let only = |text: &str| config::load_str(text, path, &ProcessEnv).ok();
    set.and_then(|dir| {
        only(&format!(
            "[warden]\nstate_dir = {}\n",
            super::quick::toml_str(&dir)
        ))
    })
    .or_else(|| only(""))
    .map_or_else(|| path.with_file_name(".warden"), |c| c.warden.state_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_config_still_names_its_state_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("warden.toml");
        let broken = "[warden]\nstate_dir = \"st\"\n[services.a]\ncomand = \"x\"\n";
        assert_eq!(
            state_dir_despite_errors(&path, broken),
            tmp.path().join("st")
        );
        let elsewhere = tmp.path().join("state dir");
        let text = format!(
            "[warden]\nstate_dir = {}\nlog_dir = 5\n",
            crate::os::quick::toml_str(&elsewhere.to_string_lossy())
        );
        assert_eq!(state_dir_despite_errors(&path, &text), elsewhere);
    }

    #[test]
    fn without_a_usable_state_dir_it_is_the_default() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("warden.toml");
        let default = tmp.path().join(".warden");
        for text in [
            "not [ toml",
            "[warden]\nstate_dir = 5\n",
            "[services.a]\nx = 1\n",
        ] {
            assert_eq!(state_dir_despite_errors(&path, text), default, "{text}");
        }
    }
}
