//! The pop-ups of `warden ui`: help, a service's details, the reload report, confirmations.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};
use warden_core::util::fmt_duration;

use super::logbuf::printable;
use super::model::Tone;
use super::model::{App, Detail, Popup, ReloadOutcome};
use super::view::{KEYS, Palette, wrap_spans};
use warden_core::proto::State;

/// A rectangle of `w`x`h` centred in `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn kv(key: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!("{key:<12}"),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(value.into()),
    ])
}

fn ms(v: u64) -> String {
    fmt_duration(Duration::from_millis(v))
}

fn detail_lines(app: &App, name: &str, detail: &Detail, now: Instant) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let status = app.services.iter().find(|s| s.name == name);
    if let Some(s) = status {
        let age = now.saturating_duration_since(app.polled_at);
        let mut state = s.state.as_str().to_owned();
        if let Some(pid) = s.pid {
            let _ = write!(state, ", pid {pid}");
        }
        if s.state == State::Backoff
            && let Some(n) = s.next_start_in_ms
        {
            let left = Duration::from_millis(n).saturating_sub(age);
            let _ = write!(state, ", next start in {}", fmt_duration(left));
        }
        let _ = write!(state, ", {} restart(s)", s.restarts);
        out.push(kv("state", state));
        if let Some(r) = &s.reason {
            out.push(kv("reason", printable(r)));
        }
    }
    match detail {
        Detail::Loading => out.push(Line::from("reading its config…")),
        Detail::Error(errors) => {
            out.push(Line::from("cannot read its config:"));
            out.extend(
                errors
                    .iter()
                    .map(|e| Line::from(format!("  {}", printable(e)))),
            );
        }
        Detail::Config(c) => {
            out.push(kv("command", printable(&c.command)));
            if c.shell {
                out.push(kv("", "(run through the shell)"));
            }
            out.push(kv("cwd", printable(&c.cwd)));
            let mut restart = c.restart.clone();
            if c.restart == "on-failure" {
                let codes: Vec<String> = c.success_codes.iter().map(ToString::to_string).collect();
                let _ = write!(restart, " (success: {})", codes.join(", "));
            }
            if let Some(l) = &c.start_limit {
                let _ = write!(
                    restart,
                    "; at most {} starts in {}",
                    l.count,
                    ms(l.window_ms)
                );
            }
            out.push(kv("restart", restart));
            let b = &c.backoff;
            out.push(kv(
                "backoff",
                format!(
                    "{} to {}, x{}, jitter {}, reset after {}",
                    ms(b.initial_ms),
                    ms(b.max_ms),
                    b.factor,
                    b.jitter,
                    ms(b.reset_after_ms)
                ),
            ));
            let stop = if c.stop_command {
                format!("stop_command, then kill after {}", ms(c.stop_timeout_ms))
            } else {
                format!(
                    "{}, then kill after {}",
                    c.stop_signal,
                    ms(c.stop_timeout_ms)
                )
            };
            out.push(kv("stop", stop));
            let env = c
                .env_names
                .iter()
                .filter(|n| *n != "WARDEN_SERVICE")
                .cloned()
                .collect::<Vec<_>>();
            let env = if env.is_empty() {
                "-".to_owned()
            } else {
                format!("{} (values not shown)", env.join(", "))
            };
            out.push(kv("env", printable(&env)));
            out.push(kv("stdout log", printable(&c.log.stdout)));
            let err = if c.log.stderr == "stdout" {
                "(into the stdout log)".to_owned()
            } else {
                c.log.stderr.clone()
            };
            out.push(kv("stderr log", printable(&err)));
        }
    }
    let exits = app.exits.get(name).map(Vec::as_slice).unwrap_or_default();
    if exits.is_empty() {
        out.push(kv("last exits", "-"));
    }
    for (i, e) in exits.iter().rev().enumerate() {
        let what = match (e.code, e.signal) {
            (Some(c), _) => format!("code {c}"),
            (None, Some(s)) => format!("signal {s}"),
            (None, None) => "?".into(),
        };
        let at = e.at.replace('T', " ").trim_end_matches('Z').to_owned();
        let text = format!("{at} UTC  {what} after {}", ms(e.ran_ms));
        out.push(kv(if i == 0 { "last exits" } else { "" }, text));
    }
    out
}

