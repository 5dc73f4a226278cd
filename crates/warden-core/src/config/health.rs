//! The health keys of a service: `ready`, `health`, `on_unhealthy`, `notify`, `watchdog`,
//! `memory_max`, `optional`, and those of `[warden]`: `sample_interval`, `http`,
//! `metrics_public`. Every value is bounded here (see the constants), with a positioned error.

use std::net::SocketAddr;
use std::time::Duration;

use super::limits::MAX_TIMEOUT;
use super::parse::choice_hint;
use super::reader::{Field, Reader, Section};

/// The keys of a `ready` or `health` table.
const CHECK_KEYS: &[&str] = &[
    "http",
    "tcp",
    "exec",
    "log_line",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "success_threshold",
    "method",
    "headers",
    "status",
];
/// The shortest `interval`: probes more often than this cost more than they tell.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest `timeout`, `watchdog` and `sample_interval`.
const MIN_SHORT: Duration = Duration::from_millis(10);
/// `sample_interval`, at most.
const MAX_SAMPLE_INTERVAL: Duration = Duration::from_secs(3_600);
/// `retries` and `success_threshold`, at most.
const MAX_COUNT: i64 = 1_000;
/// `headers`: at most this many.
const MAX_HEADERS: usize = 64;
/// A URL, a header, a `log_line` pattern: at most this many bytes.
const MAX_TEXT: usize = 8 << 10;
/// The compiled size of a `log_line` regex, at most (the `regex` crate's own unit).
const MAX_REGEX_SIZE: usize = 1 << 20;
/// `memory_max`, at least (1 MiB; a smaller tree cannot run) and at most (1 PiB).
const MIN_MEMORY: u64 = 1 << 20;
const MAX_MEMORY: u64 = 1 << 50;
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

/// What one probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A 2xx or 3xx answer (or one of `status`) within the timeout.
    Http(HttpProbe),
    /// `HOST:PORT` accepts a connection.
    Tcp(String),
    /// This argv exits 0 within the timeout; run like a service command, without a shell.
    Exec(Vec<String>),
    /// `ready` only: a line of the service's output matches this regex.
    LogLine(String),
}

impl Probe {
    /// `http`, `tcp`, `exec`, `log_line`.
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Tcp(_) => "tcp",
            Probe::Exec(_) => "exec",
            Probe::LogLine(_) => "log_line",
        }
    }
}

/// `http = "http://HOST[:PORT]/PATH"` and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe {
    /// The URL as written.
    pub url: String,
    /// The host to connect to (without brackets for IPv6).
    pub host: String,
    pub port: u16,
    /// The request target: `/` at least, with the query.
    pub path: String,
    /// Default `GET`.
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// The codes that pass; empty: any 2xx or 3xx.
    pub status: Vec<u16>,
}

/// A `ready` or `health` check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub probe: Probe,
    /// Default 10 s: from the end of one probe to the start of the next.
    pub interval: Duration,
    /// Default 2 s.
    pub timeout: Duration,
    /// Default 3: consecutive failures before unhealthy.
    pub retries: u32,
    /// Default 0 s: failures during it are not counted.
    pub start_period: Duration,
    /// Default 1: consecutive successes before healthy.
    pub success_threshold: u32,
}

/// `on_unhealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnhealthy {
    /// Restart it, counted like a crash (the default).
    #[default]
    Restart,
    /// Show it, do nothing.
    Ignore,
}

/// The health keys of one service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthConfig {
    /// `ready`: the service is up once it passes (instead of after `min_uptime`).
    pub ready: Option<Check>,
    /// `health`: runs while the service runs.
    pub health: Option<Check>,
    pub on_unhealthy: OnUnhealthy,
    /// `notify = true`: the `sd_notify` protocol (Unix).
    pub notify: bool,
    /// `watchdog`: no `WATCHDOG=1` for this long restarts it (needs `notify`).
    pub watchdog: Option<Duration>,
    /// `memory_max`: the soft limit of the tree's RSS, in bytes.
    pub memory_max: Option<u64>,
    /// `optional = true`: not counted by `GET /health`.
    pub optional: bool,
}

