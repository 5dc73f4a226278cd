//! `depends_on`: a service that needs others starts once each of their conditions holds
//! (`started`, `ready`, `healthy`, `completed`). Until then it rests `pending` with the
//! reason `waiting for db (starting)`. A *gate* task per dependent watches the published
//! status of what it needs (no polling: it wakes on each change), starts the dependent when
//! everything holds, and, for `restart = true`, sends it back to `pending` when a dependency
//! starts a new run (it starts again once the condition holds again). Shutdown stops
//! dependents before what they need, level by level, each level concurrently.

use std::collections::BTreeSet;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::service::{self, Snapshot, View};
use super::{Engine, Level};
use crate::config::{Condition, Dependency, ServiceConfig};
use crate::proto::{Health, State};

/// What one dependency of a gate watches.
struct Need {
    dep: Dependency,
    status: watch::Receiver<Snapshot>,
    success_codes: Vec<i32>,
    /// For a dependency this start just started: a receiver marked seen before its start was
    /// asked. Until it changes, the dependency's rest state is from before (not a failure).
    fresh: Option<watch::Receiver<Snapshot>>,
}

/// What a request to act answers with: the outcome to come, and what a start started first.
pub(super) type Acting = (oneshot::Receiver<Result<(), String>>, Vec<String>);

/// A dependency this start just started, with its status as seen before the request.
pub(super) type Fresh = (String, watch::Receiver<Snapshot>);

/// A need no longer on its way to its condition: at rest (stopped, exited, failed) since this
/// start asked for it, with the condition unmet. A start by hand answers then.
fn hopeless(n: &mut Need) -> bool {
    if n.fresh
        .as_ref()
        .is_some_and(|f| f.has_changed().unwrap_or(true))
    {
        n.fresh = None;
    }
    let snap = n.status.borrow();
    n.fresh.is_none()
        && matches!(
            snap.view,
            View::Stopped { .. } | View::Exited { .. } | View::Failed { .. }
        )
        && unmet(n.dep.condition, &snap, &n.success_codes).is_some()
}

/// Why `dep` does not hold for a dependency in `snap` (its words for the reason), or `None`
/// when it holds.
pub(super) fn unmet(
    condition: Condition,
    snap: &Snapshot,
    success_codes: &[i32],
) -> Option<String> {
    let completed = matches!(snap.view, View::Exited { .. })
        && snap
            .last_exit
            .as_ref()
            .is_some_and(|e| e.code.is_some_and(|c| success_codes.contains(&c)));
    let holds = match condition {
        Condition::Started => {
            matches!(snap.view, View::Starting { .. } | View::Running { .. }) || completed
        }
        Condition::Ready => matches!(snap.view, View::Running { .. }),
        Condition::Healthy => {
            matches!(snap.view, View::Running { .. } | View::Starting { .. })
                && (snap.was_healthy || snap.health == Some(Health::Healthy))
        }
        Condition::Completed => completed,
    };
    if holds {
        return None;
    }
    let state = snap.view.state();
    Some(match (&snap.view, condition) {
        // It can no longer satisfy it until it runs again: say why.
        (View::Failed { reason } | View::Exited { reason }, _) => {
            format!("{}: {reason}", state.as_str())
        }
        (View::Running { .. }, Condition::Healthy) => match snap.health {
            Some(Health::Unhealthy) => "unhealthy".into(),
            _ => "not healthy yet".into(),
        },
        (View::Running { .. }, Condition::Completed) => "running, not completed".into(),
        _ => state.as_str().to_owned(),
    })
}

/// The pid of a dependency's current run, if one runs.
fn run_pid(snap: &Snapshot) -> Option<u32> {
    match snap.view {
        View::Starting { pid, .. } | View::Running { pid, .. } => Some(pid),
        _ => None,
    }
}

