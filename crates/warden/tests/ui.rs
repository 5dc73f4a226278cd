//! `warden ui` end to end, as a person sees it: the real binary in a tmux pane of a fixed
//! size, driven with `send-keys` and read with `capture-pane`. Each test has its own tmux
//! server (`-S`), its own directory and its own warden; every wait polls with a deadline.
//!
//! tmux is required: `.ci/run` installs it; without it these tests fail and say so.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Env, WAIT, tc, wait_for, warden_bin};

/// A tmux server of its own (its socket in the test's directory) with one pane running `sh`.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(dir: &Path, width: u16, height: u16) -> Tmux {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.as_ref().is_ok_and(|o| o.status.success()),
            "tmux is needed for the warden ui end-to-end tests and was not found \
             (install it: apt-get install -y tmux; .ci/run does): {found:?}"
        );
        // A socket in the test's own directory: removed with it.
        let socket = dir.join("tmux.sock").display().to_string();
        let t = Tmux { socket };
        let o = t.tmux(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            &dir.display().to_string(),
            "env PS1='$ ' sh",
        ]);
        assert!(o.status.success(), "tmux new-session: {}", common::show(&o));
        t
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-S", &self.socket, "-f", "/dev/null"])
            .args(args)
            .env_remove("TMUX")
            .output()
            .unwrap()
    }

    /// Type keys (tmux key names: `Enter`, `Tab`, `Escape`, `PPage`, or literal text).
    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        let o = self.tmux(&args);
        assert!(
            o.status.success(),
            "send-keys {keys:?}: {}",
            common::show(&o)
        );
    }

    /// Type literal text.
    fn type_text(&self, text: &str) {
        let o = self.tmux(&["send-keys", "-t", "t", "-l", text]);
        assert!(o.status.success(), "send-keys -l {text:?}");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    fn alternate_on(&self) -> bool {
        let o = self.tmux(&["display-message", "-p", "-t", "t", "#{alternate_on}"]);
        String::from_utf8_lossy(&o.stdout).trim() == "1"
    }

    /// Wait until the screen satisfies `f`; return it. On a timeout, show the screen.
    fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(what, WAIT, || {
                let s = self.screen();
                let ok = f(&s);
                last.clone_from(&s);
                ok.then_some(s)
            })
        }));
        match found {
            Ok(s) => s,
            Err(e) => panic!("{e:?}: timed out waiting for {what}; the screen:\n{last}"),
        }
    }

    fn pane_pid(&self) -> i32 {
        let o = self.tmux(&["display-message", "-p", "-t", "t", "#{pane_pid}"]);
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn config() -> String {
    let tc = tc();
    format!(
        r#"
[services.alpha]
command = [{tc}, "--lines", "40", "--sleep", "forever"]

[services.beta]
command = [{tc}, "--stderr", "--lines", "2", "--sleep", "forever"]

[services.gamma]
command = [{tc}, "--sleep", "forever"]
"#
    )
}

/// The pid and state of a service, from `warden status --json`.
fn status_of(env: &Env, name: &str) -> (Option<u64>, String) {
    let o = env.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let s = v["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or_default();
    (
        s["pid"].as_u64(),
        s["state"].as_str().unwrap_or("").to_owned(),
    )
}

fn wait_running(env: &Env, names: &[&str]) {
    wait_for("every service running", WAIT, || {
        names
            .iter()
            .all(|n| status_of(env, n).1 == "running")
            .then_some(())
    });
}

fn start_ui(t: &Tmux, env: &Env) {
    t.type_text(&format!(
        "{} ui -c {}; echo UI-EXIT=$?",
        warden_bin().display(),
        env.config().display()
    ));
    t.send(&["Enter"]);
}

/// A row of the table: the line that starts with the name after the border.
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        l.trim_start_matches(['┃', '│', ' '])
            .starts_with(&format!("{name} "))
    })
}

