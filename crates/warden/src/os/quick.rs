//! What the quick form (`warden install NAME -- PROGRAM ARGS...`) needs on every OS: the
//! check of the instance name and TOML strings for the generated config.

use std::fmt::Write as _;

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
    fn toml_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(toml_str(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(toml_str("x\ny\u{1}"), "\"x\\ny\\u0001\"");
    }
}
