//! The timing of the graceful stop steps (issue 9, section 5): a step that cannot apply
//! takes no time, what an early step leaves goes to the next, and after the last applied step
//! warden waits for the tree until the `stop_timeout` deadline. The fake gives Windows's
//! steps (Ctrl-C, `WM_CLOSE`) on every OS, under paused time.

use super::*;

/// Service `a` running `pa` under `stop_timeout = "10s"` and the default `stop_method`,
/// with the Windows steps; `prepare` says which steps reach `pa` and how it reacts.
async fn windows_rig(prepare: impl FnOnce(&mut Book)) -> Rig {
    rig_with(&svc("a", "pa", "stop_timeout = \"10s\""), |b| {
        b.windows_steps = true;
        prepare(b);
    })
    .await
}

fn no(step: StopStep) -> (String, StopStep) {
    ("pa".to_owned(), step)
}

/// Stop `a` and return how long the stop took (paused time).
async fn timed_stop(r: &Rig) -> Duration {
    let t0 = Instant::now();
    r.handle.act(Action::Stop, "a").await.unwrap();
    t0.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_console_program_that_needs_7s_gets_the_unused_wm_close_share_of_stop_timeout() {
    let r = windows_rig(|b| {
        b.not_applicable.push(no(StopStep::WmClose));
        b.stops_after.insert("pa".into(), Duration::from_secs(7));
    })
    .await;
    let pid = r.fake.last_pid("pa");
    assert_eq!(timed_stop(&r).await, Duration::from_secs(7));
    assert!(!r.fake.killed(pid), "killed: {:?}", r.events());
    assert_eq!(r.fake.steps(pid), vec![StopStep::CtrlC]);
    assert!(!r.has_event("did not stop within"), "{:?}", r.events());
    assert_eq!(r.status("a").await.last_exit.unwrap().code, Some(0));
}

#[tokio::test(start_paused = true)]
async fn a_console_program_that_ignores_ctrl_c_is_killed_at_the_stop_timeout_not_at_its_share() {
    let r = windows_rig(|b| {
        b.not_applicable.push(no(StopStep::WmClose));
        b.stubborn.insert("pa".into());
    })
    .await;
    let pid = r.fake.last_pid("pa");
    assert_eq!(timed_stop(&r).await, Duration::from_secs(10));
    assert!(r.fake.killed(pid));
    assert!(r.has_event("[a] did not stop within 10.0s; killing"));
}

#[tokio::test(start_paused = true)]
async fn the_time_an_early_step_leaves_goes_to_the_next_step() {
    // Both steps apply: Ctrl-C gets half (5 s), WM_CLOSE the rest; the program that needs
    // 7 s after the first one stops gracefully within the second share.
    let r = windows_rig(|b| {
        b.stops_after.insert("pa".into(), Duration::from_secs(7));
    })
    .await;
    let pid = r.fake.last_pid("pa");
    let handle = r.handle.clone();
    let t0 = Instant::now();
    let stop = tokio::spawn(async move { handle.act(Action::Stop, "a").await });
    let deadline = t0 + Duration::from_secs(60);
    while r.fake.steps(pid).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no second step: {:?}",
            r.events()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second_at = t0.elapsed().as_millis();
    assert!(
        (5000..=5001).contains(&second_at),
        "WM_CLOSE at {second_at} ms"
    );
    stop.await.unwrap().unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(7));
    assert_eq!(r.fake.steps(pid), vec![StopStep::CtrlC, StopStep::WmClose]);
    assert!(!r.fake.killed(pid));
}

#[tokio::test(start_paused = true)]
async fn a_window_program_without_a_console_gets_the_whole_stop_timeout_for_wm_close() {
    let r = windows_rig(|b| {
        b.not_applicable.push(no(StopStep::CtrlC));
        b.stops_after.insert("pa".into(), Duration::from_secs(9));
    })
    .await;
    let pid = r.fake.last_pid("pa");
    assert_eq!(timed_stop(&r).await, Duration::from_secs(9));
    assert_eq!(r.fake.steps(pid), vec![StopStep::WmClose]);
    assert!(!r.fake.killed(pid));
}

#[tokio::test(start_paused = true)]
async fn when_no_step_applies_the_kill_follows_at_once_and_says_so() {
    let r = windows_rig(|b| {
        b.not_applicable.push(no(StopStep::CtrlC));
        b.not_applicable.push(no(StopStep::WmClose));
    })
    .await;
    let pid = r.fake.last_pid("pa");
    assert_eq!(timed_stop(&r).await, Duration::ZERO);
    assert!(r.fake.killed(pid));
    assert!(
        r.has_event("[a] no graceful stop step applies (Ctrl-C, WM_CLOSE); after 0ms; killing"),
        "{:?}",
        r.events()
    );
    assert!(!r.has_event("did not stop within"));
}
