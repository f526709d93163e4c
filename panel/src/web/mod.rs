//! The HTML pages. They work without JavaScript; `panel.js` adds live `visible_if` and live
//! job progress. Every form carries the session's CSRF token (`_csrf`).

mod agent_page;
pub mod app_form;
mod app_page;
mod catalog;
mod charts;
mod dashboard_page;
mod installation_page;
mod job_page;
mod lists;
mod login;
mod rollout_pages;
mod schedules_page;
mod webhooks_page;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

use crate::auth::session::{self, CSRF_FIELD};
use crate::auth::{self, Caller, Role};
use crate::error::{ApiError, Code};
use crate::state::AppState;
use crate::templates;

/// Routes of the pages and static files.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/panel.css", web::get().to(css))
        .route("/static/panel.js", web::get().to(js))
        .service(
            web::resource("/login")
                .route(web::get().to(login::form))
                .route(web::post().to(login::submit)),
        )
        .route("/logout", web::post().to(login::logout))
        .route("/", web::get().to(catalog::page))
        .route("/dashboard", web::get().to(dashboard_page::page))
        .service(
            web::resource("/apps/{id}")
                .route(web::get().to(app_page::page))
                .route(web::post().to(app_page::submit)),
        )
        .route("/jobs", web::get().to(lists::jobs))
        .route("/jobs/{id}", web::get().to(job_page::page))
        .route("/jobs/{id}/cancel", web::post().to(job_page::cancel))
        .route("/jobs/{id}/retry", web::post().to(job_page::retry))
        .route(
            "/installations/{id}",
            web::get().to(installation_page::page),
        )
        .route(
            "/installations/{id}/{action}",
            web::post().to(installation_page::act),
        )
        .service(
            web::resource("/rollouts")
                .route(web::get().to(rollout_pages::list))
                .route(web::post().to(rollout_pages::create)),
        )
        .route("/rollouts/{id}", web::get().to(rollout_pages::page))
        .route(
            "/rollouts/{id}/{action}",
            web::post().to(rollout_pages::control),
        )
        .service(
            web::resource("/schedules")
                .route(web::get().to(schedules_page::page))
                .route(web::post().to(schedules_page::create)),
        )
        .route(
            "/schedules/{id}/{action}",
            web::post().to(schedules_page::act),
        )
        .route("/agents", web::get().to(lists::agents))
        .route("/agents/{id}", web::get().to(agent_page::page))
        .route(
            "/agents/{id}/charts",
            web::get().to(agent_page::charts_fragment),
        )
        .route("/agents/{id}/labels", web::post().to(lists::set_labels))
        .route("/audit", web::get().to(lists::audit))
        .service(
            web::resource("/webhooks")
                .route(web::get().to(webhooks_page::page))
                .route(web::post().to(webhooks_page::create)),
        )
        .route(
            "/webhooks/{id}/delete",
            web::post().to(webhooks_page::delete),
        )
        .route(
            "/webhooks/{id}/deliveries/{delivery}/redeliver",
            web::post().to(webhooks_page::redeliver),
        );
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .body(templates::CSS)
}

async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .body(templates::JS)
}

fn escape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    tera::escape_html(s, &mut out).expect("writing to a Vec");
    String::from_utf8(out).expect("escaping keeps UTF-8")
}

/// A minimal error page (no template, so it cannot fail itself).
pub fn error_page(err: &ApiError) -> HttpResponse {
    let (code, status) = (err.code.as_str(), err.code.status());
    HttpResponse::build(status).content_type(ContentType::html()).body(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{status}</title>\
         <link rel=\"stylesheet\" href=\"/static/panel.css\"></head><body><main>\
         <h1>{}</h1><p class=\"error\" id=\"error\" data-code=\"{code}\">{}</p><p><a href=\"/\">Back to the catalog</a></p>\
         </main></body></html>",
        escape(status.canonical_reason().unwrap_or("Error")),
        escape(&err.message)
    ))
}

