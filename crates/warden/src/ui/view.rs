//! Drawing the [`App`] into a ratatui frame: the header, the service table (columns dropped
//! by priority when the terminal is narrow), the log pane, the status line and the pop-ups.
//! A pure function of the model: rendering tests run it on a `TestBackend`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Cell, Paragraph, Row, Table, Wrap};
use warden_core::logs::Stream;
use warden_core::proto::{ServiceStatus, State};
use warden_core::util::fmt_duration;

use super::logbuf::{Entry, printable};
use super::model::{App, Focus, Input, Link, Sizes, Tone};

/// Below this the screen shows a message instead of the dashboard.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;
/// The widest a NAME column gets; longer names are cut with `…`.
const MAX_NAME: usize = 32;

/// Every key, as the help pop-up (and the README) lists them.
pub const KEYS: &[(&str, &str)] = &[
    ("Up/Down j/k", "select a service (table) or scroll (logs)"),
    ("PgUp/PgDn", "a page up or down in the focused pane"),
    ("Home/End g/G", "first/last service, or oldest line/follow"),
    ("Tab", "focus the table or the logs"),
    ("/", "table: filter by name; logs: search"),
    ("n / N", "older / newer match of the search"),
    ("Enter", "details of the selected service"),
    ("s", "start the selected service"),
    ("x", "stop it (asks first)"),
    ("r", "restart it"),
    ("R", "reload the config"),
    ("o / O", "sort by the next column / reverse"),
    ("a", "logs of all services, interleaved"),
    ("w", "wrap long log lines"),
    ("t", "show the time of each log line"),
    ("f", "follow the logs again"),
    ("Esc", "close, cancel, clear the filter"),
    ("?", "this help"),
    ("q / Ctrl-C", "quit"),
];

pub(super) struct Palette {
    color: bool,
}

impl Palette {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    fn state(&self, s: State) -> Style {
        match s {
            State::Running => self.fg(Color::Green),
            State::Failed => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            State::Backoff | State::Starting | State::Stopping | State::Pending => {
                self.fg(Color::Yellow)
            }
            State::Stopped | State::Exited => self.fg(Color::DarkGray),
        }
    }

    pub(super) fn tone(&self, t: Tone) -> Style {
        match t {
            Tone::Info => Style::default(),
            Tone::Good => self.fg(Color::Green),
            Tone::Bad => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }
}

/// Draw the whole screen; returns the sizes the model pages by.
pub fn draw(frame: &mut Frame<'_>, app: &App, now: Instant) -> Sizes {
    let area = frame.area();
    let pal = Palette { color: app.color };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = vec![
            Line::from("The terminal is too small for warden ui"),
            Line::from(format!(
                "({}x{}; it needs at least {MIN_WIDTH}x{MIN_HEIGHT}).",
                area.width, area.height
            )),
            Line::from("Make it larger, or press q to quit."),
        ];
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return Sizes::default();
    }
    let body = area.height.saturating_sub(2);
    let wanted = app.view.len() as u16 + 3;
    let table_h = wanted.clamp(4, (body * 2 / 5).max(6));
    let [header, table, logs, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(table_h),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, app, &pal, header);
    draw_table(frame, app, &pal, table, now);
    draw_logs(frame, app, &pal, logs);
    draw_status(frame, app, &pal, status, now);
    let popup_overflow = match &app.popup {
        Some(popup) => super::popup::draw_popup(frame, app, &pal, popup, area, now),
        None => 0,
    };
    Sizes {
        table_rows: usize::from(table.height.saturating_sub(3)).max(1),
        log_rows: usize::from(logs.height.saturating_sub(2)).max(1),
        popup_overflow,
    }
}

