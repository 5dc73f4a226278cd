//! Log lines as the API sends them, and the items of a follow stream.

use serde::{Deserialize, Serialize};

use crate::model::Stream;

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
}