impl HealthConfig {
    /// Is the service up only once a check passes or READY=1 arrives?
    pub fn gated(&self) -> bool {
        self.ready.is_some() || self.notify
    }
}

/// The health keys of `[warden]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WardenHealth {
    /// Default 5 s.
    pub sample_interval: Duration,
    /// `http = "127.0.0.1:9101"`: `GET /health` and `GET /metrics`.
    pub http: Option<SocketAddr>,
    /// Default false: `/metrics` needs the API token.
    pub metrics_public: bool,
}

impl Default for WardenHealth {
    fn default() -> Self {
        WardenHealth {
            sample_interval: Duration::from_secs(5),
            http: None,
            metrics_public: false,
        }
    }
}

/// The keys of `[warden]` this module reads.
pub(super) const WARDEN_KEYS: &[&str] = &["sample_interval", "http", "metrics_public"];
/// The keys of a service this module reads (`depends_on` is `depends.rs`'s).
pub(super) const SERVICE_KEYS: &[&str] = &[
    "ready",
    "health",
    "on_unhealthy",
    "notify",
    "watchdog",
    "memory_max",
    "optional",
];

/// Read the health keys of `[warden]`.
pub(super) fn read_warden(r: &mut Reader<'_>, section: Section<'_>) -> WardenHealth {
    let mut w = WardenHealth::default();
    if let Some(f) = section.field("sample_interval")
        && let Some(d) = bounded(r, f, MIN_SHORT, MAX_SAMPLE_INTERVAL)
    {
        w.sample_interval = d;
    }
    if let Some(f) = section.field("http")
        && let Some(s) = r.string(f)
    {
        match s.parse::<SocketAddr>() {
            Ok(addr) => {
                // The TCP API's rule: off loopback, only with a token of one's own.
                let token_given = section.field("api_token").is_some()
                    || section.field("api_token_file").is_some();
                if !addr.ip().is_loopback() && !token_given {
                    r.error(
                        f.pos(),
                        format!(
                            "http listens on {addr}, which is not a loopback address, without a token"
                        ),
                        Some("set api_token or api_token_file, or listen on 127.0.0.1".into()),
                    );
                }
                w.http = Some(addr);
            }
            Err(_) => r.error(
                f.pos(),
                format!("http: expected a socket address like \"127.0.0.1:9101\", found \"{s}\""),
                None,
            ),
        }
    }
    if let Some(b) = section.field("metrics_public").and_then(|f| r.bool(f)) {
        w.metrics_public = b;
    }
    w
}

/// Read the health keys of one service.
pub(super) fn read(r: &mut Reader<'_>, section: Section<'_>) -> HealthConfig {
    let field = |key: &str| section.field(key);
    let mut h = HealthConfig {
        ready: field("ready").and_then(|f| read_check(r, f, true)),
        health: field("health").and_then(|f| read_check(r, f, false)),
        ..HealthConfig::default()
    };
    if let Some(f) = field("on_unhealthy")
        && let Some(s) = r.string(f)
    {
        match s.as_str() {
            "restart" => h.on_unhealthy = OnUnhealthy::Restart,
            "ignore" => h.on_unhealthy = OnUnhealthy::Ignore,
            _ => {
                let hint = choice_hint(&s, &["restart", "ignore"]);
                r.error(f.pos(), format!("unknown on_unhealthy \"{s}\""), Some(hint));
            }
        }
    }
    if let Some(f) = field("notify")
        && let Some(b) = r.bool(f)
    {
        if b && cfg!(windows) {
            r.error(
                f.pos(),
                "notify: the sd_notify protocol runs over a Unix datagram socket, which Windows does not have",
                Some("use a ready check instead (tcp, http, exec or log_line)".into()),
            );
        }
        h.notify = b;
    }
    if let Some(f) = field("watchdog") {
        h.watchdog = bounded(r, f, MIN_SHORT, MAX_TIMEOUT);
        if !h.notify {
            r.error(
                f.key_pos(),
                "watchdog needs notify = true (the program pings with WATCHDOG=1)",
                Some("add notify = true, or use a health check".into()),
            );
        }
    }
    if let Some(f) = field("memory_max")
        && let Some(size) = r.size(f)
    {
        if (MIN_MEMORY..=MAX_MEMORY).contains(&size) {
            h.memory_max = Some(size);
        } else {
            r.error(
                f.pos(),
                format!("memory_max must be between 1MiB and 1PiB, found {size} bytes"),
                None,
            );
        }
    }
    if let Some(b) = field("optional").and_then(|f| r.bool(f)) {
        h.optional = b;
    }
    h
}

