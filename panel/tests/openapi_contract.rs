//! The OpenAPI document states the code's own rules: every pattern in it accepts exactly what
//! the validator behind it accepts, every operation has a unique id and described responses,
//! and a method a path does not serve is 405 with the document's methods in `Allow`.

mod common;

use actix_web::test::TestRequest;
use common::TestPanel;
use outfitter_contract::ids;
use outfitter_panel::http::api::jobs::{EventsQuery, last_event_id};
use outfitter_panel::http::openapi::ApiDoc;
use outfitter_panel::{audit, auth::tokens, jobs::enqueue};
use regex::Regex;
use serde_json::Value;
use utoipa::OpenApi;

fn doc() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

/// The `pattern` at a JSON pointer of the document, compiled.
fn pattern_at(doc: &Value, pointer: &str) -> Regex {
    let p = doc
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no pattern at {pointer}"));
    Regex::new(p).unwrap()
}

/// The schema of a parameter of an operation.
fn param_pattern(doc: &Value, path: &str, method: &str, name: &str) -> Regex {
    let params = doc["paths"][path][method]["parameters"].as_array().unwrap();
    let i = params.iter().position(|p| p["name"] == name).unwrap();
    pattern_at(
        doc,
        &format!(
            "/paths/{}/{method}/parameters/{i}/schema/pattern",
            path.replace('~', "~0").replace('/', "~1")
        ),
    )
}

/// Asserts that the document's pattern and the code's check agree on every sample.
fn agree(what: &str, re: &Regex, check: impl Fn(&str) -> bool, samples: &[&str]) {
    for s in samples {
        assert_eq!(
            re.is_match(s),
            check(s),
            "{what}: the document and the code disagree on {s:?}"
        );
    }
}

const ID_SAMPLES: &[&str] = &[
    "nginx", "web-1", "0", "a-", "-a", "A", "a_b", "a.b", "a*", "a{b", "a b", "", "a\n", "é",
];

#[test]
fn id_patterns_are_the_contract_rules() {
    let d = doc();
    let long_ok = "a".repeat(ids::ID_MAX_LEN);
    let long_bad = "a".repeat(ids::ID_MAX_LEN + 1);
    let mut samples = ID_SAMPLES.to_vec();
    samples.extend([long_ok.as_str(), long_bad.as_str()]);
    let app = pattern_at(&d, "/components/schemas/AppId/pattern");
    agree(
        "app id",
        &app,
        |s| ids::validate_app_id(s).is_ok(),
        &samples,
    );
    let agent = pattern_at(&d, "/components/schemas/AgentId/pattern");
    agree(
        "agent id",
        &agent,
        |s| ids::validate_agent_id(s).is_ok(),
        &samples,
    );
    assert_eq!(
        d["components"]["schemas"]["AgentId"]["maxLength"],
        ids::ID_MAX_LEN
    );
    let job = pattern_at(&d, "/components/schemas/JobId/pattern");
    let id = ids::new_job_id();
    let upper = id.to_uppercase();
    agree(
        "job id",
        &job,
        |s| ids::validate_job_id(s).is_ok(),
        &[
            &id,
            &upper,
            "0193a6c2-6a37-7cc1-9f55-2b8f0e1d4c3a",
            "0193a6c2",
            "../etc",
            "",
        ],
    );
    let token = pattern_at(&d, "/components/schemas/TokenName/pattern");
    agree(
        "token name",
        &token,
        |s| tokens::validate_name(s).is_ok(),
        &[
            "ci-bot",
            "a.b_c-d",
            "_a",
            "A",
            "a b",
            "",
            &"a".repeat(63),
            &"a".repeat(64),
        ],
    );
}