/// The gate of one dependent: wait, start, and for `restart = true` follow new runs.
async fn gate(
    mut needs: Vec<Need>,
    own: watch::Receiver<Snapshot>,
    tx: mpsc::Sender<service::Request>,
    mut reply: Option<(oneshot::Sender<Result<(), String>>, service::Until)>,
) {
    // One wake-up channel for a change of any dependency.
    let (wake_tx, mut wake) = mpsc::channel::<()>(1);
    let mut watchers = Vec::new();
    for need in &needs {
        let mut rx = need.status.clone();
        let wake_tx = wake_tx.clone();
        watchers.push(tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let _ = wake_tx.try_send(());
            }
        }));
    }
    let _abort = AbortAll(watchers);
    let mut shown = String::new();
    // The runs of `restart = true` dependencies the dependent was started against.
    let mut started_with: Vec<Option<u32>> = Vec::new();
    loop {
        if started_with.is_empty() {
            let first_unmet = needs.iter_mut().find_map(|n| {
                let snap = n.status.borrow_and_update();
                unmet(n.dep.condition, &snap, &n.success_codes)
                    .map(|why| format!("waiting for {} ({why})", n.dep.service))
            });
            if let Some(reason) = first_unmet {
                if reason != shown {
                    let (t, _r) = oneshot::channel();
                    let _ = tx.send(service::Request::Wait(reason.clone(), t)).await;
                    shown = reason;
                }
                // A start by hand answers with why it waits once what it needs can no longer
                // get there by itself (it goes on waiting); until then it waits with it.
                if reply.is_some()
                    && needs.iter_mut().any(hopeless)
                    && let Some((r, _)) = reply.take()
                {
                    let _ = r.send(Err(shown.clone()));
                }
            } else {
                let (t, r) = oneshot::channel();
                let until = reply.as_ref().map_or(service::Until::Spawned, |(_, u)| *u);
                if tx.send(service::Request::Start(t, until)).await.is_err() {
                    return;
                }
                shown.clear();
                started_with = needs.iter().map(|n| run_pid(&n.status.borrow())).collect();
                if let Some((reply, _)) = reply.take() {
                    tokio::spawn(async move {
                        let _ = reply.send(r.await.unwrap_or(Err("shutting down".into())));
                    });
                }
                if !needs.iter().any(|n| n.dep.restart) {
                    return; // nothing more to follow
                }
            }
        } else {
            // Started: a new run of a `restart = true` dependency restarts the dependent,
            // through pending (it starts again once the condition holds again).
            let renewed = needs.iter().zip(&started_with).find(|(n, was)| {
                let now = run_pid(&n.status.borrow());
                n.dep.restart && now.is_some() && now != **was
            });
            let own_active = matches!(
                own.borrow().view.state(),
                State::Starting | State::Running | State::Backoff
            );
            if let Some((n, _)) = renewed {
                if own_active {
                    let reason = format!("waiting for {} (restarted)", n.dep.service);
                    let (t, r) = oneshot::channel();
                    let _ = tx.send(service::Request::Wait(reason.clone(), t)).await;
                    let _ = r.await;
                    shown = reason;
                }
                started_with.clear();
                continue;
            }
        }
        if wake.recv().await.is_none() {
            return;
        }
    }
}

