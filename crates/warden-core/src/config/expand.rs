//! `${VAR}` expansion of string values.
//!
//! | form               | value                                                  |
//! |--------------------|--------------------------------------------------------|
//! | `${VAR}`           | VAR; an error if VAR is unset                          |
//! | `${VAR:-default}`  | VAR, or `default` if VAR is unset or empty             |
//! | `${VAR-default}`   | VAR, or `default` if VAR is unset                      |
//! | `${VAR:default}`   | Spring style, the same as `${VAR:-default}`            |
//! | `${VAR:?message}`  | VAR; an error showing `message` if unset or empty      |
//! | `${VAR?message}`   | VAR; an error showing `message` if unset               |
//! | `$$`               | a literal `$`                                          |
//!
//! A `$` followed by anything else stays as it is. Defaults are expanded in turn, so
//! `${A:-${B:-x}}` works; values read from the environment are never expanded again.
//! References nest at most [`MAX_EXPAND_DEPTH`] deep (checked before anything is expanded),
//! so the recursion through defaults is bounded whatever the input.
//!
//! Errors never quote the string being expanded (it may be a secret): an invalid reference
//! is quoted only in [`ExpandError::detail`], which the caller shows for values that are
//! not secret. The one exception is the `message` of `${VAR:?message}`, which its author
//! wrote to be shown.

use super::Env;
use super::limits::{MAX_EXPAND_DEPTH, MAX_EXPANDED_BYTES};

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExpandError {
    /// Never contains the expanded string.
    pub message: String,
    /// The part of the string at fault (`"${1X}"`), to append to `message` when the value
    /// is not a secret.
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl ExpandError {
    fn new(message: String, hint: Option<String>) -> Self {
        ExpandError {
            message,
            detail: None,
            hint,
        }
    }

    /// The message with the detail, for a value that may be shown.
    pub(super) fn shown(&self) -> String {
        match &self.detail {
            Some(d) => format!("{} {d}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Expand every `${...}` and `$$` of `s`.
pub(super) fn expand(s: &str, env: &dyn Env) -> Result<String, ExpandError> {
    let depth = nesting_depth(s);
    if depth > MAX_EXPAND_DEPTH {
        return Err(ExpandError::new(
            format!(
                "variable references nest {depth} levels deep; at most {MAX_EXPAND_DEPTH} are allowed"
            ),
            None,
        ));
    }
    expand_at_depth(s, env, 0)
}

/// The deepest nesting of `${` in `s` (`$$` is a literal, not a reference).
fn nesting_depth(s: &str) -> usize {
    let bytes = s.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'$' if matches!(bytes.get(i + 1), Some(b'$')) => i += 1,
            b'$' if matches!(bytes.get(i + 1), Some(b'{')) => {
                depth += 1;
                max = max.max(depth);
                i += 1;
            }
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

fn expand_at_depth(s: &str, env: &dyn Env, depth: usize) -> Result<String, ExpandError> {
    if depth > MAX_EXPAND_DEPTH {
        // Unreachable after the check in `expand`; a bound on the recursion all the same.
        return Err(ExpandError::new(
            format!("variable references nest deeper than {MAX_EXPAND_DEPTH} levels"),
            None,
        ));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = closing_brace(r).ok_or_else(|| {
                ExpandError::new(
                    "unterminated \"${\"".to_owned(),
                    Some("close it with \"}\", or write \"$$\" for a literal \"$\"".into()),
                )
            })?;
            out.push_str(&substitute(&r[..end], env, depth)?);
            if out.len() > MAX_EXPANDED_BYTES {
                return Err(ExpandError::new(
                    format!("the value is longer than {MAX_EXPANDED_BYTES} bytes once expanded"),
                    None,
                ));
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${` whose body starts `s`, skipping nested `${...}`.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if matches!(bytes.get(i + 1), Some(b'$')) => i += 1,
            b'$' if matches!(bytes.get(i + 1), Some(b'{')) => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of one `${body}`.
fn substitute(body: &str, env: &dyn Env, depth: usize) -> Result<String, ExpandError> {
    let name_len = body
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let (name, op) = body.split_at(name_len);
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return Err(invalid(body));
    }
    let value = env.var(name);
    let set_and_not_empty = value.as_deref().is_some_and(|v| !v.is_empty());

    if op.is_empty() {
        return value.ok_or_else(|| {
            ExpandError::new(
                format!("environment variable \"{name}\" is not set"),
                Some(format!("write ${{{name}:-default}} to give a default")),
            )
        });
    }
    if let Some(default) = op.strip_prefix(":-") {
        return or_default(value.filter(|_| set_and_not_empty), default, env, depth);
    }
    if let Some(message) = op.strip_prefix(":?") {
        return value
            .filter(|_| set_and_not_empty)
            .ok_or_else(|| required(name, "is unset or empty", message));
    }
    if let Some(default) = op.strip_prefix(':') {
        return or_default(value.filter(|_| set_and_not_empty), default, env, depth);
    }
    if let Some(default) = op.strip_prefix('-') {
        return or_default(value, default, env, depth);
    }
    if let Some(message) = op.strip_prefix('?') {
        return value.ok_or_else(|| required(name, "is not set", message));
    }
    Err(invalid(body))
}

fn or_default(
    value: Option<String>,
    default: &str,
    env: &dyn Env,
    depth: usize,
) -> Result<String, ExpandError> {
    match value {
        Some(v) => Ok(v),
        None => expand_at_depth(default, env, depth + 1),
    }
}

fn required(name: &str, what: &str, message: &str) -> ExpandError {
    let message = if message.is_empty() {
        format!("environment variable \"{name}\" {what}")
    } else {
        format!("environment variable \"{name}\" {what}: {message}")
    };
    ExpandError::new(message, None)
}

fn invalid(body: &str) -> ExpandError {
    ExpandError {
        message: "invalid variable reference".to_owned(),
        detail: Some(format!("\"${{{body}}}\"")),
        hint: Some(
            "write ${NAME}, ${NAME:-default}, ${NAME-default} or ${NAME:?message}; \
             \"$$\" is a literal \"$\""
                .into(),
        ),
    }
}