#[test]
fn cursor_and_header_patterns_are_the_checks_of_the_handlers() {
    let d = doc();
    let audit_before = param_pattern(&d, "/api/v1/audit", "get", "before");
    agree(
        "audit cursor",
        &audit_before,
        |s| s.is_empty() || audit::valid_cursor(s),
        &[
            "1700000000000-0",
            "",
            "1-2",
            "1-2-3",
            "a-b",
            "1700000000000",
            "+1-1",
            &format!("{}-0", "9".repeat(19)),
            &format!("{}-0", "9".repeat(20)),
        ],
    );
    let key = param_pattern(&d, "/api/v1/jobs", "post", "Idempotency-Key");
    agree(
        "Idempotency-Key",
        &key,
        |s| enqueue::idempotency::check_key(s).is_ok(),
        &[
            "order-42",
            "a.b_c:d-E",
            "",
            "bad key",
            "é",
            &"k".repeat(128),
            &"k".repeat(129),
        ],
    );
    let seq = param_pattern(&d, "/api/v1/jobs/{id}/events", "get", "Last-Event-ID");
    let query_seq = param_pattern(&d, "/api/v1/jobs/{id}/events", "get", "last_event_id");
    assert_eq!(seq.as_str(), query_seq.as_str());
    let accepts = |s: &str| {
        let req = TestRequest::default().to_http_request();
        let q = EventsQuery {
            last_event_id: Some(s.to_owned()),
        };
        last_event_id(&req, &q).is_ok()
    };
    agree(
        "Last-Event-ID",
        &seq,
        accepts,
        &[
            "7",
            "0-7",
            "",
            " ",
            " 7",
            "+7",
            "0-",
            "1-7",
            "x",
            &"9".repeat(19),
            &"9".repeat(20),
        ],
    );
}

#[test]
fn every_operation_has_a_unique_id_and_described_responses() {
    let d = doc();
    let mut ids = Vec::new();
    for (path, item) in d["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            ids.push(id);
            for (status, resp) in op["responses"].as_object().unwrap() {
                let resp = match resp["$ref"].as_str() {
                    Some(r) => d.pointer(&r[1..]).unwrap_or_else(|| panic!("{r} missing")),
                    None => resp,
                };
                assert!(
                    resp["description"].as_str().is_some_and(|s| !s.is_empty()),
                    "{method} {path} {status} has no description"
                );
                // 204 and 304 carry no body by definition.
                if status != "204" && status != "304" {
                    assert!(
                        resp["content"].is_object(),
                        "{method} {path} {status} has no content"
                    );
                }
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(
                op["responses"]["401"].is_object(),
                secured,
                "{method} {path}: 401 declared exactly when a token is needed"
            );
        }
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate operationIds");
}

#[test]
fn error_code_schema_is_the_code_table() {
    let d = doc();
    let names: Vec<&str> = outfitter_panel::error::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(
        d["components"]["schemas"]["ErrorCode"]["enum"],
        serde_json::json!(names)
    );
    assert_eq!(
        d["components"]["schemas"]["ErrorBody"]["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
}

#[actix_web::test]
async fn undeclared_methods_are_405_with_the_documented_allow() {
    let p = TestPanel::start().await;
    let d = doc();
    for (path, item) in d["paths"].as_object().unwrap() {
        let mut declared: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        declared.sort();
        let url = format!(
            "{}{}",
            p.url,
            path.replace("{id}", "demo-form").replace("{name}", "eyes")
        );
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"] {
            if declared.iter().any(|m| m == method) {
                continue;
            }
            let r = TestPanel::client()
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    &url,
                )
                .bearer_auth(&p.admin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{method} {path}");
            let mut allow: Vec<String> = r.headers()["allow"]
                .to_str()
                .unwrap()
                .split(", ")
                .map(str::to_owned)
                .collect();
            allow.sort();
            assert_eq!(allow, declared, "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "method_not_allowed", "{method} {path}");
        }
    }
}

// Found by schemathesis: the cases the document allows and Redis or the handler got wrong.

#[actix_web::test]
async fn audit_page_before_the_first_possible_entry_is_empty() {
    let p = TestPanel::start().await;
    for before in ["0-0", "00-000"] {
        let r = TestPanel::client()
            .get(format!("{}/api/v1/audit?before={before}", p.url))
            .bearer_auth(&p.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{before}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["entries"], serde_json::json!([]), "{before}");
    }
}

#[test]
fn a_malformed_last_event_id_query_is_refused_even_with_the_header() {
    let req = TestRequest::default()
        .insert_header(("Last-Event-ID", "5"))
        .to_http_request();
    let bad = EventsQuery {
        last_event_id: Some("ß¡".into()),
    };
    assert!(last_event_id(&req, &bad).is_err());
    let good = EventsQuery {
        last_event_id: Some("2".into()),
    };
    assert_eq!(last_event_id(&req, &good).unwrap(), 5, "the header decides");
}
