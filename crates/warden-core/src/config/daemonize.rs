//! The keys of programs that daemonize (nginx, Apache, old Java and C daemons): `pid_file`,
//! `daemon` and `start_timeout`. The engine's `service/daemonize.rs` acts on them.

use std::path::PathBuf;
use std::time::Duration;

use super::ServiceConfig;
use super::limits::MAX_TIMEOUT;
use super::reader::{Reader, Section};
use crate::util::fmt_duration;

/// `start_timeout` by default.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);

/// How a service's launcher may daemonize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemonize {
    /// `pid_file = "path"` (absolute): once the launcher exits with a success code, the
    /// process named in this file is the main one (systemd's `PIDFile=`). Default none.
    pub pid_file: Option<PathBuf>,
    /// `daemon = false`: a launcher's exit 0 is an exit like any other, never followed by an
    /// adoption of what it left behind. Default `true`.
    pub daemon: bool,
    /// How long a start may take to become *up* (its main process ran `min_uptime`); a
    /// `pid_file` that never shows a pid of the tree within it is a failed start. Default 60 s.
    pub start_timeout: Duration,
}

impl Default for Daemonize {
    fn default() -> Self {
        Daemonize {
            pid_file: None,
            daemon: true,
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }
}

/// Read the keys of this module from a service's table; defaults where they are absent.
pub(super) fn read(r: &mut Reader<'_>, section: Section<'_>) -> Daemonize {
    let field = |key: &str| section.field(key);
    let defaults = Daemonize::default();
    Daemonize {
        pid_file: field("pid_file").and_then(|f| r.path(f)),
        daemon: field("daemon")
            .and_then(|f| r.bool(f))
            .unwrap_or(defaults.daemon),
        start_timeout: field("start_timeout")
            .and_then(|f| r.duration(f, MAX_TIMEOUT))
            .unwrap_or(defaults.start_timeout),
    }
}

/// What only the whole service can tell: a `start_timeout` shorter than `min_uptime` would
/// fail every start.
pub(super) fn check(r: &mut Reader<'_>, section: Section<'_>, service: &ServiceConfig) {
    let d = &service.daemonize;
    // A value already refused stands at its default here: no second, made-up error on it.
    let refused = ["start_timeout", "min_uptime"]
        .iter()
        .filter_map(|k| section.field(k))
        .any(|f| r.diag.has_error_at(f.pos()));
    if d.start_timeout < service.min_uptime && !refused {
        let pos = section
            .field("start_timeout")
            .or_else(|| section.field("min_uptime"))
            .map_or(section.pos, |f| f.pos());
        r.error(
            pos,
            format!(
                "start_timeout ({}) is shorter than min_uptime ({}): no start could ever be up",
                fmt_duration(d.start_timeout),
                fmt_duration(service.min_uptime)
            ),
            Some("raise start_timeout or lower min_uptime".into()),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    use super::Daemonize;
    use crate::config::{ConfigError, ServiceConfig, load_str};

    const CMD: &str = "[services.web]\ncommand = \"/bin/sh\"\n";

    fn load(text: &str) -> Result<ServiceConfig, Vec<ConfigError>> {
        let dir = Path::new("/srv/app");
        load_str(text, &dir.join("warden.toml"), &BTreeMap::new())
            .map(|c| c.services.into_iter().next().unwrap())
            .map_err(|e| e.errors)
    }

    #[test]
    fn defaults_are_no_pid_file_adoption_on_and_a_minute_to_be_up() {
        let s = load(CMD).unwrap();
        assert_eq!(s.daemonize, Daemonize::default());
        assert_eq!(
            (
                s.daemonize.pid_file,
                s.daemonize.daemon,
                s.daemonize.start_timeout
            ),
            (None, true, Duration::from_secs(60))
        );
    }

    #[test]
    fn pid_file_is_relative_to_the_config_and_the_keys_are_read() {
        let s = load(&format!(
            "{CMD}pid_file = \"run/nginx.pid\"\ndaemon = false\nstart_timeout = \"5s\"\n"
        ))
        .unwrap();
        assert_eq!(
            s.daemonize,
            Daemonize {
                // On Windows the config's dir `/srv/app` is made absolute on the current
                // drive.
                pid_file: Some(std::path::absolute("/srv/app/run/nginx.pid").unwrap()),
                daemon: false,
                start_timeout: Duration::from_secs(5),
            }
        );
    }

    #[test]
    fn bad_values_are_errors_at_their_key() {
        let e = load(&format!("{CMD}start_timeout = \"2d\"\n")).unwrap_err();
        assert_eq!((e[0].line, e[0].col), (3, 17), "{e:?}");
        assert!(e[0].message.contains("start_timeout: at most"), "{e:?}");
        let e = load(&format!("{CMD}daemon = \"no\"\n")).unwrap_err();
        assert_eq!(e[0].line, 3, "{e:?}");
        let e = load(&format!("{CMD}pid_file = \"\"\n")).unwrap_err();
        assert_eq!(e[0].line, 3, "{e:?}");
    }

    #[test]
    fn a_start_timeout_shorter_than_min_uptime_is_an_error() {
        let e = load(&format!(
            "{CMD}min_uptime = \"10s\"\nstart_timeout = \"5s\"\n"
        ))
        .unwrap_err();
        assert_eq!(e[0].line, 4, "{e:?}");
        assert!(
            e[0].message
                .contains("start_timeout (5.0s) is shorter than min_uptime (10.0s)"),
            "{e:?}"
        );
    }

    #[test]
    fn a_refused_start_timeout_makes_no_second_error_against_min_uptime() {
        // Found by a new user: `at most "24h"`, then `start_timeout (1m00s) is shorter than
        // min_uptime (2h00m)`, of a default never written.
        let e = load(&format!(
            "{CMD}start_timeout = \"25h\"\nmin_uptime = \"2h\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].message.contains("start_timeout: at most"), "{e:?}");
    }

    #[test]
    fn supervisord_s_pidfile_hints_at_pid_file() {
        let e = load(&format!("{CMD}pidfile = \"x.pid\"\n")).unwrap_err();
        let hint = e[0].hint.clone().unwrap_or_default();
        assert!(hint.contains("did you mean \"pid_file\"?"), "{hint}");
    }
}