/// Draw a pop-up; returns how many rows of its text do not fit (it scrolls by that much).
pub(super) fn draw_popup(
    frame: &mut Frame<'_>,
    app: &App,
    pal: &Palette,
    popup: &Popup,
    area: Rect,
    now: Instant,
) -> u16 {
    let (title, lines, footer): (String, Vec<Line<'_>>, &str) = match popup {
        Popup::Help => {
            let lines = KEYS
                .iter()
                .map(|(k, what)| {
                    Line::from(vec![
                        Span::styled(
                            format!(" {k:<14}"),
                            Style::default().add_modifier(Modifier::BOLD),
                        ),
                        Span::raw(*what),
                    ])
                })
                .collect();
            (
                " keys ".into(),
                lines,
                " logs: ! marks stderr, ~ a note · Esc closes ",
            )
        }
        Popup::ConfirmStop(name) => (
            " stop ".into(),
            vec![
                Line::from(format!(
                    "Stop {}? It stays stopped until started again.",
                    printable(name)
                )),
                Line::from(""),
                Line::from("y stops it; any other key cancels."),
            ],
            "",
        ),
        Popup::Detail(name, detail) => (
            format!(" {} ", printable(name)),
            detail_lines(app, name, detail, now),
            " Esc closes ",
        ),
        Popup::Reload(outcome) => {
            let lines = match outcome {
                ReloadOutcome::Running => vec![Line::from("reloading…")],
                ReloadOutcome::Done(r) => {
                    let mut l = Vec::new();
                    for (what, list) in [
                        ("added", &r.added),
                        ("removed", &r.removed),
                        ("restarted", &r.restarted),
                        ("unchanged", &r.unchanged),
                    ] {
                        let v = if list.is_empty() {
                            "-".to_owned()
                        } else {
                            list.join(", ")
                        };
                        l.push(kv(what, printable(&v)));
                    }
                    if !r.needs_warden_restart.is_empty() {
                        l.push(kv("need restart", r.needs_warden_restart.join(", ")));
                    }
                    for e in &r.errors {
                        l.push(Line::from(Span::styled(printable(e), pal.tone(Tone::Bad))));
                    }
                    l
                }
                ReloadOutcome::Failed(errors) => {
                    let mut l = vec![Line::from(Span::styled(
                        "nothing was changed:",
                        pal.tone(Tone::Bad),
                    ))];
                    l.extend(errors.iter().map(|e| Line::from(printable(e))));
                    l
                }
            };
            (" reload ".into(), lines, " Esc closes ")
        }
    };
    let width = area.width.saturating_sub(4).min(100);
    let inner_w = usize::from(width.saturating_sub(2)).max(1);
    // Cut into rows here, so that the pop-up knows exactly how far it scrolls.
    let rows: Vec<Line<'_>> = lines
        .into_iter()
        .flat_map(|l| wrap_spans(l.spans, inner_w))
        .collect();
    let height = (rows.len() as u16 + 2).min(area.height.saturating_sub(2));
    let inner_h = height.saturating_sub(2);
    let overflow = (rows.len() as u16).saturating_sub(inner_h);
    let scroll = app.popup_scroll.min(overflow);
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .title(Line::from(title).style(Style::default().add_modifier(Modifier::BOLD)));
    let footer = if overflow > 0 {
        format!(" Up/Down scroll ({scroll}/{overflow}) ·{footer}")
    } else {
        footer.to_owned()
    };
    if !footer.is_empty() {
        block = block.title_bottom(Line::from(footer));
    }
    frame.render_widget(Paragraph::new(rows).scroll((scroll, 0)).block(block), rect);
    overflow
}
