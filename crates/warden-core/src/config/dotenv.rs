//! The `env_file` format: `KEY=VALUE` lines.
//!
//! - blank lines and lines starting with `#` are skipped;
//! - `export KEY=VALUE` is the same as `KEY=VALUE`;
//! - spaces around `=` are ignored;
//! - `'single quoted'` values are taken literally;
//! - `"double quoted"` values understand `\n`, `\r`, `\t`, `\"`, `\\` and `\$`;
//! - an unquoted value ends at ` #` (a comment) and is trimmed.
//!
//! Values are not `${VAR}`-expanded.

/// A problem on one line of an env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DotenvError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// Parse the whole file: every pair in order, or every bad line.
pub(super) fn parse(text: &str) -> Result<Vec<(String, String)>, Vec<DotenvError>> {
    let mut pairs = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(pair)) => pairs.push(pair),
            Ok(None) => {}
            Err(message) => errors.push(DotenvError {
                line: index + 1,
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(pairs)
    } else {
        Err(errors)
    }
}

fn parse_line(line: &str) -> Result<Option<(String, String)>, String> {
    let line = line.trim_start_matches('\u{feff}').trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = line
        .strip_prefix("export")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .map_or(line, str::trim_start);
    let Some((key, value)) = line.split_once('=') else {
        return Err("expected KEY=VALUE".into());
    };
    let key = key.trim_end();
    if !is_valid_key(key) {
        // Not quoted: a line that is not KEY=VALUE may hold a secret anywhere.
        return Err(
            "invalid variable name before '=' (use letters, digits and '_', not starting with a digit)"
                .into(),
        );
    }
    let value = parse_value(value.trim_start())?;
    if value.contains('\0') {
        return Err(format!("the value of {key} contains a NUL byte"));
    }
    Ok(Some((key.to_owned(), value)))
}

fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

fn parse_value(raw: &str) -> Result<String, String> {
    if let Some(body) = raw.strip_prefix('\'') {
        let end = body.find('\'').ok_or("missing closing '")?;
        trailing_comment_only(&body[end + 1..])?;
        return Ok(body[..end].to_owned());
    }
    if let Some(body) = raw.strip_prefix('"') {
        return parse_double_quoted(body);
    }
    let value = match raw.find(" #").or_else(|| raw.find("\t#")) {
        Some(i) => &raw[..i],
        None => raw,
    };
    Ok(value.trim_end().to_owned())
}

fn parse_double_quoted(body: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                trailing_comment_only(&body[i + 1..])?;
                return Ok(out);
            }
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(e @ ('"' | '\\' | '$')) => out.push(e),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("missing closing \"".into())
}

fn trailing_comment_only(rest: &str) -> Result<(), String> {
    let rest = rest.trim_start();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err("unexpected text after the closing quote".into())
    }
}
