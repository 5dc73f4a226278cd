//! Ready and health checks through a fake [`Prober`] under paused time: what each result
//! does to the state, the restarts it causes and what status shows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::*;
use crate::config::Probe;
use crate::health::{ExecEnv, Health, ProbeFuture, Prober};
use crate::process::TreeSample;

/// What a fake probe of one target answers.
#[derive(Debug, Clone)]
enum Answer {
    Pass,
    Fail(&'static str),
    /// Never answers: only the timeout ends it.
    Hang,
}

#[derive(Default)]
struct Probed {
    /// Resource samples by pid (none: not sampled).
    samples: BTreeMap<u32, TreeSample>,
    answers: BTreeMap<String, Answer>,
    calls: BTreeMap<String, u32>,
    in_flight: u32,
    max_in_flight: u32,
}

/// Counts a probe out of flight when it ends (or is dropped at its timeout).
struct Done(Arc<Mutex<Probed>>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_flight -= 1;
    }
}

/// Probes answered from a table keyed by target (`tcp = "TARGET"`), counted; samples from
/// a table keyed by pid.
#[derive(Clone, Default)]
pub(super) struct FakeProber(Arc<Mutex<Probed>>);

impl FakeProber {
    fn set(&self, target: &str, a: Answer) {
        self.0.lock().unwrap().answers.insert(target.into(), a);
    }

    fn calls(&self, target: &str) -> u32 {
        self.0
            .lock()
            .unwrap()
            .calls
            .get(target)
            .copied()
            .unwrap_or(0)
    }
}

impl Prober for FakeProber {
    fn sample(&self, pid: u32) -> Option<TreeSample> {
        self.0.lock().unwrap().samples.get(&pid).copied()
    }

    fn probe<'a>(
        &'a self,
        probe: &'a Probe,
        _timeout: Duration,
        _: &'a ExecEnv,
    ) -> ProbeFuture<'a> {
        Box::pin(async move {
            let target = match probe {
                Probe::Tcp(t) => t.clone(),
                other => other.kind().to_owned(),
            };
            let answer = {
                let mut p = self.0.lock().unwrap();
                *p.calls.entry(target.clone()).or_default() += 1;
                p.in_flight += 1;
                p.max_in_flight = p.max_in_flight.max(p.in_flight);
                p.answers
                    .get(&target)
                    .cloned()
                    .unwrap_or(Answer::Fail("refused"))
            };
            let _done = Done(self.0.clone());
            match answer {
                Answer::Pass => Ok(()),
                Answer::Fail(why) => Err(format!("tcp {target}: {why}")),
                Answer::Hang => std::future::pending().await,
            }
        })
    }
}

/// One service `api`, sampled every second: the sampling tests' rig.
pub(super) async fn sampled_rig(prober: &FakeProber) -> Rig {
    let toml = "[warden]\nsample_interval = \"1s\"\n".to_owned() + &svc("api", "api", "");
    hrig(&toml, prober).await
}

pub(super) async fn hrig(toml: &str, prober: &FakeProber) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let config = load(dir.path(), toml);
    let state = Arc::new(StateDir::lock(&config.warden.state_dir).unwrap());
    let events: &'static Mutex<Vec<String>> = Box::leak(Box::new(Mutex::new(Vec::new())));
    let (kill_now, kill_rx) = watch::channel(false);
    let engine = Engine::new(config, state, Events::recording(events), kill_rx, false)
        .with_spawner(Arc::new(fake.clone()))
        .with_prober(Arc::new(prober.clone()));
    let (handle, task, ready) = engine.spawn();
    ready.await.unwrap();
    Rig {
        dir,
        fake,
        handle,
        task,
        events,
        kill_now,
    }
}

#[tokio::test(start_paused = true)]
async fn a_ready_check_keeps_it_starting_past_min_uptime_until_it_passes() {
    let p = FakeProber::default();
    let r = hrig(
        &svc_up("db", "db", "ready = { tcp = \"db:1\", interval = \"1s\" }"),
        &p,
    )
    .await;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = r.status("db").await;
    assert_eq!(s.state, State::Starting, "min_uptime does not make it up");
    assert_eq!(s.health, None, "no health check: null");
    assert!(
        p.calls("db:1") >= 5,
        "probed every second: {}",
        p.calls("db:1")
    );
    p.set("db:1", Answer::Pass);
    r.until_state("db", State::Running).await;
    assert!(t0.elapsed() <= Duration::from_secs(7));
    let calls = p.calls("db:1");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(p.calls("db:1"), calls, "a ready check stops once it passed");
    assert!(r.has_event("ready (tcp check passed)"), "{:?}", r.events());
}

