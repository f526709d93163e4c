//! Who is calling: bearer tokens for the API, session cookies for the browser, and roles.
//!
//! A viewer reads; an operator also queues, cancels and retries jobs; an admin also manages
//! agents and tokens and reads the audit log.

pub mod session;
pub mod throttle;
pub mod tokens;

use std::fmt;
use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Code};
use crate::state::AppState;

/// A caller's role; each includes everything the lower ones may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    ToSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err("role must be admin, operator or viewer".into()),
        }
    }
}

/// Header a browser-session write to the API must carry (the session's CSRF token).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// A browser session; forms must carry this CSRF token.
    Session { id_hash: String, csrf: String },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name: what the audit log records as "who".
    pub name: String,
    pub role: Role,
    pub via: Via,
    /// Where the request came from, for the audit log.
    pub from: String,
}

impl Caller {
    /// Refuses the request unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::new(
                Code::Forbidden,
                format!(
                    "this action needs the {role} role; token {:?} has {}",
                    self.name, self.role
                ),
            ))
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role >= Role::Admin
    }

    pub fn csrf(&self) -> Option<&str> {
        match &self.via {
            Via::Session { csrf, .. } => Some(csrf),
            Via::Bearer => None,
        }
    }
}

/// The peer address (and `X-Forwarded-For`, when present, as a note: it can be forged).
pub fn request_origin(req: &HttpRequest) -> String {
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    match req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(fwd) => format!(
            "{peer} (forwarded for {})",
            fwd.chars().take(100).collect::<String>()
        ),
        None => peer,
    }
}

/// Resolves the caller of a request: bearer token first, then the session cookie.
pub async fn resolve(state: &AppState, req: &HttpRequest) -> Result<Option<Caller>, ApiError> {
    let from = request_origin(req);
    let mut conn = state.redis.clone();
    if let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        // A blocked address is refused before its token is looked at (see `throttle`).
        let ip = throttle::client_ip(req);
        state.throttle.check(ip).map_err(|w| w.refuse(req))?;
        let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer "));
        let record = match token {
            Some(t) => tokens::lookup(&mut conn, t.trim()).await?,
            None => None,
        };
        if let Some(rec) = record {
            return Ok(Some(Caller {
                name: rec.name,
                role: rec.role,
                via: Via::Bearer,
                from,
            }));
        }
        state.throttle.failed(ip).map_err(|w| w.refuse(req))?;
        return Err(ApiError::new(
            Code::Unauthorized,
            if token.is_some() {
                "the bearer token is not valid"
            } else {
                "Authorization must be `Bearer <token>`"
            },
        ));
    }
    let Some(cookie) = req.cookie(session::COOKIE) else {
        return Ok(None);
    };
    let Some((id_hash, sess)) = session::load(&mut conn, cookie.value()).await? else {
        return Ok(None);
    };
    // The token behind a session must still exist: deleting a token signs its sessions out.
    let Some(rec) = tokens::lookup_hash(&mut conn, &sess.token_hash).await? else {
        return Ok(None);
    };
    Ok(Some(Caller {
        name: rec.name,
        role: rec.role,
        via: Via::Session {
            id_hash,
            csrf: sess.csrf,
        },
        from,
    }))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::new(Code::Internal, "application state missing"))?
                .clone();
            let caller = resolve(&state, &req).await?.ok_or_else(|| {
                ApiError::new(
                    Code::Unauthorized,
                    "sign in, or send `Authorization: Bearer <token>` (create one with `outfitter-panel token add`)",
                )
            })?;
            // A browser session may read the API (the job page's live events), but a write
            // through it must prove it comes from a panel page: `X-CSRF-Token`.
            let safe = matches!(
                *req.method(),
                actix_web::http::Method::GET | actix_web::http::Method::HEAD
            );
            if let Via::Session { csrf, .. } = &caller.via
                && !safe
            {
                let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                if !session::csrf_matches(csrf, sent) {
                    return Err(ApiError::new(
                        Code::CsrfFailed,
                        "writes with a browser session need the X-CSRF-Token header; API clients use a bearer token",
                    ));
                }
            }
            Ok(caller)
        })
    }
}
