//! Browser sessions and CSRF tokens.
//!
//! Sign-in takes an API token (see `docs/api.md`): the session remembers the token's hash, so
//! deleting the token ends its sessions. The session id lives only in an `HttpOnly`,
//! `SameSite=Strict` cookie; Redis holds its SHA-256, never the id itself. Each session has
//! its own CSRF token that every form posts back. The sign-in form, which has no session yet,
//! uses a double-submit cookie whose value the panel signed: `<issued ms>.<nonce>.<mac>`, the
//! MAC an HMAC-SHA256 under a key derived from the panel secret. A pair the attacker made up
//! (e.g. a cookie planted from a sibling domain, with the same value in the form) is refused,
//! and so is a value older than [`LOGIN_CSRF_MAX_AGE_MS`].

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use hmac::{Hmac, KeyInit, Mac};
use outfitter_contract::keys::{Key, PanelSecret};
use outfitter_contract::redis_keys;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::tokens::{hash_token, random_secret};

/// Name of the session cookie.
pub const COOKIE: &str = "outfitter_session";
/// Name of the double-submit cookie of the sign-in form.
pub const LOGIN_CSRF_COOKIE: &str = "outfitter_login_csrf";
/// Name of the hidden form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

/// How long a sign-in form stays valid (its signed CSRF value then expires).
pub const LOGIN_CSRF_MAX_AGE_MS: i64 = 3_600_000;

/// The key that signs sign-in CSRF values. Derived like an agent key under a name that can
/// never be an agent id (agent ids are `[a-z0-9-]`, so no runner ever holds this key).
pub fn login_csrf_key(secret: &PanelSecret) -> Key {
    secret.agent_key("panel:login-csrf")
}

fn login_csrf_mac(key: &Key, issued_ms: i64, nonce: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&key.0).expect("HMAC takes any key length");
    mac.update(b"outfitter login csrf v1\0");
    mac.update(format!("{issued_ms}.{nonce}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A fresh signed value for the sign-in form and its cookie.
pub fn issue_login_csrf(key: &Key, now_ms: i64) -> Result<String, super::tokens::TokenError> {
    let nonce = random_secret("")?;
    let mac = login_csrf_mac(key, now_ms, &nonce);
    Ok(format!("{now_ms}.{nonce}.{mac}"))
}

/// Whether the form's value equals the cookie's AND is one this panel issued, not expired.
pub fn login_csrf_valid(
    key: &Key,
    cookie: Option<&str>,
    submitted: Option<&str>,
    now_ms: i64,
) -> bool {
    let (Some(cookie), Some(submitted)) = (cookie, submitted) else {
        return false;
    };
    if !csrf_matches(cookie, Some(submitted)) {
        return false;
    }
    let mut parts = submitted.splitn(3, '.');
    let (Some(issued), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(issued_ms) = issued.parse::<i64>() else {
        return false;
    };
    let age = now_ms.saturating_sub(issued_ms);
    (0..=LOGIN_CSRF_MAX_AGE_MS).contains(&age)
        && csrf_matches(&login_csrf_mac(key, issued_ms, nonce), Some(mac))
}

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
    fn sign_in_csrf_values_must_be_issued_by_this_panel_and_fresh() {
        let secret = PanelSecret::from_bytes(vec![7; 32]).unwrap();
        let key = login_csrf_key(&secret);
        let v = issue_login_csrf(&key, 1_000).unwrap();
        assert!(login_csrf_valid(&key, Some(&v), Some(&v), 2_000));
        // an equal pair the attacker chose
        assert!(!login_csrf_valid(&key, Some("abc"), Some("abc"), 2_000));
        let forged = format!("1000.{}.{}", "a".repeat(64), "b".repeat(64));
        assert!(!login_csrf_valid(&key, Some(&forged), Some(&forged), 2_000));
        // another panel's value, a different cookie, an expired value
        let other = login_csrf_key(&PanelSecret::from_bytes(vec![8; 32]).unwrap());
        let theirs = issue_login_csrf(&other, 1_000).unwrap();
        assert!(!login_csrf_valid(&key, Some(&theirs), Some(&theirs), 2_000));
        let v2 = issue_login_csrf(&key, 1_000).unwrap();
        assert!(!login_csrf_valid(&key, Some(&v2), Some(&v), 2_000));
        assert!(!login_csrf_valid(
            &key,
            Some(&v),
            Some(&v),
            1_000 + LOGIN_CSRF_MAX_AGE_MS + 1
        ));
        assert!(!login_csrf_valid(&key, None, Some(&v), 2_000));
    }

    #[test]
    fn session_cookie_is_http_only_and_strict() {
        let c = cookie("x".into(), 60, false);
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Strict));
        assert_eq!(c.path(), Some("/"));
    }
}
