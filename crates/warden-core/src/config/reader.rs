//! Typed reading of TOML items: each getter either returns the value or records an error at
//! the right place and returns `None`, so that the caller goes on with a default and every
//! problem of a file is reported at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{Item, Key, TableLike, Value};

use super::Env;
use super::diag::{Diagnostics, did_you_mean, start};
use super::expand::expand;
use super::units::{parse_duration, parse_size};

pub(super) const DURATION_EXPECTED: &str = "expected a duration like \"30s\" or \"250ms\"";
pub(super) const SIZE_EXPECTED: &str = "expected a size like \"10MiB\" or \"500KB\"";

/// One `key = value` of a table.
#[derive(Clone, Copy)]
pub(super) struct Field<'t> {
    pub key: &'t Key,
    pub item: &'t Item,
}

impl<'t> Field<'t> {
    pub(super) fn name(&self) -> &'t str {
        self.key.get()
    }

    /// Where the key is written.
    pub(super) fn key_pos(&self) -> usize {
        start(self.key.span())
    }

    /// Where the value is written: the value itself, or the key for a `[table]`.
    pub(super) fn pos(&self) -> usize {
        match self.item {
            Item::Value(v) => v.span().map_or_else(|| self.key_pos(), |s| s.start),
            _ => self.key_pos(),
        }
    }
}

/// A table (`[x]`, `x = { ... }` or dotted `x.y = ...`) and where it is named.
#[derive(Clone, Copy)]
pub(super) struct Section<'t> {
    pub table: &'t dyn TableLike,
    /// Where the table's key is written, for errors about the table as a whole.
    pub pos: usize,
}

impl<'t> Section<'t> {
    pub(super) fn field(&self, name: &str) -> Option<Field<'t>> {
        self.table
            .get_key_value(name)
            .map(|(key, item)| Field { key, item })
    }

    pub(super) fn fields(&self) -> impl Iterator<Item = Field<'t>> + 't {
        let table = self.table;
        table.iter().filter_map(move |(name, _)| {
            table
                .get_key_value(name)
                .map(|(key, item)| Field { key, item })
        })
    }
}

/// The state of one load: where errors go, the environment, the base directory.
pub(super) struct Reader<'a> {
    pub diag: Diagnostics<'a>,
    pub env: &'a dyn Env,
    /// The config file's directory, absolute.
    pub dir: PathBuf,
    /// The value being read is a secret (`env.KEY`, `api_token`, named here): errors name
    /// its key and its place, never the value or a part of it.
    pub secret: Option<String>,
    /// The log dirs already checked (each is reported once, not once per service).
    pub checked_dirs: std::collections::BTreeSet<PathBuf>,
}

