//! The launchd property list of `warden.NAME` (a launch daemon or agent). Pure:
//! compiled and tested on every OS; a test parses it back with Python's `plistlib`.

use std::fmt::Write as _;

use super::spec::{GENERATED, NOFILE, UnitSpec};

/// Text as XML character data.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // XML 1.0 cannot carry other control characters, even escaped.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text inside an XML comment, which must not hold `--`.
fn comment(s: &str) -> String {
    let mut out = xml(s).replace('\n', " ");
    while out.contains("--") {
        out = out.replace("--", "- -");
    }
    out
}

fn string(out: &mut String, indent: &str, s: &str) {
    let _ = writeln!(out, "{indent}<string>{}</string>", xml(s));
}

fn key(out: &mut String, indent: &str, k: &str) {
    let _ = writeln!(out, "{indent}<key>{k}</key>");
}

fn boolean(out: &mut String, indent: &str, k: &str, v: bool) {
    key(out, indent, k);
    let _ = writeln!(out, "{indent}<{v}/>");
}

/// The plist.
pub fn render(spec: &UnitSpec) -> String {
    let name = &spec.name;
    let mut p = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n",
    );
    let _ = writeln!(
        p,
        "<!-- {} -->",
        comment(&format!(
            "{GENERATED} {name}`; `warden uninstall {name}` removes it. {}",
            spec.description
        ))
    );
    p.push_str("<plist version=\"1.0\">\n<dict>\n");
    let i = "\t";
    key(&mut p, i, "Label");
    string(&mut p, i, &super::paths::label(name));
    key(&mut p, i, "ProgramArguments");
    let _ = writeln!(p, "{i}<array>");
    for arg in [
        spec.exe.to_string_lossy().as_ref(),
        "up",
        "-c",
        spec.config.to_string_lossy().as_ref(),
    ] {
        string(&mut p, "\t\t", arg);
    }
    let _ = writeln!(p, "{i}</array>");
    boolean(&mut p, i, "RunAtLoad", spec.autostart);
    // Restart warden when it fails, not after `warden down` (exit 0).
    key(&mut p, i, "KeepAlive");
    let _ = writeln!(p, "{i}<dict>");
    boolean(&mut p, "\t\t", "SuccessfulExit", false);
    let _ = writeln!(p, "{i}</dict>");
    key(&mut p, i, "ExitTimeOut");
    let _ = writeln!(p, "{i}<integer>{}</integer>", spec.stop_timeout_secs());
    if let Some(user) = &spec.user {
        key(&mut p, i, "UserName");
        string(&mut p, i, user);
    }
    for limits in ["SoftResourceLimits", "HardResourceLimits"] {
        key(&mut p, i, limits);
        let _ = writeln!(p, "{i}<dict>");
        key(&mut p, "\t\t", "NumberOfFiles");
        let _ = writeln!(p, "\t\t<integer>{NOFILE}</integer>");
        let _ = writeln!(p, "{i}</dict>");
    }
    for stream in ["StandardOutPath", "StandardErrorPath"] {
        key(&mut p, i, stream);
        string(&mut p, i, &spec.log_file.to_string_lossy());
    }
    p.push_str("</dict>\n</plist>\n");
    p
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use super::*;
    use crate::cli::Scope;

    fn spec() -> UnitSpec {
        UnitSpec {
            name: "sync".into(),
            scope: Scope::System,
            description: "sync -- <supervised> & \"more\"".into(),
            exe: PathBuf::from("/usr/local/bin/warden"),
            config: PathBuf::from("/etc/warden/sync/my <&> warden.toml"),
            user: Some("_sync".into()),
            depends_on: Vec::new(),
            autostart: true,
            harden: false,
            shutdown_timeout: Duration::from_secs(60),
            managed_dirs: true,
            writable: Vec::new(),
            log_file: PathBuf::from("/var/lib/warden/sync/warden.log"),
        }
    }

    /// The plist parsed by a real plist parser (Python's `plistlib`), as JSON.
    fn parse(plist: &str) -> serde_json::Value {
        let script = "import json, plistlib, sys\n\
                      print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 is needed to parse the plist (plistlib); install python3");
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(plist.as_bytes()).expect("write plist");
        }
        let out = child.wait_with_output().expect("python3");
        assert!(
            out.status.success(),
            "plistlib rejected the plist: {}\n{plist}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    #[test]
    fn the_plist_parses_back_with_every_key() {
        let text = render(&spec());
        let v = parse(&text);
        assert_eq!(v["Label"], "warden.sync");
        assert_eq!(
            v["ProgramArguments"],
            serde_json::json!([
                "/usr/local/bin/warden",
                "up",
                "-c",
                "/etc/warden/sync/my <&> warden.toml"
            ])
        );
        assert_eq!(v["RunAtLoad"], true);
        assert_eq!(
            v["KeepAlive"],
            serde_json::json!({ "SuccessfulExit": false })
        );
        assert_eq!(v["ExitTimeOut"], 75);
        assert_eq!(v["UserName"], "_sync");
        assert_eq!(v["SoftResourceLimits"]["NumberOfFiles"], 65536);
        assert_eq!(v["HardResourceLimits"]["NumberOfFiles"], 65536);
        assert_eq!(v["StandardErrorPath"], "/var/lib/warden/sync/warden.log");
        assert!(text.contains(GENERATED), "{text}");
    }

    #[test]
    fn manual_start_does_not_run_at_load_and_no_user_means_no_user_name() {
        let mut s = spec();
        s.autostart = false;
        s.user = None;
        s.description = "odd\u{1}text\n--".into();
        let v = parse(&render(&s));
        assert_eq!(v["RunAtLoad"], false);
        assert!(v.get("UserName").is_none(), "{v}");
    }
}
