//! One `[services.NAME]` table.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::files::read_capped_text;
use super::limits::{
    MAX_BACKOFF_FACTOR, MAX_ENV_FILE_BYTES, MAX_KEEP, MAX_LOG_SIZE, MAX_START_LIMIT_COUNT,
    MAX_TIMEOUT, MAX_WINDOW, MIN_LOG_SIZE,
};
use super::parse::choice_hint;
use super::reader::{Field, Reader, Section};
use super::{
    Backoff, LogConfig, RestartPolicy, ServiceConfig, StartLimit, StderrTarget, StopMethod,
    WardenSettings,
};
use super::{daemonize, dotenv, privileges, programs};
use crate::model::{ExitAction, ExitActions, Signal};

const SERVICE_KEYS: &[&str] = &[
    "command",
    "shell",
    "cwd",
    "env",
    "env_file",
    "inherit_env",
    "autostart",
    "restart",
    "success_codes",
    "exit_actions",
    "backoff",
    "start_limit",
    "stop_signal",
    "stop_timeout",
    "min_uptime",
    "stop_command",
    "stop_method",
    "log",
    // privileges.rs
    "user",
    "group",
    "umask",
    "nice",
    "oom_score_adjust",
    "no_new_privileges",
    "limits",
    "memory_limit",
    "cpu_max",
    "pid_file",
    "daemon",
    "start_timeout",
];
/// `min_uptime` by default: supervisord's `startsecs`.
const DEFAULT_MIN_UPTIME: Duration = Duration::from_secs(1);
const BACKOFF_KEYS: &[&str] = &["initial", "max", "factor", "jitter", "reset_after"];
const START_LIMIT_KEYS: &[&str] = &["count", "window"];
const LOG_KEYS: &[&str] = &[
    "stdout",
    "stderr",
    "max_size",
    "keep",
    "compress",
    "timestamps",
    "encoding",
];
const RESTART_POLICIES: &[&str] = &["always", "on-failure", "never"];
const STOP_METHODS: &[&str] = &["ctrl-c", "wm-close", "terminate"];

/// Read one service; on errors the defaults stand in and the errors are recorded.
pub(super) fn read_service(
    r: &mut Reader<'_>,
    name: &str,
    section: Section<'_>,
    warden: &WardenSettings,
) -> ServiceConfig {
    let keys = [SERVICE_KEYS, super::health::SERVICE_KEYS, &["depends_on"]].concat();
    r.check_keys(section, &keys, &format!("[services.{name}]"));
    let field = |key: &str| section.field(key);

    let shell = field("shell").and_then(|f| r.bool(f)).unwrap_or(false);
    let command = read_command(r, name, section, shell);
    let env_file = field("env_file").and_then(|f| r.path(f).map(|p| (f, p)));
    let env = read_env(r, name, field("env"), env_file.as_ref());
    let log = read_log(r, name, field("log"), warden);
    check_log_files(r, section.pos, field("log"), &log);

    let service = ServiceConfig {
        name: name.to_owned(),
        command,
        raw_command: field("command")
            .map(|f| raw_toml(f.item))
            .unwrap_or_default(),
        shell,
        cwd: field("cwd")
            .and_then(|f| read_cwd(r, f))
            .unwrap_or_else(|| r.dir.clone()),
        env,
        env_file: env_file.map(|(_, p)| p),
        inherit_env: field("inherit_env").and_then(|f| r.bool(f)).unwrap_or(true),
        autostart: field("autostart").and_then(|f| r.bool(f)).unwrap_or(true),
        restart: field("restart")
            .and_then(|f| read_restart(r, f))
            .unwrap_or(RestartPolicy::Always),
        success_codes: field("success_codes")
            .and_then(|f| read_codes(r, f))
            .unwrap_or_else(|| vec![0]),
        exit_actions: field("exit_actions")
            .and_then(|f| read_exit_actions(r, f))
            .unwrap_or_default(),
        backoff: field("backoff")
            .and_then(|f| read_backoff(r, f))
            .unwrap_or_default(),
        start_limit: field("start_limit").and_then(|f| read_start_limit(r, f)),
        stop_signal: field("stop_signal")
            .and_then(|f| read_signal(r, f))
            .unwrap_or(Signal::Term),
        stop_timeout: field("stop_timeout")
            .and_then(|f| r.duration(f, MAX_TIMEOUT))
            .unwrap_or(Duration::from_secs(10)),
        min_uptime: field("min_uptime")
            .and_then(|f| r.duration(f, MAX_TIMEOUT))
            .unwrap_or(DEFAULT_MIN_UPTIME),
        stop_command: field("stop_command").and_then(|f| r.argv(f)),
        stop_method: field("stop_method")
            .and_then(|f| read_stop_method(r, f))
            .unwrap_or_else(|| {
                vec![
                    StopMethod::CtrlC,
                    StopMethod::WmClose,
                    StopMethod::Terminate,
                ]
            }),
        log,
        privileges: privileges::read(r, section),
        health: super::health::read(r, section),
        depends_on: super::depends::read(r, section),
        daemonize: daemonize::read(r, section),
    };
    daemonize::check(r, section, &service);
    for finding in programs::check_service(&service, r.env, &r.rules, r.programs) {
        let pos = field(finding.key).map_or(section.pos, |f| f.key_pos());
        r.warning(pos, finding.message, finding.hint);
    }
    service
}

