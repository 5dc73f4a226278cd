//! warden's own event lines (a service started, exited, restarts, failed, stopped) and, with
//! `--attach`, the services' output as `NAME | line`.
//!
//! Where they go:
//! - text (the default): events on stderr, output on stdout;
//! - `--log-format json`: one JSON object per line on stdout, for container log collectors:
//!   `{"time","service","level","event"}` for an event, `{"time","service","stream","line"}`
//!   for an output line;
//! - with warden's own log ([`Events::file`]: `up -d`, the Windows service, a launchd job):
//!   events into `<state_dir>/warden.log`, rotated like a service log.

use std::fmt::Write as _;
use std::io::Write;
use std::time::SystemTime;

use crate::logs::OwnLog;
use crate::model::Stream;
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
    /// One JSON object per line on stdout, events and output alike (`--log-format json`).
    pub json: bool,
    /// Write events into warden's own log (rotated) instead of stderr.
    pub file: Option<&'static OwnLog>,
}

/// What kind of event a line reports; decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Warn,
    Bad,
}

impl Level {
    /// The `level` of a JSON event: `info`, `warn` or `error` (what log collectors know).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info | Level::Good => "info",
            Level::Warn => "warn",
            Level::Bad => "error",
        }
    }
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
            json: false,
            file: None,
        }
    }

    /// Events kept in `record` instead of printed.
    pub fn recording(record: &'static std::sync::Mutex<Vec<String>>) -> Events {
        Events {
            color: false,
            timestamps: false,
            record: Some(record),
            json: false,
            file: None,
        }
    }

    /// Events printed plainly on stderr: no colour, no time (tests of the layers above).
    pub fn plain() -> Events {
        Events {
            color: false,
            timestamps: false,
            record: None,
            json: false,
            file: None,
        }
    }

    /// A colour for a service name, stable for the name.
    fn name_color(name: &str) -> u8 {
        let sum = name
            .bytes()
            .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
        PALETTE[sum % PALETTE.len()]
    }

    /// Print `[service] message` (or its JSON object).
    pub fn emit(&self, service: &str, level: Level, message: &str) {
        if let Some(record) = self.record {
            record
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!("[{service}] {message}"));
            return;
        }
        let line = self.event_line(service, level, message, SystemTime::now());
        // One write per line so concurrent events never interleave; a closed stderr is not
        // a reason to stop supervising.
        if let Some(file) = self.file {
            file.write(line.as_bytes());
        } else if self.json {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        } else {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    /// The line of one event, `\n` included.
    fn event_line(&self, service: &str, level: Level, message: &str, at: SystemTime) -> String {
        let mut line = String::with_capacity(64 + message.len());
        if self.json {
            let _ = writeln!(
                line,
                "{{\"time\":{},\"service\":{},\"level\":{},\"event\":{}}}",
                json_str(&rfc3339_ms(at)),
                json_str(service),
                json_str(level.as_str()),
                json_str(message)
            );
            return line;
        }
        if self.timestamps || self.file.is_some() {
            line.push_str(&rfc3339_ms(at));
            line.push(' ');
        }
        if self.color && self.file.is_none() {
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
        line
    }

    /// Print a service's output line as `NAME | line` (for `--attach`), or its JSON object.
    pub fn attach_line(
        &self,
        service: &str,
        width: usize,
        stream: Stream,
        at: SystemTime,
        bytes: &[u8],
    ) {
        let out = self.output_line(service, width, stream, at, bytes);
        let _ = std::io::stdout().lock().write_all(&out);
    }

    /// Say that `n` output lines of `service` were not shown (the printer fell behind).
    pub fn attach_lagged(&self, service: &str, width: usize, n: u64) {
        let text = format!("{n} lines not shown (output too fast)");
        if self.json {
            self.emit(service, Level::Warn, &text);
        } else {
            let bytes = format!("[warden] {text}");
            self.attach_line(
                service,
                width,
                Stream::Out,
                SystemTime::now(),
                bytes.as_bytes(),
            );
        }
    }

    /// The bytes of one output line, `\n` included.
    fn output_line(
        &self,
        service: &str,
        width: usize,
        stream: Stream,
        at: SystemTime,
        bytes: &[u8],
    ) -> Vec<u8> {
        if self.json {
            return format!(
                "{{\"time\":{},\"service\":{},\"stream\":{},\"line\":{}}}\n",
                json_str(&rfc3339_ms(at)),
                json_str(service),
                json_str(stream.as_str()),
                json_str(&String::from_utf8_lossy(bytes))
            )
            .into_bytes();
        }
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
        out
    }
}

/// A JSON string literal (the keys of a JSON line are written in their documented order).
fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
    }

    #[test]
    fn a_json_event_is_one_object_with_time_service_level_and_event() {
        let ev = Events {
            json: true,
            ..Events::plain()
        };
        let line = ev.event_line("web", Level::Bad, "exited with \"code\" 1", at());
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        assert!(
            line.starts_with("{\"time\":\"2023-"),
            "documented order: {line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "time": "2023-11-14T22:13:20.123Z",
                "service": "web",
                "level": "error",
                "event": "exited with \"code\" 1",
            })
        );
    }

    #[test]
    fn a_json_output_line_names_its_stream_and_survives_bad_utf8() {
        let ev = Events {
            json: true,
            color: true,
            ..Events::plain()
        };
        let out = ev.output_line("db", 8, Stream::Err, at(), b"bad \xff byte\ttab");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["stream"], "err");
        assert_eq!(v["service"], "db");
        assert_eq!(v["line"], "bad \u{fffd} byte\ttab");
        assert_eq!(v["time"], "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn text_lines_keep_their_shape() {
        let ev = Events::plain();
        assert_eq!(
            ev.event_line("web", Level::Info, "started", at()),
            "[web] started\n"
        );
        assert_eq!(
            ev.output_line("a", 3, Stream::Out, at(), b"hi"),
            b"a   | hi\n"
        );
        let timed = Events {
            timestamps: true,
            ..Events::plain()
        };
        assert_eq!(
            timed.event_line("web", Level::Warn, "x", at()),
            "2023-11-14T22:13:20.123Z [web] x\n"
        );
    }
}