#[test]
fn a_person_selects_restarts_stops_and_searches_and_the_terminal_is_restored() {
    let env = Env::new(&config());
    let _warden = env.up(&[]);
    wait_running(&env, &["alpha", "beta", "gamma"]);
    let t = Tmux::new(env.dir.path(), 100, 30);
    t.wait("the shell", |s| s.contains('$'));
    start_ui(&t, &env);

    // The table, the header and alpha's logs, following.
    let s = t.wait("the dashboard", |s| {
        s.contains(" live ")
            && ["alpha", "beta", "gamma"]
                .iter()
                .all(|n| row(s, n).is_some_and(|r| r.contains("running")))
            && s.contains("line 000000040")
    });
    assert!(t.alternate_on(), "the UI runs in the alternate screen");
    assert!(s.contains("logs: alpha · following"), "{s}");
    for col in [
        "NAME",
        "STATE",
        "PID",
        "UPTIME",
        "RESTARTS",
        "LAST EXIT",
        "HEALTH",
    ] {
        assert!(s.contains(col), "{col} missing:\n{s}");
    }

    // Select beta: its logs, stderr marked.
    t.send(&["j"]);
    t.wait("beta's logs", |s| {
        s.contains("logs: beta") && s.contains("! line 000000002")
    });

    // Restart it: a new pid, and the result in the status line.
    let (before, _) = status_of(&env, "beta");
    t.send(&["r"]);
    t.wait("the restart's result", |s| s.contains("beta: restarted"));
    wait_for("beta's new pid", WAIT, || {
        let (pid, state) = status_of(&env, "beta");
        (state == "running" && pid.is_some() && pid != before).then_some(())
    });

    // Stop asks first; n cancels, y stops.
    t.send(&["x"]);
    t.wait("the confirmation", |s| s.contains("Stop beta?"));
    t.send(&["n"]);
    t.wait("the cancel", |s| s.contains("beta: not stopped"));
    assert_eq!(status_of(&env, "beta").1, "running");
    t.send(&["x"]);
    t.wait("the confirmation", |s| s.contains("Stop beta?"));
    t.send(&["y"]);
    let s = t.wait("beta stopped", |s| {
        s.contains("beta: stopped") && row(s, "beta").is_some_and(|r| r.contains("stopped"))
    });
    assert!(
        row(&s, "beta").is_some_and(|r| r.contains("stopped by hand")),
        "{s}"
    );
    assert_eq!(status_of(&env, "beta").1, "stopped");

    // The filter narrows the table; Esc clears it.
    t.send(&["/"]);
    t.type_text("gam");
    t.send(&["Enter"]);
    let s = t.wait("the filter", |s| {
        s.contains("services 1/3") && s.contains("filter: gam")
    });
    assert!(
        row(&s, "alpha").is_none() && row(&s, "gamma").is_some(),
        "{s}"
    );
    t.send(&["Escape"]);
    t.wait("the filter cleared", |s| s.contains("services 3/3"));

    // Search alpha's logs: the view jumps to the match and pauses; End follows again.
    t.send(&["Home"]);
    t.wait("alpha selected", |s| {
        s.contains("logs: alpha") && s.contains("line 000000040")
    });
    t.send(&["Tab"]);
    t.send(&["/"]);
    t.type_text("000000005");
    t.send(&["Enter"]);
    let s = t.wait("the match", |s| {
        s.contains("search: 000000005") && s.contains("line 000000005") && s.contains("PAUSED")
    });
    assert!(!s.contains("line 000000040"), "{s}");
    t.send(&["End"]);
    t.wait("following again", |s| {
        s.contains("line 000000040") && s.contains("following")
    });

    // Help and details open and close.
    t.send(&["?"]);
    t.wait("the help", |s| s.contains("q / Ctrl-C"));
    // (Each key after Escape waits for its effect: Escape and a key sent at once read as
    // Alt+key, as from any terminal.)
    t.send(&["Escape"]);
    t.wait("the help closed", |s| !s.contains("q / Ctrl-C"));
    t.send(&["Enter"]);
    let s = t.wait("the details", |s| {
        s.contains("stdout log") && s.contains("--lines")
    });
    assert!(s.contains("alpha.out.log"), "{s}");
    t.send(&["Escape"]);
    t.wait("the details closed", |s| !s.contains("stdout log"));

    // q quits and the terminal is the shell's again.
    t.send(&["q"]);
    let s = t.wait("the UI to exit", |s| s.contains("UI-EXIT=0"));
    assert!(!t.alternate_on(), "the alternate screen was left");
    assert!(!s.contains("services 3/3"), "the dashboard is gone:\n{s}");
    t.type_text("stty -a | grep -o ' icanon' && echo TTY-OK");
    t.send(&["Enter"]);
    t.wait("a cooked terminal", |s| s.contains("TTY-OK"));
}

