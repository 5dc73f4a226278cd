//! The view model of `warden ui`: what the screen shows and what each key does, with no
//! terminal and no connection, so that it is tested as plain data. Keys come in as
//! crossterm's [`KeyEvent`]; what needs the API goes out as [`Effect`]s.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use warden_core::engine::{Action, ReloadReport};
use warden_core::proto::config::ServiceConfigView;
use warden_core::proto::{LastExit, ServiceStatus, State, WardenInfo};

use super::logbuf::{Entry, LogBuf};

/// How long an action's result stays in the status line.
pub const MESSAGE_FOR: Duration = Duration::from_secs(10);
/// Exits remembered per service for the detail pop-up.
pub const EXITS_KEPT: usize = 5;
/// Services followed at once in the all-services log view.
pub const MAX_FOLLOWED: usize = 64;

/// What the UI asks of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Quit,
    Act(String, Action),
    Reload,
    /// Fetch the config view of this service for the detail pop-up.
    Detail(String),
}

/// The state of the connection to warden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Live,
    /// warden does not answer: why, and since when.
    Down(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Table,
    Logs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Config,
    Name,
    State,
    Uptime,
    Restarts,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Config => "config order",
            SortKey::Name => "name",
            SortKey::State => "state",
            SortKey::Uptime => "uptime",
            SortKey::Restarts => "restarts",
        }
    }

    fn next(self) -> SortKey {
        match self {
            SortKey::Config => SortKey::Name,
            SortKey::Name => SortKey::State,
            SortKey::State => SortKey::Uptime,
            SortKey::Uptime => SortKey::Restarts,
            SortKey::Restarts => SortKey::Config,
        }
    }
}

/// A line being typed at the bottom of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Filter(String),
    Search(String),
}

/// What the detail pop-up shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Loading,
    Config(Box<ServiceConfigView>),
    Error(Vec<String>),
}

/// The outcome of `R`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Running,
    Done(ReloadReport),
    /// The config's errors (`FILE:LINE:COL: message`), or why the reload failed.
    Failed(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Help,
    Detail(String, Detail),
    Reload(ReloadOutcome),
    ConfirmStop(String),
}

/// Whether a status-line message reports success or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Good,
    Bad,
}

/// Which logs are followed: the services, in order.
pub type FollowSpec = Vec<String>;

/// The sizes the last frame had, for paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub table_rows: usize,
    pub log_rows: usize,
    /// How far the open pop-up's text can scroll (0: it fits).
    pub popup_overflow: u16,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            table_rows: 10,
            log_rows: 10,
            popup_overflow: 0,
        }
    }
}

pub struct App {
    /// Where warden is (a socket path, a pipe, `HOST:PORT`).
    pub endpoint: String,
    pub link: Link,
    pub warden: Option<WardenInfo>,
    /// In config order, as the last status answer had them.
    pub services: Vec<ServiceStatus>,
    /// When that answer came (for countdowns between answers).
    pub polled_at: Instant,
    /// Exits seen while watching, newest last, per service.
    pub exits: BTreeMap<String, Vec<LastExit>>,
    pub sort: SortKey,
    pub reverse: bool,
    pub filter: String,
    /// Indices into `services`: filtered and sorted.
    pub view: Vec<usize>,
    pub selected: Option<String>,
    /// The first table row on screen.
    pub table_offset: usize,
    pub focus: Focus,
    pub input: Option<Input>,
    pub popup: Option<Popup>,
    /// The first line of the pop-up's text on screen.
    pub popup_scroll: u16,
    pub logs: LogBuf,
    pub all_logs: bool,
    pub wrap: bool,
    pub timestamps: bool,
    pub search: String,
    /// The line of the current match.
    pub found: Option<usize>,
    pub message: Option<(String, Tone, Instant)>,
    /// Actions sent and not answered yet.
    pub pending: usize,
    pub color: bool,
    pub sizes: Sizes,
    pub quit: bool,
}

