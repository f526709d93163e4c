//! Sign-in with an API token, sign-out.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{WebResult, base_context, check_csrf, redirect, render, signed_in};
use crate::audit;
use crate::auth::session::{self, LOGIN_CSRF_COOKIE};
use crate::auth::throttle::{self, RetryAfter};
use crate::auth::tokens;
use crate::auth::{Via, request_origin};
use crate::clock::now_ms;
use crate::error::{ApiError, Code};
use crate::state::AppState;

/// Who the audit log names for a sign-in that proved no token.
const ANONYMOUS: &str = "anonymous";

/// Whether `next` (already percent-decoded) is a path on this origin. Browsers drop tabs and
/// newlines inside URLs and read `\` as `/`, so `/\t/evil` or `/\evil` would leave it; any
/// control character, backslash, space or non-ASCII (which a `Location` header cannot carry
/// either) sends the user to `/` instead.
fn is_local_path(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && n.len() < 2048
        && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
}

/// Where a sign-in lands when it was not sent from a page: how the fleet is doing.
pub(super) const LANDING: &str = "/dashboard";

/// Only local paths are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if is_local_path(n) => n.to_owned(),
        _ => LANDING.to_owned(),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

fn login_page(
    state: &AppState,
    next: &str,
    error: &str,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let key = session::login_csrf_key(&state.secret);
    let csrf = session::issue_login_csrf(&key, now_ms())
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    let mut ctx = base_context(None);
    ctx.insert("login_csrf", &csrf);
    ctx.insert("next", next);
    ctx.insert("error", error);
    let mut resp = render(state, "login.html", &ctx, status)?;
    resp.add_cookie(&session::login_csrf_cookie(
        csrf,
        state.settings.cookie_secure,
    ))
    .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    Ok(resp)
}

pub(super) async fn form(
    state: web::Data<AppState>,
    q: web::Query<NextQuery>,
) -> WebResult<HttpResponse> {
    login_page(&state, &safe_next(q.next.as_deref()), "", StatusCode::OK)
}

pub(super) async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let next = safe_next(super::form_value(&form, "next"));
    let cookie = req.cookie(LOGIN_CSRF_COOKIE);
    let submitted = super::form_value(&form, session::CSRF_FIELD);
    let key = session::login_csrf_key(&state.secret);
    if !session::login_csrf_valid(
        &key,
        cookie.as_ref().map(|c| c.value()),
        submitted,
        now_ms(),
    ) {
        return Err(ApiError::new(
            Code::CsrfFailed,
            "the sign-in form expired; reload the page and try again",
        )
        .into());
    }
    let token = super::form_value(&form, "token")
        .unwrap_or("")
        .trim()
        .to_owned();
    let mut conn = state.redis.clone();
    let ip = throttle::client_ip(&req);
    if let Err(wait) = state.throttle.check(ip) {
        return throttled(&req, &state, &next, wait);
    }
    let Some(record) = tokens::lookup(&mut conn, &token).await? else {
        let from = request_origin(&req);
        let refused = state.throttle.failed(ip);
        let detail = match refused {
            Ok(()) => "token not valid".to_owned(),
            Err(w) => format!("token not valid; address blocked for {} s", w.secs()),
        };
        audit::record(
            &mut conn,
            ANONYMOUS,
            "session.login_failed",
            "",
            &from,
            &detail,
        )
        .await;
        if let Err(wait) = refused {
            return throttled(&req, &state, &next, wait);
        }
        return login_page(
            &state,
            &next,
            "This token is not valid.",
            StatusCode::UNAUTHORIZED,
        );
    };
    let ttl = state.settings.session_ttl_secs;
    let id = session::create(&mut conn, &tokens::hash_token(&token), ttl, now_ms())
        .await
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    audit::record(
        &mut conn,
        &record.name,
        "session.login",
        &record.name,
        &request_origin(&req),
        "",
    )
    .await;
    let mut resp = redirect(&next);
    let secure = state.settings.cookie_secure;
    resp.add_cookie(&session::cookie(id, ttl, secure))
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    let mut gone = session::login_csrf_cookie(String::new(), secure);
    gone.make_removal();
    resp.add_cookie(&gone)
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    Ok(resp)
}

/// The sign-in page again, 429 with `Retry-After`.
fn throttled(
    req: &HttpRequest,
    state: &AppState,
    next: &str,
    wait: RetryAfter,
) -> WebResult<HttpResponse> {
    let err = wait.refuse(req);
    login_page(state, next, &err.message, StatusCode::TOO_MANY_REQUESTS)
}

pub(super) async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let caller = signed_in(&state, &req).await?;
    check_csrf(&caller, &form)?;
    let mut conn = state.redis.clone();
    if let Via::Session { id_hash, .. } = &caller.via {
        session::delete(&mut conn, id_hash).await?;
    }
    audit::record(
        &mut conn,
        &caller.name,
        "session.logout",
        &caller.name,
        &caller.from,
        "",
    )
    .await;
    let mut resp = redirect("/login");
    resp.add_cookie(&session::removal_cookie(state.settings.cookie_secure))
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next(Some("/jobs?state=failed")), "/jobs?state=failed");
        assert_eq!(safe_next(Some("//evil.example")), LANDING);
        assert_eq!(safe_next(Some("https://evil.example")), LANDING);
        assert_eq!(safe_next(Some("/\\evil")), LANDING);
        assert_eq!(safe_next(None), LANDING);
        for hostile in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\x0b/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            "/ /evil.example",
            "/x\\evil",
            "/\u{2028}/evil",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), LANDING, "{hostile:?}");
        }
        assert_eq!(safe_next(Some("/jobs/abc?x=%2F%2F")), "/jobs/abc?x=%2F%2F");
    }
}
