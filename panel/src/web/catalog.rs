//! The catalog page: search, categories, cards; admins also see what is not offered and why.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{WebResult, base_context, encode_query, render, signed_in};
use crate::app_view;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(super) struct CatalogQuery {
    q: Option<String>,
    category: Option<String>,
    /// The last app of the previous page.
    after: Option<String>,
}

/// Cards per catalog page.
const PAGE: usize = 60;

#[derive(Serialize)]
struct InvalidView {
    name: String,
    diagnostics: Vec<DiagnosticView>,
}

#[derive(Serialize)]
struct DiagnosticView {
    rule: String,
    severity: String,
    path: String,
    message: String,
}

#[derive(Serialize)]
struct HiddenView {
    id: String,
    status: String,
}

pub(super) async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<CatalogQuery>,
) -> WebResult<HttpResponse> {
    let caller = signed_in(&state, &req).await?;
    let catalog = state.catalog.current();
    let query =
        q.q.as_deref()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
    let category = q
        .category
        .as_deref()
        .unwrap_or("")
        .chars()
        .take(100)
        .collect::<String>();
    let found = catalog.search(Some(&query), Some(&category));
    let after = q.after.as_deref().unwrap_or("");
    let start = found.partition_point(|b| !after.is_empty() && b.id() <= after);
    let apps: Vec<_> = found[start..]
        .iter()
        .take(PAGE)
        .map(|b| app_view::summary(b, catalog.conformance(b.id())))
        .collect();
    let next = (start + PAGE < found.len())
        .then(|| apps.last())
        .flatten()
        .map(|last| {
            format!(
                "/?q={}&category={}&after={}",
                encode_query(&query),
                encode_query(&category),
                last.id
            )
        });
    let mut ctx = base_context(Some(&caller));
    ctx.insert("next", &next);
    ctx.insert("shown", &(start + apps.len()));
    ctx.insert("total", &found.len());
    ctx.insert("q", &query);
    ctx.insert("category", &category);
    ctx.insert("categories", &catalog.categories());
    ctx.insert("apps", &apps);
    let (invalid, hidden): (Vec<InvalidView>, Vec<HiddenView>) = if caller.is_admin() {
        (
            catalog
                .catalog
                .invalid()
                .iter()
                .map(|b| InvalidView {
                    name: b.id_hint.clone().unwrap_or_else(|| {
                        b.dir
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    }),
                    diagnostics: b
                        .diagnostics
                        .iter()
                        .map(|d| DiagnosticView {
                            rule: d.rule.to_owned(),
                            severity: serde_json::to_value(d.severity)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            path: d.path.clone(),
                            message: d.message.clone(),
                        })
                        .collect(),
                })
                .collect(),
            catalog
                .hidden()
                .into_iter()
                .map(|(b, s)| HiddenView {
                    id: b.id().to_owned(),
                    status: s.as_str().to_owned(),
                })
                .collect(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    ctx.insert(
        "show_not_offered",
        &(!invalid.is_empty() || !hidden.is_empty()),
    );
    ctx.insert("invalid", &invalid);
    ctx.insert("hidden", &hidden);
    render(&state, "catalog.html", &ctx, StatusCode::OK)
}
