//! Loading `warden.toml`: read, parse with spans, then walk the tree by hand, collecting
//! every error on the way.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{ImDocument, Item};

use super::diag::{Diagnostics, did_you_mean, line_col, start};
use super::files::{read_capped, read_capped_text};
use super::limits::{
    MAX_CONFIG_BYTES, MAX_NAME_LEN, MAX_TIMEOUT, MAX_TOKEN_FILE_BYTES, MAX_TOML_DEPTH,
};
use super::programs::{FsPrograms, Programs, Rules};
use super::reader::{Field, Reader, Section};
use super::service::read_service;
use super::{Config, ConfigError, ConfigErrors, Env, Secret, WardenSettings};
use crate::model::WhenAllEnded;

const TOP_KEYS: &[&str] = &["warden", "services"];
const WARDEN_KEYS: &[&str] = &[
    "log_dir",
    "state_dir",
    "shutdown_timeout",
    "api",
    "api_token",
    "api_token_file",
    "when_all_ended",
    "socket",
    "log",
];

/// Read, parse, validate and expand the config file at `path`.
///
/// The file must be a regular file of at most [`MAX_CONFIG_BYTES`] and valid UTF-8.
pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigErrors> {
    let one = |line: usize, col: usize, message: String| ConfigErrors {
        file: path.to_path_buf(),
        errors: vec![ConfigError {
            file: path.to_path_buf(),
            line,
            col,
            message,
            hint: None,
        }],
    };
    let bytes = read_capped(path, MAX_CONFIG_BYTES)
        .map_err(|e| one(0, 0, format!("cannot read the config file: {e}")))?;
    match String::from_utf8(bytes) {
        Ok(text) => load_str(&text, path, env),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = std::str::from_utf8(&e.as_bytes()[..valid]).unwrap_or_default();
            let (line, col) = line_col(prefix, valid);
            Err(one(
                line,
                col,
                "invalid UTF-8 (a TOML file is UTF-8)".into(),
            ))
        }
    }
}

/// Like [`load`], from text; `path` names the file in errors and anchors relative paths.
pub fn load_str(text: &str, path: &Path, env: &dyn Env) -> Result<Config, ConfigErrors> {
    load_text(text, path, env, &FsPrograms::default())
}

/// [`load_str`] with its own lookup of which programs exist (tests pass a table).
pub(super) fn load_text(
    text: &str,
    path: &Path,
    env: &dyn Env,
    programs: &dyn Programs,
) -> Result<Config, ConfigErrors> {
    let abs_path = absolute(path);
    let dir = abs_path
        .parent()
        .map_or_else(|| abs_path.clone(), Path::to_path_buf);
    let mut reader = Reader {
        diag: Diagnostics::new(path.to_path_buf(), text),
        env,
        dir: dir.clone(),
        secret: None,
        checked_dirs: std::collections::BTreeSet::new(),
        programs,
        rules: Rules::host(env),
    };
    if text.len() as u64 > MAX_CONFIG_BYTES {
        let message = format!("the config is larger than {MAX_CONFIG_BYTES} bytes");
        reader.error(0, message, None);
        return Err(errors(path, reader));
    }
    if let Some(at) = too_deep(text) {
        let message = format!("arrays and tables nest deeper than {MAX_TOML_DEPTH} levels");
        reader.error(at, message, None);
        return Err(errors(path, reader));
    }
    let config = match ImDocument::parse(text) {
        Ok(doc) => {
            let root = Section {
                table: doc.as_table(),
                pos: 0,
            };
            let (warden, services) = read_root(&mut reader, root);
            Config {
                path: abs_path,
                dir,
                warden,
                services,
                warnings: reader.diag.take_warnings(),
            }
        }
        Err(e) => {
            let message = e.message().trim().replace('\n', "; ");
            reader.error(start(e.span()), format!("invalid TOML: {message}"), None);
            return Err(errors(path, reader));
        }
    };
    if reader.diag.is_empty() {
        Ok(config)
    } else {
        Err(errors(path, reader))
    }
}

fn errors(path: &Path, reader: Reader<'_>) -> ConfigErrors {
    ConfigErrors {
        file: path.to_path_buf(),
        errors: reader.diag.into_errors(),
    }
}

