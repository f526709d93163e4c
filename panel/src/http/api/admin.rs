//! Admin endpoints: tokens, the audit log, the catalog (reload, invalid bundles), `me`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{self, AuditEntry};
use crate::auth::tokens::{self, TokenError, TokenRecord};
use crate::auth::{Caller, Role};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, Code};
use crate::http::body::JsonBody;
use crate::http::openapi::responses as resp;
use crate::http::openapi::schemas::{self, TokenName};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub name: String,
    pub role: Role,
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", operation_id = "get_me",
    responses((status = 200, description = "The caller's token name and role", body = Me)),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        name: caller.name,
        role: caller.role,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenRecord>,
}

/// Every token (names and roles; the tokens themselves are never stored).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "auth", operation_id = "list_tokens",
    responses((status = 200, description = "Every token's name and role", body = TokenList),
        (status = 403, response = resp::Forbidden)),
    security(("bearer" = [])))]
pub async fn list_tokens(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let mut conn = state.redis.clone();
    Ok(HttpResponse::Ok().json(TokenList {
        tokens: tokens::list(&mut conn).await?,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[schema(value_type = TokenName)]
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Shown once; store it now.
    pub token: String,
    pub record: TokenRecord,
}

/// Creates a token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", operation_id = "create_token", request_body = NewToken,
    responses((status = 201, description = "Created; `token` is shown this once", body = CreatedToken),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 409, response = resp::AlreadyExists), (status = 413, response = resp::PayloadTooLarge),
        (status = 415, response = resp::UnsupportedMediaType), (status = 422, response = resp::ValidationFailed)),
    security(("bearer" = [])))]
pub async fn create_token(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<NewToken>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let NewToken { name, role } = body.0;
    let mut conn = state.redis.clone();
    let now = now_ms();
    let token = tokens::create(&mut conn, &name, role, &caller.name, now)
        .await
        .map_err(|e| match e {
            TokenError::BadName(_) => ApiError::field("name", "pattern", e.to_string()),
            TokenError::Exists(_) => ApiError::new(Code::AlreadyExists, e.to_string()),
            TokenError::Random(m) => ApiError::new(Code::Internal, m),
            TokenError::Redis(r) => r.into(),
        })?;
    audit::record(
        &mut conn,
        &caller.name,
        "token.add",
        &name,
        &caller.from,
        role.as_str(),
    )
    .await;
    Ok(HttpResponse::Created().json(CreatedToken {
        token,
        record: TokenRecord {
            name,
            role,
            created_at: now,
            created_by: caller.name,
        },
    }))
}

/// Deletes a token; its browser sessions end with it.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "auth", operation_id = "delete_token",
    params(("name" = TokenName, Path, description = "Token name")),
    responses((status = 204, description = "Deleted, with its browser sessions"),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::TokenNotFound)),
    security(("bearer" = [])))]
pub async fn delete_token(
    state: web::Data<AppState>,
    caller: Caller,
    name: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    tokens::validate_name(&name)
        .map_err(|e| ApiError::new(Code::InvalidParameter, e.to_string()))?;
    let mut conn = state.redis.clone();
    if !tokens::delete(&mut conn, &name).await? {
        return Err(ApiError::new(
            Code::TokenNotFound,
            format!("no token named {:?}", name.as_str()),
        ));
    }
    audit::record(
        &mut conn,
        &caller.name,
        "token.delete",
        &name,
        &caller.from,
        "",
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Cursor: the `id` of the last entry of the previous page.
    #[param(schema_with = schemas::audit_cursor)]
    pub before: Option<String>,
    /// 1 to 500 (default 100); other counts are clamped into that range.
    #[param(schema_with = audit_page_size)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
}

fn audit_page_size() -> utoipa::openapi::schema::Schema {
    schemas::page_size("Entries, 1 to 500 (default 100); other counts are clamped into that range")
}

/// Parses audit paging (shared with the audit page).
pub fn audit_params(q: &AuditQuery) -> ApiResult<(Option<String>, usize)> {
    let before = q.before.clone().filter(|b| !b.is_empty());
    if let Some(b) = &before
        && !audit::valid_cursor(b)
    {
        return Err(ApiError::new(
            Code::InvalidParameter,
            "before must be an audit entry id like 1700000000000-0",
        ));
    }
    Ok((before, q.limit.unwrap_or(100).clamp(1, 500)))
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "auth", operation_id = "list_audit", params(AuditQuery),
    responses((status = 200, description = "Audit entries, newest first", body = AuditPage),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden)),
    security(("bearer" = [])))]
pub async fn audit_log(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let (before, limit) = audit_params(&q)?;
    let mut conn = state.redis.clone();
    Ok(HttpResponse::Ok().json(AuditPage {
        entries: audit::list(&mut conn, before.as_deref(), limit).await?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogReport {
    /// Apps offered.
    pub apps: usize,
    /// Bundles that failed their checks, with every finding (`dir`, `id_hint`, `diagnostics`).
    #[schema(value_type = Vec<Object>)]
    pub invalid: serde_json::Value,
    /// Valid apps hidden by the conformance status filter.
    pub hidden: Vec<String>,
}

fn report(state: &AppState) -> CatalogReport {
    let current = state.catalog.current();
    CatalogReport {
        apps: current.search(None, None).len(),
        invalid: serde_json::to_value(current.catalog.invalid()).unwrap_or_default(),
        hidden: current
            .hidden()
            .into_iter()
            .map(|(b, _)| b.id().to_owned())
            .collect(),
    }
}

/// What the catalog holds, and why bundles are not offered.
#[utoipa::path(get, path = "/api/v1/catalog", tag = "apps", operation_id = "get_catalog_report",
    responses((status = 200, description = "Apps offered, bundles refused and hidden", body = CatalogReport),
        (status = 403, response = resp::Forbidden)),
    security(("bearer" = [])))]
pub async fn catalog(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    Ok(HttpResponse::Ok().json(report(&state)))
}

/// Rescans the installers directory.
#[utoipa::path(post, path = "/api/v1/catalog/reload", tag = "apps", operation_id = "reload_catalog",
    responses((status = 200, description = "Rescanned; the new report", body = CatalogReport),
        (status = 403, response = resp::Forbidden)),
    security(("bearer" = [])))]
pub async fn reload_catalog(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let n = state.reload_catalog();
    let mut conn = state.redis.clone();
    audit::record(
        &mut conn,
        &caller.name,
        "catalog.reload",
        "",
        &caller.from,
        &format!("apps={n}"),
    )
    .await;
    Ok(HttpResponse::Ok().json(report(&state)))
}
