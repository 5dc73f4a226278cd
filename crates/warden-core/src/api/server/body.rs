//! The response side: the body type (a whole JSON document or a stream of chunks) and the
//! helpers every handler answers with. Every error answer is a [`proto::ErrorBody`].
//!
//! [`proto::ErrorBody`]: crate::proto::ErrorBody

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::engine::EngineError;
use crate::proto::{ErrorBody, ErrorDetail, ServiceStatus};

/// A response body: a whole JSON document, or a stream of chunks (follow).
pub(super) struct ApiBody(pub(super) BodyKind);

pub(super) enum BodyKind {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().0 {
            BodyKind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            BodyKind::Stream(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.0, BodyKind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            BodyKind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            BodyKind::Full(None) => SizeHint::with_exact(0),
            BodyKind::Stream(_) => SizeHint::default(),
        }
    }
}

pub(super) type Resp = Response<ApiBody>;

pub(super) fn respond(status: StatusCode, content_type: &'static str, body: ApiBody) -> Resp {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(super) fn json_response(status: StatusCode, value: &impl Serialize) -> Resp {
    match serde_json::to_vec(value) {
        Ok(data) => respond(
            status,
            "application/json",
            ApiBody(BodyKind::Full(Some(data.into()))),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode the answer: {e}"),
        ),
    }
}

pub(super) fn error(status: StatusCode, message: &str) -> Resp {
    json_response(status, &ErrorBody::new(message))
}

pub(super) fn unknown_service(name: &str, known: &[String]) -> Resp {
    json_response(
        StatusCode::NOT_FOUND,
        &ErrorBody::unknown_service(name, known.to_vec()),
    )
}

pub(super) fn shutting_down() -> Resp {
    error(StatusCode::SERVICE_UNAVAILABLE, "warden is shutting down")
}

pub(super) fn engine_error(e: EngineError, status: Option<&ServiceStatus>) -> Resp {
    match e {
        EngineError::UnknownService { name, known } => unknown_service(&name, &known),
        EngineError::ShuttingDown => shutting_down(),
        EngineError::Failed { name, reason } => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &ErrorBody {
                error: format!("{name}: {reason}"),
                detail: ErrorDetail::Failed {
                    reason,
                    service: name,
                    status: status.cloned().map(Box::new),
                },
            },
        ),
    }
}
