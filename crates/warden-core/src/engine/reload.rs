//! Reload: apply a new config as a diff of the running one. Removed services stop first;
//! unchanged ones keep running untouched; changed ones restart (if they were active);
//! added ones start; the hand-stopped list forgets removed names.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Engine, Entry, service};
use crate::config::Config;
use crate::proto::{ReloadReport, State};

impl Engine {
    /// Apply `new` as a diff of the running config.
    pub(super) async fn reload(&mut self, new: Config) -> ReloadReport {
        let mut report = ReloadReport::default();
        let old_w = &self.config.warden;
        let new_w = &new.warden;
        if old_w.state_dir != new_w.state_dir {
            report.needs_warden_restart.push("warden.state_dir".into());
        }
        if old_w.api != new_w.api || old_w.api_token != new_w.api_token {
            report.needs_warden_restart.push("warden.api".into());
        }
        // Each service's place in the new config: lookups by name stay O(1), so that a
        // reload of 1,000 services is not 1,000,000 name comparisons (or a sort that counts
        // positions by a scan).
        let place: HashMap<&str, usize> = new
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        // Removed services stop first.
        let mut waits = Vec::new();
        let mut kept = Vec::new();
        for entry in self.entries.drain(..) {
            if place.contains_key(entry.cfg.name.as_str()) {
                kept.push(entry);
            } else {
                report.removed.push(entry.cfg.name.clone());
                if let Some(gate) = self.gates.remove(&entry.cfg.name) {
                    gate.abort(); // depends_on
                }
                let (tx, rx) = oneshot::channel();
                let _ = entry.tx.send(service::Request::Shutdown(tx)).await;
                waits.push((entry, rx));
            }
        }
        for (entry, rx) in waits {
            let _ = rx.await;
            let _ = entry.task.await;
        }
        // Kept entries in the new config's order; `None` where a service is new.
        let mut slots: Vec<Option<Entry>> = Vec::new();
        slots.resize_with(new.services.len(), || None);
        for entry in kept {
            let i = place[entry.cfg.name.as_str()];
            slots[i] = Some(entry);
        }
        // The active services this reload restarts: a dependent of one of them restarts
        // through its gate, after it (not at the same moment, against the old run).
        let restarting: BTreeSet<&str> = new
            .services
            .iter()
            .zip(slots.iter())
            .filter_map(|(cfg, slot)| {
                let entry = slot.as_ref()?;
                let state = entry.status.borrow().view.state();
                (*entry.cfg != *cfg
                    && matches!(state, State::Starting | State::Running | State::Backoff))
                .then_some(cfg.name.as_str())
            })
            .collect();
        let mut pending = Vec::new();
        for (cfg, slot) in new.services.iter().zip(slots.iter_mut()) {
            match slot.as_mut() {
                Some(entry) if *entry.cfg == *cfg => report.unchanged.push(cfg.name.clone()),
                Some(entry) => {
                    // `autostart` turned on: the service should run now (unless stopped by hand).
                    let turned_on = cfg.autostart
                        && !entry.cfg.autostart
                        && !self.hand_stopped.contains(&cfg.name);
                    // Only an active service restarts; one that rests takes the new config
                    // for its next start.
                    let state = entry.status.borrow().view.state();
                    let active = matches!(state, State::Starting | State::Running | State::Backoff);
                    // depends_on changed: the old gate ends, and a service that should run
                    // (active, waiting in its gate, turned on) goes through the new one.
                    let regate = entry.cfg.depends_on != cfg.depends_on || turned_on;
                    let waiting = state == State::Pending
                        && self.gates.get(&cfg.name).is_some_and(|g| !g.is_finished());
                    let after_restart = active
                        && cfg
                            .depends_on
                            .iter()
                            .any(|d| restarting.contains(d.service.as_str()));
                    let gated = !cfg.depends_on.is_empty()
                        && ((regate && (active || turned_on || waiting)) || after_restart);
                    if regate && let Some(gate) = self.gates.remove(&cfg.name) {
                        gate.abort();
                    }
                    if active || turned_on {
                        report.restarted.push(cfg.name.clone());
                    } else {
                        report.updated.push(cfg.name.clone());
                    }
                    entry.cfg = Arc::new(cfg.clone());
                    if gated && active {
                        // To rest first, so that its next start waits for the new gate.
                        let (tx, rx) = oneshot::channel();
                        let why = "config changed: depends_on".to_owned();
                        let _ = entry.tx.send(service::Request::Wait(why, tx)).await;
                        pending.push((cfg.name.clone(), rx));
                    }
                    let (tx, rx) = oneshot::channel();
                    let _ = entry
                        .tx
                        .send(service::Request::Reconfigure(entry.cfg.clone(), tx))
                        .await;
                    pending.push((cfg.name.clone(), rx));
                    if gated {
                        self.to_gate.push(cfg.name.clone());
                    } else if turned_on || (regate && waiting) {
                        let (tx, rx) = oneshot::channel();
                        let _ = entry
                            .tx
                            .send(service::Request::Start(tx, service::Until::Spawned))
                            .await;
                        pending.push((cfg.name.clone(), rx));
                    }
                }
                None => {
                    report.added.push(cfg.name.clone());
                    let (entry, wait) = self.new_service(Arc::new(cfg.clone()));
                    *slot = Some(entry);
                    if let Some(rx) = wait {
                        pending.push((cfg.name.clone(), rx));
                    }
                }
            }
        }
        // Keep the config's order; `status` shows the added services while they start.
        self.entries = slots.into_iter().flatten().collect();
        self.publish();
        for (name, rx) in pending {
            if let Ok(Err(reason)) = rx.await {
                report.errors.push(format!("{name}: {reason}"));
            }
        }
        // depends_on: added services that need others start through their gate.
        for name in std::mem::take(&mut self.to_gate) {
            let (tx, _rx) = oneshot::channel();
            self.start_gated(&name, service::Until::Spawned, tx);
        }
        let known: BTreeSet<String> = new.services.iter().map(|s| s.name.clone()).collect();
        let before = self.hand_stopped.len();
        self.hand_stopped.retain(|n| known.contains(n));
        if self.hand_stopped.len() != before {
            self.save_hand_stopped();
        }
        // The entries hold the services' configs; a second copy here would only cost memory.
        self.config = Config {
            services: Vec::new(),
            ..new
        };
        self.publish();
        crate::process::release_free_heap();
        report
    }
}
