//! `warden set -n NAME KEY VALUE` and `warden edit -n NAME`: change an installed instance's
//! config without editing it by hand (NSSM's `nssm set` and `nssm edit`).
//!
//! Both work on the file the installed instance runs (`-n NAME` finds it as every command
//! does: the generated config of the quick form, or the `-c` file itself), on every OS:
//! 1. the new text is made: [`set_key`] edits one key in place (comments and layout kept),
//!    or the editor edits a copy;
//! 2. it is checked as `warden check` would; with an error nothing is written (exit 2);
//! 3. it replaces the file atomically (a partial file, then a rename; mode and owner kept);
//! 4. the running instance reloads it; one that is not running gets it at its next start.
//!
//! Values are never printed: a key under `env` holds secrets.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use toml_edit::{DocumentMut, Item, Key, Table, Value};
use warden_core::config::{self, ProcessEnv};

use crate::Failure;
use crate::cli::Target;

/// `warden set -n NAME KEY VALUE`.
pub fn set(instance: &str, key: &str, value: &str) -> Result<(), Failure> {
    let path = crate::os::instance_config(instance)?;
    let old = read(&path)?;
    let (new, shown) = set_key(&old, instance, key, value)?;
    if new == old {
        return super::say(&format!(
            "{shown} already has that value in {}; nothing changed\n",
            path.display()
        ));
    }
    check(&path, &new)?;
    replace(&path, &new)?;
    super::say(&format!("set {shown} in {}\n", path.display()))?;
    reload_running(instance)
}

/// `warden edit -n NAME`.
pub fn edit(instance: &str) -> Result<(), Failure> {
    let path = crate::os::instance_config(instance)?;
    let old = read(&path)?;
    let copy = sibling(&path, ".edit");
    write_private(&copy, &old, &path)?;
    let (program, args) = editor();
    let status = Command::new(&program).args(&args).arg(&copy).status();
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&copy);
            return Err(Failure::failed(format!(
                "cannot run the editor {} ({}): {e}; set EDITOR",
                program,
                editor_source()
            )));
        }
    };
    if !status.success() {
        let _ = std::fs::remove_file(&copy);
        return Err(Failure::failed(format!(
            "the editor {program} exited with {status}; {} was not changed",
            path.display()
        )));
    }
    let new = read(&copy)?;
    if new == old {
        let _ = std::fs::remove_file(&copy);
        return super::say(&format!("{}: no change\n", path.display()));
    }
    if let Err(mut f) = check(&path, &new) {
        let _ = write!(
            f.message,
            "\nyour edit is kept in {}; `warden edit -n {instance}` starts again from the config",
            copy.display()
        );
        return Err(f);
    }
    replace(&path, &new)?;
    let _ = std::fs::remove_file(&copy);
    super::say(&format!("saved {}\n", path.display()))?;
    reload_running(instance)
}

/// The editor: `$VISUAL`, then `$EDITOR` (split on spaces, no shell: `code --wait` works),
/// else `notepad` on Windows and `vi` elsewhere.
fn editor() -> (String, Vec<String>) {
    let from_env = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty());
    let line = from_env.unwrap_or_else(|| {
        if cfg!(windows) {
            "notepad".to_owned()
        } else {
            "vi".to_owned()
        }
    });
    let mut words = line.split_whitespace().map(str::to_owned);
    let program = words.next().unwrap_or_default();
    (program, words.collect())
}

fn editor_source() -> &'static str {
    if std::env::var("VISUAL").is_ok_and(|v| !v.trim().is_empty()) {
        "from $VISUAL"
    } else if std::env::var("EDITOR").is_ok_and(|v| !v.trim().is_empty()) {
        "from $EDITOR"
    } else {
        "the default"
    }
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::failed(format!("cannot read {}: {e}", path.display())))
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Check `text` as the config at `path` (its relative paths mean what they mean there).
fn check(path: &Path, text: &str) -> Result<(), Failure> {
    match config::load_str(text, path, &ProcessEnv) {
        Ok(c) => {
            super::warn_all(&c);
            Ok(())
        }
        Err(e) => Err(super::errors_failure(
            &e,
            &format!("; {} was not changed", path.display()),
        )),
    }
}

/// Write `text` to `file` with the mode (and, on Unix, the owner) of `like`.
fn write_private(file: &Path, text: &str, like: &Path) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::failed(format!("cannot write {}: {e}", file.display()));
    std::fs::write(file, text).map_err(fail)?;
    if let Ok(meta) = std::fs::metadata(like) {
        std::fs::set_permissions(file, meta.permissions()).map_err(fail)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            // Only root may give a file away; as the owner this is a no-op.
            let _ = std::os::unix::fs::chown(file, Some(meta.uid()), Some(meta.gid()));
        }
        // Who may read it (a config with `--env` secrets has a DACL of its own).
        #[cfg(windows)]
        crate::os::windows::copy_access(like, file).map_err(fail)?;
    }
    Ok(())
}