fn draw_header(frame: &mut Frame<'_>, app: &App, pal: &Palette, area: Rect) {
    let mut spans = vec![Span::styled(
        " warden ",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    match &app.link {
        Link::Live => spans.push(Span::styled(
            "live",
            pal.fg(Color::Green).add_modifier(Modifier::BOLD),
        )),
        Link::Connecting => spans.push(Span::styled(
            format!("connecting to {}…", app.endpoint),
            pal.fg(Color::Yellow),
        )),
        Link::Down(why) => spans.push(Span::styled(
            format!("DOWN: {why}; retrying"),
            pal.fg(Color::Red).add_modifier(Modifier::BOLD),
        )),
    }
    if let Some(w) = &app.warden {
        spans.push(Span::raw(format!(
            "  pid {}  up {}  ",
            w.pid,
            fmt_duration(Duration::from_millis(w.uptime_ms))
        )));
        let counts = app.counts();
        for (i, (state, n)) in counts.iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw(", "));
            }
            spans.push(Span::styled(
                format!("{n} {}", state.as_str()),
                pal.state(*state),
            ));
        }
        let used: usize = spans.iter().map(Span::width).sum();
        let room = usize::from(area.width).saturating_sub(used + 2);
        if room > 8 {
            spans.push(Span::raw("  "));
            spans.push(Span::styled(
                shorten_left(&w.config, room),
                pal.fg(Color::DarkGray),
            ));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// `…/the/end` of `s` in at most `width` columns.
fn shorten_left(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_owned();
    }
    let tail: String = s.chars().skip(n + 1 - width).collect();
    format!("…{tail}")
}

/// `s` in at most `width` columns, cut with `…`.
fn shorten(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The table's columns, in screen order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Name,
    State,
    Pid,
    Uptime,
    Restarts,
    LastExit,
    Health,
    Cpu,
    Mem,
    Reason,
}

impl Col {
    fn title(self) -> &'static str {
        match self {
            Col::Name => "NAME",
            Col::State => "STATE",
            Col::Pid => "PID",
            Col::Uptime => "UPTIME",
            Col::Restarts => "RESTARTS",
            Col::LastExit => "LAST EXIT",
            Col::Health => "HEALTH",
            Col::Cpu => "CPU",
            Col::Mem => "MEM",
            Col::Reason => "REASON",
        }
    }
}

const ORDER: [Col; 10] = [
    Col::Name,
    Col::State,
    Col::Pid,
    Col::Uptime,
    Col::Restarts,
    Col::LastExit,
    Col::Health,
    Col::Cpu,
    Col::Mem,
    Col::Reason,
];

/// Dropped first when the terminal is narrow: the first of this list.
const DROP_ORDER: [Col; 5] = [
    Col::Reason,
    Col::Cpu,
    Col::Mem,
    Col::LastExit,
    Col::Restarts,
];

/// The text of one cell.
fn cell(s: &ServiceStatus, col: Col, age: Duration) -> String {
    match col {
        Col::Name => printable(&s.name),
        Col::State => s.state.as_str().to_owned(),
        Col::Pid => s.pid.map_or_else(|| "-".into(), |p| p.to_string()),
        Col::Uptime => s
            .uptime_ms
            .map_or_else(|| "-".into(), |u| fmt_duration(Duration::from_millis(u))),
        Col::Restarts => s.restarts.to_string(),
        Col::LastExit => crate::render::last_exit(s),
        Col::Health => s
            .health
            .map_or_else(|| "-".into(), |h| h.as_str().to_owned()),
        Col::Cpu => s
            .cpu_percent
            .map_or_else(|| "-".into(), |c| format!("{c:.1}%")),
        Col::Mem => crate::render::mem(s),
        Col::Reason => crate::render::reason(s, age),
    }
}

/// The least width at which REASON is worth showing: the others make room for it.
const READABLE_REASON: usize = 12;

/// Which columns fit in `width`, and how wide each is.
fn columns(app: &App, width: usize, age: Duration) -> Vec<(Col, usize)> {
    let rows: Vec<&ServiceStatus> = app.view.iter().map(|&i| &app.services[i]).collect();
    let natural = |col: Col| {
        rows.iter()
            .map(|s| cell(s, col, age).chars().count())
            .max()
            .unwrap_or(0)
            .max(col.title().len())
    };
    let mut cols: Vec<(Col, usize)> = ORDER
        .iter()
        .map(|&c| {
            let w = match c {
                Col::Name => natural(c).min(MAX_NAME),
                Col::State => 8,
                Col::Reason => natural(c).max(10),
                _ => natural(c),
            };
            (c, w)
        })
        .collect();
    let total = |cols: &[(Col, usize)]| cols.iter().map(|(_, w)| w + 1).sum::<usize>();
    let reason = cols.pop();
    if total(&cols) + reason.map_or(0, |(_, w)| w + 1) > width {
        // The others give way by priority (CPU and MEM first) until the rest fits with
        // room for a readable REASON, when some service has one; REASON goes last.
        let any_reason = rows.iter().any(|s| !cell(s, Col::Reason, age).is_empty());
        let room = if any_reason { READABLE_REASON + 1 } else { 0 };
        for drop in &DROP_ORDER[1..] {
            if total(&cols) + room <= width {
                break;
            }
            cols.retain(|(c, _)| c != drop);
        }
    }
    // REASON takes what is left, if that is enough to read.
    let left = width.saturating_sub(total(&cols));
    if let Some((c, w)) = reason
        && left > READABLE_REASON
    {
        cols.push((c, w.min(left - 1)));
    }
    // Still too wide: the name gives way, down to 8 columns.
    let over = total(&cols).saturating_sub(width);
    if over > 0
        && let Some(name) = cols.iter_mut().find(|(c, _)| *c == Col::Name)
    {
        name.1 = name.1.saturating_sub(over).max(8);
    }
    cols
}