impl App {
    pub fn new(endpoint: String, color: bool) -> App {
        App {
            endpoint,
            link: Link::Connecting,
            warden: None,
            services: Vec::new(),
            polled_at: Instant::now(),
            exits: BTreeMap::new(),
            sort: SortKey::Config,
            reverse: false,
            filter: String::new(),
            view: Vec::new(),
            selected: None,
            table_offset: 0,
            focus: Focus::Table,
            input: None,
            popup: None,
            popup_scroll: 0,
            logs: LogBuf::default(),
            all_logs: false,
            wrap: false,
            timestamps: false,
            search: String::new(),
            found: None,
            message: None,
            pending: 0,
            color,
            sizes: Sizes::default(),
            quit: false,
        }
    }

    // -----------------------------------------------------------------------------------
    // Updates from the connection

    /// A fresh status answer.
    pub fn set_status(&mut self, warden: WardenInfo, services: Vec<ServiceStatus>) {
        for s in &services {
            if let Some(exit) = &s.last_exit {
                let seen = self.exits.entry(s.name.clone()).or_default();
                if seen.last() != Some(exit) {
                    seen.push(exit.clone());
                    if seen.len() > EXITS_KEPT {
                        seen.remove(0);
                    }
                }
            }
        }
        self.exits
            .retain(|name, _| services.iter().any(|s| &s.name == name));
        self.warden = Some(warden);
        self.services = services;
        self.polled_at = Instant::now();
        self.link = Link::Live;
        self.rebuild_view();
    }

    pub fn set_down(&mut self, why: String) {
        self.link = Link::Down(why);
    }

    pub fn say(&mut self, text: impl Into<String>, tone: Tone) {
        self.message = Some((text.into(), tone, Instant::now()));
    }

    /// The message of the status line, if still current.
    /// (`web: stopping…` stays while an action is pending, however long a stop takes.)
    pub fn current_message(&self, now: Instant) -> Option<(&str, Tone)> {
        self.message
            .as_ref()
            .filter(|(_, tone, at)| {
                (self.pending > 0 && *tone == Tone::Info) || now.duration_since(*at) < MESSAGE_FOR
            })
            .map(|(t, tone, _)| (t.as_str(), *tone))
    }

    pub fn push_line(&mut self, entry: Entry) {
        self.logs.push(entry);
    }

    /// The services whose logs the pane shows.
    pub fn follow_spec(&self) -> FollowSpec {
        if self.all_logs {
            // In config order, so that sorting the table does not start the streams anew.
            let needle = self.filter.to_lowercase();
            self.services
                .iter()
                .filter(|s| s.name.to_lowercase().contains(&needle))
                .take(MAX_FOLLOWED)
                .map(|s| s.name.clone())
                .collect()
        } else {
            self.selected.iter().cloned().collect()
        }
    }

    pub fn set_detail(&mut self, name: &str, detail: Detail) {
        if let Some(Popup::Detail(n, d)) = &mut self.popup
            && n == name
        {
            *d = detail;
        }
    }

    pub fn set_reload(&mut self, outcome: ReloadOutcome) {
        match &outcome {
            ReloadOutcome::Done(r) => {
                let tone = if r.errors.is_empty() {
                    Tone::Good
                } else {
                    Tone::Bad
                };
                self.say(format!("reloaded: {}", reload_summary(r)), tone);
            }
            ReloadOutcome::Failed(e) => {
                self.say(
                    format!("reload failed: {}", e.first().map_or("", String::as_str)),
                    Tone::Bad,
                );
            }
            ReloadOutcome::Running => {}
        }
        if matches!(self.popup, Some(Popup::Reload(_))) {
            self.popup = Some(Popup::Reload(outcome));
        }
    }

    // -----------------------------------------------------------------------------------
    // The table

