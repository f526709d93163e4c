//! Browser sessions and CSRF tokens.
//!
//! Sign-in takes an API token (see `docs/api.md`): the session remembers the token's hash, so
//! deleting the token ends its sessions. The session id lives only in an `HttpOnly`,
//! `SameSite=Strict` cookie; Redis holds its SHA-256, never the id itself. Each session has
//! its own CSRF token that every form posts back. The sign-in form, which has no session yet,
//! uses a double-submit cookie instead.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use outfitter_contract::redis_keys;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::tokens::{hash_token, random_secret};

/// Name of the session cookie.
pub const COOKIE: &str = "outfitter_session";
/// Name of the double-submit cookie of the sign-in form.
pub const LOGIN_CSRF_COOKIE: &str = "outfitter_login_csrf";
/// Name of the hidden form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

/// What Redis keeps for a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub token_hash: String,
    pub csrf: String,
    pub created_at: i64,
}

/// Starts a session for a token; returns the session id for the cookie.
pub async fn create<C: AsyncCommands>(
    conn: &mut C,
    token_hash: &str,
    ttl_secs: u64,
    now_ms: i64,
) -> Result<String, super::tokens::TokenError> {
    let id = random_secret("")?;
    let sess = Session {
        token_hash: token_hash.to_owned(),
        csrf: random_secret("")?,
        created_at: now_ms,
    };
    let json = serde_json::to_string(&sess).expect("sessions serialize");
    let _: () = conn
        .set_ex(redis_keys::session(&hash_token(&id)), json, ttl_secs.max(1))
        .await?;
    Ok(id)
}

/// The session behind a cookie value, with the hash of its id.
pub async fn load<C: AsyncCommands>(
    conn: &mut C,
    id: &str,
) -> redis::RedisResult<Option<(String, Session)>> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let id_hash = hash_token(id);
    let json: Option<String> = conn.get(redis_keys::session(&id_hash)).await?;
    Ok(json
        .and_then(|j| serde_json::from_str(&j).ok())
        .map(|s| (id_hash, s)))
}

/// Ends a session.
pub async fn delete<C: AsyncCommands>(conn: &mut C, id_hash: &str) -> redis::RedisResult<()> {
    conn.del(redis_keys::session(id_hash)).await
}

/// The session cookie.
pub fn cookie(id: String, ttl_secs: u64, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE, id)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::seconds(ttl_secs.min(i64::MAX as u64) as i64))
        .finish()
}

/// A cookie that removes the session cookie.
pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut c = cookie(String::new(), 0, secure);
    c.make_removal();
    c
}

/// The double-submit cookie of the sign-in form.
pub fn login_csrf_cookie(value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(LOGIN_CSRF_COOKIE, value)
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish()
}

/// Whether a submitted CSRF token equals the expected one (constant time).
pub fn csrf_matches(expected: &str, submitted: Option<&str>) -> bool {
    match submitted {
        Some(s) if !expected.is_empty() => expected.as_bytes().ct_eq(s.as_bytes()).into(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_needs_an_exact_match() {
        assert!(csrf_matches("abc", Some("abc")));
        assert!(!csrf_matches("abc", Some("abd")));
        assert!(!csrf_matches("abc", Some("ab")));
        assert!(!csrf_matches("abc", None));
        assert!(!csrf_matches("", Some("")));
    }

    #[test]
    fn session_cookie_is_http_only_and_strict() {
        let c = cookie("x".into(), 60, false);
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Strict));
        assert_eq!(c.path(), Some("/"));
    }
}