/// What would make opening the log files fail at run time (and the service disappear):
/// a log path that is a symlink (never followed), or a dir another user can write.
fn check_log_files(
    r: &mut Reader<'_>,
    service_pos: usize,
    field: Option<Field<'_>>,
    log: &LogConfig,
) {
    let section = field.and_then(|f| f.item.as_table_like());
    let mut files = vec![("stdout", &log.stdout)];
    if let StderrTarget::File(p) = &log.stderr {
        files.push(("stderr", p));
    }
    for (key, path) in files {
        let pos = section
            .and_then(|t| t.get_key_value(key))
            .map_or(service_pos, |(key, item)| Field { key, item }.pos());
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            r.error(
                pos,
                format!(
                    "log.{key}: \"{}\" is a symbolic link, which warden never follows for a log file",
                    path.display()
                ),
                Some("name the real file; `warden up --attach` shows the output".into()),
            );
        }
        if let Some(dir) = path.parent()
            && r.checked_dirs.insert(dir.to_path_buf())
            && let Err(e) = crate::state::check_dir_tree(dir)
        {
            r.error(pos, format!("log.{key}: {e}"), None);
        }
    }
}

fn read_command(r: &mut Reader<'_>, name: &str, section: Section<'_>, shell: bool) -> Vec<String> {
    let Some(field) = section.field("command") else {
        r.error(
            section.pos,
            format!("service \"{name}\" has no command"),
            Some("add command = [\"program\", \"arg\"] or command = \"program arg\"".into()),
        );
        return Vec::new();
    };
    if !shell {
        return r.argv(field).unwrap_or_default();
    }
    let Some(raw) = field.item.as_str() else {
        r.error(
            field.pos(),
            format!(
                "command: shell = true needs a string, found {}",
                field.item.type_name()
            ),
            Some("write the command as one string, or drop shell = true".into()),
        );
        return Vec::new();
    };
    let Some(script) = r.expand_at(raw, field.pos()) else {
        return Vec::new();
    };
    if script.trim().is_empty() {
        r.error(field.pos(), "command is empty", None);
        return Vec::new();
    }
    if r.reject_nul(field.pos(), "command", &script) {
        return Vec::new();
    }
    shell_argv(script)
}

/// A string or an array of strings as TOML text, without comments or layout.
fn raw_toml(item: &toml_edit::Item) -> String {
    // A basic string, escaped as TOML (and JSON) escape it.
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    match item.as_array() {
        Some(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map_or_else(|| v.to_string().trim().to_owned(), quote)
                })
                .collect();
            format!("[{}]", parts.join(", "))
        }
        None => item
            .as_str()
            .map_or_else(|| item.to_string().trim().to_owned(), quote),
    }
}

/// `["sh", "-c", SCRIPT]`, or `["cmd", "/C", SCRIPT]` on Windows.
fn shell_argv(script: String) -> Vec<String> {
    let (program, flag) = if cfg!(windows) {
        ("cmd", "/C")
    } else {
        ("sh", "-c")
    };
    vec![program.to_owned(), flag.to_owned(), script]
}

