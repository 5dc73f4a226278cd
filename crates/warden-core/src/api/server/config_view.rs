//! `GET /v1/services/{name}/config`: the settings of one service as the config file wrote
//! them, without a secret (see [`crate::proto::config`]). It shows the config in force, the
//! one the engine last applied (at the start or by a reload): an edit of the file not yet
//! reloaded does not show, and a file with errors now changes nothing.

use std::sync::Arc;

use hyper::StatusCode;

use super::body::{Resp, json_response, shutting_down};
use crate::config::{ServiceConfig, StderrTarget};
use crate::proto::ErrorBody;
use crate::proto::config::{BackoffView, LogView, ServiceConfigView, StartLimitView};

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

/// What `GET /v1/services/{name}/config` shows of `s`.
pub fn view(s: &ServiceConfig) -> ServiceConfigView {
    {
        ServiceConfigView {
            name: s.name.clone(),
            command: s.raw_command.clone(),
            shell: s.shell,
            cwd: s.cwd.display().to_string(),
            env_names: s.env.keys().cloned().collect(),
            env_file: s.env_file.as_ref().map(|p| p.display().to_string()),
            inherit_env: s.inherit_env,
            autostart: s.autostart,
            restart: s.restart.name().to_owned(),
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

/// The answer to `GET /v1/services/{name}/config`: 200 with a [`ServiceConfigView`] of the
/// config in force (as the engine runs it: an edit not reloaded yet, or a file with errors
/// now, changes nothing), 404 when no such service runs.
pub(super) fn answer(in_force: Option<Arc<Vec<Arc<ServiceConfig>>>>, name: &str) -> Resp {
    let Some(services) = in_force else {
        return shutting_down();
    };
    if let Some(s) = services.iter().find(|s| s.name == name) {
        json_response(StatusCode::OK, &view(s))
    } else {
        let known = services.iter().map(|s| s.name.clone()).collect();
        json_response(
            StatusCode::NOT_FOUND,
            &ErrorBody::unknown_service(name, known),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
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
        let api = view(config.service("api").expect("api"));
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

        let worker = view(config.service("worker").expect("worker"));
        assert_eq!(worker.command, r#""python3 worker.py --key ${TOKEN:-x}""#);
        let quoted = config::load_str(
            "[services.q]\ncommand = 'sh -c \"echo $$HOME\"'\n",
            &dir.join("warden.toml"),
            &env,
        )
        .expect("valid");
        let q = view(&quoted.services[0]);
        assert_eq!(q.command, r#""sh -c \"echo $$HOME\"""#);
        assert_eq!(worker.restart, "on-failure");
        assert_eq!(worker.log.stderr, "stdout");
        assert!(worker.log.stdout.ends_with("worker.out.log"));
        let back: ServiceConfigView =
            serde_json::from_str(&serde_json::to_string(&worker).expect("json")).expect("parse");
        assert_eq!(back, worker);
    }
}
