//! `warden ui`: a terminal dashboard of a running warden, a client of its control API.
//!
//! - [`model`]: what is shown and what each key does (plain data, unit-tested);
//! - [`view`]: drawing the model with ratatui (tested on a `TestBackend`);
//! - [`conn`]: the API side: a status poll once a second, the log followers, the actions;
//! - [`term`]: raw mode, the alternate screen and their restoration, the keyboard thread.
//!
//! The loop waits on the keyboard, the API's updates, signals and (only when the screen is
//! out of date) the next frame, at most ten a second: idle, it sleeps until the next poll.

mod conn;
mod logbuf;
mod model;
mod popup;
mod term;
mod view;

pub(crate) use logbuf::printable;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use crossterm::event::Event;
use tokio::sync::mpsc;
use warden_core::engine::Action;
use warden_core::proto::FollowItem;

use crate::Failure;
use crate::cli::Target;
use crate::commands::ctl;
use conn::{Conn, Update};
use logbuf::Entry;
use model::{App, Effect, FollowSpec, Link, MESSAGE_FOR, Tone};

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(100);

/// `warden ui [-c FILE | -n NAME | --api HOST:PORT --token-file FILE] [--no-color]`.
pub fn run(target: &Target, no_color: bool) -> Result<(), Failure> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            2,
            "warden ui needs a terminal; use `warden status` or `warden logs` in scripts",
        ));
    }
    let rt = crate::commands::runtime()?;
    rt.block_on(async {
        let (dialer, _) = ctl::dialer(target).await?;
        let color = crate::render::use_color(no_color, true);
        let app = App::new(dialer.describe(), color);
        let (tx, rx) = mpsc::channel(1024);
        let mut conn = Conn::new(dialer, tx);
        conn.start();
        let mut guard = term::enter()
            .map_err(|e| Failure::failed(format!("cannot set up the terminal: {e}")))?;
        let result = event_loop(&mut guard, app, conn, rx, term::input()).await;
        drop(guard);
        result.map_err(|e| Failure::failed(format!("the terminal failed: {e}")))
    })
}

/// Resolves on SIGTERM or SIGHUP (Unix), or when the console closes (Windows).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(mut term), Ok(mut hup)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
    #[cfg(windows)]
    {
        match tokio::signal::windows::ctrl_close() {
            Ok(mut close) => {
                close.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    }
}

async fn event_loop(
    guard: &mut term::Guard,
    mut app: App,
    mut conn: Conn,
    mut updates: mpsc::Receiver<Update>,
    mut keys: mpsc::Receiver<Event>,
) -> std::io::Result<()> {
    let stop = terminated();
    tokio::pin!(stop);
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut followed: Option<FollowSpec> = None;
    let mut was_live = false;
    let mut batch = Vec::with_capacity(256);
    loop {
        // The shown logs: new followers when the selection changes or warden is back.
        let live = app.link == Link::Live;
        if live {
            let spec = app.follow_spec();
            if !was_live || followed.as_ref() != Some(&spec) {
                app.reset_logs();
                conn.follow(&spec);
                followed = Some(spec);
                dirty = true;
            }
        }
        was_live = live;

        let now = Instant::now();
        let next_frame = last_draw.map_or(now, |t| t + FRAME);
        if dirty && now >= next_frame {
            let mut sizes = None;
            guard
                .terminal
                .draw(|f| sizes = Some(view::draw(f, &app, now)))?;
            if let Some(s) = sizes {
                app.set_sizes(s);
            }
            last_draw = Some(now);
            dirty = false;
        }
        let frame_due = dirty.then_some(next_frame.max(now));
        let message_ends = app
            .message
            .as_ref()
            .map(|(_, _, at)| *at + MESSAGE_FOR)
            .filter(|t| *t > now);
        tokio::select! {
            event = keys.recv() => match event {
                None => return Ok(()),
                Some(Event::Key(key)) => {
                    for effect in app.on_key(key) {
                        match effect {
                            Effect::Quit => return Ok(()),
                            other => conn.run(other),
                        }
                    }
                    dirty = true;
                }
                Some(Event::Resize(..)) => {
                    guard.terminal.autoresize()?;
                    dirty = true;
                }
                Some(_) => {}
            },
            n = updates.recv_many(&mut batch, 256) => {
                if n == 0 {
                    return Ok(());
                }
                for update in batch.drain(..) {
                    apply(&mut app, &conn, update);
                }
                dirty = true;
            }
            () = sleep_until(frame_due), if frame_due.is_some() => {}
            () = sleep_until(message_ends), if message_ends.is_some() => dirty = true,
            () = &mut stop => return Ok(()),
            _ = &mut interrupt => return Ok(()),
        }
        if app.quit {
            return Ok(());
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    if let Some(t) = t {
        tokio::time::sleep_until(t.into()).await;
    }
}

/// Apply one update of the connection to the model.
fn apply(app: &mut App, conn: &Conn, update: Update) {
    match update {
        Update::Status(report) => app.set_status(report.warden, report.services),
        Update::Down(why) => app.set_down(why),
        Update::Line {
            generation,
            service,
            item,
        } => {
            if generation != conn.generation() {
                return;
            }
            let entry = match item {
                FollowItem::Line(l) => Entry::new(&service, Some(l.stream), l.at, &l.line),
                FollowItem::Dropped { dropped } => Entry::new(
                    &service,
                    None,
                    String::new(),
                    &format!("[warden] {dropped} line(s) skipped: the UI fell behind"),
                ),
            };
            app.push_line(entry);
        }
        Update::FollowEnded {
            generation,
            service,
            why,
        } => {
            if generation == conn.generation() {
                app.push_line(Entry::new(
                    &service,
                    None,
                    String::new(),
                    &format!("[warden ui] no more lines: {why}"),
                ));
            }
        }
        Update::Acted {
            name,
            action,
            result,
        } => {
            app.pending = app.pending.saturating_sub(1);
            match result {
                Ok(s) => {
                    let verb = match action {
                        Action::Start => "started",
                        Action::Stop => "stopped",
                        Action::Restart => "restarted",
                    };
                    let pid = s.pid.map_or_else(String::new, |p| format!(" (pid {p})"));
                    let text = if s.state.as_str() == verb {
                        format!("{name}: {verb}")
                    } else {
                        format!("{name}: {verb}, now {}{pid}", s.state.as_str())
                    };
                    app.say(text, Tone::Good);
                }
                Err(e) => app.say(format!("{name}: {e}"), Tone::Bad),
            }
        }
        Update::Reloaded(outcome) => app.set_reload(outcome),
        Update::Detail(name, detail) => app.set_detail(&name, detail),
    }
}
