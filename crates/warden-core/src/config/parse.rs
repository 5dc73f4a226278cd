//! Loading `warden.toml`: read, parse with spans, then walk the tree by hand, collecting
//! every error on the way.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{ImDocument, Item};

use super::diag::{Diagnostics, did_you_mean, start};
use super::reader::{Field, Reader, Section};
use super::service::read_service;
use super::{Config, ConfigError, ConfigErrors, Env, Secret, WardenSettings};

const TOP_KEYS: &[&str] = &["warden", "services"];
const WARDEN_KEYS: &[&str] = &[
    "log_dir",
    "state_dir",
    "shutdown_timeout",
    "api",
    "api_token",
    "api_token_file",
    "socket",
];

/// Read, parse, validate and expand the config file at `path`.
pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, path, env),
        Err(e) => Err(ConfigErrors {
            file: path.to_path_buf(),
            errors: vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                message: format!("cannot read the config file: {e}"),
                hint: None,
            }],
        }),
    }
}

/// Like [`load`], from text; `path` names the file in errors and anchors relative paths.
pub fn load_str(text: &str, path: &Path, env: &dyn Env) -> Result<Config, ConfigErrors> {
    let abs_path = absolute(path);
    let dir = abs_path
        .parent()
        .map_or_else(|| abs_path.clone(), Path::to_path_buf);
    let mut reader = Reader {
        diag: Diagnostics::new(path.to_path_buf(), text),
        env,
        dir: dir.clone(),
    };
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
    let services = match root.field("services") {
        Some(field) => read_services(r, field, &warden),
        None => Vec::new(),
    };
    (warden, services)
}

fn default_warden(r: &Reader<'_>) -> WardenSettings {
    WardenSettings {
        log_dir: r.resolve(Path::new("logs")),
        state_dir: r.resolve(Path::new(".warden")),
        socket: None,
        shutdown_timeout: Duration::from_secs(60),
        api: None,
        api_token: None,
    }
}

fn read_warden(r: &mut Reader<'_>, section: Section<'_>) -> WardenSettings {
    r.check_keys(section, WARDEN_KEYS, "[warden]");
    let mut w = default_warden(r);
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
        .and_then(|f| r.duration(f))
    {
        w.shutdown_timeout = d;
    }
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
        (field, r.string(field)?)
    } else {
        let field = file?;
        let path = r.path(field)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => (field, text.trim().to_owned()),
            Err(e) => {
                let message = format!("api_token_file \"{}\" cannot be read: {e}", path.display());
                r.error(field.pos(), message, None);
                return None;
            }
        }
    };
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
                format!("invalid service name \"{name}\""),
                Some("a service name may use only letters, digits, '_', '.' and '-'".into()),
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
