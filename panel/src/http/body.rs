//! Request bodies: a JSON extractor with a size cap, a nesting cap and errors from the
//! table, a deadline on reading any body, and the handlers that turn actix's own extractor
//! errors into table errors.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Code};
use crate::state::AppState;

/// Deepest JSON nesting accepted (a job request needs 3).
pub const MAX_JSON_DEPTH: usize = 32;

/// A JSON body, read within `max_body_bytes` and parsed strictly.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// The nesting depth of a JSON text, stopping early once it passes `max`.
pub fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A body stream that fails with `TimedOut` once its deadline passes before the body ends, so
/// a client trickling a body cannot hold a connection (actix bounds only the headers).
struct Deadline {
    inner: Rc<RefCell<Payload>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    ended: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut *this.inner.borrow_mut()).poll_next(cx);
        match polled {
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(chunk)) => Poll::Ready(Some(chunk)),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.ended = true;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "body read timeout",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The unread rest of a request body. Held by a 408 response's body until it is written, so
/// actix sees the request body unfinished and closes the connection: a dropped chunked body
/// would otherwise be drained at whatever pace the client chooses.
pub struct UnreadBody {
    _payload: Rc<RefCell<Payload>>,
}

impl UnreadBody {
    /// A response body that keeps this alive until it has been sent.
    pub fn hold(self, body: BoxBody) -> HoldingBody {
        HoldingBody { body, _rest: self }
    }
}

/// A response body holding the unread rest of its request's body (see [`UnreadBody`]).
pub struct HoldingBody {
    body: BoxBody,
    _rest: UnreadBody,
}

impl MessageBody for HoldingBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// The request's body, bounded to arrive within `limit` from now, and its unread rest.
pub fn with_deadline(payload: Payload, limit: Duration) -> (Payload, UnreadBody) {
    let inner = Rc::new(RefCell::new(payload));
    let stream = Deadline {
        inner: inner.clone(),
        sleep: Box::pin(tokio::time::sleep(limit)),
        ended: false,
    };
    let boxed: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(stream);
    (Payload::from(boxed), UnreadBody { _payload: inner })
}

fn is_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

fn timed_out() -> ApiError {
    ApiError::new(
        Code::RequestTimeout,
        "the request body did not arrive in time (body_read_timeout_secs)",
    )
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("the request body is larger than {limit} bytes"),
    )
}

/// Reads a body up to `limit` bytes; larger is refused without reading the rest.
pub async fn read_limited(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            PayloadError::Overflow => too_large(limit),
            e if is_timeout(&e) => timed_out(),
            other => ApiError::new(
                Code::InvalidJson,
                format!("reading the body failed: {other}"),
            ),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses JSON text strictly: depth first, then the type (unknown fields refused there).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if json_depth_exceeds(bytes, MAX_JSON_DEPTH) {
        return Err(ApiError::new(
            Code::JsonTooDeep,
            format!("JSON is nested deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        // serde's message names the field and the expected type; it never echoes long values.
        let msg: String = e.to_string().chars().take(300).collect();
        ApiError::new(
            Code::InvalidJson,
            format!("the body is not valid JSON for this endpoint: {msg}"),
        )
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let limit = req
                .app_data::<web::Data<AppState>>()
                .map(|s| s.settings.max_body_bytes)
                .unwrap_or(1024 * 1024);
            let is_json = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|ct| {
                    ct.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .eq_ignore_ascii_case("application/json")
                });
            if is_json == Some(false) {
                return Err(ApiError::new(
                    Code::UnsupportedMediaType,
                    "send the body as `Content-Type: application/json`",
                ));
            }
            let body = read_limited(&req, &mut payload, limit).await?;
            parse_json(&body).map(JsonBody)
        })
    }
}

/// Query-string errors as table errors.
#[allow(clippy::needless_pass_by_value)] // actix's error-handler signature takes the error by value
pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::new(Code::InvalidParameter, format!("query string: {err}")).into()
}

/// Path errors as table errors.
#[allow(clippy::needless_pass_by_value)] // actix's error-handler signature takes the error by value
pub fn path_error(err: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::new(Code::InvalidParameter, format!("path: {err}")).into()
}

/// Form errors as table errors.
pub fn form_error(err: actix_web::error::UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    match err {
        actix_web::error::UrlencodedError::Overflow { limit, .. } => too_large(limit).into(),
        actix_web::error::UrlencodedError::Payload(e) if is_timeout(&e) => timed_out().into(),
        actix_web::error::UrlencodedError::ContentType => ApiError::new(
            Code::UnsupportedMediaType,
            "send the form as application/x-www-form-urlencoded",
        )
        .into(),
        other => ApiError::new(Code::InvalidParameter, format!("form: {other}")).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(!json_depth_exceeds(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":[1,{"b":[2]}]}"#, 3));
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[[[[[\"[[[["}"#, 1));
        assert!(json_depth_exceeds(
            "[".repeat(100_000).as_bytes(),
            MAX_JSON_DEPTH
        ));
    }

    #[test]
    fn wrong_types_and_unknown_fields_name_the_problem() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let e = parse_json::<T>(br#"{"a":"x"}"#).unwrap_err();
        assert_eq!(e.code, Code::InvalidJson);
        assert!(e.message.contains("invalid type"), "{}", e.message);
        let e = parse_json::<T>(br#"{"a":1,"zzz":2}"#).unwrap_err();
        assert!(e.message.contains("zzz"), "{}", e.message);
    }
}
