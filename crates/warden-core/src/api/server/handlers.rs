//! The handlers: one function per route, over the [`Backend`](super::Backend).

use std::sync::Arc;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use tokio::sync::mpsc;

use super::body::{
    ApiBody, BodyKind, Resp, engine_error, error, json_response, respond, shutting_down,
    unknown_service,
};
use super::follow::{FOLLOW_QUEUE, follow_task, line_json};
use super::query::{BadQuery, parse_query, validate_query};
use super::routes::{Route, RouteError, route};
use super::{ApiContext, DEFAULT_TAIL, HEADER_TIMEOUT, MAX_BODY, MAX_FOLLOWERS};
use crate::engine::{EngineError, ReloadError};
use crate::logs::Rotation;
use crate::model::Stream;
use crate::proto::{
    Action, ErrorBody, LogsResponse, RotateOutcome, RotateReport, RotatedFile, ServiceStatus,
    ShutdownAnswer,
};

pub(super) async fn handle(req: Request<Incoming>, ctx: Arc<ApiContext>) -> Resp {
    let route = match route(req.method(), req.uri().path()) {
        Ok(r @ (Route::Health | Route::Metrics)) => r,
        Ok(_) if ctx.access.monitoring_only => {
            let msg = format!(
                "no such path: {} (this listener serves /health and /metrics only)",
                req.uri().path()
            );
            return error(StatusCode::NOT_FOUND, &msg);
        }
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("no such path: {}", req.uri().path()),
            );
        }
        Err(RouteError::BadPath) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the path is not valid percent-encoded UTF-8",
            );
        }
        Err(RouteError::Method(allow)) => {
            let msg = format!(
                "{} is not allowed on {} (use {allow})",
                req.method(),
                req.uri().path()
            );
            let mut resp = error(StatusCode::METHOD_NOT_ALLOWED, &msg);
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            return resp;
        }
    };
    let query = match parse_query(req.uri().query()).and_then(|pairs| validate_query(&route, pairs))
    {
        Ok(q) => q,
        Err(BadQuery(msg)) => return error(StatusCode::BAD_REQUEST, &msg),
    };
    // No endpoint takes a body; read what is sent (bounded in size and time) so the
    // connection stays usable.
    if let Err(resp) = drain_body(req.into_body()).await {
        return resp;
    }
    match route {
        Route::Health => health(&ctx).await,
        Route::Metrics => metrics(&ctx).await,
        Route::Status if query.until_up => {
            let timeout = query.timeout.unwrap_or(super::DEFAULT_UP_WAIT);
            // Either way the answer is the status of that moment; the client tells who is up.
            let _ = tokio::time::timeout(timeout, ctx.backend.settled()).await;
            status(&ctx, &query.names).await
        }
        Route::Status => status(&ctx, &query.names).await,
        Route::Service(name) => service(&ctx, &name).await,
        Route::Act(name, action) => act(ctx, name, action, query.wait.unwrap_or(true)).await,
        Route::Logs(name) => {
            let n = query.n.unwrap_or(DEFAULT_TAIL);
            logs(&ctx, &name, n, query.stream, query.follow.unwrap_or(false)).await
        }
        Route::Config(name) => super::config_view::answer(ctx.backend.config_in_force(), &name),
        Route::Reload => reload(&ctx).await,
        Route::Rotate(name) => rotate(&ctx, name).await,
        Route::Shutdown => shutdown(&ctx),
    }
}

/// `GET /health`: 200 or 503 with the verdict, names and states.
async fn health(ctx: &ApiContext) -> Resp {
    let Some(report) = ctx.backend.metrics().await else {
        return shutting_down();
    };
    let body = super::metrics::health(&report);
    let code = match body.status {
        crate::proto::Verdict::Healthy => StatusCode::OK,
        crate::proto::Verdict::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
    };
    json_response(code, &body)
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(ctx: &ApiContext) -> Resp {
    let Some(report) = ctx.backend.metrics().await else {
        return shutting_down();
    };
    // /proc reads: small, but blocking file work.
    let own = tokio::task::spawn_blocking(crate::process::sample_own)
        .await
        .ok()
        .flatten();
    let text = super::metrics::exposition(&report, own);
    respond(
        StatusCode::OK,
        super::metrics::CONTENT_TYPE,
        ApiBody(BodyKind::Full(Some(text.into()))),
    )
}

/// Read and discard a request body: at most [`MAX_BODY`] bytes within [`HEADER_TIMEOUT`].
async fn drain_body(body: Incoming) -> Result<(), Resp> {
    let close = |mut resp: Resp| {
        // The rest of the body is not read: the connection cannot be reused.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        resp
    };
    let too_large = || {
        close(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than {MAX_BODY} bytes"),
        ))
    };
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    match tokio::time::timeout(HEADER_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(close(error(
            StatusCode::BAD_REQUEST,
            "cannot read the request body",
        ))),
        Err(_) => Err(close(error(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        ))),
    }
}

async fn status(ctx: &ApiContext, names: &[String]) -> Resp {
    let Some(mut report) = ctx.backend.status().await else {
        return shutting_down();
    };
    if !names.is_empty() {
        if let Some(missing) = names
            .iter()
            .find(|n| !report.services.iter().any(|s| &s.name == *n))
        {
            let known: Vec<String> = report.services.into_iter().map(|s| s.name).collect();
            return unknown_service(missing, &known);
        }
        report.services.retain(|s| names.contains(&s.name));
    }
    json_response(StatusCode::OK, &report)
}

