//! The HTTP surface: one app-building function for `serve` and for the in-process tests.

pub mod api;
pub mod body;
pub mod openapi;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::Service as _;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, web};

use crate::auth::throttle::RetryAfter;
use crate::error::{ApiError, Code};
use crate::state::AppState;

/// Security headers on every response. The pages need no inline script or style.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ))
}

/// 404 for unknown paths: JSON under `/api`, a page elsewhere.
async fn not_found(req: HttpRequest) -> HttpResponse {
    let err = ApiError::new(
        Code::NotFound,
        format!(
            "no such path: {}",
            req.path().chars().take(200).collect::<String>()
        ),
    );
    if req.path().starts_with("/api/") {
        actix_web::ResponseError::error_response(&err)
    } else {
        crate::web::error_page(&err)
    }
}

/// Builds the whole application around its state.
pub fn build_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let form_limit = state.settings.max_body_bytes;
    let body_timeout = std::time::Duration::from_secs(state.settings.body_read_timeout_secs);
    App::new()
        .app_data(state)
        .app_data(web::QueryConfig::default().error_handler(body::query_error))
        .app_data(web::PathConfig::default().error_handler(body::path_error))
        .app_data(
            web::FormConfig::default()
                .limit(form_limit)
                .error_handler(body::form_error),
        )
        .wrap(security_headers())
        .wrap_fn(move |mut req, srv| {
            // The body deadline, the access log through `tracing` (actix's Logger writes to
            // the `log` crate) and the HTTP metrics by route pattern.
            let (method, path) = (req.method().clone(), req.path().to_owned());
            let metrics = req
                .app_data::<web::Data<AppState>>()
                .map(|s| s.metrics.clone());
            let started = std::time::Instant::now();
            let mut unread = None;
            if req.headers().contains_key(header::CONTENT_LENGTH)
                || req.headers().contains_key(header::TRANSFER_ENCODING)
            {
                let (payload, rest) = body::with_deadline(req.take_payload(), body_timeout);
                req.set_payload(payload);
                unread = Some(rest);
            }
            let fut = srv.call(req);
            async move {
                let mut res = fut.await?;
                let mut hold = None;
                if res.status() == StatusCode::REQUEST_TIMEOUT {
                    // The rest of a late body is never read: the connection cannot be reused.
                    res.response_mut()
                        .head_mut()
                        .set_connection_type(ConnectionType::Close);
                    hold = unread;
                }
                let wait = res.request().extensions().get::<RetryAfter>().copied();
                if let Some(wait) = wait {
                    res.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(wait.secs()));
                }
                if let Some(m) = metrics {
                    let route = res.request().match_pattern();
                    m.http_request(
                        method.as_str(),
                        route.as_deref(),
                        res.status().as_u16(),
                        started.elapsed().as_secs_f64(),
                    );
                }
                if path != "/healthz" && path != "/metrics" {
                    tracing::info!(
                        target: "outfitter_panel::access",
                        %method,
                        path = %path.chars().take(200).collect::<String>(),
                        status = res.status().as_u16(),
                        ms = started.elapsed().as_millis() as u64,
                    );
                }
                Ok(res.map_body(|_, body| match hold {
                    Some(rest) => EitherBody::right(rest.hold(body.boxed())),
                    None => EitherBody::left(body),
                }))
            }
        })
        .service(api::resource("/healthz").route(web::get().to(api::system::healthz)))
        .service(api::resource("/metrics").route(web::get().to(api::system::metrics)))
        .service(api::resource("/openapi.json").route(web::get().to(api::system::openapi)))
        .service(web::scope("/api/v1").configure(api::configure))
        .configure(crate::web::configure)
        .default_service(web::to(not_found))
}