fn pane_block<'a>(title: Line<'a>, focused: bool, pal: &Palette) -> Block<'a> {
    let block = Block::default().borders(Borders::ALL).title(title);
    if focused {
        block
            .border_type(BorderType::Thick)
            .border_style(pal.fg(Color::Cyan))
    } else {
        block.border_style(pal.fg(Color::DarkGray))
    }
}

fn draw_table(frame: &mut Frame<'_>, app: &App, pal: &Palette, area: Rect, now: Instant) {
    // While warden does not answer, the rows are its last answer, frozen (no countdown),
    // dimmed, and the title says so: they are not the services' state now.
    let stale = matches!(app.link, Link::Down(_)) && app.warden.is_some();
    let since = now.saturating_duration_since(app.polled_at);
    let age = if stale { Duration::ZERO } else { since };
    let mut title = if stale {
        format!(
            " services {}/{} · warden is not answering: as last seen {} ago ",
            app.view.len(),
            app.services.len(),
            fmt_duration(since)
        )
    } else {
        format!(
            " services {}/{} · sort: {}{} ",
            app.view.len(),
            app.services.len(),
            app.sort.label(),
            if app.reverse { " (reversed)" } else { "" }
        )
    };
    if !app.filter.is_empty() {
        let _ = write!(title, "· filter: {} ", printable(&app.filter));
    }
    let block = pane_block(Line::from(title), app.focus == Focus::Table, pal);
    let inner = usize::from(area.width.saturating_sub(2));
    let cols = columns(app, inner, age);
    let header = Row::new(
        cols.iter()
            .map(|(c, _)| Cell::from(c.title()))
            .collect::<Vec<_>>(),
    )
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows_room = usize::from(area.height.saturating_sub(3));
    let selected = app.selected_row();
    let rows: Vec<Row<'_>> = app
        .view
        .iter()
        .enumerate()
        .skip(app.table_offset)
        .take(rows_room)
        .map(|(row, &i)| {
            let s = &app.services[i];
            let cells: Vec<Cell<'_>> = cols
                .iter()
                .map(|&(c, w)| {
                    let text = shorten(&cell(s, c, age), w);
                    match c {
                        Col::State if !stale => Cell::from(Span::styled(text, pal.state(s.state))),
                        _ => Cell::from(text),
                    }
                })
                .collect();
            let mut r = Row::new(cells);
            if stale {
                r = r.style(pal.fg(Color::DarkGray));
            }
            if Some(row) == selected {
                r = r.style(Style::default().add_modifier(Modifier::REVERSED));
            }
            r
        })
        .collect();
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|(_, w)| Constraint::Length(*w as u16))
        .collect();
    let table = Table::new(rows, widths).header(header).block(block);
    frame.render_widget(table, area);
    if app.view.is_empty() {
        let msg = match (&app.link, app.services.is_empty()) {
            (Link::Live, true) => "no services in the config",
            (Link::Live, false) => "no service matches the filter (Esc clears it)",
            _ => "",
        };
        let inner = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 1,
        };
        if inner.height > 0 && area.height > 3 {
            frame.render_widget(Paragraph::new(msg), inner);
        }
    }
}

/// The prefix and text of one log line, as spans.
fn log_spans<'a>(
    app: &App,
    pal: &Palette,
    e: &'a Entry,
    name_w: usize,
    current: bool,
) -> Vec<Span<'a>> {
    let mut spans = Vec::new();
    match e.stream {
        Some(Stream::Err) => spans.push(Span::styled("!", pal.fg(Color::Red))),
        Some(Stream::Out) => spans.push(Span::raw(" ")),
        None => spans.push(Span::styled("~", pal.fg(Color::Yellow))),
    }
    spans.push(Span::raw(" "));
    if app.timestamps {
        // 2026-12-01T08:01:02.123Z → 08:01:02.123
        let t = e.at.get(11..23).unwrap_or(&e.at);
        spans.push(Span::styled(format!("{t} "), pal.fg(Color::DarkGray)));
    }
    if app.all_logs {
        spans.push(Span::styled(
            format!("{:name_w$} | ", shorten(&e.service, name_w)),
            pal.fg(Color::Cyan),
        ));
    }
    let base = match e.stream {
        None => pal.fg(Color::Yellow),
        _ => Style::default(),
    };
    if app.search.is_empty() {
        spans.push(Span::styled(e.line.as_str(), base));
        return spans;
    }
    // Highlight the matches (ASCII case-insensitive, so byte offsets hold).
    let hay = e.line.to_ascii_lowercase();
    let needle = app.search.to_ascii_lowercase();
    let hit = if current {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    } else if pal.color {
        Style::default().fg(Color::Black).bg(Color::Yellow)
    } else {
        Style::default().add_modifier(Modifier::UNDERLINED)
    };
    let mut at = 0;
    while let Some(pos) = hay[at..].find(&needle) {
        let start = at + pos;
        let end = start + needle.len();
        if start > at {
            spans.push(Span::styled(&e.line[at..start], base));
        }
        spans.push(Span::styled(&e.line[start..end], hit));
        at = end;
    }
    if at < e.line.len() {
        spans.push(Span::styled(&e.line[at..], base));
    }
    spans
}