fn read_cwd(r: &mut Reader<'_>, field: Field<'_>) -> Option<PathBuf> {
    let path = r.path(field)?;
    let problem = match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => return Some(path),
        Ok(_) => "is not a directory".to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_owned(),
        Err(e) => format!("cannot be read: {e}"),
    };
    r.error(
        field.pos(),
        format!("cwd \"{}\" {problem}", path.display()),
        None,
    );
    None
}

/// `env_file` under `env` (which wins), plus `WARDEN_SERVICE`.
fn read_env(
    r: &mut Reader<'_>,
    name: &str,
    env_field: Option<Field<'_>>,
    env_file: Option<&(Field<'_>, PathBuf)>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if let Some((field, path)) = env_file {
        env.extend(read_env_file(r, *field, path));
    }
    if let Some(section) = env_field.and_then(|f| r.section(f)) {
        for var in section.fields() {
            if let Some(value) = read_env_value(r, var) {
                env.insert(var.name().to_owned(), value);
            }
        }
    }
    env.insert("WARDEN_SERVICE".to_owned(), name.to_owned());
    env
}

fn read_env_value(r: &mut Reader<'_>, var: Field<'_>) -> Option<String> {
    let key = var.name();
    if key.is_empty() || key.contains(['=', '\0']) {
        r.error(
            var.key_pos(),
            format!("invalid environment variable name \"{key}\""),
            Some("a name may not be empty or contain '=' or NUL".into()),
        );
        return None;
    }
    if var.item.as_str().is_none() {
        // The value may be a secret (a PIN): the hint shows the form, never the value.
        let hint = var
            .item
            .as_value()
            .filter(|v| v.is_integer() || v.is_float() || v.is_bool())
            .map(|_| format!("quote the value: {key} = \"...\""));
        r.error(
            var.pos(),
            format!(
                "env.{key}: expected a string, found {}",
                var.item.type_name()
            ),
            hint,
        );
        return None;
    }
    let value = r.secret_string(var, &format!("env.{key}"))?;
    if r.reject_nul(var.pos(), &format!("env.{key}"), &value) {
        return None;
    }
    Some(value)
}

fn read_env_file(r: &mut Reader<'_>, field: Field<'_>, path: &Path) -> Vec<(String, String)> {
    let text = match read_capped_text(path, MAX_ENV_FILE_BYTES) {
        Ok(text) => text,
        Err(e) => {
            let problem = if matches!(e, super::files::FileProblem::NotFound) {
                "does not exist".to_owned()
            } else {
                format!("cannot be read: {e}")
            };
            r.error(
                field.pos(),
                format!("env_file \"{}\" {problem}", path.display()),
                None,
            );
            return Vec::new();
        }
    };
    match dotenv::parse(&text) {
        Ok(pairs) => pairs,
        Err(errors) => {
            for e in errors {
                let message = format!(
                    "env_file \"{}\", line {}: {}",
                    path.display(),
                    e.line,
                    e.message
                );
                r.error(field.pos(), message, None);
            }
            Vec::new()
        }
    }
}

fn read_restart(r: &mut Reader<'_>, field: Field<'_>) -> Option<RestartPolicy> {
    let s = r.string(field)?;
    let policy = match s.as_str() {
        "always" => RestartPolicy::Always,
        "on-failure" => RestartPolicy::OnFailure,
        "never" => RestartPolicy::Never,
        _ => {
            let hint = choice_hint(&s, RESTART_POLICIES);
            r.error(
                field.pos(),
                format!("unknown restart policy \"{s}\""),
                Some(hint),
            );
            return None;
        }
    };
    Some(policy)
}

