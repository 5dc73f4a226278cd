//! What the quick form (`warden install NAME [--env KEY=VALUE]... [--cwd DIR] -- PROGRAM
//! ARGS...`) needs on every OS: the check of the instance name, of `--env` and `--cwd`, and
//! TOML strings for the generated config.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::Failure;

/// The longest instance name: `warden-NAME.service` must fit systemd's 255 bytes, and the
/// SCM takes 256 characters.
const MAX_NAME: usize = 240;

/// A name warden accepts for an instance: what a config's service names may use (it is the
/// name of the generated config's service, of its folders, of its unit and control pipe).
pub fn check_name(name: &str) -> Result<(), Failure> {
    if !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "invalid service name \"{}\": a service name may use only letters, digits, '_', '.' and '-' (at most {MAX_NAME})",
            name.escape_debug()
        )))
    }
}

/// The quick form's `--env KEY=VALUE`s and `--cwd DIR`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    pub env: Vec<(String, String)>,
    /// Absolute; an existing folder.
    pub cwd: Option<PathBuf>,
}

impl Extras {
    /// Check `--env` and `--cwd` (usage errors naming the option; a value is never shown,
    /// since it may be a secret). Given without the quick form, they are refused.
    pub fn parse(env: &[String], cwd: Option<&Path>, quick: bool) -> Result<Extras, Failure> {
        if !quick && (!env.is_empty() || cwd.is_some()) {
            return Err(Failure::usage(
                "--env and --cwd are for the quick form (`-- PROGRAM ARGS...`); with -c, set `env` and `cwd` in the config",
            ));
        }
        let mut vars: Vec<(String, String)> = Vec::with_capacity(env.len());
        for item in env {
            let Some((key, value)) = item.split_once('=') else {
                return Err(Failure::usage(
                    "--env: expected KEY=VALUE (the argument is not shown: it may be a secret)",
                ));
            };
            if key.is_empty() || key.contains('\0') || value.contains('\0') {
                return Err(Failure::usage(format!(
                    "--env {}=...: a variable needs a name, and neither may contain NUL",
                    key.escape_debug()
                )));
            }
            if vars.iter().any(|(k, _)| k == key) {
                return Err(Failure::usage(format!("--env {key}=...: given twice")));
            }
            vars.push((key.to_owned(), value.to_owned()));
        }
        let cwd = match cwd {
            None => None,
            Some(dir) => {
                let abs = std::path::absolute(dir)
                    .map_err(|e| Failure::usage(format!("--cwd {}: {e}", dir.display())))?;
                if !abs.is_dir() {
                    return Err(Failure::usage(format!(
                        "--cwd {}: not an existing folder",
                        abs.display()
                    )));
                }
                Some(abs)
            }
        };
        Ok(Extras { env: vars, cwd })
    }

    /// The generated config's `env = { ... }` line (empty without `--env`); nothing in it
    /// is expanded.
    pub fn env_line(&self) -> String {
        if self.env.is_empty() {
            return String::new();
        }
        let vars: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{} = {}", toml_str(k), literal(v)))
            .collect();
        format!("env = {{ {} }}\n", vars.join(", "))
    }
}

/// A string of a generated config: `$` doubled, so that nothing is expanded.
pub fn literal(s: &str) -> String {
    toml_str(&s.replace('$', "$$"))
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("sync").is_ok());
        assert!(check_name("my-app_2.0").is_ok());
        let long = "a".repeat(MAX_NAME + 1);
        for bad in ["", "my app", r"a\b", "a/b", "a\nb", &long] {
            assert_eq!(check_name(bad).expect_err(bad).code, crate::exit::USAGE);
        }
    }

    #[test]
    fn env_and_cwd_are_checked_and_values_never_shown() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let e = Extras::parse(
            &["TOKEN=s3cr$t=x".into(), "EMPTY=".into()],
            Some(tmp.path()),
            true,
        )
        .expect("valid");
        assert_eq!(
            e.env,
            [
                ("TOKEN".to_owned(), "s3cr$t=x".to_owned()),
                ("EMPTY".to_owned(), String::new())
            ]
        );
        assert_eq!(e.cwd.as_deref(), Some(tmp.path()));
        assert_eq!(
            e.env_line(),
            "env = { \"TOKEN\" = \"s3cr$$t=x\", \"EMPTY\" = \"\" }\n"
        );
        for (env, cwd, quick) in [
            (vec!["hunter2".to_owned()], None, true),
            (vec!["=hunter2".to_owned()], None, true),
            (
                vec!["A=hunter2".to_owned(), "A=hunter2".to_owned()],
                None,
                true,
            ),
            (vec!["A=hunter2".to_owned()], None, false),
            (vec![], Some(tmp.path().join("missing")), true),
        ] {
            let f = Extras::parse(&env, cwd.as_deref(), quick).expect_err("bad");
            assert_eq!(f.code, crate::exit::USAGE);
            assert!(!f.message.contains("hunter2"), "{}", f.message);
        }
    }

    #[test]
    fn toml_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(toml_str(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(toml_str("x\ny\u{1}"), "\"x\\ny\\u0001\"");
    }
}
