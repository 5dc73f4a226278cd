//! Rendering tests: the whole screen, drawn on ratatui's `TestBackend`, compared as text.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use warden_core::logs::Stream;
use warden_core::proto::{LastExit, State};

use super::logbuf::Entry;
use super::model::tests::{ch, info, key, svc};
use super::model::{App, Detail};
use super::view;

/// The screen as text, one line per row, trailing spaces cut.
pub fn screen(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| {
        view::draw(f, app, app.polled_at);
    })
    .expect("draw");
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn exit(code: i32, ran_ms: u64) -> LastExit {
    LastExit {
        code: Some(code),
        signal: None,
        at: "2026-12-01T08:00:01.250Z".into(),
        ran_ms,
    }
}

/// web running, worker in backoff, db failed; a few lines of web's output.
fn example() -> App {
    let mut app = App::new("/srv/app/.warden/warden.sock".into(), false);
    let mut web = svc("web", State::Running);
    web.pid = Some(4312);
    web.uptime_ms = Some(7_380_000);
    let mut worker = svc("worker", State::Backoff);
    worker.restarts = 7;
    worker.last_exit = Some(exit(1, 200));
    worker.next_start_in_ms = Some(3_200);
    worker.reason = Some("exited with code 1".into());
    let mut db = svc("db", State::Failed);
    db.restarts = 5;
    db.last_exit = Some(exit(2, 40));
    db.reason = Some("start limit reached (5 starts in 1m00s)".into());
    app.set_status(info(), vec![web, worker, db]);
    for (i, (stream, line)) in [
        (Stream::Out, "Serving HTTP on 127.0.0.1 port 8000"),
        (Stream::Out, "GET / HTTP/1.1 200"),
        (Stream::Err, "warning: slow request (2.1s)"),
        (Stream::Out, "GET /health HTTP/1.1 200"),
    ]
    .into_iter()
    .enumerate()
    {
        app.push_line(Entry::new(
            "web",
            Some(stream),
            format!("2026-12-01T08:00:0{i}.000Z"),
            line,
        ));
    }
    app
}

/// A multi-line expectation without its first newline.
fn text(s: &str) -> &str {
    s.strip_prefix('\n').unwrap_or(s)
}

#[test]
fn a_failed_service_at_80x24() {
    let expected = r"
 warden live  pid 4310  up 2h03m  1 failed, 1 backoff, 1 running  …p/warden.toml
┏ services 3/3 · sort: config order ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃NAME   STATE    PID  UPTIME RESTARTS LAST EXIT      HEALTH MEM REASON         ┃
┃web    running  4312 2h03m  0        -              -      -                  ┃
┃worker backoff  -    -      7        code 1 (200ms) -      -   next start in… ┃
┃db     failed   -    -      5        code 2 (40ms)  -      -   start limit r… ┃
┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛
┌ logs: web · following ───────────────────────────────────────────────────────┐
│  Serving HTTP on 127.0.0.1 port 8000                                         │
│  GET / HTTP/1.1 200                                                          │
│! warning: slow request (2.1s)                                                │
│  GET /health HTTP/1.1 200                                                    │
│                                                                              │
│                                                                              │
│                                                                              │
│                                                                              │
│                                                                              │
│                                                                              │
│                                                                              │
│                                                                              │
│                                                                              │
│                                                                              │
└──────────────────────────────────────────────────────────────────────────────┘
 ? help  q quit  s start  x stop  r restart  R reload  / filter  Tab logs
";
    assert_eq!(screen(&example(), 80, 24), text(expected));
}

#[test]
fn a_long_name_is_cut_and_reason_gets_the_rest() {
    let mut app = example();
    let mut long = svc(
        "a-service-with-a-very-long-name-that-does-not-fit-anywhere",
        State::Running,
    );
    long.pid = Some(77);
    long.uptime_ms = Some(65_000);
    long.reason = Some("restarted by hand".into());
    let mut services = app.services.clone();
    services.insert(1, long);
    app.set_status(info(), services);
    let expected = r"
 warden live  pid 4310  up 2h03m  1 failed, 1 backoff, 2 running  /srv/app/warden.toml
┏ services 4/4 · sort: config order ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃NAME                             STATE    PID  UPTIME RESTARTS LAST EXIT      HEALTH REASON       ┃
┃web                              running  4312 2h03m  0        -              -                   ┃
┃a-service-with-a-very-long-name… running  77   1m05s  0        -              -      restarted b… ┃
┃worker                           backoff  -    -      7        code 1 (200ms) -      next start … ┃
┃db                               failed   -    -      5        code 2 (40ms)  -      start limit… ┃
┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛
┌ logs: web · following ───────────────────────────────────────────────────────────────────────────┐
│  Serving HTTP on 127.0.0.1 port 8000                                                             │
│  GET / HTTP/1.1 200                                                                              │
│! warning: slow request (2.1s)                                                                    │
│  GET /health HTTP/1.1 200                                                                        │
│                                                                                                  │
│                                                                                                  │
│                                                                                                  │
│                                                                                                  │
│                                                                                                  │
└──────────────────────────────────────────────────────────────────────────────────────────────────┘
 ? help  q quit  s start  x stop  r restart  R reload  / filter  Tab logs  Enter details
";
    assert_eq!(screen(&app, 100, 20), text(expected));
}