/// A duration in `min..=max`.
fn bounded(r: &mut Reader<'_>, f: Field<'_>, min: Duration, max: Duration) -> Option<Duration> {
    let d = r.duration(f, max)?;
    if d < min {
        r.error(
            f.pos(),
            format!(
                "{} must be at least {}, found {}",
                f.name(),
                humantime::format_duration(min),
                humantime::format_duration(d)
            ),
            None,
        );
        return None;
    }
    Some(d)
}

/// `ready = { ... }` or `health = { ... }`.
fn read_check(r: &mut Reader<'_>, field: Field<'_>, ready: bool) -> Option<Check> {
    let what = field.name().to_owned();
    let section = r.section(field)?;
    r.check_keys(section, CHECK_KEYS, &what);
    let get = |key: &str| section.field(key);
    let kinds: Vec<Field<'_>> = ["http", "tcp", "exec", "log_line"]
        .iter()
        .filter_map(|k| get(k))
        .collect();
    let example = format!("{what} = {{ tcp = \"127.0.0.1:8080\" }}");
    let probe_field = match kinds.as_slice() {
        [] => {
            r.error(
                section.pos,
                format!("{what} needs one of http, tcp, exec or log_line"),
                Some(example),
            );
            return None;
        }
        [one] => *one,
        [_, second, ..] => {
            r.error(
                second.key_pos(),
                format!("{what} takes one probe: http, tcp, exec or log_line"),
                Some("use ready for the start and health for later".into()),
            );
            return None;
        }
    };
    let probe = match probe_field.name() {
        "http" => Probe::Http(read_http(r, section, probe_field, &what)?),
        "tcp" => Probe::Tcp(read_tcp(r, probe_field, &what)?),
        "exec" => Probe::Exec(r.argv(probe_field)?),
        _ => {
            if !ready {
                r.error(
                    probe_field.key_pos(),
                    "log_line is a ready check only (a line says when it is up, not that it still works)",
                    Some("move it to ready = { log_line = \"...\" }".into()),
                );
                return None;
            }
            Probe::LogLine(read_regex(r, probe_field)?)
        }
    };
    if !matches!(probe, Probe::Http(_)) {
        for key in ["method", "headers", "status"] {
            if let Some(f) = get(key) {
                r.error(
                    f.key_pos(),
                    format!("{what}.{key} applies to an http probe only"),
                    None,
                );
            }
        }
    }
    let mut check = Check {
        probe,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        retries: 3,
        start_period: Duration::ZERO,
        success_threshold: 1,
    };
    if let Some(d) = get("interval").and_then(|f| bounded(r, f, MIN_INTERVAL, MAX_TIMEOUT)) {
        check.interval = d;
    }
    if let Some(d) = get("timeout").and_then(|f| bounded(r, f, MIN_SHORT, MAX_TIMEOUT)) {
        check.timeout = d;
    }
    if let Some(d) = get("start_period").and_then(|f| r.duration(f, MAX_TIMEOUT)) {
        check.start_period = d;
    }
    if let Some(n) = get("retries").and_then(|f| r.integer_in(f, 1, MAX_COUNT)) {
        check.retries = n as u32;
    }
    if let Some(n) = get("success_threshold").and_then(|f| r.integer_in(f, 1, MAX_COUNT)) {
        check.success_threshold = n as u32;
    }
    Some(check)
}