/// Where `[` and `{` first nest deeper than [`MAX_TOML_DEPTH`] outside strings and comments,
/// found without recursion before the (recursive) parser sees the text.
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    // The index just past the first `close` at or after `from`; a backslash escapes the
    // next byte when `escapes`. A string left open ends the scan (the parser reports it).
    let skip = |from: usize, close: &[u8], escapes: bool, eol: bool| -> usize {
        let mut j = from;
        while j < b.len() {
            if escapes && b[j] == b'\\' {
                j += 2;
                continue;
            }
            if eol && b[j] == b'\n' {
                return j;
            }
            if b[j..].starts_with(close) {
                return j + close.len();
            }
            j += 1;
        }
        b.len()
    };
    while i < b.len() {
        match b[i] {
            b'#' => i = skip(i, b"\n", false, false),
            b'"' if b[i..].starts_with(b"\"\"\"") => i = skip(i + 3, b"\"\"\"", true, false),
            b'"' => i = skip(i + 1, b"\"", true, true),
            b'\'' if b[i..].starts_with(b"'''") => i = skip(i + 3, b"'''", false, false),
            b'\'' => i = skip(i + 1, b"'", false, true),
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_TOML_DEPTH {
                    return Some(i);
                }
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// `path` made absolute against the current directory; symlinks are left alone.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn read_root(r: &mut Reader<'_>, root: Section<'_>) -> (WardenSettings, Vec<super::ServiceConfig>) {
    r.check_keys(root, TOP_KEYS, "the top level");
    let warden = match root.field("warden") {
        Some(field) => match r.section(field) {
            Some(section) => read_warden(r, section),
            None => default_warden(r),
        },
        None => default_warden(r),
    };
    #[cfg(unix)]
    check_socket_path(r, root, &warden);
    if let Err(e) = crate::state::check_dir_tree(&warden.state_dir) {
        let pos = state_dir_pos(root);
        r.error(pos, format!("state_dir: {e}"), None);
    }
    let services = match root.field("services") {
        Some(field) => read_services(r, field, &warden),
        None => Vec::new(),
    };
    (warden, services)
}

/// Where to report a problem of the state dir: its key, else `[warden]`, else the start.
fn state_dir_pos(root: Section<'_>) -> usize {
    let section = root.field("warden");
    section
        .and_then(|w| w.item.as_table_like())
        .and_then(|t| t.get_key_value("state_dir"))
        .map(|(key, item)| Field { key, item }.pos())
        .or_else(|| section.map(|f| f.key_pos()))
        .unwrap_or(0)
}

/// The control socket (`socket`, else `<state_dir>/warden.sock`) must fit in a
/// `sockaddr_un`, or `up` would fail only after starting the services.
#[cfg(unix)]
fn check_socket_path(r: &mut Reader<'_>, root: Section<'_>, warden: &WardenSettings) {
    use super::limits::MAX_SOCKET_PATH;
    let (socket, pos, key) = match &warden.socket {
        Some(s) => {
            let pos = root
                .field("warden")
                .and_then(|w| w.item.as_table_like())
                .and_then(|t| t.get_key_value("socket"))
                .map_or(0, |(key, item)| Field { key, item }.pos());
            (s.clone(), pos, "socket")
        }
        None => (
            warden.state_dir.join("warden.sock"),
            state_dir_pos(root),
            "state_dir",
        ),
    };
    let len = socket.as_os_str().len();
    if len <= MAX_SOCKET_PATH {
        return;
    }
    r.error(
        pos,
        format!(
            "the control socket {} is {len} bytes long; a Unix socket path holds at most {MAX_SOCKET_PATH}",
            socket.display()
        ),
        Some(format!("set [warden] {key} to a shorter path")),
    );
}

fn default_warden(r: &Reader<'_>) -> WardenSettings {
    WardenSettings {
        log_dir: r.resolve(Path::new("logs")),
        state_dir: r.resolve(Path::new(".warden")),
        socket: None,
        shutdown_timeout: Duration::from_secs(60),
        api: None,
        api_token: None,
        when_all_ended: WhenAllEnded::Keep,
        log: super::WardenLog::default(),
        health: super::WardenHealth::default(),
    }
}

fn read_warden(r: &mut Reader<'_>, section: Section<'_>) -> WardenSettings {
    let keys = [WARDEN_KEYS, super::health::WARDEN_KEYS].concat();
    r.check_keys(section, &keys, "[warden]");
    let mut w = default_warden(r);
    w.health = super::health::read_warden(r, section);
    if let Some(path) = section.field("log_dir").and_then(|f| r.path(f)) {
        w.log_dir = path;
    }
    if let Some(path) = section.field("state_dir").and_then(|f| r.path(f)) {
        w.state_dir = path;
    }
    if let Some(field) = section.field("socket") {
        w.socket = r.path(field);
        if cfg!(windows) {
            let message = "socket: the control endpoint is a named pipe on Windows";
            r.error(field.pos(), message, Some("remove the socket key".into()));
        }
    }
    if let Some(d) = section
        .field("shutdown_timeout")
        .and_then(|f| r.duration(f, MAX_TIMEOUT))
    {
        w.shutdown_timeout = d;
    }
    if let Some(f) = section.field("when_all_ended")
        && let Some(s) = r.string(f)
    {
        match s.as_str() {
            "keep" => w.when_all_ended = WhenAllEnded::Keep,
            "stop" => w.when_all_ended = WhenAllEnded::Stop,
            _ => r.error(
                f.pos(),
                format!("when_all_ended: expected \"keep\" or \"stop\", found \"{s}\""),
                None,
            ),
        }
    }
    w.log = super::warden_log::read_warden_log(r, section);
    w.api_token = read_token(r, section);
    let api_field = section.field("api");
    w.api = api_field.and_then(|f| read_socket_addr(r, f));
    if let (Some(field), Some(addr)) = (api_field, w.api) {
        let token_given =
            section.field("api_token").is_some() || section.field("api_token_file").is_some();
        if !addr.ip().is_loopback() && !token_given {
            r.error(
                field.pos(),
                format!("api listens on {addr}, which is not a loopback address, without a token"),
                Some("set api_token or api_token_file, or listen on 127.0.0.1".into()),
            );
        }
    }
    w
}

fn read_socket_addr(r: &mut Reader<'_>, field: Field<'_>) -> Option<SocketAddr> {
    let s = r.string(field)?;
    let addr = s.parse().ok();
    if addr.is_none() {
        r.error(
            field.pos(),
            format!("api: expected a socket address like \"127.0.0.1:9100\", found \"{s}\""),
            None,
        );
    }
    addr
}

/// `api_token`, or the trimmed content of `api_token_file`; not both.
fn read_token(r: &mut Reader<'_>, section: Section<'_>) -> Option<Secret> {
    let inline = section.field("api_token");
    let file = section.field("api_token_file");
    if let (Some(_), Some(file_field)) = (inline, file) {
        r.error(
            file_field.key_pos(),
            "api_token and api_token_file are both set",
            Some("keep only one of them".into()),
        );
        return None;
    }
    let (field, token) = if let Some(field) = inline {
        (field, r.secret_string(field, "api_token")?)
    } else {
        let field = file?;
        let path = r.path(field)?;
        match read_capped_text(&path, MAX_TOKEN_FILE_BYTES) {
            Ok(text) => (field, text.trim().to_owned()),
            Err(e) => {
                let message = format!("api_token_file \"{}\" cannot be read: {e}", path.display());
                r.error(field.pos(), message, None);
                return None;
            }
        }
    };
    if r.reject_nul(field.pos(), field.name(), &token) {
        return None;
    }
    if token.is_empty() {
        r.error(
            field.pos(),
            format!("{}: the token is empty", field.name()),
            None,
        );
        return None;
    }
    Some(Secret(token))
}

fn read_services(
    r: &mut Reader<'_>,
    field: Field<'_>,
    warden: &WardenSettings,
) -> Vec<super::ServiceConfig> {
    if let Item::ArrayOfTables(_) = field.item {
        r.error(
            field.key_pos(),
            "services: expected a table, found array of tables",
            Some("write [services.NAME] for each service".into()),
        );
        return Vec::new();
    }
    let Some(section) = r.section(field) else {
        return Vec::new();
    };
    let mut services = Vec::new();
    for entry in section.fields() {
        let name = entry.name();
        if !is_valid_name(name) {
            r.error(
                entry.key_pos(),
                format!("invalid service name \"{}\"", name.escape_debug()),
                Some("a service name may use only letters, digits, '_', '.' and '-'".into()),
            );
        } else if name.len() > MAX_NAME_LEN {
            r.error(
                entry.key_pos(),
                format!(
                    "the service name is {} characters long; at most {MAX_NAME_LEN} are allowed",
                    name.len()
                ),
                Some("service names become file names, which have a length limit".into()),
            );
        }
        let Some(table) = entry.item.as_table_like() else {
            r.error(
                entry.pos(),
                format!(
                    "services.{name}: expected a table, found {}",
                    entry.item.type_name()
                ),
                Some(format!(
                    "write [services.{name}] and the service's keys under it"
                )),
            );
            continue;
        };
        let section = Section {
            table,
            pos: entry.key_pos(),
        };
        services.push(read_service(r, name, section, warden));
    }
    super::depends::check_graph(r, section, &services);
    services
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The hint for a word that is not one of `choices`: the nearest one, or all of them.
pub(super) fn choice_hint(word: &str, choices: &[&str]) -> String {
    did_you_mean(word, choices).unwrap_or_else(|| {
        let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
        format!("expected one of {}", quoted.join(", "))
    })
}