pub(super) struct AbortAll(pub(super) Vec<JoinHandle<()>>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// The services `cfg` needs, transitively, in start order (deepest first), each with the
/// first dependency found on it (whose condition says whether it must start again).
fn needed<'a>(all: &'a [ServiceConfig], cfg: &'a ServiceConfig) -> Vec<&'a Dependency> {
    fn visit<'a>(
        all: &'a [ServiceConfig],
        s: &'a ServiceConfig,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<&'a Dependency>,
    ) {
        for d in &s.depends_on {
            if seen.insert(d.service.clone())
                && let Some(dep) = all.iter().find(|c| c.name == d.service)
            {
                visit(all, dep, seen, out);
                out.push(d);
            }
        }
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    visit(all, cfg, &mut seen, &mut out);
    out
}

impl Engine {
    /// Start `name` through its gate: now if it needs nothing, else once its dependencies'
    /// conditions hold. `reply` gets the start's answer (or why it waits).
    pub(super) fn start_gated(
        &mut self,
        name: &str,
        until: service::Until,
        reply: oneshot::Sender<Result<(), String>>,
    ) -> bool {
        self.start_gated_after(name, until, reply, Vec::new())
    }

    /// [`Engine::start_gated`], after `fresh`: the dependencies this start just started.
    pub(super) fn start_gated_after(
        &mut self,
        name: &str,
        until: service::Until,
        reply: oneshot::Sender<Result<(), String>>,
        mut fresh: Vec<Fresh>,
    ) -> bool {
        let Some(entry) = self.entries.iter().find(|e| e.cfg.name == name) else {
            return false;
        };
        if entry.cfg.depends_on.is_empty() {
            return entry
                .tx
                .try_send(service::Request::Start(reply, until))
                .is_ok();
        }
        let needs = entry
            .cfg
            .depends_on
            .iter()
            .filter_map(|d| {
                let e = self.entries.iter().find(|e| e.cfg.name == d.service)?;
                let at = fresh.iter().position(|(n, _)| *n == d.service);
                Some(Need {
                    dep: d.clone(),
                    status: e.status.clone(),
                    success_codes: e.cfg.success_codes.clone(),
                    fresh: at.map(|i| fresh.swap_remove(i).1),
                })
            })
            .collect();
        let task = tokio::spawn(gate(
            needs,
            entry.status.clone(),
            entry.tx.clone(),
            Some((reply, until)),
        ));
        if let Some(old) = self.gates.insert(name.to_owned(), task) {
            old.abort();
        }
        true
    }

    /// `warden start NAME`: start what it needs first (those that do not run), and say so
    /// (in warden's log, and to the caller: the names it started, deepest first, each with
    /// its status as seen before its start was asked).
    pub(super) fn start_needed(&mut self, name: &str) -> Vec<Fresh> {
        let Some(cfg) = self
            .entries
            .iter()
            .find(|e| e.cfg.name == name)
            .map(|e| e.cfg.clone())
        else {
            return Vec::new();
        };
        let all: Vec<ServiceConfig> = self.entries.iter().map(|e| (*e.cfg).clone()).collect();
        let mut started = Vec::new();
        for need in needed(&all, &cfg) {
            let dep = need.service.clone();
            // At rest, not waiting in its gate, and not already what it is needed for (a
            // migration that completed is not run again).
            let idle = self
                .entries
                .iter()
                .find(|e| e.cfg.name == dep)
                .is_some_and(|e| {
                    let snap = e.status.borrow();
                    matches!(
                        snap.view.state(),
                        State::Stopped | State::Exited | State::Failed | State::Pending
                    ) && !self.gates.contains_key(&dep)
                        && unmet(need.condition, &snap, &e.cfg.success_codes).is_some()
                });
            if idle && let Some(e) = self.entries.iter().find(|e| e.cfg.name == dep) {
                let mut before = e.status.clone();
                before.mark_unchanged();
                let (tx, _rx) = oneshot::channel();
                self.hand_stopped.remove(&dep);
                self.start_gated(&dep, service::Until::Spawned, tx);
                started.push((dep, before));
            }
        }
        if !started.is_empty() {
            let names: Vec<&str> = started.iter().map(|(n, _)| n.as_str()).collect();
            self.ctx.events.emit(
                name,
                Level::Info,
                &format!("starting {} first (depends_on)", names.join(", ")),
            );
        }
        started
    }

    /// A start by hand of `name`, which has `depends_on`: what it needs first, then itself
    /// through its gate. Returns the names it started first.
    pub(super) fn start_by_hand(
        &mut self,
        name: &str,
        reply: oneshot::Sender<Result<(), String>>,
    ) -> Vec<String> {
        let fresh = self.start_needed(name);
        let first = fresh.iter().map(|(n, _)| n.clone()).collect();
        self.start_gated_after(name, service::Until::Up, reply, fresh);
        if self.hand_stopped.remove(name) {
            self.save_hand_stopped();
        }
        first
    }

    /// End the gate of `name` (a stop by hand, a removal).
    pub(super) fn end_gate(&mut self, name: &str) {
        if let Some(g) = self.gates.remove(name) {
            g.abort();
        }
    }

    /// The order of a shutdown: dependents first; each inner list stops concurrently.
    pub(super) fn stop_levels(&self) -> Vec<Vec<String>> {
        // Without any `depends_on` there is one level: no copy of every config to order.
        if self.entries.iter().all(|e| e.cfg.depends_on.is_empty()) {
            return vec![self.entries.iter().map(|e| e.cfg.name.clone()).collect()];
        }
        let all: Vec<ServiceConfig> = self.entries.iter().map(|e| (*e.cfg).clone()).collect();
        let mut levels = crate::config::start_levels(&all);
        levels.reverse();
        levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::LastExit;
    use tokio::time::Instant;

    fn snap(view: View) -> Snapshot {
        Snapshot::new(view)
    }

    #[test]
    fn each_condition_holds_in_its_states_only() {
        use Condition::{Completed, Healthy, Ready, Started};
        let t = Instant::now();
        let starting = snap(View::Starting { pid: 1, since: t });
        let running = snap(View::Running { pid: 1, since: t });
        let mut healthy = running.clone();
        healthy.health = Some(Health::Healthy);
        let mut done = snap(View::Exited {
            reason: "exited with code 0".into(),
        });
        done.last_exit = Some(LastExit {
            code: Some(0),
            signal: None,
            at: String::new(),
            ran_ms: 1,
        });
        let mut bad = done.clone();
        bad.view = View::Exited {
            reason: "exited with code 1".into(),
        };
        bad.last_exit = bad.last_exit.map(|e| LastExit { code: Some(1), ..e });
        let ok = [0];
        assert_eq!(unmet(Started, &starting, &ok), None);
        assert_eq!(
            unmet(Started, &done, &ok),
            None,
            "a one-shot that completed did start"
        );
        assert_eq!(unmet(Ready, &starting, &ok).as_deref(), Some("starting"));
        assert_eq!(unmet(Ready, &running, &ok), None);
        assert_eq!(
            unmet(Healthy, &running, &ok).as_deref(),
            Some("not healthy yet")
        );
        assert_eq!(unmet(Healthy, &healthy, &ok), None);
        assert_eq!(
            unmet(Completed, &running, &ok).as_deref(),
            Some("running, not completed")
        );
        assert_eq!(unmet(Completed, &done, &ok), None);
        assert_eq!(
            unmet(Completed, &bad, &ok).as_deref(),
            Some("exited: exited with code 1"),
            "says why it cannot complete"
        );
        let failed = snap(View::Failed {
            reason: "start limit reached".into(),
        });
        assert_eq!(
            unmet(Ready, &failed, &ok).as_deref(),
            Some("failed: start limit reached")
        );
    }
}
