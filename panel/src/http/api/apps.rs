//! `GET /api/v1/apps`, `/apps/{id}`, `/apps/{id}/schema`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use outfitter_contract::ids;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app_view::{self, AppDetail, AppSummary};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, Code};
use crate::http::openapi::responses as resp;
use crate::http::openapi::schemas::AppId;
use crate::installations::dependencies;
use crate::state::AppState;
use crate::{agents, catalog_listing, catalog_view::Offered};

#[derive(Debug, Deserialize, IntoParams)]
pub struct AppQuery {
    /// Words that must all appear in id, name, description, category or tags.
    pub q: Option<String>,
    /// Exact category.
    pub category: Option<String>,
    /// Page size, 1 to 100; without it (and without `after`) the whole listing.
    #[param(schema_with = app_page_size)]
    pub limit: Option<usize>,
    /// Cursor: the `next` of the previous page (an app id).
    #[param(schema_with = crate::http::openapi::schemas::app_id_filter)]
    pub after: Option<String>,
}

fn app_page_size() -> utoipa::openapi::schema::Schema {
    crate::http::openapi::schemas::page_size(&format!(
        "Page size, 1 to {} (other counts are clamped into that range); without it, every app",
        catalog_listing::MAX_PAGE
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppList {
    pub apps: Vec<AppSummary>,
    pub categories: Vec<String>,
    /// Pass as `after` for the next page; `null` at the end (and for the whole listing).
    pub next: Option<String>,
}

/// Finds an offered app by a path id: 400 for an id that cannot exist, 404 for an unknown one.
pub fn find_app<'c>(
    catalog: &'c Offered,
    id: &str,
) -> ApiResult<&'c outfitter_contract::manifest::Bundle> {
    ids::validate_app_id(id).map_err(|e| ApiError::new(Code::InvalidParameter, e.to_string()))?;
    catalog
        .get(id)
        .ok_or_else(|| ApiError::new(Code::AppNotFound, format!("no app {id:?} in the catalog")))
}

/// The catalog, filtered and paged. Answers carry an `ETag` (the listing is built once per
/// catalog scan); `If-None-Match` with it gets `304 Not Modified`.
#[utoipa::path(get, path = "/api/v1/apps", tag = "apps", operation_id = "list_apps", params(AppQuery),
    responses((status = 200, description = "The offered apps (a page of them with `limit`) and every category", body = AppList,
            headers(("ETag" = String, description = "Send back as If-None-Match"))),
        (status = 304, description = "Not modified since the ETag sent in If-None-Match"),
        (status = 400, response = resp::BadRequest)),
    security(("bearer" = [])))]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AppQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    if let Some(after) = query.after.as_deref().filter(|a| !a.is_empty()) {
        ids::validate_app_id(after)
            .map_err(|e| ApiError::new(Code::InvalidParameter, format!("after: {e}")))?;
    }
    let catalog = state.catalog.current();
    let listing = catalog.listing();
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    let after = query.after.as_deref().filter(|a| !a.is_empty());
    let limit = query.limit.unwrap_or(usize::MAX);
    let key = || {
        format!(
            "{:?}|{:?}|{limit}|{:?}",
            query.q, query.category, query.after
        )
    };
    let unfiltered = blank(&query.q) && blank(&query.category);
    let answer = if unfiltered && query.limit.is_none() && after.is_none() {
        listing.full()
    } else if unfiltered {
        // No search to run: the page is a run of the listing as built.
        listing.page_all(after, limit, &key())
    } else {
        let found = catalog.search(query.q.as_deref(), query.category.as_deref());
        let ids: Vec<&str> = found.iter().map(|b| b.id()).collect();
        listing.page(&ids, after, limit, &key())
    };
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == answer.etag || t.trim() == "*")
        });
    if unchanged {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, answer.etag))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::ETAG, answer.etag))
        .body(answer.body))
}

/// One app, with the agents that can run it.
#[utoipa::path(get, path = "/api/v1/apps/{id}", tag = "apps", operation_id = "get_app",
    params(("id" = AppId, Path, description = "App id")),
    responses((status = 200, description = "The app, its inputs and the agents that can run it", body = AppDetail),
        (status = 400, response = resp::BadRequest), (status = 404, response = resp::AppNotFound)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let catalog = state.catalog.current();
    let bundle = find_app(&catalog, &id)?;
    let mut conn = state.redis.clone();
    let statuses = agents::list(&mut conn).await?;
    let standing = dependencies::standing_by_agent(&mut conn, &bundle.manifest).await?;
    let fits = agents::fits(&bundle.manifest, &statuses, &standing);
    Ok(HttpResponse::Ok().json(app_view::detail(
        bundle,
        catalog.conformance(bundle.id()),
        fits,
    )))
}

/// The JSON Schema (draft 2020-12) that `inputs` of `POST /jobs` must satisfy.
#[utoipa::path(get, path = "/api/v1/apps/{id}/schema", tag = "apps", operation_id = "get_app_schema",
    params(("id" = AppId, Path, description = "App id")),
    responses((status = 200, description = "JSON Schema (draft 2020-12) of the inputs",
            content_type = "application/schema+json", body = Object),
        (status = 400, response = resp::BadRequest), (status = 404, response = resp::AppNotFound)),
    security(("bearer" = [])))]
pub async fn schema(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let catalog = state.catalog.current();
    let bundle = find_app(&catalog, &id)?;
    Ok(HttpResponse::Ok()
        .content_type("application/schema+json")
        .json(&bundle.input_schema))
}
