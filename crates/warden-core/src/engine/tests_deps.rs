//! `depends_on` through the gate, under paused time: a start by hand that waits with what
//! it started, and reloads that change a service's dependencies.

use std::time::Duration;

use super::health::{FakeProber, hrig};
use super::*;

#[tokio::test(start_paused = true)]
async fn start_by_hand_waits_for_what_it_started_and_answers_once_that_fails() {
    let p = FakeProber::default();
    let toml = svc_up("db", "db", "autostart = false\nrestart = \"never\"")
        + &svc(
            "api",
            "api",
            "autostart = false\ndepends_on = { db = \"ready\" }",
        );
    let r = hrig(&toml, &p).await;
    let h = r.handle.clone();
    let start = tokio::spawn(async move { h.act(Action::Start, "api").await });
    let db = r.until_spawned("db", 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!start.is_finished(), "waits while db is on its way up");
    r.fake.exit(db, CRASH);
    let err = tokio::time::timeout(Duration::from_secs(5), start)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "api: waiting for db (exited: exited with code 1)"
    );
    assert!(r.fake.pids("api").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_drops_a_dependency_ends_the_old_gate_and_starts_it() {
    let p = FakeProber::default();
    let db = svc_up("db", "db", "autostart = false");
    let r = hrig(
        &(db.clone() + &svc("api", "api", "depends_on = { db = \"ready\" }")),
        &p,
    )
    .await;
    let s = r.until_state("api", State::Pending).await;
    assert_eq!(s.reason.as_deref(), Some("waiting for db (stopped)"));
    r.rewrite(&(db + &svc("api", "api", "")));
    r.handle.reload().await.unwrap();
    r.until_spawned("api", 1).await;
    assert!(r.fake.pids("db").is_empty(), "db is not needed any more");
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_adds_a_dependency_applies_the_new_gate() {
    let p = FakeProber::default();
    let db = svc_up("db", "db", "autostart = false");
    let r = hrig(&(db.clone() + &svc("api", "api", "")), &p).await;
    let api1 = r.until_spawned("api", 1).await;
    r.rewrite(&(db + &svc("api", "api", "depends_on = { db = \"ready\" }")));
    let report = r.handle.reload().await.unwrap();
    assert_eq!(report.restarted, vec!["api".to_owned()]);
    let s = r.until_state("api", State::Pending).await;
    assert_eq!(s.reason.as_deref(), Some("waiting for db (stopped)"));
    assert_eq!(
        r.fake.steps(api1).len(),
        1,
        "the old run was stopped gracefully"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(r.fake.pids("api").len(), 1, "it waits for db now");
    r.handle.act(Action::Start, "db").await.unwrap();
    r.until_spawned("api", 2).await;
    assert_eq!(r.status("db").await.state, State::Running);
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_changes_a_waiting_dependency_waits_for_the_new_one() {
    let p = FakeProber::default();
    let two =
        svc_up("db", "db", "autostart = false") + &svc_up("cache", "cache", "autostart = false");
    let r = hrig(
        &(two.clone() + &svc("api", "api", "depends_on = { db = \"ready\" }")),
        &p,
    )
    .await;
    r.until_state("api", State::Pending).await;
    r.rewrite(&(two + &svc("api", "api", "depends_on = { cache = \"ready\" }")));
    r.handle.reload().await.unwrap();
    let s = r
        .until("api", |s| {
            s.reason.as_deref() == Some("waiting for cache (stopped)")
        })
        .await;
    assert_eq!(s.state, State::Pending);
    r.handle.act(Action::Start, "db").await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(r.fake.pids("api").is_empty(), "db no longer opens its gate");
    r.handle.act(Action::Start, "cache").await.unwrap();
    r.until_spawned("api", 1).await;
}

/// A reload that restarts a dependency and its dependent (both changed) starts the
/// dependent through its gate, once the new run of the dependency holds: not at the same
/// moment, against the old run (found by a new user: api crashed three times on reload).
#[tokio::test(start_paused = true)]
async fn a_reload_restarting_a_dependency_and_its_dependent_starts_them_in_order() {
    let p = FakeProber::default();
    let both = |db: &str, api: &str| {
        svc_up("db", db, "") + &svc("api", api, "depends_on = { db = \"ready\" }")
    };
    let r = hrig(&both("db", "api"), &p).await;
    r.until_spawned("api", 1).await;
    r.rewrite(&both("db2", "api2"));
    let report = r.handle.reload().await.unwrap();
    assert_eq!(report.restarted, vec!["db".to_owned(), "api".to_owned()]);
    let t0 = Instant::now();
    r.until_spawned("db2", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(r.fake.pids("api2").is_empty(), "api waits for the new db");
    assert_eq!(r.status("api").await.state, State::Pending);
    r.until_spawned("api2", 1).await;
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "after db's min_uptime: {:?}",
        t0.elapsed()
    );
    assert_eq!(r.status("db").await.state, State::Running);
}