#[test]
fn the_ui_survives_warden_going_away_and_coming_back() {
    let env = Env::new(&config());
    let warden = env.up(&[]);
    wait_running(&env, &["alpha", "beta", "gamma"]);
    let t = Tmux::new(env.dir.path(), 80, 24);
    t.wait("the shell", |s| s.contains('$'));
    start_ui(&t, &env);
    t.wait("the dashboard", |s| {
        s.contains(" live ") && s.contains("line 000000040")
    });

    let o = env.run(&["down"]);
    assert!(o.status.success(), "{}", common::show(&o));
    drop(warden);
    t.wait("the UI to say warden is gone", |s| {
        s.contains("DOWN: warden is not running")
    });
    // The rows it still shows are its last answer, and the table says so.
    t.wait("the table to say its rows are stale", |s| {
        s.contains("warden is not answering: as last seen") && row(s, "alpha").is_some()
    });

    let _warden = env.up(&[]);
    t.wait("the UI to reconnect", |s| {
        s.contains(" live ") && s.contains("line 000000040") && !s.contains("DOWN")
    });
    t.send(&["q"]);
    t.wait("the UI to exit", |s| s.contains("UI-EXIT=0"));
    assert!(!t.alternate_on());
}

#[test]
fn sigterm_restores_the_terminal() {
    let env = Env::new(&config());
    let _warden = env.up(&[]);
    wait_running(&env, &["alpha"]);
    let t = Tmux::new(env.dir.path(), 80, 24);
    t.wait("the shell", |s| s.contains('$'));
    start_ui(&t, &env);
    t.wait("the dashboard", |s| s.contains(" live "));
    // The UI is the shell's child.
    let sh = t.pane_pid();
    let ui: i32 = wait_for("the ui's pid", WAIT, || {
        let children = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    });
    unsafe {
        libc::kill(ui, libc::SIGTERM);
    }
    t.wait("the UI to exit", |s| s.contains("UI-EXIT=0"));
    assert!(!t.alternate_on());
    t.type_text("stty -a | grep -o ' icanon' && echo TTY-OK");
    t.send(&["Enter"]);
    t.wait("a cooked terminal", |s| s.contains("TTY-OK"));
}

#[test]
fn a_flooding_service_does_not_freeze_the_ui() {
    let env = Env::new(&format!(
        r#"
[services.flood]
command = ["yes", "flood flood flood flood flood flood flood flood flood flood"]
[services.flood.log]
max_size = "1MiB"
keep = 1

[services.calm]
command = [{tc}, "--lines", "1", "--sleep", "forever"]
"#,
        tc = tc()
    ));
    let _warden = env.up(&[]);
    wait_running(&env, &["flood", "calm"]);
    let t = Tmux::new(env.dir.path(), 80, 24);
    t.wait("the shell", |s| s.contains('$'));
    start_ui(&t, &env);
    // (Not waited for: the flood's own lines. Right after a flood starts, warden's follow
    // stream can stay silent for seconds, with curl as with the UI; see the report.)
    t.wait("the dashboard", |s| {
        s.contains(" live ") && s.contains("logs: flood")
    });
    // Keys are still handled at once, while the flood goes on.
    t.send(&["?"]);
    t.wait("the help", |s| s.contains("q / Ctrl-C"));
    t.send(&["q"]);
    t.wait("the help closed", |s| !s.contains("q / Ctrl-C"));
    t.send(&["x"]);
    t.wait("the confirmation", |s| s.contains("Stop flood?"));
    t.send(&["y"]);
    t.wait("the flood stopped", |s| {
        s.contains("flood: stopped") && row(s, "flood").is_some_and(|r| r.contains("stopped"))
    });
    t.send(&["j"]);
    t.wait("calm's logs", |s| {
        s.contains("logs: calm") && s.contains("line 000000001")
    });
    // The flood's last lines, from warden's tail, once it stopped.
    t.send(&["k"]);
    t.wait("the flood's tail", |s| {
        s.contains("logs: flood") && s.contains("flood flood")
    });
    t.send(&["q"]);
    t.wait("the UI to exit", |s| s.contains("UI-EXIT=0"));
}