/// `exit_actions = { 0 = "exit", 2 = "stop-warden", default = "restart" }`.
fn read_exit_actions(r: &mut Reader<'_>, field: Field<'_>) -> Option<ExitActions> {
    const ACTIONS: &[&str] = &["restart", "exit", "stop-warden"];
    let section = r.section(field)?;
    let mut actions = ExitActions::default();
    for f in section.fields() {
        let Some(word) = r.string(f) else { continue };
        let action = match word.as_str() {
            "restart" => ExitAction::Restart,
            "exit" => ExitAction::Exit,
            "stop-warden" => ExitAction::StopWarden,
            _ => {
                let hint = choice_hint(&word, ACTIONS);
                r.error(
                    f.pos(),
                    format!("exit_actions.{}: unknown action \"{word}\"", f.name()),
                    Some(hint),
                );
                continue;
            }
        };
        if f.name() == "default" {
            actions.default = Some(action);
        } else if let Ok(code) = f.name().parse::<i32>() {
            actions.codes.push((code, action));
        } else {
            r.error(
                f.key_pos(),
                format!(
                    "exit_actions: \"{}\" is neither an exit code nor \"default\"",
                    f.name()
                ),
                Some(
                    "exit_actions = { 0 = \"exit\", 2 = \"stop-warden\", default = \"restart\" }"
                        .into(),
                ),
            );
        }
    }
    Some(actions)
}

fn read_codes(r: &mut Reader<'_>, field: Field<'_>) -> Option<Vec<i32>> {
    let Some(array) = field.item.as_array() else {
        r.error(
            field.pos(),
            format!(
                "success_codes: expected an array of integers, found {}",
                field.item.type_name()
            ),
            None,
        );
        return None;
    };
    let mut codes = Vec::with_capacity(array.len());
    for value in array {
        let pos = value.span().map_or_else(|| field.pos(), |s| s.start);
        match value.as_integer().and_then(|i| i32::try_from(i).ok()) {
            Some(code) => codes.push(code),
            None => r.error(
                pos,
                format!(
                    "success_codes: expected an exit code (a 32-bit integer), found {}",
                    value.to_string().trim()
                ),
                None,
            ),
        }
    }
    (codes.len() == array.len()).then_some(codes)
}

fn read_backoff(r: &mut Reader<'_>, field: Field<'_>) -> Option<Backoff> {
    let section = r.section(field)?;
    r.check_keys(section, BACKOFF_KEYS, "backoff");
    let mut b = Backoff::default();
    let get = |key: &str| section.field(key);
    if let Some(d) = get("initial").and_then(|f| r.duration(f, MAX_TIMEOUT)) {
        b.initial = d;
    }
    if let Some(d) = get("max").and_then(|f| r.duration(f, MAX_TIMEOUT)) {
        b.max = d;
    }
    if let Some(d) = get("reset_after").and_then(|f| r.duration(f, MAX_WINDOW)) {
        b.reset_after = d;
    }
    if let Some(f) = get("factor")
        && let Some(factor) = r.number(f)
    {
        if (1.0..=MAX_BACKOFF_FACTOR).contains(&factor) {
            b.factor = factor;
        } else {
            r.error(
                f.pos(),
                format!(
                    "backoff.factor must be between 1.0 and {MAX_BACKOFF_FACTOR:.1}, found {factor:?}"
                ),
                None,
            );
        }
    }
    if let Some(f) = get("jitter")
        && let Some(jitter) = r.number(f)
    {
        if (0.0..1.0).contains(&jitter) {
            b.jitter = jitter;
        } else {
            r.error(
                f.pos(),
                format!("backoff.jitter must be at least 0 and less than 1, found {jitter:?}"),
                None,
            );
        }
    }
    if b.initial > b.max {
        let pos = get("initial")
            .or(get("max"))
            .map_or(section.pos, |f| f.pos());
        r.error(
            pos,
            format!(
                "backoff.initial ({}) is greater than backoff.max ({})",
                humantime::format_duration(b.initial),
                humantime::format_duration(b.max)
            ),
            None,
        );
    }
    Some(b)
}

fn read_start_limit(r: &mut Reader<'_>, field: Field<'_>) -> Option<StartLimit> {
    let section = r.section(field)?;
    r.check_keys(section, START_LIMIT_KEYS, "start_limit");
    let example = || Some("start_limit = { count = 5, window = \"60s\" }".to_owned());
    let count = section
        .field("count")
        .and_then(|f| r.integer_in(f, 1, MAX_START_LIMIT_COUNT))
        .map(|c| c as u32);
    if section.field("count").is_none() {
        r.error(section.pos, "start_limit needs count", example());
    }
    let window = section.field("window").and_then(|f| {
        let w = r.duration(f, MAX_WINDOW)?;
        if w.is_zero() {
            r.error(f.pos(), "start_limit.window must be longer than 0", None);
            return None;
        }
        Some(w)
    });
    if section.field("window").is_none() {
        r.error(section.pos, "start_limit needs window", example());
    }
    Some(StartLimit {
        count: count?,
        window: window?,
    })
}

