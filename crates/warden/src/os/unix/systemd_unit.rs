//! The text of `warden-NAME.service`. Pure: tested on every OS, checked by
//! `systemd-analyze verify` in `tests/install_unix.rs`.

use std::fmt::Write as _;
use std::path::Path;

use std::time::Duration;

use super::spec::{GENERATED, NOFILE, UnitSpec};
use crate::cli::Scope;

/// systemd's watchdog: warden pings it every half of this.
const WATCHDOG: Duration = Duration::from_secs(30);

/// `%` and `$` are specifiers and variables in a unit file; everything else is literal.
fn literal(s: &str) -> String {
    s.replace('%', "%%").replace('$', "$$")
}

/// One word of an `ExecStart=` line: as is when it is plain, else double-quoted with C
/// escapes (systemd's own quoting).
fn exec_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'.' | b'_' | b'-' | b'+' | b'=' | b':' | b',' | b'@' | b'%' | b'$'
                )
        })
        && s != ";";
    if plain {
        return literal(s);
    }
    let mut out = String::from("\"");
    for c in literal(s).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn exec_line(exe: &Path, args: &[&str], config: &Path) -> String {
    let mut words = vec![exec_word(&exe.to_string_lossy())];
    words.extend(args.iter().map(|a| exec_word(a)));
    words.push("-c".into());
    words.push(exec_word(&config.to_string_lossy()));
    words.join(" ")
}

/// A path in a space-separated list (`ReadWritePaths=`): quoted when needed; `-` first so a
/// folder that does not exist yet is no error.
fn list_path(p: &Path) -> String {
    let w = exec_word(&p.to_string_lossy());
    match w.strip_prefix('"') {
        Some(rest) => format!("\"-{rest}"),
        None => format!("-{w}"),
    }
}