    /// Recompute the filtered, sorted rows; keep the selection on the same service.
    pub fn rebuild_view(&mut self) {
        let needle = self.filter.to_lowercase();
        let mut view: Vec<usize> = (0..self.services.len())
            .filter(|&i| self.services[i].name.to_lowercase().contains(&needle))
            .collect();
        let s = &self.services;
        match self.sort {
            SortKey::Config => {}
            SortKey::Name => view.sort_by(|&a, &b| s[a].name.cmp(&s[b].name)),
            SortKey::State => view.sort_by_key(|&i| state_rank(s[i].state)),
            SortKey::Uptime => view.sort_by_key(|&i| std::cmp::Reverse(s[i].uptime_ms)),
            SortKey::Restarts => view.sort_by_key(|&i| std::cmp::Reverse(s[i].restarts)),
        }
        if self.reverse {
            view.reverse();
        }
        self.view = view;
        let still_there = self
            .selected
            .as_ref()
            .is_some_and(|n| self.view.iter().any(|&i| &self.services[i].name == n));
        if !still_there {
            self.selected = self.view.first().map(|&i| self.services[i].name.clone());
        }
        self.keep_selection_visible();
    }

    /// The row of the selected service in the view.
    pub fn selected_row(&self) -> Option<usize> {
        let name = self.selected.as_ref()?;
        self.view
            .iter()
            .position(|&i| &self.services[i].name == name)
    }

    fn select_row(&mut self, row: usize) {
        if let Some(&i) = self.view.get(row) {
            self.selected = Some(self.services[i].name.clone());
        }
        self.keep_selection_visible();
    }

    fn move_selection(&mut self, delta: isize) {
        if self.view.is_empty() {
            return;
        }
        let row = self.selected_row().unwrap_or(0) as isize + delta;
        self.select_row(row.clamp(0, self.view.len() as isize - 1) as usize);
    }

    pub fn keep_selection_visible(&mut self) {
        let rows = self.sizes.table_rows.max(1);
        let max_offset = self.view.len().saturating_sub(rows);
        if let Some(row) = self.selected_row() {
            if row < self.table_offset {
                self.table_offset = row;
            } else if row >= self.table_offset + rows {
                self.table_offset = row + 1 - rows;
            }
        }
        self.table_offset = self.table_offset.min(max_offset);
    }

    pub fn set_sizes(&mut self, sizes: Sizes) {
        if sizes != self.sizes {
            self.sizes = sizes;
            self.keep_selection_visible();
        }
    }

    /// How many services are in each state, in a fixed order.
    pub fn counts(&self) -> Vec<(State, usize)> {
        let mut out = Vec::new();
        for state in STATE_ORDER {
            let n = self.services.iter().filter(|s| s.state == state).count();
            if n > 0 {
                out.push((state, n));
            }
        }
        out
    }

    // -----------------------------------------------------------------------------------
    // Keys