#[test]
fn a_narrow_terminal_drops_columns_by_priority() {
    // LAST EXIT is gone; NAME, STATE, PID, UPTIME and HEALTH stay.
    let expected = r"
 warden live  pid 4310  up 2h03m  1 failed, 1 backoff, 1 run
┏ services 3/3 · sort: config order ━━━━━━━━━━━━━━━━━━━━━━━┓
┃NAME   STATE    PID  UPTIME RESTARTS HEALTH REASON        ┃
┃web    running  4312 2h03m  0        -                    ┃
┃worker backoff  -    -      7        -      next start i… ┃
┃db     failed   -    -      5        -      start limit … ┃
┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛
┌ logs: web · following ───────────────────────────────────┐
│  Serving HTTP on 127.0.0.1 port 8000                     │
│  GET / HTTP/1.1 200                                      │
│! warning: slow request (2.1s)                            │
│  GET /health HTTP/1.1 200                                │
│                                                          │
└──────────────────────────────────────────────────────────┘
 ? help  q quit  s start  x stop  r restart  R reload
";
    assert_eq!(screen(&example(), 60, 15), text(expected));
}

#[test]
fn a_too_small_terminal_shows_a_message() {
    let expected = r"
The terminal is too small for warden ui
(40x10; it needs at least 60x15).
Make it larger, or press q to quit.







";
    assert_eq!(screen(&example(), 40, 10), text(expected));
    assert!(screen(&example(), 80, 14).starts_with("The terminal is too small"));
}

#[test]
fn the_help_fits_at_80x24_and_lists_every_key() {
    let mut app = example();
    app.on_key(ch('?'));
    let s = screen(&app, 80, 24);
    for (keys, what) in view::KEYS {
        let row = format!("{keys:<14}{what}");
        assert!(s.contains(&row), "{row:?} missing:\n{s}");
    }
    assert!(s.contains("Esc closes"), "{s}");
}

#[test]
fn the_detail_pop_up_shows_the_config_and_the_exits() {
    use warden_core::proto::config::{BackoffView, LogView, ServiceConfigView};
    let mut app = example();
    app.on_key(ch('j'));
    app.on_key(key(crossterm::event::KeyCode::Enter));
    let view = ServiceConfigView {
        name: "worker".into(),
        command: r#""python3 worker.py --token ${TOKEN}""#.into(),
        shell: false,
        cwd: "/srv/app".into(),
        env_names: vec!["TOKEN".into(), "WARDEN_SERVICE".into()],
        env_file: None,
        inherit_env: true,
        autostart: true,
        restart: "on-failure".into(),
        success_codes: vec![0],
        backoff: BackoffView {
            initial_ms: 100,
            max_ms: 30_000,
            factor: 2.0,
            jitter: 0.1,
            reset_after_ms: 30_000,
        },
        start_limit: None,
        stop_signal: "TERM".into(),
        stop_timeout_ms: 10_000,
        stop_command: false,
        log: LogView {
            stdout: "/srv/app/logs/worker.out.log".into(),
            stderr: "stdout".into(),
            max_size: 1 << 20,
            keep: 5,
            compress: false,
            timestamps: false,
        },
    };
    app.set_detail("worker", Detail::Config(Box::new(view)));
    let s = screen(&app, 80, 24);
    for needle in [
        "state       backoff, next start in 3.2s, 7 restart(s)",
        r#"command     "python3 worker.py --token ${TOKEN}""#,
        "restart     on-failure (success: 0)",
        "env         TOKEN (values not shown)",
        "stdout log  /srv/app/logs/worker.out.log",
        "stderr log  (into the stdout log)",
        "last exits  2026-12-01 08:00:01.250 UTC  code 1 after 200ms",
    ] {
        assert!(s.contains(needle), "{needle:?} missing:\n{s}");
    }
}