#[tokio::test(start_paused = true)]
async fn start_by_hand_of_a_ready_checked_service_answers_once_it_is_ready() {
    let p = FakeProber::default();
    let r = hrig(
        &svc_up(
            "db",
            "db",
            "autostart = false\nready = { tcp = \"db:1\", interval = \"1s\" }",
        ),
        &p,
    )
    .await;
    let h = r.handle.clone();
    let start = tokio::spawn(async move { h.act(Action::Start, "db").await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!start.is_finished(), "still waiting for the check");
    p.set("db:1", Answer::Pass);
    start.await.unwrap().unwrap();
    assert_eq!(r.status("db").await.state, State::Running);
}

#[tokio::test(start_paused = true)]
async fn health_is_unknown_then_healthy_then_unhealthy_restarts_counted_like_a_crash() {
    let p = FakeProber::default();
    p.set("api:1", Answer::Pass);
    let r = hrig(
        &svc(
            "api",
            "api",
            "health = { tcp = \"api:1\", interval = \"1s\", retries = 3 }",
        ),
        &p,
    )
    .await;
    let s = r.until("api", |s| s.health == Some(Health::Healthy)).await;
    assert_eq!(s.state, State::Running);
    let pid = r.fake.last_pid("api");
    p.set("api:1", Answer::Fail("refused"));
    let failed_at = Instant::now();
    r.until_spawned("api", 2).await;
    // Three failures one second apart, then the stop and the 100 ms backoff.
    let took = failed_at.elapsed();
    assert!(took <= Duration::from_millis(3_200), "{took:?}");
    assert!(
        r.fake.steps(pid).len() == 1,
        "stopped gracefully: {:?}",
        r.fake.steps(pid)
    );
    let s = r.status("api").await;
    assert_eq!(s.restarts, 1, "counted like a crash");
    assert_eq!(s.health, Some(Health::Unknown), "a new run starts unknown");
    assert!(
        r.has_event("unhealthy: tcp api:1: refused"),
        "{:?}",
        r.events()
    );
}

#[tokio::test(start_paused = true)]
async fn unhealthy_under_restart_never_stays_exited_with_the_reason() {
    let p = FakeProber::default();
    let r = hrig(
        &svc(
            "job",
            "job",
            "restart = \"never\"\nhealth = { tcp = \"job:1\", interval = \"1s\", retries = 2 }",
        ),
        &p,
    )
    .await;
    let s = r.until_state("job", State::Exited).await;
    assert_eq!(s.reason.as_deref(), Some("unhealthy: tcp job:1: refused"));
    assert_eq!(r.fake.pids("job").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn on_unhealthy_ignore_only_shows_it() {
    let p = FakeProber::default();
    let r = hrig(
        &svc(
            "api",
            "api",
            "on_unhealthy = \"ignore\"\nhealth = { tcp = \"api:1\", interval = \"1s\", retries = 1 }",
        ),
        &p,
    )
    .await;
    r.until("api", |s| s.health == Some(Health::Unhealthy))
        .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let s = r.status("api").await;
    assert_eq!((s.state, s.restarts), (State::Running, 0));
    assert_eq!(r.fake.pids("api").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn start_period_and_success_threshold_shape_the_result() {
    let p = FakeProber::default();
    let r = hrig(
        &svc(
            "api",
            "api",
            "health = { tcp = \"api:1\", interval = \"1s\", retries = 1, start_period = \"5s\", success_threshold = 2 }",
        ),
        &p,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let s = r.status("api").await;
    assert_eq!(
        (s.health, r.fake.pids("api").len()),
        (Some(Health::Unknown), 1),
        "failures in start_period do not count"
    );
    p.set("api:1", Answer::Pass);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        r.status("api").await.health,
        Some(Health::Unknown),
        "one pass of two"
    );
    r.until("api", |s| s.health == Some(Health::Healthy)).await;
    assert_eq!(r.fake.pids("api").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_never_answers_fails_at_its_timeout_and_never_piles_up() {
    let p = FakeProber::default();
    p.set("api:1", Answer::Hang);
    let r = hrig(
        &svc(
            "api",
            "api",
            "health = { tcp = \"api:1\", interval = \"100ms\", timeout = \"2s\", retries = 2 }",
        ),
        &p,
    )
    .await;
    let t0 = Instant::now();
    r.until_spawned("api", 2).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took <= Duration::from_millis(4_300),
        "{took:?}"
    );
    assert!(
        r.has_event("unhealthy: tcp: no answer within 2.0s"),
        "{:?}",
        r.events()
    );
    assert_eq!(p.0.lock().unwrap().max_in_flight, 1, "one probe in flight");
}

#[tokio::test(start_paused = true)]
async fn health_failures_while_starting_do_not_count() {
    let p = FakeProber::default();
    let r = hrig(
        &svc_up(
            "api",
            "api",
            "ready = { tcp = \"ready:1\", interval = \"1s\" }\nhealth = { tcp = \"api:1\", interval = \"100ms\", retries = 1 }",
        ),
        &p,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = r.status("api").await;
    assert_eq!(
        (s.state, s.health, s.restarts),
        (State::Starting, Some(Health::Unknown), 0)
    );
    assert!(p.calls("api:1") > 10);
    p.set("ready:1", Answer::Pass);
    // Up, then the health failures count: restarted.
    r.until_spawned("api", 2).await;
    assert!(r.has_event("ready (tcp check passed)"), "{:?}", r.events());
    assert!(
        r.has_event("unhealthy: tcp api:1: refused"),
        "{:?}",
        r.events()
    );
}

#[tokio::test(start_paused = true)]
async fn a_stopped_service_shows_unknown_health_and_probes_nothing() {
    let p = FakeProber::default();
    p.set("api:1", Answer::Pass);
    let r = hrig(
        &svc(
            "api",
            "api",
            "health = { tcp = \"api:1\", interval = \"1s\" }",
        ),
        &p,
    )
    .await;
    r.until("api", |s| s.health == Some(Health::Healthy)).await;
    r.handle.act(Action::Stop, "api").await.unwrap();
    let calls = p.calls("api:1");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(p.calls("api:1"), calls);
    let s = r.status("api").await;
    assert_eq!((s.state, s.health), (State::Stopped, Some(Health::Unknown)));
}

// ---------------------------------------------------------------------------------------
// depends_on

#[tokio::test(start_paused = true)]
async fn a_dependent_waits_pending_until_its_dependency_is_ready() {
    let p = FakeProber::default();
    let toml = svc_up("db", "db", "") + &svc("api", "api", "depends_on = { db = \"ready\" }");
    let r = hrig(&toml, &p).await;
    let s = r.until_state("api", State::Pending).await;
    assert_eq!(s.reason.as_deref(), Some("waiting for db (starting)"));
    assert!(r.fake.pids("api").is_empty());
    let t0 = Instant::now();
    r.until_spawned("api", 1).await;
    assert_eq!(r.status("db").await.state, State::Running);
    assert!(
        t0.elapsed() <= Duration::from_millis(1_001),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn started_is_the_short_form_and_holds_once_spawned() {
    let p = FakeProber::default();
    let toml = svc_up("db", "db", "") + &svc("api", "api", "depends_on = [\"db\"]");
    let r = hrig(&toml, &p).await;
    r.until_spawned("api", 1).await;
    assert_eq!(
        r.status("db").await.state,
        State::Starting,
        "started, not yet up"
    );
}

#[tokio::test(start_paused = true)]
async fn completed_waits_for_a_success_exit_and_says_why_after_a_failure() {
    let p = FakeProber::default();
    let toml = svc("migrate", "migrate", "restart = \"never\"")
        + &svc("api", "api", "depends_on = { migrate = \"completed\" }");
    let r = hrig(&toml, &p).await;
    let s = r.until_state("api", State::Pending).await;
    assert_eq!(
        s.reason.as_deref(),
        Some("waiting for migrate (running, not completed)")
    );
    r.fake.exit(r.fake.last_pid("migrate"), CRASH);
    let s = r
        .until("api", |s| {
            s.reason.as_deref().is_some_and(|r| r.contains("exited"))
        })
        .await;
    assert_eq!(
        s.reason.as_deref(),
        Some("waiting for migrate (exited: exited with code 1)")
    );
    assert!(r.fake.pids("api").is_empty(), "stays pending");
    // It recovers: run again, exits 0, the dependent starts.
    r.handle.act(Action::Start, "migrate").await.unwrap();
    r.fake.exit(r.fake.last_pid("migrate"), ExitStatus::Code(0));
    r.until_spawned("api", 1).await;
}

#[tokio::test(start_paused = true)]
async fn healthy_waits_for_the_first_passing_health_check() {
    let p = FakeProber::default();
    let toml = svc("db", "db", "health = { tcp = \"db:1\", interval = \"1s\" }")
        + &svc("api", "api", "depends_on = { db = \"healthy\" }");
    let r = hrig(&toml, &p).await;
    let s = r.until_state("api", State::Pending).await;
    assert_eq!(
        s.reason.as_deref(),
        Some("waiting for db (not healthy yet)")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(r.fake.pids("api").is_empty());
    p.set("db:1", Answer::Pass);
    r.until_spawned("api", 1).await;
}

#[tokio::test(start_paused = true)]
async fn restart_true_restarts_the_dependent_when_its_dependency_restarts() {
    let p = FakeProber::default();
    let toml = svc("db", "db", "")
        + &svc(
            "api",
            "api",
            "depends_on = { db = { condition = \"ready\", restart = true } }",
        )
        + &svc("web", "web", "depends_on = { db = \"ready\" }");
    let r = hrig(&toml, &p).await;
    let api1 = r.until_spawned("api", 1).await;
    r.until_spawned("web", 1).await;
    r.fake.exit(r.fake.last_pid("db"), CRASH);
    r.until_spawned("db", 2).await;
    let api2 = r.until_spawned("api", 2).await;
    assert_ne!(api1, api2);
    assert!(
        r.fake.steps(api1).len() == 1,
        "the old api was stopped gracefully"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        r.fake.pids("web").len(),
        1,
        "without restart = true, web keeps running"
    );
    assert_eq!(r.fake.pids("api").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn start_by_hand_starts_what_it_needs_first_and_says_so() {
    let p = FakeProber::default();
    let toml = svc("db", "db", "autostart = false")
        + &svc(
            "api",
            "api",
            "autostart = false\ndepends_on = { db = \"ready\" }",
        );
    let r = hrig(&toml, &p).await;
    let first = r.handle.act_reporting(Action::Start, "api").await.unwrap();
    assert_eq!(first, vec!["db".to_owned()], "the caller is told");
    assert_eq!(r.fake.pids("db").len(), 1);
    assert_eq!(r.status("api").await.state, State::Running);
    assert!(
        r.has_event("[api] starting db first (depends_on)"),
        "{:?}",
        r.events()
    );
    // db runs: a second start starts nothing first, and says nothing.
    r.handle.act(Action::Stop, "api").await.unwrap();
    let first = r.handle.act_reporting(Action::Start, "api").await.unwrap();
    assert!(first.is_empty(), "{first:?}");
    assert_eq!(r.fake.pids("db").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_dependents_before_what_they_need() {
    let p = FakeProber::default();
    let toml = svc("db", "db", "")
        + &svc("api", "api", "depends_on = [\"db\"]")
        + &svc("worker", "worker", "depends_on = [\"api\"]")
        + &svc("cache", "cache", "");
    let r = hrig(&toml, &p).await;
    r.until_spawned("worker", 1).await;
    r.handle.shutdown().await;
    let ev = r.events();
    let at = |who: &str| {
        ev.iter()
            .position(|e| e.starts_with(&format!("[{who}] stopped")))
            .unwrap_or_else(|| panic!("{who} not stopped: {ev:?}"))
    };
    assert!(at("worker") < at("api") && at("api") < at("db"), "{ev:?}");
    assert!(at("worker") < at("cache"), "cache is at db's level: {ev:?}");
}

// ---------------------------------------------------------------------------------------
// Resources

impl FakeProber {
    pub(super) fn set_sample(&self, pid: u32, cpu_seconds: f64, rss_mib: u64) {
        self.0.lock().unwrap().samples.insert(
            pid,
            TreeSample {
                cpu_seconds,
                rss_bytes: rss_mib << 20,
                processes: 1,
                cgroup_memory_bytes: None,
            },
        );
    }
}

/// In cgroup mode the sample carries the cgroup's `memory.current`: shown beside the RSS,
/// which stays the summed RSS.
#[tokio::test(start_paused = true)]
async fn the_cgroups_memory_is_shown_beside_the_rss() {
    let p = FakeProber::default();
    let r = sampled_rig(&p).await;
    let pid = r.fake.last_pid("api");
    p.0.lock().unwrap().samples.insert(
        pid,
        TreeSample {
            cpu_seconds: 1.0,
            rss_bytes: 30 << 20,
            processes: 2,
            cgroup_memory_bytes: Some(50 << 20),
        },
    );
    let s = r.until("api", |s| s.memory_bytes.is_some()).await;
    assert_eq!(
        (s.memory_bytes, s.memory_cgroup_bytes),
        (Some(30 << 20), Some(50 << 20))
    );
}

#[tokio::test(start_paused = true)]
async fn memory_max_restarts_after_two_samples_above_with_the_reason() {
    let p = FakeProber::default();
    let r = hrig(
        &("[warden]\nsample_interval = \"1s\"\n".to_owned()
            + &svc("api", "api", "memory_max = \"512MiB\"")),
        &p,
    )
    .await;
    let pid = r.fake.last_pid("api");
    p.set_sample(pid, 0.0, 100);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(r.fake.pids("api").len(), 1);
    p.set_sample(pid, 0.0, 530);
    let t0 = Instant::now();
    r.until_spawned("api", 2).await;
    // Two samples above: within two sample intervals (plus the 100 ms backoff).
    assert!(
        t0.elapsed() <= Duration::from_millis(2_100),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        r.has_event("memory limit: 530MiB > 512MiB"),
        "{:?}",
        r.events()
    );
    assert_eq!(r.status("api").await.restarts, 1, "counted like a crash");
}

#[tokio::test(start_paused = true)]
async fn a_dependent_added_by_reload_starts_through_its_gate() {
    let p = FakeProber::default();
    let first = svc_up("db", "db", "autostart = false");
    let r = hrig(&first, &p).await;
    r.rewrite(&(first.clone() + &svc("api", "api", "depends_on = { db = \"ready\" }")));
    let report = r.handle.reload().await.unwrap();
    assert_eq!(report.added, vec!["api".to_owned()]);
    let s = r.until_state("api", State::Pending).await;
    assert_eq!(s.reason.as_deref(), Some("waiting for db (stopped)"));
    r.handle.act(Action::Start, "db").await.unwrap();
    r.until_spawned("api", 1).await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_ready_check_is_retried_sooner_than_its_interval() {
    let p = FakeProber::default();
    let r = hrig(&svc_up("db", "db", "ready = { tcp = \"db:1\" }"), &p).await;
    let t0 = Instant::now();
    // The default interval is 10 s; the retries come 100, 200, 400, 800 ms... apart.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(p.calls("db:1"), 4, "probes at 0, 0.1, 0.3 and 0.7 s");
    p.set("db:1", Answer::Pass);
    r.until_state("db", State::Running).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_millis(1600),
        "up at the probe of 1.5 s, not after a 10 s interval: {took:?}"
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(p.calls("db:1"), 5, "a ready check stops once it passed");
}

/// `up -d --wait` with a dependency that will not start (`autostart = false` here, stopped
/// by hand alike): its dependents, direct and through another, are settled pending, not
/// waited for until the timeout.
#[tokio::test(start_paused = true)]
async fn settled_does_not_wait_for_dependents_of_a_service_at_rest() {
    let p = FakeProber::default();
    let toml = svc("db", "db", "autostart = false")
        + &svc("api", "api", "depends_on = { db = \"ready\" }")
        + &svc("worker", "worker", "depends_on = [\"api\"]")
        + &svc("other", "other", "");
    let r = hrig(&toml, &p).await;
    r.until_state("worker", State::Pending).await;
    let handle = r.handle.clone();
    tokio::time::timeout(Duration::from_secs(5), handle.settled())
        .await
        .expect("settled while api and worker wait for a stopped db");
    assert_eq!(r.status("api").await.state, State::Pending);
    assert_eq!(r.status("worker").await.state, State::Pending);
    assert_eq!(r.status("other").await.state, State::Running);
}
