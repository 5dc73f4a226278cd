//! warden's own event lines on stderr (a service started, exited, restarts, failed, stopped)
//! and, with `--attach`, the services' output on stdout as `NAME | line`.

use std::fmt::Write as _;
use std::io::Write;
use std::time::SystemTime;

use crate::util::rfc3339_ms;

/// How events are printed.
#[derive(Debug, Clone, Copy)]
pub struct Events {
    /// Colour the names (stderr is a terminal).
    pub color: bool,
    /// Prefix each event with an RFC 3339 time (stderr is a file, e.g. `warden.log`).
    pub timestamps: bool,
    /// Keep each event as `[service] message` here instead of printing it (tests).
    pub record: Option<&'static std::sync::Mutex<Vec<String>>>,
}

/// What kind of event a line reports; decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Warn,
    Bad,
}

const PALETTE: [u8; 6] = [36, 35, 34, 33, 32, 96];

impl Events {
    /// Detect from the stderr handle.
    pub fn detect() -> Events {
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Events {
            color: tty && !no_color,
            timestamps: !tty,
            record: None,
        }
    }

    /// Events kept in `record` instead of printed.
    pub fn recording(record: &'static std::sync::Mutex<Vec<String>>) -> Events {
        Events {
            color: false,
            timestamps: false,
            record: Some(record),
        }
    }

    /// A colour for a service name, stable for the name.
    fn name_color(name: &str) -> u8 {
        let sum = name
            .bytes()
            .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
        PALETTE[sum % PALETTE.len()]
    }

    /// Print `[service] message`.
    pub fn emit(&self, service: &str, level: Level, message: &str) {
        if let Some(record) = self.record {
            record
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!("[{service}] {message}"));
            return;
        }
        let mut line = String::with_capacity(64 + message.len());
        if self.timestamps {
            line.push_str(&rfc3339_ms(SystemTime::now()));
            line.push(' ');
        }
        if self.color {
            let msg_color = match level {
                Level::Info => 0,
                Level::Good => 32,
                Level::Warn => 33,
                Level::Bad => 31,
            };
            let _ = writeln!(
                line,
                "\x1b[{}m[{service}]\x1b[0m \x1b[{msg_color}m{message}\x1b[0m",
                Self::name_color(service)
            );
        } else {
            let _ = writeln!(line, "[{service}] {message}");
        }
        // One write per line so concurrent events never interleave; a closed stderr is not
        // a reason to stop supervising.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// Print a service's output line as `NAME | line` (for `--attach`).
    pub fn attach_line(&self, service: &str, width: usize, bytes: &[u8]) {
        let mut out = Vec::with_capacity(bytes.len() + width + 16);
        if self.color {
            out.extend_from_slice(
                format!(
                    "\x1b[{}m{service:width$} |\x1b[0m ",
                    Self::name_color(service)
                )
                .as_bytes(),
            );
        } else {
            out.extend_from_slice(format!("{service:width$} | ").as_bytes());
        }
        out.extend_from_slice(bytes);
        out.push(b'\n');
        let _ = std::io::stdout().lock().write_all(&out);
    }
}