/// `warden logs` and `warden status` on a real terminal: coloured unless `--no-color` or
/// `NO_COLOR`; the status table's REASON cut to the terminal's width.
#[test]
fn logs_and_status_on_a_terminal_colour_unless_told_not_to_and_fit_its_width() {
    let tc = tc();
    let env = Env::new(&format!(
        r#"
[services.alpha]
command = [{tc}, "--lines", "2", "--sleep", "forever"]
[services.lazy]
command = [{tc}, "--sleep", "forever"]
autostart = false
"#
    ));
    let _warden = env.up(&[]);
    wait_running(&env, &["alpha"]);
    // 84 columns: the other columns take 72, which leaves REASON 12.
    let t = Tmux::new(env.dir.path(), 84, 20);
    t.wait("the shell", |s| s.contains('$'));
    let warden = warden_bin().display().to_string();
    let cfg = env.config().display().to_string();
    // Each command in turn, its screen with the escape sequences tmux shows.
    let run = |n: usize, cmd: &str| -> String {
        // The marker is computed by the shell, so that the typed line does not hold it.
        t.type_text(&format!("clear; {cmd}; echo DONE-$((1000+{n}))"));
        t.send(&["Enter"]);
        let done = format!("DONE-{}", 1000 + n);
        t.wait(&format!("command {n}"), |s| {
            s.lines().any(|l| l.trim_end() == done)
        });
        let o = t.tmux(&["capture-pane", "-p", "-e", "-t", "t"]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let prefixed = |screen: &str| -> Vec<String> {
        screen
            .lines()
            .filter(|l| l.contains("alpha |"))
            .map(str::to_owned)
            .collect()
    };
    let coloured = run(1, &format!("env -u NO_COLOR {warden} logs -c {cfg}"));
    let lines = prefixed(&coloured);
    assert!(!lines.is_empty(), "{coloured}");
    assert!(
        lines.iter().all(|l| l.contains('\x1b')),
        "coloured: {coloured:?}"
    );
    for (n, cmd) in [
        (
            2,
            format!("env -u NO_COLOR {warden} logs --no-color -c {cfg}"),
        ),
        (3, format!("NO_COLOR=1 {warden} logs -c {cfg}")),
    ] {
        let plain = run(n, &cmd);
        let lines = prefixed(&plain);
        assert!(!lines.is_empty(), "{plain}");
        assert!(
            lines.iter().all(|l| !l.contains('\x1b')),
            "{cmd}: {plain:?}"
        );
    }
    // REASON is cut at the pane's 84 columns; piped, it is whole.
    let screen = run(4, &format!("NO_COLOR=1 {warden} status -c {cfg}"));
    let lazy = screen
        .lines()
        .find(|l| l.starts_with("lazy "))
        .unwrap_or_else(|| panic!("no row of lazy: {screen}"));
    assert!(
        lazy.ends_with('…') && lazy.chars().count() <= 84,
        "{lazy:?}"
    );
    let piped = env.run(&["status"]);
    let whole = String::from_utf8_lossy(&piped.stdout);
    assert!(whole.contains("autostart = false"), "{whole}");
}