    /// Handle a key; returns what the connection must do.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c' | 'C')) {
            self.quit = true;
            return vec![Effect::Quit];
        }
        if self.input.is_some() {
            self.on_input_key(key);
            return Vec::new();
        }
        if let Some(popup) = self.popup.clone() {
            return self.on_popup_key(&popup, key);
        }
        let effects = self.on_normal_key(key);
        if self.popup.is_some() {
            self.popup_scroll = 0;
        }
        effects
    }

    fn on_input_key(&mut self, key: KeyEvent) {
        let Some(input) = &mut self.input else {
            return;
        };
        let text = match input {
            Input::Filter(t) | Input::Search(t) => t,
        };
        match key.code {
            KeyCode::Char(c) => text.push(c),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Enter => {
                let done = self.input.take();
                if let Some(Input::Search(t)) = done {
                    self.search = t;
                    self.found = None;
                    self.next_match(true);
                }
                return;
            }
            KeyCode::Esc => {
                if let Some(Input::Filter(_)) = self.input.take() {
                    self.filter.clear();
                    self.rebuild_view();
                }
                return;
            }
            _ => return,
        }
        // The filter applies while typing.
        if let Some(Input::Filter(t)) = &self.input {
            self.filter = t.clone();
            self.rebuild_view();
        }
    }

    fn on_popup_key(&mut self, popup: &Popup, key: KeyEvent) -> Vec<Effect> {
        if let Popup::ConfirmStop(name) = popup {
            let name = name.clone();
            self.popup = None;
            if matches!(key.code, KeyCode::Char('y' | 'Y')) {
                return self.act(&name, Action::Stop);
            }
            self.say(format!("{name}: not stopped"), Tone::Info);
        } else {
            let max = self.sizes.popup_overflow;
            match key.code {
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q' | '?') => self.popup = None,
                KeyCode::Up | KeyCode::Char('k') => {
                    self.popup_scroll = self.popup_scroll.saturating_sub(1);
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    self.popup_scroll = (self.popup_scroll + 1).min(max);
                }
                KeyCode::PageUp => self.popup_scroll = self.popup_scroll.saturating_sub(10),
                KeyCode::PageDown => self.popup_scroll = (self.popup_scroll + 10).min(max),
                KeyCode::Home => self.popup_scroll = 0,
                KeyCode::End => self.popup_scroll = max,
                _ => {}
            }
        }
        Vec::new()
    }

    fn act(&mut self, name: &str, action: Action) -> Vec<Effect> {
        self.pending += 1;
        let verb = match action {
            Action::Start => "starting",
            Action::Stop => "stopping",
            Action::Restart => "restarting",
        };
        self.say(format!("{name}: {verb}…"), Tone::Info);
        vec![Effect::Act(name.to_owned(), action)]
    }

    fn on_normal_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let page = match self.focus {
            Focus::Table => self.sizes.table_rows.max(1),
            Focus::Logs => self.sizes.log_rows.max(1),
        };
        let selected = self.selected.clone();
        match key.code {
            KeyCode::Char('q') => {
                self.quit = true;
                return vec![Effect::Quit];
            }
            KeyCode::Char('?') => self.popup = Some(Popup::Help),
            KeyCode::Esc => {
                self.message = None;
                if !self.filter.is_empty() {
                    self.filter.clear();
                    self.rebuild_view();
                } else if !self.search.is_empty() {
                    self.search.clear();
                    self.found = None;
                }
            }
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Table => Focus::Logs,
                    Focus::Logs => Focus::Table,
                };
            }
            KeyCode::Char('/') => {
                self.input = Some(match self.focus {
                    Focus::Table => Input::Filter(self.filter.clone()),
                    Focus::Logs => Input::Search(String::new()),
                });
            }
            KeyCode::Char('n') => self.next_match(true),
            KeyCode::Char('N') => self.next_match(false),
            KeyCode::Up | KeyCode::Char('k') => self.scroll(-1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll(1),
            KeyCode::PageUp => self.scroll(-(page as isize)),
            KeyCode::PageDown => self.scroll(page as isize),
            KeyCode::Home | KeyCode::Char('g') => match self.focus {
                Focus::Table => self.select_row(0),
                Focus::Logs => self.logs.top(),
            },
            KeyCode::End | KeyCode::Char('G') => match self.focus {
                Focus::Table => self.select_row(self.view.len().saturating_sub(1)),
                Focus::Logs => self.logs.follow(),
            },
            KeyCode::Char('f') => self.logs.follow(),
            KeyCode::Enter => {
                if let Some(name) = selected {
                    self.popup = Some(Popup::Detail(name.clone(), Detail::Loading));
                    return vec![Effect::Detail(name)];
                }
            }
            KeyCode::Char('s') => {
                if let Some(name) = selected {
                    return self.act(&name, Action::Start);
                }
            }
            KeyCode::Char('r') => {
                if let Some(name) = selected {
                    return self.act(&name, Action::Restart);
                }
            }
            KeyCode::Char('x') => {
                if let Some(name) = selected {
                    self.popup = Some(Popup::ConfirmStop(name));
                }
            }
            KeyCode::Char('R') => {
                self.popup = Some(Popup::Reload(ReloadOutcome::Running));
                return vec![Effect::Reload];
            }
            KeyCode::Char('o') => {
                self.sort = self.sort.next();
                self.rebuild_view();
            }
            KeyCode::Char('O') => {
                self.reverse = !self.reverse;
                self.rebuild_view();
            }
            KeyCode::Char('a') => self.all_logs = !self.all_logs,
            KeyCode::Char('w') => self.wrap = !self.wrap,
            KeyCode::Char('t') => self.timestamps = !self.timestamps,
            _ => {}
        }
        Vec::new()
    }

    /// Up (negative) or down in the focused pane.
    fn scroll(&mut self, delta: isize) {
        match self.focus {
            Focus::Table => self.move_selection(delta),
            Focus::Logs if delta < 0 => self.logs.up(delta.unsigned_abs()),
            Focus::Logs => self.logs.down(delta.unsigned_abs()),
        }
    }

    /// Jump to the next match of the search, older (`n`) or newer (`N`).
    fn next_match(&mut self, older: bool) {
        if self.search.is_empty() {
            self.say("no search: press Tab for the logs, then /", Tone::Info);
            return;
        }
        let from = self.found.or_else(|| self.logs.bottom().map(|b| b + 1));
        if let Some(i) = self.logs.find(&self.search, from, older) {
            self.found = Some(i);
            self.logs.show(i, self.sizes.log_rows / 2);
        } else {
            let which = if older { "older" } else { "newer" };
            self.say(
                format!("no {which} line matches {:?}", self.search),
                Tone::Info,
            );
        }
    }

    /// The followed services changed (selection, all-services toggle): a new pane.
    pub fn reset_logs(&mut self) {
        self.logs.clear();
        self.found = None;
    }
}