/// The unit file.
pub fn render(spec: &UnitSpec) -> String {
    let name = &spec.name;
    let mut u = String::new();
    let _ = writeln!(
        u,
        "{GENERATED} {name}`; `warden uninstall {name}` removes it.\n\
         # warden supervises the services of {}.",
        literal(&spec.config.to_string_lossy())
    );
    u.push_str("\n[Unit]\n");
    let _ = writeln!(u, "Description={}", literal(&spec.description));
    u.push_str("After=network.target\n");
    for dep in &spec.depends_on {
        let _ = writeln!(u, "Requires={dep}\nAfter={dep}");
    }

    u.push_str("\n[Service]\n");
    u.push_str("# warden says READY=1 once its autostart services started, STOPPING=1 on the\n");
    u.push_str("# way down, and pings the watchdog.\n");
    u.push_str("Type=notify\n");
    let _ = writeln!(
        u,
        "ExecStart={}",
        exec_line(&spec.exe, &["up"], &spec.config)
    );
    let _ = writeln!(
        u,
        "ExecReload={}",
        exec_line(&spec.exe, &["reload"], &spec.config)
    );
    u.push_str(
        "# SIGTERM to warden alone: it stops every service gracefully; then SIGKILL to all.\n",
    );
    u.push_str("KillMode=mixed\n");
    u.push_str(
        "# warden manages this unit's cgroup: it moves itself into <cgroup>/supervisor and\n\
         # gives each service a cgroup of its own beside it (cgroup v2).\n",
    );
    u.push_str("Delegate=yes\n");
    let _ = writeln!(u, "TimeoutStopSec={}", spec.stop_timeout_secs());
    u.push_str("Restart=on-failure\nRestartSec=1\n");
    u.push_str("# Exit 2 is a config error: a restart would not fix it.\n");
    u.push_str("RestartPreventExitStatus=2\n");
    let _ = writeln!(u, "WatchdogSec={}", WATCHDOG.as_secs());
    let _ = writeln!(u, "LimitNOFILE={NOFILE}");
    if let Some(user) = &spec.user {
        let _ = writeln!(u, "User={}", literal(user));
    }
    if spec.managed_dirs {
        let dir = format!("warden/{name}");
        if spec.scope == Scope::System {
            let _ = writeln!(u, "StateDirectory={dir}\nStateDirectoryMode=0700");
            let _ = writeln!(u, "LogsDirectory={dir}\nLogsDirectoryMode=0750");
        }
        let _ = writeln!(u, "RuntimeDirectory={dir}\nRuntimeDirectoryMode=0700");
    }
    if spec.harden {
        u.push_str("# --harden: for warden and every service it starts.\n");
        u.push_str("ProtectSystem=full\nProtectHome=read-only\nPrivateTmp=yes\n");
        u.push_str("NoNewPrivileges=yes\nRestrictSUIDSGID=yes\n");
        if !spec.writable.is_empty() {
            let paths: Vec<String> = spec.writable.iter().map(|p| list_path(p)).collect();
            let _ = writeln!(u, "ReadWritePaths={}", paths.join(" "));
        }
    }

    u.push_str("\n[Install]\n");
    let target = match spec.scope {
        Scope::System => "multi-user.target",
        Scope::User => "default.target",
    };
    let _ = writeln!(u, "WantedBy={target}");
    u
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn spec() -> UnitSpec {
        UnitSpec {
            name: "sync".into(),
            scope: Scope::System,
            description: "sync (supervised by warden)".into(),
            exe: PathBuf::from("/usr/local/bin/warden"),
            config: PathBuf::from("/etc/warden/sync/warden.toml"),
            user: None,
            depends_on: Vec::new(),
            autostart: true,
            harden: false,
            shutdown_timeout: Duration::from_secs(60),
            managed_dirs: true,
            writable: vec![PathBuf::from("/var/lib/warden/sync")],
            log_file: PathBuf::from("/var/lib/warden/sync/warden.log"),
        }
    }

    fn lines(u: &str) -> Vec<&str> {
        u.lines().collect()
    }

    #[test]
    fn the_quick_form_unit_has_every_line_the_issue_asks_for() {
        let u = render(&spec());
        let l = lines(&u);
        for want in [
            "Type=notify",
            "ExecStart=/usr/local/bin/warden up -c /etc/warden/sync/warden.toml",
            "ExecReload=/usr/local/bin/warden reload -c /etc/warden/sync/warden.toml",
            "KillMode=mixed",
            "Delegate=yes",
            "TimeoutStopSec=75",
            "Restart=on-failure",
            "WatchdogSec=30",
            "LimitNOFILE=65536",
            "StateDirectory=warden/sync",
            "LogsDirectory=warden/sync",
            "RuntimeDirectory=warden/sync",
            "WantedBy=multi-user.target",
        ] {
            assert!(l.contains(&want), "{want:?} missing:\n{u}");
        }
        assert!(u.starts_with(GENERATED), "{u}");
        assert!(!u.contains("User=") && !u.contains("ProtectSystem"), "{u}");
    }

    #[test]
    fn harden_user_and_dependencies() {
        let mut s = spec();
        s.harden = true;
        s.user = Some("app".into());
        s.depends_on = vec!["postgresql.service".into()];
        s.writable = vec![PathBuf::from("/srv/my app/logs")];
        let u = render(&s);
        let l = lines(&u);
        for want in [
            "User=app",
            "Requires=postgresql.service",
            "After=postgresql.service",
            "ProtectSystem=full",
            "ProtectHome=read-only",
            "PrivateTmp=yes",
            "NoNewPrivileges=yes",
            "RestrictSUIDSGID=yes",
            "ReadWritePaths=\"-/srv/my app/logs\"",
        ] {
            assert!(l.contains(&want), "{want:?} missing:\n{u}");
        }
    }

    #[test]
    fn user_scope_wants_default_target_and_has_no_system_dirs() {
        let mut s = spec();
        s.scope = Scope::User;
        let u = render(&s);
        assert!(u.contains("WantedBy=default.target"), "{u}");
        assert!(!u.contains("StateDirectory"), "{u}");
        assert!(u.contains("RuntimeDirectory=warden/sync"), "{u}");
    }

    #[test]
    fn odd_paths_are_quoted_and_specifiers_escaped() {
        assert_eq!(exec_word("/a b/w"), "\"/a b/w\"");
        assert_eq!(exec_word("/x/100%"), "/x/100%%");
        assert_eq!(exec_word("/x/$HOME"), "/x/$$HOME");
        assert_eq!(exec_word("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(exec_word(""), "\"\"");
        assert_eq!(exec_word(";"), "\";\"");
        let mut s = spec();
        s.config = PathBuf::from("/srv/my apps/warden.toml");
        s.description = "100% sync".into();
        let u = render(&s);
        assert!(
            u.contains("ExecStart=/usr/local/bin/warden up -c \"/srv/my apps/warden.toml\""),
            "{u}"
        );
        assert!(u.contains("Description=100%% sync"), "{u}");
    }

    #[test]
    fn stop_timeout_rounds_up_above_shutdown_timeout() {
        let mut s = spec();
        s.shutdown_timeout = Duration::from_millis(2500);
        assert_eq!(s.stop_timeout_secs(), 18);
    }
}