fn char_width(c: char) -> usize {
    if c.is_ascii() {
        1
    } else {
        let mut buf = [0u8; 4];
        Span::raw(&*c.encode_utf8(&mut buf)).width()
    }
}

/// Cut a line of spans into rows of at most `width` columns.
pub(super) fn wrap_spans(spans: Vec<Span<'_>>, width: usize) -> Vec<Line<'static>> {
    let mut rows = Vec::new();
    let mut row: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for span in spans {
        let mut piece = String::new();
        for c in span.content.chars() {
            let w = char_width(c);
            if used + w > width && used > 0 {
                if !piece.is_empty() {
                    row.push(Span::styled(std::mem::take(&mut piece), span.style));
                }
                rows.push(Line::from(std::mem::take(&mut row)));
                used = 0;
            }
            piece.push(c);
            used += w;
        }
        if !piece.is_empty() {
            row.push(Span::styled(piece, span.style));
        }
    }
    rows.push(Line::from(row));
    rows
}

fn draw_logs(frame: &mut Frame<'_>, app: &App, pal: &Palette, area: Rect) {
    let spec = app.follow_spec();
    let mut title = if app.all_logs {
        format!(" logs: all services ({}) ", spec.len())
    } else {
        match &app.selected {
            Some(n) => format!(" logs: {} ", printable(n)),
            None => " logs ".to_owned(),
        }
    };
    let mut flags = Vec::new();
    if app.logs.following() {
        flags.push("following".to_owned());
    } else {
        flags.push(format!("PAUSED +{} (End)", app.logs.scroll()));
    }
    if app.wrap {
        flags.push("wrap".into());
    }
    if !app.search.is_empty() {
        flags.push(format!("search: {} (n/N)", printable(&app.search)));
    }
    let _ = write!(title, "· {} ", flags.join(" · "));
    let block = pane_block(Line::from(title), app.focus == Focus::Logs, pal);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = usize::from(inner.height);
    let width = usize::from(inner.width);
    if app.logs.is_empty() {
        let msg = if spec.is_empty() {
            "no service selected"
        } else {
            "no output yet"
        };
        frame.render_widget(
            Paragraph::new(Span::styled(msg, pal.fg(Color::DarkGray))),
            inner,
        );
        return;
    }
    let name_w = spec
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .min(20);
    let mut lines: Vec<Line<'_>> = Vec::new();
    let mut i = app.logs.bottom();
    while let Some(idx) = i {
        if lines.len() >= height {
            break;
        }
        let Some(e) = app.logs.get(idx) else { break };
        let spans = log_spans(app, pal, e, name_w, app.found == Some(idx));
        if app.wrap {
            let mut rows = wrap_spans(spans, width.max(1));
            rows.reverse();
            lines.extend(rows);
        } else {
            lines.push(Line::from(spans));
        }
        i = idx.checked_sub(1);
    }
    lines.truncate(height);
    lines.reverse();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_status(frame: &mut Frame<'_>, app: &App, pal: &Palette, area: Rect, now: Instant) {
    let line = match &app.input {
        Some(Input::Filter(t)) => Line::from(vec![
            Span::styled(" filter: ", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(printable(t)),
            Span::styled("_", Style::default().add_modifier(Modifier::SLOW_BLINK)),
            Span::raw("   Enter keeps it, Esc clears it"),
        ]),
        Some(Input::Search(t)) => Line::from(vec![
            Span::styled(" search: ", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(printable(t)),
            Span::styled("_", Style::default().add_modifier(Modifier::SLOW_BLINK)),
            Span::raw("   Enter searches, Esc cancels"),
        ]),
        None => match app.current_message(now) {
            Some((text, tone)) => Line::from(Span::styled(
                format!(" {}", printable(text)),
                pal.tone(tone),
            )),
            None => Line::from(Span::styled(
                hints(usize::from(area.width)),
                pal.fg(Color::DarkGray),
            )),
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The key hints of the status line, as many as fit in `width`.
fn hints(width: usize) -> String {
    const HINTS: &[&str] = &[
        "? help",
        "q quit",
        "s start",
        "x stop",
        "r restart",
        "R reload",
        "/ filter",
        "Tab logs",
        "Enter details",
    ];
    let mut out = String::new();
    for h in HINTS {
        if out.chars().count() + h.len() + 2 > width {
            break;
        }
        out.push(' ');
        out.push_str(h);
        out.push(' ');
    }
    out
}