fn read_tcp(r: &mut Reader<'_>, f: Field<'_>, what: &str) -> Option<String> {
    let s = r.non_empty_string(f)?;
    let ok = s.len() <= MAX_TEXT
        && s.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
        });
    if !ok {
        r.error(
            f.pos(),
            format!("{what}.tcp: expected HOST:PORT like \"127.0.0.1:6379\", found \"{s}\""),
            None,
        );
        return None;
    }
    Some(s)
}

fn read_regex(r: &mut Reader<'_>, f: Field<'_>) -> Option<String> {
    let s = r.non_empty_string(f)?;
    let built = if s.len() > MAX_TEXT {
        Err(format!("longer than {MAX_TEXT} bytes"))
    } else {
        regex::RegexBuilder::new(&s)
            .size_limit(MAX_REGEX_SIZE)
            .build()
            .map_err(|e| e.to_string().lines().last().unwrap_or_default().to_owned())
    };
    match built {
        Ok(_) => Some(s),
        Err(e) => {
            r.error(f.pos(), format!("log_line: invalid regex: {e}"), None);
            None
        }
    }
}

fn read_http(
    r: &mut Reader<'_>,
    section: Section<'_>,
    f: Field<'_>,
    what: &str,
) -> Option<HttpProbe> {
    let url = r.non_empty_string(f)?;
    let Some((host, port, path)) = split_url(&url) else {
        let hint = if url.starts_with("https://") {
            "warden's probe speaks plain HTTP; probe an http:// port, or use tcp"
        } else {
            "write it like \"http://127.0.0.1:8080/health\""
        };
        r.error(
            f.pos(),
            format!("{what}.http: not an http:// URL: \"{url}\""),
            Some(hint.into()),
        );
        return None;
    };
    let mut probe = HttpProbe {
        url: url.clone(),
        host,
        port,
        path,
        method: "GET".into(),
        headers: Vec::new(),
        status: Vec::new(),
    };
    if let Some(mf) = section.field("method")
        && let Some(m) = r.string(mf)
    {
        let upper = m.to_ascii_uppercase();
        if METHODS.contains(&upper.as_str()) {
            probe.method = upper;
        } else {
            let hint = choice_hint(&m, METHODS);
            r.error(mf.pos(), format!("unknown HTTP method \"{m}\""), Some(hint));
        }
    }
    if let Some(hf) = section.field("headers")
        && let Some(headers) = r.section(hf)
    {
        for h in headers.fields() {
            let name = h.name();
            let Some(value) = r.secret_string(h, &format!("headers.{name}")) else {
                continue;
            };
            let bad_name = name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if bad_name || value.contains(['\r', '\n', '\0']) || value.len() > MAX_TEXT {
                r.error(
                    h.key_pos(),
                    format!("headers.{name}: not a valid HTTP header (name, or a value with a line break)"),
                    None,
                );
                continue;
            }
            probe.headers.push((name.to_owned(), value));
        }
        if probe.headers.len() > MAX_HEADERS {
            r.error(
                hf.key_pos(),
                format!("headers: at most {MAX_HEADERS}"),
                None,
            );
        }
    }
    if let Some(sf) = section.field("status") {
        let Some(codes) = sf.item.as_array() else {
            r.error(
                sf.pos(),
                "status: expected an array of HTTP codes like [200, 204]",
                None,
            );
            return None;
        };
        for code in codes {
            match code.as_integer().filter(|c| (100..=599).contains(c)) {
                Some(c) => probe.status.push(c as u16),
                None => r.error(
                    code.span().map_or_else(|| sf.pos(), |s| s.start),
                    format!(
                        "status: expected an HTTP code (100 to 599), found {}",
                        code.to_string().trim()
                    ),
                    None,
                ),
            }
        }
    }
    Some(probe)
}

/// `http://HOST[:PORT][/PATH]` into host, port and request target.
pub(crate) fn split_url(url: &str) -> Option<(String, u16, String)> {
    if url.len() > MAX_TEXT || url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 80,
            None => return None,
        };
        (host.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().ok()?),
            None => (authority.to_owned(), 80),
        }
    };
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host, port, path))
}