/// Replace `path` with `text` atomically: a partial file beside it, then a rename.
fn replace(path: &Path, text: &str) -> Result<(), Failure> {
    let partial = sibling(path, ".partial");
    let done = write_private(&partial, text, path).and_then(|()| {
        std::fs::rename(&partial, path)
            .map_err(|e| Failure::failed(format!("cannot replace {}: {e}", path.display())))
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    done
}

/// Reload the running instance; one that is not running reads the file when it starts.
fn reload_running(instance: &str) -> Result<(), Failure> {
    let target = Target {
        instance: Some(instance.to_owned()),
        ..Target::default()
    };
    match super::ctl::reload(&target) {
        Err(f) if f.code == crate::exit::NOT_RUNNING => super::say(&format!(
            "{instance} is not running; the change applies when it starts (`warden start -n {instance}`)\n"
        )),
        other => other,
    }
}

/// The text of `config` with `key` set to `value`, and the key as shown in messages
/// (`services.web.restart`). `instance` is the service a short key (`restart`) belongs to.
///
/// - `key` is a TOML dotted key (quote a part with dots in it: `services."a.b".restart`);
///   `services.a.b.restart` also finds a service named `a.b`.
/// - A key that starts with neither `services` nor `warden` is one of the service named
///   like the instance (the quick form's only service).
/// - The service must exist: `set` changes services, it does not create them.
/// - `value` is a TOML value when it parses as one (`5`, `true`, `["a", "b"]`, `"x"`,
///   `{ initial = "1s" }`), otherwise a string; under `env` it is always a string.
pub fn set_key(
    config: &str,
    instance: &str,
    key: &str,
    value: &str,
) -> Result<(String, String), Failure> {
    let bad = |why: String| Failure::usage(format!("key \"{}\": {why}", key.escape_debug()));
    let mut parts: Vec<String> = Key::parse(key)
        .map_err(|_| bad("expected a dotted key such as services.NAME.restart".into()))?
        .iter()
        .map(|k| k.get().to_owned())
        .collect();
    if !matches!(
        parts.first().map(String::as_str),
        Some("services" | "warden")
    ) {
        parts.splice(0..0, ["services".to_owned(), instance.to_owned()]);
    }
    let mut doc: DocumentMut = config
        .parse()
        .map_err(|e| Failure::usage(format!("the config is not valid TOML: {e}")))?;
    if parts[0] == "services" {
        join_service_name(&doc, &mut parts);
        if parts.len() < 3 {
            return Err(bad(
                "name one key of a service: services.NAME.KEY (a whole service is `warden edit`'s)"
                    .into(),
            ));
        }
        let known: Vec<String> = doc
            .get("services")
            .and_then(Item::as_table_like)
            .map(|t| t.iter().map(|(k, _)| k.to_owned()).collect())
            .unwrap_or_default();
        if !known.contains(&parts[1]) {
            return Err(Failure::usage(format!(
                "no service \"{}\" in the config (services: {}); `set` changes a service, `warden edit` adds one",
                parts[1],
                known.join(", ")
            )));
        }
    } else if parts.len() < 2 {
        return Err(bad("name one key: warden.KEY".into()));
    }
    let is_env = parts.len() >= 4 && parts[0] == "services" && parts[2] == "env";
    let mut new: Value = if is_env {
        Value::from(value)
    } else {
        value
            .parse::<Value>()
            .unwrap_or_else(|_| Value::from(value))
    };
    let shown = parts
        .iter()
        .map(|p| shown_part(p))
        .collect::<Vec<_>>()
        .join(".");
    let (last, path) = parts.split_last().expect("at least two parts");
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    for p in path {
        if table.get(p).is_none() {
            table.insert(p, Item::Table(Table::new()));
        }
        table = table
            .get_mut(p)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| bad(format!("\"{p}\" is a value, not a table")))?;
    }
    if let Some(old) = table.get(last) {
        if old.is_table_like() && !old.is_inline_table() {
            return Err(bad(
                "that is a table; set one of its keys, or use `warden edit`".into(),
            ));
        }
        if let Some(v) = old.as_value() {
            *new.decor_mut() = v.decor().clone();
        }
    }
    table.insert(last, Item::Value(new));
    Ok((doc.to_string(), shown))
}

/// `services.a.b.restart` for a service named `a.b`: the longest run of parts after
/// `services` that names an existing service becomes one part.
fn join_service_name(doc: &DocumentMut, parts: &mut Vec<String>) {
    let Some(services) = doc.get("services").and_then(Item::as_table_like) else {
        return;
    };
    if services.contains_key(&parts[1]) {
        return;
    }
    for end in (3..parts.len()).rev() {
        let name = parts[1..end].join(".");
        if services.contains_key(&name) {
            parts.splice(1..end, [name]);
            return;
        }
    }
}

/// A part of a key as TOML writes it: bare if it can be, quoted otherwise.
fn shown_part(p: &str) -> String {
    if !p.is_empty()
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        p.to_owned()
    } else {
        crate::os::quick::toml_str(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: &str = "# Written by `warden install sync`\n\
        [warden]\n\
        log_dir = \"/var/log/warden/sync\"   # logs\n\
        \n\
        [services.sync]\n\
        command = [\"/bin/sync\"]\n\
        restart = \"always\"  # keep this comment\n";

    fn set(key: &str, value: &str) -> Result<(String, String), Failure> {
        set_key(QUICK, "sync", key, value)
    }

    #[test]
    fn a_short_key_is_one_of_the_instances_service_and_keeps_its_comment() {
        let (text, shown) = set("restart", "never").expect("set");
        assert_eq!(shown, "services.sync.restart");
        assert!(
            text.contains("restart = \"never\"  # keep this comment"),
            "{text}"
        );
        assert!(text.starts_with("# Written by"), "{text}");
        let (same, _) = set("services.sync.restart", "never").expect("set");
        assert_eq!(same, text);
    }

    #[test]
    fn values_are_toml_when_they_parse_and_strings_otherwise() {
        let (text, _) = set("warden.shutdown_timeout", "\"20s\"").expect("set");
        assert!(text.contains("shutdown_timeout = \"20s\""), "{text}");
        let (text, _) = set("stop_timeout", "20s").expect("set");
        assert!(text.contains("stop_timeout = \"20s\""), "{text}");
        let (text, _) = set("command", r#"["/bin/x", "-v"]"#).expect("set");
        assert!(text.contains(r#"command = ["/bin/x", "-v"]"#), "{text}");
        let (text, _) = set("max_restarts", "5").expect("set");
        assert!(text.contains("max_restarts = 5"), "{text}");
    }

    #[test]
    fn env_values_are_always_strings_and_their_table_is_created() {
        let (text, shown) = set("env.PIN", "1234").expect("set");
        assert_eq!(shown, "services.sync.env.PIN");
        let doc: DocumentMut = text.parse().expect("toml");
        assert_eq!(doc["services"]["sync"]["env"]["PIN"].as_str(), Some("1234"));
        // An inline env table is edited in place.
        let inline = format!("{QUICK}env = {{ A = \"1\" }}\n");
        let (text, _) = set_key(&inline, "sync", "env.B", "2").expect("set");
        let doc: DocumentMut = text.parse().expect("toml");
        let env = &doc["services"]["sync"]["env"];
        assert!(env.is_inline_table(), "{text}");
        assert_eq!(
            (env["A"].as_str(), env["B"].as_str()),
            (Some("1"), Some("2"))
        );
    }

    #[test]
    fn a_service_with_dots_in_its_name_is_found_quoted_or_not() {
        let text = "[services.\"my.app\"]\ncommand = \"x\"\n";
        for key in ["services.my.app.restart", "services.\"my.app\".restart"] {
            let (out, shown) = set_key(text, "other", key, "never").expect(key);
            assert_eq!(shown, "services.\"my.app\".restart");
            let doc: DocumentMut = out.parse().expect("toml");
            assert_eq!(doc["services"]["my.app"]["restart"].as_str(), Some("never"));
        }
    }

    #[test]
    fn unknown_services_tables_and_bad_keys_are_usage_errors() {
        for (key, want) in [
            ("services.nope.restart", "no service \"nope\""),
            ("services.sync", "name one key of a service"),
            ("warden", "name one key: warden.KEY"),
            ("a..b", "expected a dotted key"),
            ("services.sync.command.x", "is a value, not a table"),
        ] {
            let f = set(key, "1").expect_err(key);
            assert_eq!(f.code, crate::exit::USAGE, "{key}");
            assert!(f.message.contains(want), "{key}: {}", f.message);
        }
        let table = format!("{QUICK}[services.sync.env]\nA = \"1\"\n");
        let f = set_key(&table, "sync", "env", "x").expect_err("table");
        assert!(f.message.contains("that is a table"), "{}", f.message);
    }
}
