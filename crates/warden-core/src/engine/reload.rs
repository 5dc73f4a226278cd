//! Reload: apply a new config as a diff of the running one. Removed services stop first;
//! unchanged ones keep running untouched; changed ones restart (if they were active);
//! added ones start; the hand-stopped list forgets removed names.

use std::collections::BTreeSet;

use tokio::sync::oneshot;

use super::{Engine, service};
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
        // Removed services stop first.
        let mut waits = Vec::new();
        let mut kept = Vec::new();
        for entry in self.entries.drain(..) {
            if new.service(&entry.cfg.name).is_some() {
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
        self.entries = kept;
        let mut pending = Vec::new();
        for cfg in &new.services {
            match self.entries.iter_mut().find(|e| e.cfg.name == cfg.name) {
                Some(entry) if entry.cfg == *cfg => report.unchanged.push(cfg.name.clone()),
                Some(entry) => {
                    // `autostart` turned on: the service should run now (unless stopped by hand).
                    let turned_on = cfg.autostart
                        && !entry.cfg.autostart
                        && !self.hand_stopped.contains(&cfg.name);
                    // Only an active service restarts; one that rests takes the new config
                    // for its next start.
                    let active = matches!(
                        entry.status.borrow().view.state(),
                        State::Starting | State::Running | State::Backoff
                    );
                    if active || turned_on {
                        report.restarted.push(cfg.name.clone());
                    } else {
                        report.updated.push(cfg.name.clone());
                    }
                    entry.cfg = cfg.clone();
                    let (tx, rx) = oneshot::channel();
                    let _ = entry
                        .tx
                        .send(service::Request::Reconfigure(Box::new(cfg.clone()), tx))
                        .await;
                    pending.push((cfg.name.clone(), rx));
                    if turned_on {
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
                    if let Some(rx) = self.add_service(cfg.clone()) {
                        pending.push((cfg.name.clone(), rx));
                    }
                }
            }
        }
        for (name, rx) in pending {
            if let Ok(Err(reason)) = rx.await {
                report.errors.push(format!("{name}: {reason}"));
            }
        }
        // Keep the config's order.
        self.entries
            .sort_by_key(|e| new.services.iter().position(|s| s.name == e.cfg.name));
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
        self.config = new;
        self.publish();
        report
    }
}
