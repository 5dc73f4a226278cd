//! The UI's side of the API: a status poller (once a second, or at once after an action),
//! the log followers of the shown services, and one task per action, so that nothing the
//! API does ever waits in the drawing loop. Everything comes back as an [`Update`].
//!
//! When warden goes away the poller says so ([`Update::Down`]) and keeps dialling once a
//! second; the loop starts the followers again once it answers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use warden_core::api::client::ClientError;
use warden_core::engine::Action;
use warden_core::proto::FollowItem;
use warden_core::proto::{ServiceStatus, StatusReport};

use super::model::{Detail, Effect, FollowSpec, ReloadOutcome};
use crate::commands::ctl::Dialer;

/// How often the status is asked for.
pub const POLL: Duration = Duration::from_secs(1);
/// Lines of history fetched when following one service, or each of all services.
const BACKLOG_ONE: usize = 1_000;
const BACKLOG_EACH: usize = 200;

#[derive(Debug)]
pub enum Update {
    Status(StatusReport),
    Down(String),
    Line {
        generation: u64,
        service: String,
        item: FollowItem,
    },
    FollowEnded {
        generation: u64,
        service: String,
        why: String,
    },
    Acted {
        name: String,
        action: Action,
        result: Result<ServiceStatus, String>,
    },
    Reloaded(ReloadOutcome),
    Detail(String, Detail),
}

/// Why a call failed, in a few words: "not running" with the hint that fits the dialer
/// (`warden up -d`, or over `--api` the remote's `api` key and the tunnel).
fn why(dialer: &Dialer, e: &ClientError) -> String {
    dialer.failure(e).message
}

pub struct Conn {
    dialer: Dialer,
    tx: mpsc::Sender<Update>,
    poke: Arc<Notify>,
    generation: u64,
    followers: Vec<JoinHandle<()>>,
    poller: Option<JoinHandle<()>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        for f in self.followers.drain(..) {
            f.abort();
        }
        if let Some(p) = self.poller.take() {
            p.abort();
        }
    }
}

impl Conn {
    pub fn new(dialer: Dialer, tx: mpsc::Sender<Update>) -> Conn {
        Conn {
            dialer,
            tx,
            poke: Arc::new(Notify::new()),
            generation: 0,
            followers: Vec::new(),
            poller: None,
        }
    }

    /// The generation of the current followers: lines of older ones are dropped.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Start asking for the status.
    pub fn start(&mut self) {
        let (dialer, tx, poke) = (self.dialer.clone(), self.tx.clone(), self.poke.clone());
        self.poller = Some(tokio::spawn(async move {
            let mut client = None;
            loop {
                if client.is_none() {
                    match dialer.dial().await {
                        Ok(c) => client = Some(c),
                        Err(e) => {
                            if tx.send(Update::Down(why(&dialer, &e))).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                if let Some(c) = &mut client {
                    let update = match c.status(&[]).await {
                        Ok(report) => Update::Status(report),
                        Err(e) => {
                            client = None;
                            Update::Down(why(&dialer, &e))
                        }
                    };
                    if tx.send(update).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    () = poke.notified() => {}
                }
            }
        }));
    }

    /// Follow the logs of `spec` (dropping the current followers).
    pub fn follow(&mut self, spec: &FollowSpec) {
        for f in self.followers.drain(..) {
            f.abort();
        }
        self.generation += 1;
        let backlog = if spec.len() > 1 {
            BACKLOG_EACH
        } else {
            BACKLOG_ONE
        };
        for name in spec {
            let (dialer, tx, name) = (self.dialer.clone(), self.tx.clone(), name.clone());
            let generation = self.generation;
            self.followers.push(tokio::spawn(async move {
                let ended = |why: String| Update::FollowEnded {
                    generation,
                    service: name.clone(),
                    why,
                };
                let follower = match dialer.dial().await {
                    Ok(client) => client.follow_logs(&name, backlog, None).await,
                    Err(e) => Err(e),
                };
                let mut follower = match follower {
                    Ok(f) => f,
                    Err(e) => {
                        let _ = tx.send(ended(why(&dialer, &e))).await;
                        return;
                    }
                };
                loop {
                    match follower.next().await {
                        Ok(Some(item)) => {
                            let line = Update::Line {
                                generation,
                                service: name.clone(),
                                item,
                            };
                            // A full channel slows this reader; warden then skips lines for
                            // it and says how many, and the service is never slowed.
                            if tx.send(line).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {
                            let _ = tx.send(ended("the stream ended".into())).await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(ended(why(&dialer, &e))).await;
                            return;
                        }
                    }
                }
            }));
        }
    }

    /// Carry out an effect of a key in a task of its own.
    pub fn run(&self, effect: Effect) {
        let (dialer, tx, poke) = (self.dialer.clone(), self.tx.clone(), self.poke.clone());
        tokio::spawn(async move {
            let update = match effect {
                Effect::Quit => return,
                Effect::Act(name, action) => {
                    let result = match dialer.dial().await {
                        Ok(mut c) => c
                            .act(&name, action, true)
                            .await
                            .map_err(|e| why(&dialer, &e)),
                        Err(e) => Err(why(&dialer, &e)),
                    };
                    Update::Acted {
                        name,
                        action,
                        result,
                    }
                }
                Effect::Reload => {
                    let result = match dialer.dial().await {
                        Ok(mut c) => c.reload().await,
                        Err(e) => Err(e),
                    };
                    Update::Reloaded(match result {
                        Ok(report) => ReloadOutcome::Done(report),
                        Err(ClientError::Config(errors)) => ReloadOutcome::Failed(errors),
                        Err(e) => ReloadOutcome::Failed(vec![why(&dialer, &e)]),
                    })
                }
                Effect::Detail(name) => {
                    let result = match dialer.dial().await {
                        Ok(mut c) => c.service_config(&name).await,
                        Err(e) => Err(e),
                    };
                    let detail = match result {
                        Ok(view) => Detail::Config(Box::new(view)),
                        Err(ClientError::Config(errors)) => Detail::Error(errors),
                        Err(e) => Detail::Error(vec![why(&dialer, &e)]),
                    };
                    Update::Detail(name, detail)
                }
            };
            let _ = tx.send(update).await;
            poke.notify_one();
        });
    }
}