impl Reader<'_> {
    pub(super) fn error(&mut self, at: usize, message: impl Into<String>, hint: Option<String>) {
        self.diag.error(at, message, hint);
    }

    /// Report every key of `section` that is not in `allowed`.
    pub(super) fn check_keys(&mut self, section: Section<'_>, allowed: &[&str], what: &str) {
        for field in section.fields() {
            if allowed.contains(&field.name()) {
                continue;
            }
            let hint = did_you_mean(field.name(), allowed)
                .or_else(|| Some(format!("expected one of: {}", allowed.join(", "))));
            self.error(
                field.key_pos(),
                format!("unknown key \"{}\" in {what}", field.name()),
                hint,
            );
        }
    }

    fn wrong_type(&mut self, field: Field<'_>, expected: &str) {
        let message = format!(
            "{}: expected {expected}, found {}",
            field.name(),
            field.item.type_name()
        );
        self.error(field.pos(), message, None);
    }

    /// Expand a string value that is written at `pos`.
    pub(super) fn expand_at(&mut self, raw: &str, pos: usize) -> Option<String> {
        match expand(raw, self.env) {
            Ok(s) => Some(s),
            Err(e) => {
                let message = match &self.secret {
                    Some(key) => format!("{key}: {}", e.message),
                    None => e.shown(),
                };
                self.error(pos, message, e.hint);
                None
            }
        }
    }

    /// A string value that is a secret, expanded: errors name `key`, never the value.
    pub(super) fn secret_string(&mut self, field: Field<'_>, key: &str) -> Option<String> {
        let was = self.secret.replace(key.to_owned());
        let s = self.string(field);
        self.secret = was;
        s
    }

    /// Record an error if `s` (the value of `what`, written at `pos`) holds a NUL byte, which
    /// no path, argument or environment value can carry to the OS.
    pub(super) fn reject_nul(&mut self, pos: usize, what: &str, s: &str) -> bool {
        if !s.contains('\0') {
            return false;
        }
        self.error(
            pos,
            format!("{what}: contains a NUL byte"),
            Some("no path, argument or environment value can hold a NUL (\\u0000)".into()),
        );
        true
    }

    /// A table, inline or not.
    pub(super) fn section<'t>(&mut self, field: Field<'t>) -> Option<Section<'t>> {
        let Some(table) = field.item.as_table_like() else {
            self.wrong_type(field, "a table");
            return None;
        };
        Some(Section {
            table,
            pos: field.key_pos(),
        })
    }

    /// A string, expanded.
    pub(super) fn string(&mut self, field: Field<'_>) -> Option<String> {
        let Some(raw) = field.item.as_str() else {
            self.wrong_type(field, "a string");
            return None;
        };
        self.expand_at(raw, field.pos())
    }

    /// A non-empty string, expanded.
    pub(super) fn non_empty_string(&mut self, field: Field<'_>) -> Option<String> {
        let s = self.string(field)?;
        if s.is_empty() {
            self.error(field.pos(), format!("{} is empty", field.name()), None);
            return None;
        }
        Some(s)
    }

    pub(super) fn bool(&mut self, field: Field<'_>) -> Option<bool> {
        let b = field.item.as_bool();
        if b.is_none() {
            self.wrong_type(field, "a boolean (true or false)");
        }
        b
    }

    pub(super) fn integer(&mut self, field: Field<'_>) -> Option<i64> {
        let i = field.item.as_integer();
        if i.is_none() {
            self.wrong_type(field, "an integer");
        }
        i
    }

    /// An integer in `min..=max`.
    pub(super) fn integer_in(&mut self, field: Field<'_>, min: i64, max: i64) -> Option<i64> {
        let i = self.integer(field)?;
        if i < min || i > max {
            let message = if max == i64::from(u32::MAX) || max == i64::MAX {
                format!("{} must be at least {min}, found {i}", field.name())
            } else {
                format!(
                    "{} must be between {min} and {max}, found {i}",
                    field.name()
                )
            };
            self.error(field.pos(), message, None);
            return None;
        }
        Some(i)
    }

    /// A number: a float or an integer.
    pub(super) fn number(&mut self, field: Field<'_>) -> Option<f64> {
        match field.item.as_value() {
            Some(Value::Float(f)) => Some(*f.value()),
            Some(Value::Integer(i)) => Some(*i.value() as f64),
            _ => {
                self.wrong_type(field, "a number");
                None
            }
        }
    }

    /// A duration string such as `"30s"`, at most `max`.
    pub(super) fn duration(&mut self, field: Field<'_>, max: Duration) -> Option<Duration> {
        let hint = field
            .item
            .as_integer()
            .map(|i| format!("write \"{i}s\" for seconds or \"{i}ms\" for milliseconds"));
        let units = "units are ms, s, m, h and d, as in \"1h30m\" or \"1.5s\"";
        let d = self.with_units(field, DURATION_EXPECTED, hint, units, parse_duration)?;
        if d > max {
            let message = format!(
                "{}: at most {}, found \"{}\"",
                field.name(),
                limit_text(max),
                field.item.as_str().unwrap_or_default()
            );
            self.error(field.pos(), message, None);
            return None;
        }
        Some(d)
    }

    /// A size string such as `"10MiB"`, or an integer number of bytes.
    pub(super) fn size(&mut self, field: Field<'_>) -> Option<u64> {
        if field.item.is_integer() {
            return self.integer_in(field, 0, i64::MAX).map(|i| i as u64);
        }
        let units = "units are B, KB, MB, GB (powers of 1000) and KiB, MiB, GiB (powers of 1024)";
        self.with_units(field, SIZE_EXPECTED, None, units, parse_size)
    }

    /// A string with units, expanded and parsed by `parse`. `expected` starts each error;
    /// `type_hint` helps when the value is not a string, `units` when it does not parse.
    fn with_units<T>(
        &mut self,
        field: Field<'_>,
        expected: &str,
        type_hint: Option<String>,
        units: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let Some(raw) = field.item.as_str() else {
            let message = format!(
                "{}: {expected}, found {}",
                field.name(),
                field.item.type_name()
            );
            self.error(field.pos(), message, type_hint);
            return None;
        };
        let s = self.expand_at(raw, field.pos())?;
        let value = parse(&s);
        if value.is_none() {
            let message = format!("{}: {expected}, found \"{s}\"", field.name());
            self.error(field.pos(), message, Some(units.into()));
        }
        value
    }

    /// A path, made absolute against the config's directory.
    pub(super) fn path(&mut self, field: Field<'_>) -> Option<PathBuf> {
        let s = self.non_empty_string(field)?;
        if self.reject_nul(field.pos(), field.name(), &s) {
            return None;
        }
        Some(self.resolve(Path::new(&s)))
    }

    /// `path` made absolute against the config's directory, without touching the disk.
    pub(super) fn resolve(&self, path: &Path) -> PathBuf {
        self.dir.join(path).components().collect()
    }

    /// A list of strings, each expanded.
    pub(super) fn strings(&mut self, field: Field<'_>, expected: &str) -> Option<Vec<String>> {
        let Some(array) = field.item.as_array() else {
            self.wrong_type(field, expected);
            return None;
        };
        let mut out = Vec::with_capacity(array.len());
        let mut ok = true;
        for value in array {
            let pos = value.span().map_or_else(|| field.pos(), |s| s.start);
            let Some(raw) = value.as_str() else {
                let message = format!(
                    "{}: expected {expected}, found an array with {} in it",
                    field.name(),
                    a_type(value)
                );
                self.error(pos, message, None);
                ok = false;
                continue;
            };
            match self.expand_at(raw, pos) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A command: an array of strings (argv) or a string split into words like a shell
    /// would, without running one.
    pub(super) fn argv(&mut self, field: Field<'_>) -> Option<Vec<String>> {
        const EXPECTED: &str = "a string or an array of strings";
        let argv = if let Some(raw) = field.item.as_str() {
            let s = self.expand_at(raw, field.pos())?;
            match shell_words::split(&s) {
                Ok(words) => words,
                Err(e) => {
                    let message = format!("{}: cannot split into words: {e}", field.name());
                    let hint = "check the quotes, or write the command as an array";
                    self.error(field.pos(), message, Some(hint.into()));
                    return None;
                }
            }
        } else if field.item.is_array() {
            self.strings(field, EXPECTED)?
        } else {
            self.wrong_type(field, EXPECTED);
            return None;
        };
        self.check_argv(field, argv)
    }

    /// An argv must name a program, and no argument may hold a NUL.
    pub(super) fn check_argv(
        &mut self,
        field: Field<'_>,
        argv: Vec<String>,
    ) -> Option<Vec<String>> {
        if argv.iter().any(|a| a.contains('\0')) {
            self.reject_nul(field.pos(), field.name(), "\0");
            return None;
        }
        match argv.first() {
            None => {
                self.error(field.pos(), format!("{} is empty", field.name()), None);
                None
            }
            Some(program) if program.is_empty() => {
                let message = format!("{}: the program name is empty", field.name());
                self.error(field.pos(), message, None);
                None
            }
            Some(_) => Some(argv),
        }
    }
}

/// A limit as written in a config: `"24h"`, `"365d"`.
fn limit_text(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) && s >= 2 * 86_400 {
        format!("\"{}d\"", s / 86_400)
    } else if s.is_multiple_of(3_600) {
        format!("\"{}h\"", s / 3_600)
    } else {
        format!("\"{s}s\"")
    }
}

/// "a string", "an integer", ... for a value found where it should not be.
fn a_type(value: &Value) -> String {
    let name = value.type_name();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}
