//! Sign-in with an API token, sign-out.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{WebResult, base_context, check_csrf, redirect, render, signed_in};
use crate::audit;
use crate::auth::session::{self, LOGIN_CSRF_COOKIE};
use crate::auth::tokens::{self, random_secret};
use crate::auth::{Via, request_origin};
use crate::clock::now_ms;
use crate::error::{ApiError, Code};
use crate::state::AppState;

/// Only local paths are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() < 2048 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_page(
    state: &AppState,
    next: &str,
    error: &str,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let csrf = random_secret("").map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
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

pub async fn form(state: web::Data<AppState>, q: web::Query<NextQuery>) -> WebResult<HttpResponse> {
    login_page(&state, &safe_next(q.next.as_deref()), "", StatusCode::OK)
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let next = safe_next(super::form_value(&form, "next"));
    let cookie = req.cookie(LOGIN_CSRF_COOKIE);
    let submitted = super::form_value(&form, session::CSRF_FIELD);
    if !cookie.is_some_and(|c| session::csrf_matches(c.value(), submitted)) {
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
    let Some(record) = tokens::lookup(&mut conn, &token).await? else {
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

pub async fn logout(
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
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
