//! The OpenAPI document, generated from the handlers' annotations (`/openapi.json`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api;

#[derive(OpenApi)]
#[openapi(
    info(title = "Outfitter panel API", description = "Catalog, jobs, live progress, agents. See docs/api.md."),
    paths(
        api::apps::list, api::apps::get, api::apps::schema,
        api::jobs::create, api::jobs::list, api::jobs::get, api::jobs::stream, api::jobs::log,
        api::jobs::cancel, api::jobs::retry,
        api::agents::list, api::agents::get, api::agents::create,
        api::agents::rotate, api::agents::remove,
        api::admin::me, api::admin::list_tokens, api::admin::create_token, api::admin::delete_token,
        api::admin::audit_log, api::admin::catalog, api::admin::reload_catalog,
        api::system::healthz, api::system::metrics, api::system::openapi,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::FieldProblem)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
