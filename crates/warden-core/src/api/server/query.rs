//! The query string of a request: decoded, then validated against its route (unknown keys,
//! repeated keys and bad values are errors).

use super::routes::{Route, decode};
use crate::model::Stream;

/// A bad query: 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BadQuery(pub(super) String);

/// The `key=value` pairs of a query string, decoded, in order.
pub(super) fn parse_query(query: Option<&str>) -> Result<Vec<(String, String)>, BadQuery> {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return Ok(Vec::new());
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (decode(k, true), decode(v, true)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(BadQuery(format!("malformed query parameter {pair:?}"))),
            }
        })
        .collect()
}

/// The query of one route, validated: unknown keys, repeated keys and bad values are errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Query {
    pub(super) names: Vec<String>,
    pub(super) wait: Option<bool>,
    pub(super) n: Option<usize>,
    pub(super) stream: Option<Stream>,
    pub(super) follow: Option<bool>,
    /// `until=up` of `GET /v1/status`: answer once no service is on its way up any more.
    pub(super) until_up: bool,
    /// `timeout_ms=30000`: how long `until=up` may wait, at most [`super::MAX_UP_WAIT`].
    pub(super) timeout: Option<std::time::Duration>,
}

/// A number of lines: any integer ≥ 0 (as the spec says), one too large for this machine
/// meaning "all" (`usize::MAX`).
fn parse_count(v: &str) -> Result<usize, BadQuery> {
    let digits = v.strip_prefix('+').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadQuery(format!("n={v:?}: expected a number of lines")));
    }
    Ok(digits.parse().unwrap_or(usize::MAX))
}

fn parse_bool(key: &str, v: &str) -> Result<bool, BadQuery> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(BadQuery(format!("{key}={v:?}: expected true or false"))),
    }
}

/// A duration (`30s`, `1m`, `500ms`) of at most [`super::MAX_UP_WAIT`].
fn parse_wait(v: &str) -> Result<std::time::Duration, BadQuery> {
    let max = super::MAX_UP_WAIT.as_millis();
    match v.parse::<u64>() {
        Ok(ms) if u128::from(ms) <= max => Ok(std::time::Duration::from_millis(ms)),
        Ok(_) => Err(BadQuery(format!("timeout_ms={v:?}: at most {max} (1h)"))),
        Err(_) => Err(BadQuery(format!(
            "timeout_ms={v:?}: expected a whole number of milliseconds"
        ))),
    }
}

pub(super) fn validate_query(
    route: &Route,
    pairs: Vec<(String, String)>,
) -> Result<Query, BadQuery> {
    let allowed: &[&str] = match route {
        Route::Status => &["name", "until", "timeout_ms"],
        Route::Act(..) => &["wait"],
        Route::Logs(_) => &["n", "stream", "follow"],
        Route::Health
        | Route::Metrics
        | Route::Service(_)
        | Route::Config(_)
        | Route::Reload
        | Route::Rotate(_)
        | Route::Shutdown => &[],
    };
    let mut q = Query::default();
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            let hint = if allowed.is_empty() {
                "this path takes no query parameters".to_owned()
            } else {
                format!("known: {}", allowed.join(", "))
            };
            return Err(BadQuery(format!("unknown query parameter {k:?} ({hint})")));
        }
        if k != "name" {
            if seen.contains(&k) {
                return Err(BadQuery(format!("query parameter {k:?} given twice")));
            }
            seen.push(k.clone());
        }
        match k.as_str() {
            "name" => q.names.push(v),
            "wait" => q.wait = Some(parse_bool(&k, &v)?),
            "follow" => q.follow = Some(parse_bool(&k, &v)?),
            "n" => q.n = Some(parse_count(&v)?),
            "until" if v == "up" => q.until_up = true,
            "until" => return Err(BadQuery(format!("until={v:?}: expected up"))),
            "timeout_ms" => q.timeout = Some(parse_wait(&v)?),
            "stream" => {
                q.stream = Some(match v.as_str() {
                    "out" => Stream::Out,
                    "err" => Stream::Err,
                    _ => return Err(BadQuery(format!("stream={v:?}: expected out or err"))),
                });
            }
            _ => {}
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Action;

    fn q(route: &Route, query: &str) -> Result<Query, BadQuery> {
        parse_query(Some(query)).and_then(|p| validate_query(route, p))
    }

    #[test]
    fn queries_are_validated() {
        let logs = Route::Logs("x".into());
        let got = q(&logs, "n=5&stream=err&follow=true").expect("valid");
        assert_eq!(
            (got.n, got.stream, got.follow),
            (Some(5), Some(Stream::Err), Some(true))
        );
        assert!(q(&logs, "n=-1").is_err());
        assert!(q(&logs, "n=").is_err());
        assert!(q(&logs, "n=1.5").is_err());
        assert_eq!(
            q(&logs, "n=99165581001148894230842703872").expect("huge").n,
            Some(usize::MAX),
            "E.11: any integer >= 0 is valid; a huge one means all"
        );
        assert_eq!(q(&logs, "n=%2B7").expect("plus").n, Some(7));
        assert!(q(&logs, "n=abc").is_err());
        assert!(q(&logs, "stream=both").is_err());
        assert!(q(&logs, "follow=yes").is_err());
        assert!(q(&logs, "n=1&n=2").is_err());
        assert!(q(&logs, "lines=3").is_err());
        let st = q(&Route::Status, "name=a&name=b%20c&name=d+e").expect("valid");
        assert_eq!(st.names, ["a", "b c", "d e"]);
        assert!(q(&Route::Reload, "x=1").is_err());
        assert!(
            q(&Route::Act("a".into(), Action::Stop), "wait=false")
                .expect("valid")
                .wait
                == Some(false)
        );
        assert!(q(&Route::Status, "name=%zz").is_err());
        let up = q(&Route::Status, "until=up&timeout_ms=90000").expect("valid");
        assert!(up.until_up);
        assert_eq!(up.timeout, Some(std::time::Duration::from_secs(90)));
        assert!(q(&Route::Status, "until=ready").is_err());
        assert!(q(&Route::Status, "until=up&timeout_ms=7200000").is_err());
        assert!(q(&Route::Status, "until=up&timeout_ms=soon").is_err());
        assert_eq!(q(&Route::Status, "").expect("empty"), Query::default());
    }
}
