//! The JSON shapes of the control API beyond the status types of [`super::types`]: log lines,
//! follow-stream items, action names. Shared by the server and the client.

use serde::{Deserialize, Serialize};

use crate::engine::Action;
use crate::logs::{LogLine, Stream};
use crate::util::rfc3339_ms;

/// One line of a service's output as the API sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLineJson {
    /// Increases by one for each line of the service, both streams together.
    pub seq: u64,
    pub stream: Stream,
    /// RFC 3339 UTC with milliseconds.
    pub at: String,
    /// The line without its newline; bytes that are not UTF-8 become U+FFFD.
    pub line: String,
}

impl From<&LogLine> for LogLineJson {
    fn from(l: &LogLine) -> Self {
        LogLineJson {
            seq: l.seq,
            stream: l.stream,
            at: rfc3339_ms(l.at),
            line: String::from_utf8_lossy(&l.bytes).into_owned(),
        }
    }
}

/// `GET /v1/services/{name}/logs` (without `follow`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsResponse {
    pub lines: Vec<LogLineJson>,
}

/// One line of `GET /v1/services/{name}/logs?follow=true` (`application/x-ndjson`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FollowItem {
    /// A line of output.
    Line(LogLineJson),
    /// `{"dropped": N}`: the reader fell behind and N lines (of either stream) were skipped.
    Dropped { dropped: u64 },
}

/// The path segment of an action: `start`, `stop`, `restart`.
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Restart => "restart",
    }
}

/// The inverse of [`action_name`].
pub fn parse_action(s: &str) -> Option<Action> {
    match s {
        "start" => Some(Action::Start),
        "stop" => Some(Action::Stop),
        "restart" => Some(Action::Restart),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_items_have_their_documented_shape() {
        let dropped = serde_json::to_string(&FollowItem::Dropped { dropped: 7 }).expect("json");
        assert_eq!(dropped, r#"{"dropped":7}"#);
        let line = FollowItem::Line(LogLineJson {
            seq: 1,
            stream: Stream::Err,
            at: "t".into(),
            line: "x".into(),
        });
        let text = serde_json::to_string(&line).expect("json");
        assert_eq!(text, r#"{"seq":1,"stream":"err","at":"t","line":"x"}"#);
        assert_eq!(
            serde_json::from_str::<FollowItem>(&text).expect("parse"),
            line
        );
        assert_eq!(
            serde_json::from_str::<FollowItem>(&dropped).expect("parse"),
            FollowItem::Dropped { dropped: 7 }
        );
    }

    #[test]
    fn log_lines_are_lossy_utf8() {
        let l = LogLine {
            seq: 3,
            stream: Stream::Out,
            at: std::time::UNIX_EPOCH,
            bytes: b"a\xffb".to_vec(),
        };
        let j = LogLineJson::from(&l);
        assert_eq!(j.line, "a\u{fffd}b");
        assert_eq!(j.at, "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn action_names_round_trip() {
        for a in [Action::Start, Action::Stop, Action::Restart] {
            assert_eq!(parse_action(action_name(a)), Some(a));
        }
        assert_eq!(parse_action("kill"), None);
    }
}
