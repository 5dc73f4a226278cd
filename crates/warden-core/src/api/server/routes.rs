//! The route table: which (method, path) pairs the API answers, with the path's
//! percent-encoded segments decoded.

use hyper::Method;

use crate::proto::Action;

/// A request's target, once its path and method are known to be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// `GET /health` (no token needed).
    Health,
    /// `GET /metrics` (Prometheus text).
    Metrics,
    Status,
    Service(String),
    Act(String, Action),
    Logs(String),
    Config(String),
    Reload,
    /// Rotate the log files of one service, or of every service.
    Rotate(Option<String>),
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RouteError {
    NotFound,
    /// The path exists; these methods are allowed on it.
    Method(&'static str),
    /// A path segment is not valid percent-encoded UTF-8.
    BadPath,
}

pub(super) fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    let monitoring = match path {
        "/health" => Some(Route::Health),
        "/metrics" => Some(Route::Metrics),
        _ => None,
    };
    if let Some(route) = monitoring {
        return if method == Method::GET || method == Method::HEAD {
            Ok(route)
        } else {
            Err(RouteError::Method("GET"))
        };
    }
    let rest = path.strip_prefix("/v1/").ok_or(RouteError::NotFound)?;
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| percent_decode(s).ok_or(RouteError::BadPath))
        .collect::<Result<_, _>>()?;
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (route, allow) = match parts.as_slice() {
        ["status"] => (Route::Status, "GET"),
        ["reload"] => (Route::Reload, "POST"),
        ["rotate"] => (Route::Rotate(None), "POST"),
        ["shutdown"] => (Route::Shutdown, "POST"),
        ["services", name] if !name.is_empty() => (Route::Service((*name).to_owned()), "GET"),
        ["services", name, "logs"] if !name.is_empty() => (Route::Logs((*name).to_owned()), "GET"),
        ["services", name, "config"] if !name.is_empty() => {
            (Route::Config((*name).to_owned()), "GET")
        }
        ["services", name, "rotate"] if !name.is_empty() => {
            (Route::Rotate(Some((*name).to_owned())), "POST")
        }
        ["services", name, action] if !name.is_empty() => match Action::parse(action) {
            Some(a) => (Route::Act((*name).to_owned(), a), "POST"),
            None => return Err(RouteError::NotFound),
        },
        _ => return Err(RouteError::NotFound),
    };
    // HEAD is answered wherever GET is, like GET without the body (RFC 9110, 9.3.2).
    if method.as_str() == allow || (allow == "GET" && method == Method::HEAD) {
        Ok(route)
    } else {
        Err(RouteError::Method(allow))
    }
}

/// Decode `%XX` escapes (and, with `plus`, `+` as a space); `None` if malformed or not UTF-8.
pub(super) fn decode(s: &str, plus: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn percent_decode(s: &str) -> Option<String> {
    decode(s, false)
}

/// For tests of the routing table: every (method, path template) the server answers.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/v1/status"),
    ("GET", "/v1/services/{name}"),
    ("POST", "/v1/services/{name}/start"),
    ("POST", "/v1/services/{name}/stop"),
    ("POST", "/v1/services/{name}/restart"),
    ("GET", "/v1/services/{name}/logs"),
    ("GET", "/v1/services/{name}/config"),
    ("POST", "/v1/services/{name}/rotate"),
    ("POST", "/v1/reload"),
    ("POST", "/v1/rotate"),
    ("POST", "/v1/shutdown"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_paths_and_methods() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(route(&get, "/v1/status"), Ok(Route::Status));
        assert_eq!(
            route(&get, "/v1/services/web"),
            Ok(Route::Service("web".into()))
        );
        assert_eq!(
            route(&get, "/v1/services/a%20b"),
            Ok(Route::Service("a b".into()))
        );
        assert_eq!(
            route(&post, "/v1/services/web/restart"),
            Ok(Route::Act("web".into(), Action::Restart))
        );
        assert_eq!(
            route(&get, "/v1/services/web/logs"),
            Ok(Route::Logs("web".into()))
        );
        assert_eq!(route(&post, "/v1/reload"), Ok(Route::Reload));
        assert_eq!(route(&post, "/v1/rotate"), Ok(Route::Rotate(None)));
        assert_eq!(
            route(&post, "/v1/services/web/rotate"),
            Ok(Route::Rotate(Some("web".into())))
        );
        assert_eq!(
            route(&get, "/v1/services/web/rotate"),
            Err(RouteError::Method("POST"))
        );
        assert_eq!(route(&post, "/v1/shutdown"), Ok(Route::Shutdown));
        assert_eq!(route(&get, "/health"), Ok(Route::Health));
        assert_eq!(route(&Method::HEAD, "/metrics"), Ok(Route::Metrics));
        assert_eq!(route(&post, "/metrics"), Err(RouteError::Method("GET")));
        assert_eq!(route(&get, "/v1/health"), Err(RouteError::NotFound));
        assert_eq!(route(&post, "/v1/status"), Err(RouteError::Method("GET")));
        assert_eq!(route(&Method::HEAD, "/v1/status"), Ok(Route::Status));
        assert_eq!(
            route(&Method::HEAD, "/v1/reload"),
            Err(RouteError::Method("POST"))
        );
        assert_eq!(
            route(&get, "/v1/services/web/stop"),
            Err(RouteError::Method("POST"))
        );
        assert_eq!(
            route(&Method::DELETE, "/v1/reload"),
            Err(RouteError::Method("POST"))
        );
        for p in [
            "/",
            "/v1",
            "/v1/",
            "/v2/status",
            "/v1/status/",
            "/v1/services",
            "/v1/services/",
            "/v1/services//stop",
        ] {
            assert_eq!(route(&get, p), Err(RouteError::NotFound), "{p}");
        }
        assert_eq!(
            route(&post, "/v1/services/web/kill"),
            Err(RouteError::NotFound)
        );
        assert_eq!(route(&get, "/v1/services/%ff"), Err(RouteError::BadPath));
        assert_eq!(route(&get, "/v1/services/%4"), Err(RouteError::BadPath));
    }

    #[test]
    fn every_route_is_listed() {
        for (method, template) in ROUTES {
            let path = template.replace("{name}", "x");
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            assert!(route(&method, &path).is_ok(), "{method} {path}");
        }
    }
}
