//! The engine's resource sampling under paused time, through the fake prober of
//! `health_tests.rs`: when figures are taken, and when the sampler is a task at all.

use std::time::Duration;

use super::health::{FakeProber, sampled_rig};

#[tokio::test(start_paused = true)]
async fn status_shows_cpu_and_memory_once_sampled() {
    let p = FakeProber::default();
    let r = sampled_rig(&p).await;
    let pid = r.fake.last_pid("api");
    p.set_sample(pid, 10.0, 100);
    // The status read asks for the figures; the first sample has no CPU % yet.
    let s = r.until("api", |s| s.memory_bytes.is_some()).await;
    assert_eq!((s.memory_bytes, s.cpu_percent), (Some(100 << 20), None));
    p.set_sample(pid, 10.5, 120);
    let s = r.until("api", |s| s.cpu_percent.is_some()).await;
    assert_eq!(s.memory_bytes, Some(120 << 20));
    let cpu = s.cpu_percent.unwrap();
    assert!(
        (cpu - 50.0).abs() < 0.5,
        "half a second of CPU in a second: {cpu}"
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sampled_while_nobody_asks() {
    let p = FakeProber::default();
    let r = sampled_rig(&p).await;
    let pid = r.fake.last_pid("api");
    p.set_sample(pid, 1.0, 100);
    // Nobody read the status: after 5 minutes the sampler still has not run.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let snap = r.handle.board.read().unwrap().services[0].1.borrow().usage;
    assert_eq!(snap, None);
}

/// Without a `memory_max` the sampler is a task only while the figures are asked for: none
/// at the start, one from the first `status` read until a quiet minute, and again at the
/// next read.
#[tokio::test(start_paused = true)]
async fn the_sampler_runs_only_while_the_figures_are_asked_for() {
    let p = FakeProber::default();
    let r = sampled_rig(&p).await;
    let pid = r.fake.last_pid("api");
    p.set_sample(pid, 1.0, 100);
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    // No status read yet (a read asks for the figures): the service is up after 1 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = tasks();
    let s = r.until("api", |s| s.memory_bytes.is_some()).await;
    assert_eq!(s.memory_bytes, Some(100 << 20));
    assert_eq!(tasks(), idle + 1, "the sampler runs while asked");
    // Nobody asks for more than the window (a minute): the task ends.
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(tasks(), idle, "the sampler ended");
    // The next read starts it again: a fresh figure.
    p.set_sample(pid, 2.0, 200);
    let s = r.until("api", |s| s.memory_bytes == Some(200 << 20)).await;
    assert_eq!(s.memory_bytes, Some(200 << 20));
}
