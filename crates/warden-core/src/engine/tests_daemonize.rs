//! Programs that daemonize (`pid_file`, adoption, `daemon = false`), `start_timeout` and
//! `stop_command`'s exit, through the fake spawner under paused time.

use super::*;

const LAUNCHER: &str = "launcher";

/// A `pid_file` service `d` (`restart = "never"` unless `extra` says otherwise).
fn pid_file_svc(dir: &Path, extra: &str) -> String {
    let pid_file = dir.join("d.pid");
    let restart = if extra.contains("restart") {
        ""
    } else {
        "restart = \"never\"\n"
    };
    svc_up(
        "d",
        LAUNCHER,
        &format!(
            "pid_file = {:?}\nmin_uptime = \"1s\"\n{restart}{extra}",
            pid_file.display().to_string()
        ),
    )
}

/// A rig in a temp dir of its own, whose config may name files in it.
async fn rig_at(toml: impl FnOnce(&Path) -> String, prepare: impl FnOnce(&mut Book)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let text = toml(dir.path());
    rig_in(dir, &text, prepare).await
}

#[tokio::test(start_paused = true)]
async fn a_pid_file_s_process_becomes_the_main_one_and_its_exit_follows_the_policy() {
    let r = rig_at(|d| pid_file_svc(d, ""), |_| {}).await;
    let launcher = r.fake.last_pid(LAUNCHER);
    let daemon = r.fake.daemon();
    std::fs::write(r.dir.path().join("d.pid"), format!("{daemon}\n")).unwrap();
    // Not up while the launcher runs, however long.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(r.status("d").await.state, State::Starting);
    r.fake.exit(launcher, ExitStatus::Code(0));
    let s = r.until("d", |s| s.pid == Some(daemon)).await;
    assert_eq!(
        s.state,
        State::Starting,
        "up once the daemon ran min_uptime"
    );
    assert!(r.has_event(&format!("[d] daemonized: following pid {daemon} (from ")));
    let t0 = Instant::now();
    let s = r.until_state("d", State::Running).await;
    assert_eq!(
        (s.pid, t0.elapsed()),
        (Some(daemon), Duration::from_secs(1))
    );
    // Its exit follows the policy.
    r.fake.exit(daemon, ExitStatus::Code(3));
    let s = r.until_state("d", State::Exited).await;
    assert_eq!(
        s.last_exit.unwrap().code,
        Some(3),
        "restart = never applies"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_sends_the_stop_signal_to_the_pid_file_s_process() {
    let r = rig_at(|d| pid_file_svc(d, ""), |_| {}).await;
    let daemon = r.fake.daemon();
    std::fs::write(r.dir.path().join("d.pid"), format!("{daemon}")).unwrap();
    r.fake.exit(r.fake.last_pid(LAUNCHER), ExitStatus::Code(0));
    r.until_state("d", State::Running).await;
    r.handle.act(Action::Stop, "d").await.unwrap();
    assert_eq!(r.fake.steps(daemon).len(), 1, "{:?}", r.events());
    assert!(r.has_event(&format!("[d] stopped (pid {daemon}")));
}

#[tokio::test(start_paused = true)]
async fn a_pid_file_that_never_appears_is_a_failed_start_after_start_timeout() {
    let r = rig_at(
        |d| pid_file_svc(d, "restart = \"always\"\nstart_timeout = \"60s\""),
        |_| {},
    )
    .await;
    let t0 = Instant::now();
    r.fake.exit(r.fake.last_pid(LAUNCHER), ExitStatus::Code(0));
    let s = r.until_state("d", State::Backoff).await;
    // Seen by polling every millisecond of paused time.
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(60) && waited <= Duration::from_millis(60_002),
        "{waited:?}"
    );
    let reason = s.reason.unwrap();
    assert!(
        reason.starts_with("not up within 60s: no pid in ") && reason.ends_with("d.pid"),
        "{reason}"
    );
    assert!(r.has_event("[d] not up within 60s: no pid in "));
    r.until_spawned(LAUNCHER, 2).await;
}

#[tokio::test(start_paused = true)]
async fn a_stale_pid_file_naming_a_stranger_is_refused_until_the_daemon_rewrites_it() {
    let r = rig_at(|d| pid_file_svc(d, "start_timeout = \"10s\""), |_| {}).await;
    let pid_file = r.dir.path().join("d.pid");
    std::fs::write(&pid_file, "4242\n").unwrap();
    r.fake.exit(r.fake.last_pid(LAUNCHER), ExitStatus::Code(0));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s = r.status("d").await;
    assert_eq!(s.state, State::Starting);
    assert_eq!(
        s.pid,
        Some(r.fake.last_pid(LAUNCHER)),
        "no stranger is shown"
    );
    let daemon = r.fake.daemon();
    std::fs::write(&pid_file, format!("{daemon}\n")).unwrap();
    let s = r.until("d", |s| s.pid == Some(daemon)).await;
    assert_eq!(s.state, State::Starting);
    assert!(!r.fake.book().spawned.iter().any(|p| p.pid == 4242));
}

#[tokio::test(start_paused = true)]
async fn a_refused_pid_is_the_reason_of_the_failed_start() {
    let r = rig_at(|d| pid_file_svc(d, "start_timeout = \"5s\""), |_| {}).await;
    std::fs::write(r.dir.path().join("d.pid"), "4242\n").unwrap();
    r.fake.exit(r.fake.last_pid(LAUNCHER), ExitStatus::Code(0));
    let s = r.until_state("d", State::Failed).await;
    let reason = s.reason.unwrap();
    assert!(
        reason.starts_with("not up within 5s: ")
            && reason.contains("pid 4242 is not of this service's tree"),
        "{reason}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_launcher_that_fails_is_an_ordinary_exit_even_with_a_pid_file() {
    let r = rig_at(|d| pid_file_svc(d, ""), |_| {}).await;
    r.fake.exit(r.fake.last_pid(LAUNCHER), ExitStatus::Code(1));
    let s = r.until_state("d", State::Exited).await;
    assert_eq!(s.reason.as_deref(), Some("exited with code 1"));
}

#[tokio::test(start_paused = true)]
async fn a_launcher_that_exits_0_and_leaves_a_daemon_has_it_adopted() {
    let r = rig_with(&svc_up("d", LAUNCHER, "restart = \"never\""), |_| {}).await;
    let daemon = r.fake.daemon();
    r.fake
        .book()
        .leaves
        .insert(LAUNCHER.into(), Adoption::One(daemon));
    r.fake.exit(r.fake.last_pid(LAUNCHER), ExitStatus::Code(0));
    let s = r.until_state("d", State::Running).await;
    assert_eq!(s.pid, Some(daemon), "status shows the daemon");
    assert!(r.has_event(&format!("[d] daemonized: following pid {daemon}")));
    assert_eq!(r.fake.pids(LAUNCHER).len(), 1, "not relaunched");
    // Its exit follows the policy, `never` included.
    r.fake.exit(daemon, ExitStatus::Code(0));
    let s = r.until_state("d", State::Exited).await;
    assert_eq!(s.reason.as_deref(), Some("exited with code 0"));
}

#[tokio::test(start_paused = true)]
async fn an_adopted_daemon_is_stopped_gracefully() {
    let r = rig_with(&svc("d", LAUNCHER, ""), |_| {}).await;
    let daemon = r.fake.daemon();
    r.fake
        .book()
        .leaves
        .insert(LAUNCHER.into(), Adoption::One(daemon));
    r.fake.exit(r.fake.last_pid(LAUNCHER), ExitStatus::Code(0));
    r.until("d", |s| s.pid == Some(daemon)).await;
    r.handle.act(Action::Stop, "d").await.unwrap();
    assert_eq!(r.fake.steps(daemon).len(), 1);
    assert!(!r.fake.killed(daemon), "no kill: it stopped on the signal");
    assert_eq!(r.status("d").await.state, State::Stopped);
}

#[tokio::test(start_paused = true)]
async fn an_ambiguous_orphan_is_not_adopted_and_the_hint_names_pid_file() {
    let r = rig_with(&svc_up("d", LAUNCHER, "restart = \"never\""), |b| {
        b.leaves
            .insert(LAUNCHER.into(), Adoption::Ambiguous(vec![7001, 7002]));
    })
    .await;
    r.fake.exit(r.fake.last_pid(LAUNCHER), ExitStatus::Code(0));
    r.until_state("d", State::Exited).await;
    assert!(
        r.has_event("(pids 7001, 7002); adopting none (set pid_file to name the main process)"),
        "{:?}",
        r.events()
    );
}

#[tokio::test(start_paused = true)]
async fn daemon_false_never_adopts() {
    let r = rig_with(
        &svc_up("d", LAUNCHER, "daemon = false\nrestart = \"always\""),
        |_| {},
    )
    .await;
    let daemon = r.fake.daemon();
    r.fake
        .book()
        .leaves
        .insert(LAUNCHER.into(), Adoption::One(daemon));
    r.fake.exit(r.fake.last_pid(LAUNCHER), ExitStatus::Code(0));
    r.until_spawned(LAUNCHER, 2).await;
    assert!(!r.has_event("daemonized"));
}

#[tokio::test(start_paused = true)]
async fn a_process_not_up_within_start_timeout_is_a_failed_start() {
    // The launcher of a pid_file service that never exits is never up.
    let r = rig_at(|d| pid_file_svc(d, "start_timeout = \"3s\""), |_| {}).await;
    let launcher = r.fake.last_pid(LAUNCHER);
    let s = r.until_state("d", State::Failed).await;
    assert_eq!(
        s.reason.as_deref(),
        Some(&*format!(
            "not up within 3s: the launcher (pid {launcher}) has not exited"
        ))
    );
    assert_eq!(r.fake.steps(launcher).len(), 1, "its tree is stopped");
}

#[tokio::test(start_paused = true)]
async fn a_failing_stop_command_goes_straight_to_the_stop_signal() {
    let r = rig(&svc(
        "a",
        "pa",
        "stop_command = [\"stopper\"]\nstop_timeout = \"10s\"",
    ))
    .await;
    let pid = r.fake.last_pid("pa");
    let handle = r.handle.clone();
    let t0 = Instant::now();
    let stop = tokio::spawn(async move { handle.act(Action::Stop, "a").await });
    let stopper = r.until_spawned("stopper", 1).await;
    r.fake.exit(stopper, ExitStatus::Code(4));
    stop.await.unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(r.fake.steps(pid).len(), 1, "the stop signal followed");
    assert!(
        r.has_event("[a] stop_command exited with code 4; sending the stop signal now"),
        "{:?}",
        r.events()
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_command_that_succeeds_leaves_the_rest_of_the_timeout_to_the_program() {
    let r = rig_with(
        &svc(
            "a",
            "pa",
            "stop_command = [\"stopper\"]\nstop_timeout = \"10s\"",
        ),
        |b| {
            b.stubborn.insert("pa".into());
        },
    )
    .await;
    let pid = r.fake.last_pid("pa");
    let handle = r.handle.clone();
    let t0 = Instant::now();
    let stop = tokio::spawn(async move { handle.act(Action::Stop, "a").await });
    let stopper = r.until_spawned("stopper", 1).await;
    r.fake.exit(stopper, ExitStatus::Code(0));
    stop.await.unwrap().unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    assert!(r.fake.steps(pid).is_empty() && r.fake.killed(pid));
}
