//! Every route of docs/openapi.json, called without a token and as viewer, operator and admin:
//! 401 without a token, 403 below the route's role, never a 5xx. The role of each route is
//! read from the endpoint table of docs/api.md, and both documents must list the same routes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{TestPanel, demo_body};
use regex::Regex;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    None,
    Viewer,
    Operator,
    Admin,
}

fn docs(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(file),
    )
    .unwrap()
}

/// (method, path) → role, from the rows of the endpoint table in docs/api.md.
fn documented_roles() -> BTreeMap<(String, String), Need> {
    let text = docs("api.md");
    let table = text
        .split("## Endpoints")
        .nth(1)
        .expect("an Endpoints section");
    let route = Regex::new(r"`([A-Z]+(?:/[A-Z]+)*) (/[^`?\s]*)[^`]*`").unwrap();
    let mut roles = BTreeMap::new();
    for row in table
        .lines()
        .take_while(|l| l.starts_with('|') || l.is_empty())
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(need) = cells.get(2).and_then(|role| match *role {
            "none" => Some(Need::None),
            "viewer" => Some(Need::Viewer),
            "operator" => Some(Need::Operator),
            "admin" => Some(Need::Admin),
            _ => None,
        }) else {
            continue;
        };
        for c in route.captures_iter(cells[1]) {
            for method in c[1].split('/') {
                roles.insert((method.to_owned(), c[2].to_owned()), need);
            }
        }
    }
    roles
}

/// Every (method, path) of the OpenAPI document, and whether it asks for a bearer token.
fn openapi_routes() -> BTreeMap<(String, String), bool> {
    let doc: Value = serde_json::from_str(&docs("openapi.json")).unwrap();
    let mut routes = BTreeMap::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let bearer = op["security"].as_array().is_some_and(|s| !s.is_empty());
            routes.insert((method.to_ascii_uppercase(), path.clone()), bearer);
        }
    }
    routes
}

#[test]
fn the_endpoint_table_and_the_openapi_document_list_the_same_routes() {
    let documented: BTreeSet<_> = documented_roles().into_keys().collect();
    let served: BTreeSet<_> = openapi_routes().into_keys().collect();
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in openapi.json, not in the api.md table"
    );
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in the api.md table, not in openapi.json"
    );
}

#[actix_web::test]
async fn every_route_answers_each_role_as_documented_and_never_with_a_5xx() {
    let p = TestPanel::start().await;
    let roles = documented_roles();
    let routes = openapi_routes();
    assert!(routes.len() >= 25, "{} routes", routes.len());
    let demo = p.demo_job().await;
    let job = demo["id"].as_str().unwrap().to_owned();
    let installation = demo["installation_id"].as_str().unwrap().to_owned();
    let callers = [
        (None, Need::None),
        (Some(p.viewer.clone()), Need::Viewer),
        (Some(p.operator.clone()), Need::Operator),
        (Some(p.admin.clone()), Need::Admin),
    ];
    let mut checked = 0;
    for ((method, path), bearer) in &routes {
        let need = *roles
            .get(&(method.clone(), path.clone()))
            .unwrap_or_else(|| panic!("{method} {path} has no role in docs/api.md"));
        assert_eq!(
            *bearer,
            need != Need::None,
            "{method} {path}: security vs role"
        );
        for (n, (token, has)) in callers.iter().enumerate() {
            // Each call gets fresh names, so an allowed create or delete has its own target.
            let unique = format!("matrix-{checked}-{n}");
            let concrete = path
                .replace("{id}", id_for(path, &job, &installation))
                .replace("{name}", &unique);
            let url = format!("{}{concrete}", p.url);
            let client = TestPanel::client();
            let mut req = match method.as_str() {
                "GET" => client.get(&url),
                "POST" => client.post(&url).json(&body_for(path, &unique)),
                "PUT" => client.put(&url).json(&body_for(path, &unique)),
                "DELETE" => client.delete(&url),
                other => panic!("no test for method {other}"),
            };
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let who = format!("{method} {concrete} as {has:?} (needs {need:?})");
            assert!(status < 500, "{who}: {status}");
            let code = |r: reqwest::Response| async move {
                r.json::<Value>().await.map(|v| v["code"].clone()).ok()
            };
            match (need, token) {
                (Need::None, _) => assert!(![401, 403].contains(&status), "{who}: {status}"),
                (_, None) => {
                    assert_eq!(status, 401, "{who}");
                    assert_eq!(code(r).await, Some(json!("unauthorized")), "{who}");
                }
                _ if *has < need => {
                    assert_eq!(status, 403, "{who}");
                    assert_eq!(code(r).await, Some(json!("forbidden")), "{who}");
                }
                _ => assert!(![401, 403].contains(&status), "{who}: {status}"),
            }
        }
        checked += 1;
    }
    assert_eq!(checked, routes.len());
}

/// A path id that exists, so an allowed call reaches the handler.
fn id_for<'a>(path: &str, job: &'a str, installation: &'a str) -> &'a str {
    if path.starts_with("/api/v1/jobs") {
        job
    } else if path.starts_with("/api/v1/installations") {
        installation
    } else if path.starts_with("/api/v1/apps") {
        "demo-form"
    } else if path.ends_with("/rotate") {
        "web-1"
    } else {
        // DELETE /agents/{id} and GET /agents/{id}: a registered agent that never ran.
        "gone-1"
    }
}

fn body_for(path: &str, unique: &str) -> Value {
    match path {
        "/api/v1/jobs" => demo_body("web-1"),
        "/api/v1/agents" => json!({ "id": unique }),
        "/api/v1/tokens" => json!({ "name": unique, "role": "viewer" }),
        "/api/v1/webhooks" => json!({ "url": "http://127.0.0.1:9/hook", "events": ["job.failed"] }),
        "/api/v1/installations/{id}/restore" => json!({ "backup_id": "01a233ea-0000.1" }),
        "/api/v1/agents/{id}/labels" => json!({ "labels": { "env": "matrix" } }),
        // Only a plan: nothing starts, whoever may call it.
        "/api/v1/rollouts" => {
            json!({ "app_id": "demo-form", "agents": ["web-1"], "dry_run": true })
        }
        "/api/v1/schedules" => json!({
            "name": unique, "cron": "0 3 * * *",
            "target": {"kind": "installation", "installation_id": "0192f0c4-2f7e-7cc3-9e6c-3d5e4a1b2c3d", "action": "backup"},
        }),
        _ => json!({}),
    }
}