/// The current status of `name`, or the response to send instead.
async fn find_service(ctx: &ApiContext, name: &str) -> Result<ServiceStatus, Resp> {
    let report = ctx.backend.status().await.ok_or_else(shutting_down)?;
    let known: Vec<String> = report.services.iter().map(|s| s.name.clone()).collect();
    report
        .services
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| unknown_service(name, &known))
}

async fn service(ctx: &ApiContext, name: &str) -> Resp {
    match find_service(ctx, name).await {
        Ok(s) => json_response(StatusCode::OK, &s),
        Err(resp) => resp,
    }
}

async fn act(ctx: Arc<ApiContext>, name: String, action: Action, wait: bool) -> Resp {
    if !wait {
        let current = match find_service(&ctx, &name).await {
            Ok(s) => s,
            Err(resp) => return resp,
        };
        tokio::spawn(async move {
            // Nobody waits for the outcome: it shows in the status and warden's events.
            let _ = ctx.backend.act(action, &name).await;
        });
        return json_response(StatusCode::ACCEPTED, &current);
    }
    let result = ctx.backend.act_reporting(action, &name).await;
    let after = find_service(&ctx, &name).await;
    match (result, after) {
        (Ok(started_first), Ok(s)) => {
            json_response(StatusCode::OK, &ServiceStatus { started_first, ..s })
        }
        (Ok(_), Err(resp)) => resp,
        (Err(e), after) => engine_error(e, after.ok().as_ref()),
    }
}

async fn logs(
    ctx: &ApiContext,
    name: &str,
    n: usize,
    stream: Option<Stream>,
    follow: bool,
) -> Resp {
    let source = match ctx.backend.logs(name).await {
        Ok(s) => s,
        Err(e) => return engine_error(e, None),
    };
    if !follow {
        let lines = source.tail(n, stream).iter().map(line_json).collect();
        return json_response(StatusCode::OK, &LogsResponse { lines });
    }
    let Ok(permit) = ctx.followers.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{MAX_FOLLOWERS} log streams are open already; try again later"),
        );
    };
    // Subscribe before reading the tail so no line falls between them; duplicates are
    // skipped by their sequence number.
    let live = source.subscribe();
    // The backlog is not copied for the task: it reads it from the tail, a chunk at a time,
    // from the first of the last `n` lines on (with n = 0: after the newest line). Lines
    // of the other stream are skipped by the filter.
    let start_after = match source.tail(n, stream).first() {
        Some(first) => first.seq.checked_sub(1),
        None => source.tail(1, None).last().map(|l| l.seq),
    };
    // Hold the logs only weakly: when the service goes away, the stream ends.
    let recover = Arc::downgrade(&source);
    drop(source);
    let (tx, rx) = mpsc::channel(FOLLOW_QUEUE);
    tokio::spawn(async move {
        follow_task(Vec::new(), start_after, live, stream, tx, Some(recover)).await;
        drop(permit);
    });
    respond(
        StatusCode::OK,
        "application/x-ndjson",
        ApiBody(BodyKind::Stream(rx)),
    )
}

async fn reload(ctx: &ApiContext) -> Resp {
    match ctx.backend.reload().await {
        Ok(report) => json_response(StatusCode::OK, &report),
        Err(ReloadError::Config(errors)) => {
            let list: Vec<String> = errors.errors.iter().map(ToString::to_string).collect();
            json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &ErrorBody::config(errors.file.display().to_string(), list),
            )
        }
        Err(ReloadError::ShuttingDown) => shutting_down(),
    }
}

/// Rotate the log files of `name`, or of every service (one that a reload removes meanwhile
/// is skipped). The files are renamed off the async threads.
async fn rotate(ctx: &ApiContext, name: Option<String>) -> Resp {
    let all = name.is_none();
    let names = match name {
        Some(n) => vec![n],
        None => match ctx.backend.status().await {
            Some(report) => report.services.into_iter().map(|s| s.name).collect(),
            None => return shutting_down(),
        },
    };
    let mut sources = Vec::with_capacity(names.len());
    for n in names {
        match ctx.backend.logs(&n).await {
            Ok(source) => sources.push((n, source)),
            Err(EngineError::UnknownService { .. }) if all => {}
            Err(e) => return engine_error(e, None),
        }
    }
    let rotated = tokio::task::spawn_blocking(move || {
        let mut files = Vec::new();
        for (service, source) in sources {
            for (path, rotation) in source.rotate() {
                let (outcome, to, error) = match rotation {
                    Rotation::Rotated(to) => {
                        (RotateOutcome::Rotated, Some(to.display().to_string()), None)
                    }
                    Rotation::Empty => (RotateOutcome::Empty, None, None),
                    Rotation::Failed(why) => (RotateOutcome::Failed, None, Some(why)),
                };
                files.push(RotatedFile {
                    service: service.clone(),
                    path: path.display().to_string(),
                    outcome,
                    to,
                    error,
                });
            }
        }
        files
    })
    .await;
    match rotated {
        Ok(files) => json_response(StatusCode::OK, &RotateReport { files }),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the rotation task failed",
        ),
    }
}

fn shutdown(ctx: &ApiContext) -> Resp {
    match ctx.shutdown.try_send(()) {
        // Full: a shutdown is already on its way.
        Ok(()) | Err(mpsc::error::TrySendError::Full(())) => json_response(
            StatusCode::ACCEPTED,
            &ShutdownAnswer {
                shutting_down: true,
            },
        ),
        Err(mpsc::error::TrySendError::Closed(())) => shutting_down(),
    }
}
