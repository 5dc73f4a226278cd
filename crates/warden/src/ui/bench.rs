//! The frame-time measurement behind `bench/ui-frame.sh` (ignored by `cargo test`; it asserts
//! nothing about time): 1,000 services and a full log buffer drawn on a 200x60 `TestBackend`,
//! plus the cost of applying one status answer of 1,000 services.

use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use warden_core::logs::Stream;
use warden_core::proto::{LastExit, State};

use super::logbuf::{CAPACITY, Entry};
use super::model::App;
use super::model::tests::{info, svc};
use super::view;

const STATES: [State; 5] = [
    State::Running,
    State::Backoff,
    State::Failed,
    State::Stopped,
    State::Running,
];

fn services(n: usize) -> Vec<warden_core::proto::ServiceStatus> {
    (0..n)
        .map(|i| {
            let mut s = svc(&format!("service-{i:04}"), STATES[i % STATES.len()]);
            s.pid = Some(10_000 + i as u32);
            s.uptime_ms = Some(1_000 * i as u64);
            s.restarts = (i % 7) as u32;
            s.last_exit = Some(LastExit {
                code: Some(1),
                signal: None,
                at: "2026-12-01T08:00:00.000Z".into(),
                ran_ms: 200,
            });
            s.next_start_in_ms = Some(3_000);
            s.reason = Some("exited with code 1".into());
            s
        })
        .collect()
}

fn stats(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "{name}: {} runs, median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    );
}

fn frames(app: &mut App, w: u16, h: u16, runs: usize) -> Vec<Duration> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        // Move the selection so every frame differs, as while a person scrolls.
        app.on_key(super::model::tests::key(if i % 50 < 25 {
            crossterm::event::KeyCode::Down
        } else {
            crossterm::event::KeyCode::Up
        }));
        let start = Instant::now();
        t.draw(|f| {
            let sizes = view::draw(f, app, app.polled_at);
            std::hint::black_box(sizes);
        })
        .expect("draw");
        times.push(start.elapsed());
    }
    times
}

#[test]
#[ignore = "a measurement: run bench/ui-frame.sh"]
fn frame_time_with_1000_services() {
    let mut app = App::new("bench".into(), true);
    app.set_status(info(), services(1_000));
    for i in 0..CAPACITY {
        app.push_line(Entry::new(
            &format!("service-{:04}", i % 1_000),
            Some(if i % 10 == 0 {
                Stream::Err
            } else {
                Stream::Out
            }),
            format!(
                "2026-12-01T08:{:02}:{:02}.{:03}Z",
                i / 6000,
                (i / 100) % 60,
                i % 1000
            ),
            &format!(
                "request {i} GET /api/v1/items?page={i} 200 {}",
                "x".repeat(i % 150)
            ),
        ));
    }
    app.all_logs = true;
    app.timestamps = true;
    app.search = "page=4".into();
    stats(
        "frame 200x60, 1000 services, 5000 lines, search",
        frames(&mut app, 200, 60, 300),
    );
    app.wrap = true;
    stats(
        "frame 200x60, same, wrapped",
        frames(&mut app, 200, 60, 300),
    );
    stats("frame 80x24, same, wrapped", frames(&mut app, 80, 24, 300));

    let answers: Vec<_> = (0..100).map(|_| services(1_000)).collect();
    let mut times = Vec::new();
    for a in answers {
        let start = Instant::now();
        app.set_status(info(), a);
        times.push(start.elapsed());
    }
    stats("apply a status answer of 1000 services", times);
}
