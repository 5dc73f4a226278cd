//! The terminal: raw mode and the alternate screen while the UI runs, restored on every way
//! out (quit, Ctrl-C, SIGTERM, an error, a panic), and the keyboard read on a thread of its
//! own that blocks in crossterm's `read`, so that no CPU is used while nothing happens.

use std::io::{self, Stdout};
use std::sync::Once;

use crossterm::event::Event;
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

pub type Tui = Terminal<CrosstermBackend<Stdout>>;

/// Owns the terminal's UI mode; dropping it restores the terminal.
pub struct Guard {
    pub terminal: Tui,
}

/// Leave the alternate screen, show the cursor, leave raw mode. Safe to call twice.
pub fn restore() {
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
}

/// A panic restores the terminal before its message is printed (also with
/// `panic = "abort"`: the hook runs before the abort).
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Enter raw mode and the alternate screen.
pub fn enter() -> io::Result<Guard> {
    install_panic_hook();
    terminal::enable_raw_mode()?;
    let guard = (|| {
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        terminal.clear()?;
        Ok(Guard { terminal })
    })();
    if guard.is_err() {
        restore();
    }
    guard
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Terminal events, read on a thread of its own. The channel closes when the terminal's
/// input does (then the UI quits).
pub fn input() -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(64);
    let spawned = std::thread::Builder::new()
        .name("ui-input".into())
        .spawn(move || {
            while let Ok(event) = crossterm::event::read() {
                if tx.blocking_send(event).is_err() {
                    return;
                }
            }
        });
    // Without the thread the channel is closed at once, and the UI quits.
    drop(spawned);
    rx
}