/// The order of states in the header's counts and for sorting by state: trouble first.
const STATE_ORDER: [State; 8] = [
    State::Failed,
    State::Backoff,
    State::Exited,
    State::Stopping,
    State::Starting,
    State::Pending,
    State::Running,
    State::Stopped,
];

fn state_rank(s: State) -> usize {
    STATE_ORDER.iter().position(|&x| x == s).unwrap_or(0)
}

/// `restarted worker; 1 unchanged`, like `warden reload` says it.
pub fn reload_summary(r: &ReloadReport) -> String {
    let mut parts = Vec::new();
    for (what, list) in [
        ("added", &r.added),
        ("removed", &r.removed),
        ("restarted", &r.restarted),
    ] {
        if !list.is_empty() {
            parts.push(format!("{what} {}", list.join(", ")));
        }
    }
    if !r.unchanged.is_empty() {
        parts.push(format!("{} unchanged", r.unchanged.len()));
    }
    if !r.errors.is_empty() {
        parts.push(format!("{} failed", r.errors.len()));
    }
    if parts.is_empty() {
        "nothing to do".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use warden_core::logs::Stream;

    pub fn svc(name: &str, state: State) -> ServiceStatus {
        ServiceStatus::new(name, state)
    }

    pub fn info() -> WardenInfo {
        WardenInfo {
            version: "0.1.0".into(),
            pid: 4310,
            config: "/srv/app/warden.toml".into(),
            uptime_ms: 7_380_000,
            tracking: warden_core::proto::Tracking::default(),
        }
    }

    pub fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    pub fn ch(c: char) -> KeyEvent {
        key(KeyCode::Char(c))
    }

    fn app(names: &[(&str, State)]) -> App {
        let mut a = App::new("test".into(), false);
        a.set_status(
            info(),
            names.iter().map(|(n, s)| svc(n, *s)).collect::<Vec<_>>(),
        );
        a
    }

    fn shown(a: &App) -> Vec<&str> {
        a.view
            .iter()
            .map(|&i| a.services[i].name.as_str())
            .collect()
    }

    #[test]
    fn sorting_cycles_and_reverses_and_keeps_the_selection() {
        let mut a = app(&[
            ("web", State::Running),
            ("api", State::Failed),
            ("db", State::Backoff),
        ]);
        assert_eq!(shown(&a), ["web", "api", "db"]);
        a.on_key(ch('j'));
        assert_eq!(a.selected.as_deref(), Some("api"));
        a.on_key(ch('o'));
        assert_eq!(a.sort, SortKey::Name);
        assert_eq!(shown(&a), ["api", "db", "web"]);
        assert_eq!(
            a.selected.as_deref(),
            Some("api"),
            "selection follows the service"
        );
        a.on_key(ch('o'));
        assert_eq!(
            shown(&a),
            ["api", "db", "web"],
            "by state: failed, backoff, running"
        );
        a.on_key(ch('O'));
        assert_eq!(shown(&a), ["web", "db", "api"]);
    }

    #[test]
    fn the_filter_applies_while_typing_and_esc_clears_it() {
        let mut a = app(&[
            ("web-1", State::Running),
            ("web-2", State::Running),
            ("worker", State::Running),
        ]);
        a.on_key(ch('/'));
        assert!(matches!(a.input, Some(Input::Filter(_))));
        a.on_key(ch('W'));
        a.on_key(ch('e'));
        assert_eq!(shown(&a), ["web-1", "web-2"], "case-insensitive");
        a.on_key(key(KeyCode::Enter));
        assert!(a.input.is_none());
        assert_eq!(a.filter, "We");
        a.on_key(ch('j'));
        assert_eq!(a.selected.as_deref(), Some("web-2"));
        // Keys for actions act on the selection, not on typed text.
        assert_eq!(
            a.on_key(ch('r')),
            [Effect::Act("web-2".into(), Action::Restart)]
        );
        a.on_key(key(KeyCode::Esc));
        assert_eq!(a.filter, "");
        assert_eq!(shown(&a).len(), 3);
        // Filtering away the selection selects the first row left.
        a.on_key(ch('/'));
        for c in "ork".chars() {
            a.on_key(ch(c));
        }
        assert_eq!(a.selected.as_deref(), Some("worker"));
        a.on_key(key(KeyCode::Esc));
        assert_eq!(shown(&a).len(), 3, "Esc while typing drops the filter");
    }

    #[test]
    fn selection_is_clamped_paged_and_kept_visible() {
        let names: Vec<String> = (0..30).map(|i| format!("s{i:02}")).collect();
        let list: Vec<(&str, State)> = names.iter().map(|n| (n.as_str(), State::Running)).collect();
        let mut a = app(&list);
        a.set_sizes(Sizes {
            table_rows: 5,
            log_rows: 5,
            popup_overflow: 0,
        });
        a.on_key(key(KeyCode::Up));
        assert_eq!(a.selected.as_deref(), Some("s00"));
        a.on_key(key(KeyCode::PageDown));
        assert_eq!(a.selected.as_deref(), Some("s05"));
        assert_eq!(a.table_offset, 1);
        a.on_key(key(KeyCode::End));
        assert_eq!(a.selected.as_deref(), Some("s29"));
        assert_eq!(a.table_offset, 25);
        a.on_key(key(KeyCode::Home));
        assert_eq!((a.selected.as_deref(), a.table_offset), (Some("s00"), 0));
        // A status answer without the selected service moves the selection.
        a.set_status(info(), vec![svc("other", State::Stopped)]);
        assert_eq!(a.selected.as_deref(), Some("other"));
        assert_eq!(a.table_offset, 0);
    }

    #[test]
    fn stop_asks_first_and_other_actions_do_not() {
        let mut a = app(&[("web", State::Running)]);
        assert!(a.on_key(ch('x')).is_empty());
        assert_eq!(a.popup, Some(Popup::ConfirmStop("web".into())));
        assert!(a.on_key(ch('n')).is_empty(), "anything but y cancels");
        assert!(a.popup.is_none());
        a.on_key(ch('x'));
        assert_eq!(a.on_key(ch('y')), [Effect::Act("web".into(), Action::Stop)]);
        assert_eq!(a.pending, 1);
        let later = Instant::now() + MESSAGE_FOR * 3;
        assert_eq!(
            a.current_message(later),
            Some(("web: stopping…", Tone::Info)),
            "a slow stop keeps its message"
        );
        assert_eq!(
            a.on_key(ch('s')),
            [Effect::Act("web".into(), Action::Start)]
        );
        assert_eq!(a.on_key(ch('R')), [Effect::Reload]);
        assert_eq!(a.popup, Some(Popup::Reload(ReloadOutcome::Running)));
        a.on_key(key(KeyCode::Esc));
        assert_eq!(
            a.on_key(key(KeyCode::Enter)),
            [Effect::Detail("web".into())]
        );
        assert!(matches!(a.popup, Some(Popup::Detail(_, Detail::Loading))));
        a.on_key(ch('q'));
        assert!(a.popup.is_none(), "q closes a pop-up first");
        assert!(!a.quit);
        a.on_key(ch('?'));
        assert_eq!(a.popup, Some(Popup::Help));
        a.on_key(ch('?'));
        assert_eq!(a.on_key(ch('q')), [Effect::Quit]);
        assert!(a.quit);
    }

    #[test]
    fn ctrl_c_quits_from_anywhere() {
        let mut a = app(&[("web", State::Running)]);
        a.on_key(ch('/'));
        let effects = a.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(effects, [Effect::Quit]);
    }

    #[test]
    fn toggles_and_the_follow_spec() {
        let mut a = app(&[("web", State::Running), ("worker", State::Running)]);
        assert_eq!(a.follow_spec(), ["web"]);
        a.on_key(ch('a'));
        assert_eq!(a.follow_spec(), ["web", "worker"]);
        a.on_key(ch('w'));
        a.on_key(ch('t'));
        assert!(a.all_logs && a.wrap && a.timestamps);
        a.on_key(ch('a'));
        a.on_key(ch('j'));
        assert_eq!(a.follow_spec(), ["worker"]);
    }

    #[test]
    fn log_search_jumps_between_matches_and_scrolling_pauses() {
        let mut a = app(&[("web", State::Running)]);
        a.set_sizes(Sizes {
            table_rows: 5,
            log_rows: 4,
            popup_overflow: 0,
        });
        for i in 0..20 {
            let line = if i % 5 == 0 {
                format!("ERROR {i}")
            } else {
                format!("ok {i}")
            };
            a.push_line(Entry::new(
                "web",
                Some(Stream::Out),
                format!("{i:03}"),
                &line,
            ));
        }
        a.on_key(key(KeyCode::Tab));
        assert_eq!(a.focus, Focus::Logs);
        a.on_key(ch('/'));
        for c in "error".chars() {
            a.on_key(ch(c));
        }
        a.on_key(key(KeyCode::Enter));
        assert_eq!(a.found, Some(15), "the newest match first");
        assert!(!a.logs.following());
        a.on_key(ch('n'));
        assert_eq!(a.found, Some(10));
        a.on_key(ch('N'));
        assert_eq!(a.found, Some(15));
        a.on_key(ch('N'));
        assert_eq!(a.found, Some(15), "no newer match: stays");
        assert!(a.current_message(Instant::now()).is_some());
        a.on_key(key(KeyCode::End));
        assert!(a.logs.following());
        a.on_key(key(KeyCode::PageUp));
        assert_eq!(a.logs.scroll(), 4);
        a.on_key(key(KeyCode::Down));
        assert_eq!(a.logs.scroll(), 3);
        a.on_key(key(KeyCode::Home));
        assert_eq!(a.logs.bottom(), Some(0));
    }

    #[test]
    fn exits_seen_are_remembered() {
        let mut a = app(&[("job", State::Running)]);
        for i in 0..7 {
            let mut s = svc("job", State::Backoff);
            s.last_exit = Some(LastExit {
                code: Some(1),
                signal: None,
                at: format!("t{i}"),
                ran_ms: 10,
            });
            a.set_status(info(), vec![s.clone()]);
            a.set_status(info(), vec![s]);
        }
        let seen = &a.exits["job"];
        assert_eq!(seen.len(), EXITS_KEPT);
        assert_eq!(seen.last().map(|e| e.at.as_str()), Some("t6"));
    }
}
