//! `GET /api/v1/apps`, `/apps/{id}`, `/apps/{id}/schema`.

use actix_web::{HttpResponse, web};
use outfitter_contract::ids;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app_view::{self, AppDetail, AppSummary};
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, Code};
use crate::http::openapi::responses as resp;
use crate::http::openapi::schemas::AppId;
use crate::state::AppState;
use crate::{agents, catalog_view::Offered};

#[derive(Debug, Deserialize, IntoParams)]
pub struct AppQuery {
    /// Words that must all appear in id, name, description, category or tags.
    pub q: Option<String>,
    /// Exact category.
    pub category: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppList {
    pub apps: Vec<AppSummary>,
    pub categories: Vec<String>,
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

/// The catalog, filtered.
#[utoipa::path(get, path = "/api/v1/apps", tag = "apps", operation_id = "list_apps", params(AppQuery),
    responses((status = 200, description = "The offered apps and every category", body = AppList),
        (status = 400, response = resp::BadRequest)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AppQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let catalog = state.catalog.current();
    let apps = catalog
        .search(query.q.as_deref(), query.category.as_deref())
        .into_iter()
        .map(|b| app_view::summary(b, catalog.conformance(b.id())))
        .collect();
    Ok(HttpResponse::Ok().json(AppList {
        apps,
        categories: catalog.categories(),
    }))
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
    let fits = agents::fits(&bundle.manifest, &statuses);
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