/// What a page handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Not signed in: go to the sign-in page, then come back.
    #[error("sign in first")]
    SignIn(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<crate::jobs::Error> for WebError {
    fn from(e: crate::jobs::Error) -> Self {
        WebError::Api(e.into())
    }
}

impl From<crate::agents::Error> for WebError {
    fn from(e: crate::agents::Error) -> Self {
        WebError::Api(e.into())
    }
}

impl From<crate::installations::Error> for WebError {
    fn from(e: crate::installations::Error) -> Self {
        WebError::Api(e.into())
    }
}

impl From<crate::rollouts::Error> for WebError {
    fn from(e: crate::rollouts::Error) -> Self {
        WebError::Api(e.into())
    }
}

impl From<crate::webhooks::Error> for WebError {
    fn from(e: crate::webhooks::Error) -> Self {
        WebError::Api(e.into())
    }
}

impl From<crate::schedules::Error> for WebError {
    fn from(e: crate::schedules::Error) -> Self {
        WebError::Api(e.into())
    }
}

impl From<redis::RedisError> for WebError {
    fn from(e: redis::RedisError) -> Self {
        WebError::Api(e.into())
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignIn(_) => StatusCode::SEE_OTHER,
            WebError::Api(e) => e.code.status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebError::SignIn(next) => redirect(&format!("/login?next={}", encode_query(next))),
            WebError::Api(e) => {
                if e.code == Code::Internal || e.code == Code::StoreUnavailable {
                    tracing::error!(code = e.code.as_str(), message = %e.message, "page failed");
                }
                error_page(e)
            }
        }
    }
}

pub type WebResult<T> = Result<T, WebError>;

/// `303 See Other` to a local path.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// Percent-encodes a query value.
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The signed-in user, or a redirect to the sign-in page.
pub async fn signed_in(state: &AppState, req: &HttpRequest) -> WebResult<Caller> {
    match auth::resolve(state, req).await? {
        Some(c) => Ok(c),
        None => {
            let next = match req.query_string() {
                "" => req.path().to_owned(),
                q => format!("{}?{q}", req.path()),
            };
            Err(WebError::SignIn(next))
        }
    }
}

/// The caller of a posted form: signed in, the form's CSRF token is the session's, and the
/// role is at least `role` (checked in that order, so a stale form signs in first).
pub async fn form_caller(
    state: &AppState,
    req: &HttpRequest,
    form: &[(String, String)],
    role: Role,
) -> WebResult<Caller> {
    let caller = signed_in(state, req).await?;
    check_csrf(&caller, form)?;
    caller.require(role)?;
    Ok(caller)
}

#[derive(Serialize)]
struct UserView<'a> {
    name: &'a str,
    role: &'a str,
    is_admin: bool,
}

/// Context every page gets: `user`, `csrf`, `flash`.
pub fn base_context(caller: Option<&Caller>) -> tera::Context {
    let mut ctx = tera::Context::new();
    match caller {
        Some(c) => {
            ctx.insert(
                "user",
                &UserView {
                    name: &c.name,
                    role: c.role.as_str(),
                    is_admin: c.is_admin(),
                },
            );
            ctx.insert("csrf", c.csrf().unwrap_or(""));
        }
        None => {
            ctx.insert("user", &serde_json::Value::Null);
            ctx.insert("csrf", "");
        }
    }
    ctx.insert("flash", "");
    ctx
}

/// Renders a template (a page, or a part of one) to HTML.
pub fn render_html(state: &AppState, name: &str, ctx: &tera::Context) -> WebResult<String> {
    state
        .templates
        .render(name, ctx)
        .map_err(|e| ApiError::new(Code::Internal, format!("rendering {name}: {e:?}")).into())
}

/// Renders a page with a status.
pub fn render(
    state: &AppState,
    name: &str,
    ctx: &tera::Context,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let html = render_html(state, name, ctx)?;
    Ok(HttpResponse::build(status)
        .content_type(ContentType::html())
        .body(html))
}

/// The value of a form field (the last one wins, as in `coerce_form`).
pub fn form_value<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Refuses a form whose CSRF token is not the session's.
pub fn check_csrf(caller: &Caller, form: &[(String, String)]) -> WebResult<()> {
    let ok = caller
        .csrf()
        .is_some_and(|expected| session::csrf_matches(expected, form_value(form, CSRF_FIELD)));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::CsrfFailed,
            "this form expired or did not come from this panel; reload the page and try again",
        )
        .into())
    }
}

/// Page body for a time, or `—`.
pub fn when(ms: Option<i64>) -> String {
    ms.map(crate::clock::format_utc)
        .unwrap_or_else(|| "—".into())
}