fn read_signal(r: &mut Reader<'_>, field: Field<'_>) -> Option<Signal> {
    if cfg!(windows) {
        r.error(
            field.key_pos(),
            "stop_signal has no meaning on Windows; use stop_method",
            None,
        );
        return None;
    }
    let s = r.string(field)?;
    let signal = Signal::parse(&s);
    if signal.is_none() {
        let names: Vec<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
        let bare = s.trim().to_ascii_uppercase();
        let bare = bare.strip_prefix("SIG").unwrap_or(&bare);
        let hint = super::diag::did_you_mean(bare, &names)
            .map_or_else(String::new, |h| format!("{h} "))
            + &format!("valid signals: {}", names.join(", "));
        r.error(field.pos(), format!("unknown signal \"{s}\""), Some(hint));
    }
    signal
}

fn read_stop_method(r: &mut Reader<'_>, field: Field<'_>) -> Option<Vec<StopMethod>> {
    let words = r.strings(field, "an array of strings")?;
    if words.is_empty() {
        r.error(
            field.pos(),
            "stop_method is empty",
            Some("give at least one of \"ctrl-c\", \"wm-close\", \"terminate\"".into()),
        );
        return None;
    }
    let mut methods = Vec::with_capacity(words.len());
    for word in &words {
        match word.as_str() {
            "ctrl-c" => methods.push(StopMethod::CtrlC),
            "wm-close" => methods.push(StopMethod::WmClose),
            "terminate" => methods.push(StopMethod::Terminate),
            _ => {
                let hint = choice_hint(word, STOP_METHODS);
                r.error(
                    field.pos(),
                    format!("unknown stop method \"{word}\""),
                    Some(hint),
                );
            }
        }
    }
    (methods.len() == words.len()).then_some(methods)
}

fn read_log(
    r: &mut Reader<'_>,
    name: &str,
    field: Option<Field<'_>>,
    warden: &WardenSettings,
) -> LogConfig {
    let mut log = LogConfig::defaults(&warden.log_dir, name);
    let Some(section) = field.and_then(|f| r.section(f)) else {
        return log;
    };
    r.check_keys(section, LOG_KEYS, &format!("[services.{name}.log]"));
    let get = |key: &str| section.field(key);
    if let Some(path) = get("stdout").and_then(|f| r.path(f)) {
        log.stdout = path;
    }
    if let Some(f) = get("stderr") {
        match r.non_empty_string(f) {
            Some(s) if s == "stdout" => log.stderr = StderrTarget::Stdout,
            Some(s) if r.reject_nul(f.pos(), "stderr", &s) => {}
            Some(s) => log.stderr = StderrTarget::File(r.resolve(Path::new(&s))),
            None => {}
        }
    }
    if let Some(f) = get("max_size") {
        match r.size(f) {
            Some(size) if (MIN_LOG_SIZE..=MAX_LOG_SIZE).contains(&size) => log.max_size = size,
            Some(size) => r.error(
                f.pos(),
                format!(
                    "max_size must be between 1KiB and 1TiB ({MIN_LOG_SIZE} and {MAX_LOG_SIZE} bytes), found {size}"
                ),
                None,
            ),
            None => {}
        }
    }
    if let Some(keep) = get("keep").and_then(|f| r.integer_in(f, 1, MAX_KEEP)) {
        log.keep = keep as u32;
    }
    if let Some(b) = get("compress").and_then(|f| r.bool(f)) {
        log.compress = b;
    }
    if let Some(b) = get("timestamps").and_then(|f| r.bool(f)) {
        log.timestamps = b;
    }
    if let Some(f) = get("encoding") {
        log.encoding =
            r.non_empty_string(f)
                .filter(|name| match crate::logs::encoding::decoder_for(name) {
                    Ok(_) => true,
                    Err(msg) => {
                        r.error(f.pos(), format!("encoding: {msg}"), None);
                        false
                    }
                });
    }
    log
}
