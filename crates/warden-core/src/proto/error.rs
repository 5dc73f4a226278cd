//! The body of every error answer: `{"error": "message", ...}`, with details for some kinds.
//! The server builds it, the client reads it back; nobody looks keys up by string.

use serde::{Deserialize, Serialize};

use super::status::ServiceStatus;

/// Every 4xx and 5xx answer of the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in words (for a config error: the word `"config"`).
    pub error: String,
    #[serde(flatten)]
    pub detail: ErrorDetail,
}

/// What some errors add to [`ErrorBody::error`]. The fields are in the order the JSON has
/// them (alphabetical).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorDetail {
    /// 422 of `POST /v1/reload`: every config error, each `FILE:LINE:COL: message`.
    Config { errors: Vec<String>, file: String },
    /// 500 of an action: the service's status after the failed attempt.
    Failed {
        reason: String,
        service: String,
        status: Option<Box<ServiceStatus>>,
    },
    /// 404 of an unknown service: the names that exist.
    UnknownService { known: Vec<String> },
    /// Nothing more.
    None {},
}

impl ErrorBody {
    pub fn new(error: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: error.into(),
            detail: ErrorDetail::None {},
        }
    }

    pub fn unknown_service(name: &str, known: Vec<String>) -> ErrorBody {
        ErrorBody {
            error: format!("no service named {name:?}"),
            detail: ErrorDetail::UnknownService { known },
        }
    }

    pub fn config(file: String, errors: Vec<String>) -> ErrorBody {
        ErrorBody {
            error: CONFIG_ERROR.to_owned(),
            detail: ErrorDetail::Config { errors, file },
        }
    }
}

/// The `error` of a 422 config error.
pub const CONFIG_ERROR: &str = "config";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_keep_their_wire_shape() {
        let plain = serde_json::to_string(&ErrorBody::new("boom")).expect("json");
        assert_eq!(plain, r#"{"error":"boom"}"#);
        let unknown = serde_json::to_string(&ErrorBody::unknown_service("x", vec!["a".into()]))
            .expect("json");
        assert_eq!(
            unknown,
            r#"{"error":"no service named \"x\"","known":["a"]}"#
        );
        let config =
            serde_json::to_string(&ErrorBody::config("f".into(), vec!["e".into()])).expect("json");
        assert_eq!(config, r#"{"error":"config","errors":["e"],"file":"f"}"#);
        let failed = ErrorBody {
            error: "a: r".into(),
            detail: ErrorDetail::Failed {
                reason: "r".into(),
                service: "a".into(),
                status: None,
            },
        };
        let text = serde_json::to_string(&failed).expect("json");
        assert_eq!(
            text,
            r#"{"error":"a: r","reason":"r","service":"a","status":null}"#
        );
        for body in [plain, unknown, config, text] {
            let back: ErrorBody = serde_json::from_str(&body).expect("parse");
            assert_eq!(serde_json::to_string(&back).expect("json"), body);
        }
    }
}
