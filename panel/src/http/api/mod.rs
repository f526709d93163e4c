//! The JSON API under `/api/v1` (see `docs/api.md`).

pub mod admin;
pub mod agents;
pub mod apps;
pub mod installations;
pub mod job_view;
pub mod jobs;
pub mod rollouts;
pub mod schedules;
pub mod system;
pub mod webhooks;

use actix_web::web;

use crate::error::{ApiError, Code};

/// 405 in the table's shape, for a known path with another method, with the methods the
/// OpenAPI document lists for the path in `Allow`.
pub async fn method_not_allowed(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    let allow = req
        .match_pattern()
        .and_then(|p| crate::http::openapi::allowed_methods(&p))
        .unwrap_or("");
    let err = ApiError::new(
        Code::MethodNotAllowed,
        format!("this path takes {allow}, not {}", req.method()),
    );
    let mut resp = actix_web::ResponseError::error_response(&err);
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(allow) {
        resp.headers_mut().insert(actix_web::http::header::ALLOW, v);
    }
    resp
}

/// A path whose other methods are answered 405.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Routes of `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/me").route(web::get().to(admin::me)))
        .service(resource("/apps").route(web::get().to(apps::list)))
        .service(resource("/apps/{id}").route(web::get().to(apps::get)))
        .service(resource("/apps/{id}/schema").route(web::get().to(apps::schema)))
        .service(
            resource("/jobs")
                .route(web::post().to(jobs::create))
                .route(web::get().to(jobs::list)),
        )
        .service(resource("/jobs/{id}").route(web::get().to(jobs::get)))
        .service(resource("/jobs/{id}/events").route(web::get().to(jobs::stream)))
        .service(resource("/jobs/{id}/log").route(web::get().to(jobs::log)))
        .service(resource("/jobs/{id}/cancel").route(web::post().to(jobs::cancel)))
        .service(resource("/jobs/{id}/retry").route(web::post().to(jobs::retry)))
        .service(resource("/installations").route(web::get().to(installations::list)))
        .service(resource("/installations/{id}").route(web::get().to(installations::get)))
        .service(
            resource("/installations/{id}/reconfigure")
                .route(web::post().to(installations::reconfigure)),
        )
        .service(
            resource("/installations/{id}/upgrade").route(web::post().to(installations::upgrade)),
        )
        .service(
            resource("/installations/{id}/uninstall")
                .route(web::post().to(installations::uninstall)),
        )
        .service(
            resource("/installations/{id}/backup").route(web::post().to(installations::backup)),
        )
        .service(
            resource("/installations/{id}/restore").route(web::post().to(installations::restore)),
        )
        .service(
            resource("/rollouts")
                .route(web::post().to(rollouts::create))
                .route(web::get().to(rollouts::list)),
        )
        .service(resource("/rollouts/{id}").route(web::get().to(rollouts::get)))
        .service(resource("/rollouts/{id}/pause").route(web::post().to(rollouts::pause)))
        .service(resource("/rollouts/{id}/resume").route(web::post().to(rollouts::resume)))
        .service(resource("/rollouts/{id}/abort").route(web::post().to(rollouts::abort)))
        .service(resource("/rollouts/{id}/retry").route(web::post().to(rollouts::retry)))
        .service(
            resource("/schedules")
                .route(web::post().to(schedules::create))
                .route(web::get().to(schedules::list)),
        )
        .service(
            resource("/schedules/{id}")
                .route(web::get().to(schedules::get))
                .route(web::delete().to(schedules::delete)),
        )
        .service(resource("/schedules/{id}/pause").route(web::post().to(schedules::pause)))
        .service(resource("/schedules/{id}/resume").route(web::post().to(schedules::resume)))
        .service(
            resource("/agents")
                .route(web::get().to(agents::list))
                .route(web::post().to(agents::create)),
        )
        .service(
            resource("/agents/{id}")
                .route(web::get().to(agents::get))
                .route(web::delete().to(agents::remove)),
        )
        .service(resource("/agents/{id}/labels").route(web::put().to(agents::set_labels)))
        .service(resource("/agents/{id}/rotate").route(web::post().to(agents::rotate)))
        .service(resource("/agents/{id}/metrics").route(web::get().to(agents::metrics)))
        .service(
            resource("/tokens")
                .route(web::get().to(admin::list_tokens))
                .route(web::post().to(admin::create_token)),
        )
        .service(resource("/tokens/{name}").route(web::delete().to(admin::delete_token)))
        .service(resource("/audit").route(web::get().to(admin::audit_log)))
        .service(resource("/catalog").route(web::get().to(admin::catalog)))
        .service(resource("/catalog/reload").route(web::post().to(admin::reload_catalog)))
        .service(
            resource("/webhooks")
                .route(web::get().to(webhooks::list))
                .route(web::post().to(webhooks::create)),
        )
        .service(
            resource("/webhooks/{id}")
                .route(web::get().to(webhooks::get))
                .route(web::delete().to(webhooks::delete)),
        )
        .service(resource("/webhooks/{id}/deliveries").route(web::get().to(webhooks::deliveries)))
        .service(
            resource("/webhooks/{id}/deliveries/{delivery_id}/redeliver")
                .route(web::post().to(webhooks::redeliver)),
        );
}
