//! `GET /v1/services/{name}/config`: a service's settings as the config file writes them,
//! for people (`warden ui`'s detail pop-up). No secret: the command is shown before `${VAR}`
//! expansion, and of the environment only the variable names, never a value.
//!
//! The answer is read from the config file warden runs (the file `POST /v1/reload` reads), so
//! after an edit that was not reloaded yet it shows what a reload would apply.

use std::path::Path;

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{self, ProcessEnv, RestartPolicy, ServiceConfig, StderrTarget};

/// The JSON of `GET /v1/services/{name}/config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfigView {
    pub name: String,
    /// As written, before expansion, in TOML syntax: `"prog arg"` or `["prog", "arg"]`.
    pub command: String,
    pub shell: bool,
    /// Absolute.
    pub cwd: String,
    /// The names of the variables `env` and `env_file` set (values are never shown).
    pub env_names: Vec<String>,
    pub env_file: Option<String>,
    pub inherit_env: bool,
    pub autostart: bool,
    /// `always`, `on-failure` or `never`.
    pub restart: String,
    pub success_codes: Vec<i32>,
    pub backoff: BackoffView,
    pub start_limit: Option<StartLimitView>,
    pub stop_signal: String,
    pub stop_timeout_ms: u64,
    /// A `stop_command` is set (it is not shown: it is expanded).
    pub stop_command: bool,
    pub log: LogView,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackoffView {
    pub initial_ms: u64,
    pub max_ms: u64,
    pub factor: f64,
    pub jitter: f64,
    pub reset_after_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartLimitView {
    pub count: u32,
    pub window_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogView {
    /// Absolute.
    pub stdout: String,
    /// Absolute, or `"stdout"` when stderr joins the stdout file.
    pub stderr: String,
    pub max_size: u64,
    pub keep: u32,
    pub compress: bool,
    pub timestamps: bool,
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

impl From<&ServiceConfig> for ServiceConfigView {
    fn from(s: &ServiceConfig) -> Self {
        ServiceConfigView {
            name: s.name.clone(),
            command: s.raw_command.clone(),
            shell: s.shell,
            cwd: s.cwd.display().to_string(),
            env_names: s.env.keys().cloned().collect(),
            env_file: s.env_file.as_ref().map(|p| p.display().to_string()),
            inherit_env: s.inherit_env,
            autostart: s.autostart,
            restart: match s.restart {
                RestartPolicy::Always => "always",
                RestartPolicy::OnFailure => "on-failure",
                RestartPolicy::Never => "never",
            }
            .to_owned(),
            success_codes: s.success_codes.clone(),
            backoff: BackoffView {
                initial_ms: ms(s.backoff.initial),
                max_ms: ms(s.backoff.max),
                factor: s.backoff.factor,
                jitter: s.backoff.jitter,
                reset_after_ms: ms(s.backoff.reset_after),
            },
            start_limit: s.start_limit.map(|l| StartLimitView {
                count: l.count,
                window_ms: ms(l.window),
            }),
            stop_signal: s.stop_signal.name().to_owned(),
            stop_timeout_ms: ms(s.stop_timeout),
            stop_command: s.stop_command.is_some(),
            log: LogView {
                stdout: s.log.stdout.display().to_string(),
                stderr: match &s.log.stderr {
                    StderrTarget::File(p) => p.display().to_string(),
                    StderrTarget::Stdout => "stdout".to_owned(),
                },
                max_size: s.log.max_size,
                keep: s.log.keep,
                compress: s.log.compress,
                timestamps: s.log.timestamps,
            },
        }
    }
}

/// The answer to `GET /v1/services/{name}/config`: 200 with a [`ServiceConfigView`], 404
/// when the file has no such service, 422 when the file has errors now.
pub async fn answer(config_path: &Path, name: &str) -> (StatusCode, Value) {
    let path = config_path.to_owned();
    let loaded = tokio::task::spawn_blocking(move || config::load(&path, &ProcessEnv)).await;
    match loaded {
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("reading the config failed: {e}") }),
        ),
        Ok(Err(errors)) => {
            let list: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": "config", "file": errors.file.display().to_string(), "errors": list }),
            )
        }
        Ok(Ok(config)) => {
            let Some(s) = config.service(name) else {
                let known: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
                return (
                    StatusCode::NOT_FOUND,
                    json!({ "error": format!("no service named {name:?}"), "known": known }),
                );
            };
            match serde_json::to_value(ServiceConfigView::from(s)) {
                Ok(v) => (StatusCode::OK, v),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": format!("cannot encode the answer: {e}") }),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_view_shows_the_command_as_written_and_no_env_value() {
        let env: BTreeMap<String, String> =
            [("TOKEN".to_owned(), "hunter2-secret".to_owned())].into();
        let text = r#"
[services.api]
command = ["./api", "--token", "${TOKEN}"]   # a comment
env = { API_KEY = "${TOKEN}", MODE = "prod" }
stop_command = ["kill", "${TOKEN}"]
backoff = { initial = "250ms" }
start_limit = { count = 3, window = "1m" }

[services.worker]
command = "python3 worker.py --key ${TOKEN:-x}"
restart = "on-failure"
[services.worker.log]
stderr = "stdout"
"#;
        let dir = std::env::temp_dir();
        let config = config::load_str(text, &dir.join("warden.toml"), &env).expect("valid");
        let api = ServiceConfigView::from(config.service("api").expect("api"));
        assert_eq!(api.command, r#"["./api", "--token", "${TOKEN}"]"#);
        assert_eq!(api.env_names, ["API_KEY", "MODE", "WARDEN_SERVICE"]);
        assert!(api.stop_command);
        assert_eq!(api.backoff.initial_ms, 250);
        assert_eq!(
            api.start_limit,
            Some(StartLimitView {
                count: 3,
                window_ms: 60_000
            })
        );
        assert_eq!(api.restart, "always");
        let json = serde_json::to_string(&api).expect("json");
        assert!(!json.contains("hunter2"), "{json}");
        assert!(!json.contains("prod"), "{json}");

        let worker = ServiceConfigView::from(config.service("worker").expect("worker"));
        assert_eq!(worker.command, r#""python3 worker.py --key ${TOKEN:-x}""#);
        let quoted = config::load_str(
            "[services.q]\ncommand = 'sh -c \"echo $$HOME\"'\n",
            &dir.join("warden.toml"),
            &env,
        )
        .expect("valid");
        let q = ServiceConfigView::from(&quoted.services[0]);
        assert_eq!(q.command, r#""sh -c \"echo $$HOME\"""#);
        assert_eq!(worker.restart, "on-failure");
        assert_eq!(worker.log.stderr, "stdout");
        assert!(worker.log.stdout.ends_with("worker.out.log"));
        let back: ServiceConfigView =
            serde_json::from_str(&serde_json::to_string(&worker).expect("json")).expect("parse");
        assert_eq!(back, worker);
    }
}