#[test]
fn wrap_all_services_and_timestamps() {
    let mut app = example();
    app.push_line(Entry::new(
        "web",
        Some(Stream::Out),
        "2026-12-01T08:00:09.000Z".into(),
        &format!("long {}", "x".repeat(100)),
    ));
    let xs = |s: &str| {
        s.lines()
            .filter(|l| l.contains("xxx"))
            .map(|l| l.matches('x').count())
            .sum::<usize>()
    };
    let plain = screen(&app, 80, 24);
    assert_eq!(xs(&plain), 78 - 7, "cut at the edge:\n{plain}");
    app.on_key(ch('w'));
    app.on_key(ch('t'));
    app.on_key(ch('a'));
    let s = screen(&app, 80, 24);
    assert_eq!(xs(&s), 100, "wrapped:\n{s}");
    assert!(s.contains("! 08:00:02.000 web    | warning"), "{s}");
    assert!(s.contains("logs: all services (3)"), "{s}");
}

#[test]
fn colour_only_without_no_color() {
    let cell_fg = |color: bool| {
        let mut app = example();
        app.color = color;
        let mut t = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        t.draw(|f| {
            view::draw(f, &app, app.polled_at);
        })
        .expect("draw");
        // "failed" in db's row (row 5), STATE column at x = 8.
        let c = &t.backend().buffer()[(8, 5)];
        (c.symbol().to_owned(), c.fg)
    };
    assert_eq!(cell_fg(true), ("f".to_owned(), ratatui::style::Color::Red));
    assert_eq!(
        cell_fg(false),
        ("f".to_owned(), ratatui::style::Color::Reset)
    );
}

#[test]
fn the_readme_lists_every_key_of_the_help() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    for (keys, what) in view::KEYS {
        let row = format!("| `{keys}` | {what} |");
        assert!(readme.contains(&row), "README.md lacks {row:?}");
    }
}

#[test]
fn a_pop_up_that_does_not_fit_scrolls() {
    let mut app = example();
    app.on_key(ch('?'));
    let mut t = Terminal::new(TestBackend::new(60, 15)).expect("terminal");
    let mut draw = |app: &mut App| {
        let mut sizes = None;
        t.draw(|f| sizes = Some(view::draw(f, app, app.polled_at)))
            .expect("draw");
        app.set_sizes(sizes.expect("sizes"));
        let buf = t.backend().buffer().clone();
        (0..15)
            .map(|y| (0..60).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let first = draw(&mut app);
    assert!(
        first.contains("Up/Down j/k") && !first.contains("q / Ctrl-C"),
        "{first}"
    );
    assert!(first.contains("Up/Down scroll (0/"), "{first}");
    app.on_key(key(crossterm::event::KeyCode::End));
    let last = draw(&mut app);
    assert!(
        last.contains("q / Ctrl-C") && !last.contains("Up/Down j/k"),
        "{last}"
    );
    app.on_key(ch('k'));
    app.on_key(key(crossterm::event::KeyCode::Home));
    assert_eq!(app.popup_scroll, 0);
    app.on_key(key(crossterm::event::KeyCode::Esc));
    assert!(app.popup.is_none());
}

#[test]
fn while_warden_is_down_the_rows_say_they_are_stale() {
    let mut app = example();
    app.set_down("warden is not running (nothing answers on /x.sock)".into());
    // Drawn 5 s after the last answer: no countdown runs on the frozen rows.
    let later = app.polled_at + std::time::Duration::from_secs(5);
    let mut t = Terminal::new(TestBackend::new(100, 24)).expect("terminal");
    t.draw(|f| {
        view::draw(f, &app, later);
    })
    .expect("draw");
    let buf = t.backend().buffer();
    let rows: Vec<String> = (0..24)
        .map(|y| (0..100).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect();
    assert!(
        rows[0].contains("DOWN: warden is not running"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains("warden is not answering: as last seen 5.0s ago"),
        "{}",
        rows[1]
    );
    assert!(
        rows[4].contains("next start in 3.2s"),
        "the countdown stopped: {}",
        rows[4]
    );
    // And once warden answers again, the title is the usual one.
    let mut live = example();
    live.set_down("gone".into());
    live.set_status(super::model::tests::info(), live.services.clone());
    assert!(
        screen(&live, 100, 24)
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("sort: config order"))
    );
}

/// HEALTH, CPU and MEM show what the status says (they were always "-"), as in
/// `warden status`.
#[test]
fn health_cpu_and_mem_come_from_the_status() {
    let mut app = example();
    let mut services = app.services.clone();
    services[0].health = Some(warden_core::proto::Health::Healthy);
    services[0].cpu_percent = Some(0.4);
    services[0].memory_bytes = Some(22_334_669);
    app.set_status(info(), services);
    let frame = screen(&app, 120, 24);
    let row = frame
        .lines()
        .find(|l| l.contains("web    running"))
        .expect("the row of web");
    for cell in ["healthy", "0.4%", "21.3MiB"] {
        assert!(row.contains(cell), "{cell} in {row:?}");
    }
}
