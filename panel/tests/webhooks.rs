//! Webhook registration at the API boundary: bad URLs, events and secrets are refused naming
//! the field and rule; the secret is shown once and never again (nor stored in the clear);
//! one occurrence emitted twice is one delivery; unknown ids are clear 404s.

mod common;

use common::TestPanel;
use outfitter_panel::webhooks::{Event, EventKind, emit};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn register(p: &TestPanel, body: Value) -> (StatusCode, Value) {
    let r = p.post(&p.admin, "/webhooks", &body).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The (field, rule) of the first problem of a 422.
async fn refused(p: &TestPanel, body: Value) -> (String, String) {
    let (status, v) = register(p, body.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
    assert_eq!(v["code"], "validation_failed", "{v}");
    let f = &v["fields"][0];
    (
        f["field"].as_str().unwrap().to_owned(),
        f["rule"].as_str().unwrap().to_owned(),
    )
}

fn pair(f: &str, r: &str) -> (String, String) {
    (f.to_owned(), r.to_owned())
}

#[actix_web::test]
async fn urls_that_are_not_http_or_https_are_refused_naming_url() {
    let p = TestPanel::start().await;
    for url in [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
    ] {
        let got = refused(&p, json!({"url": url, "events": ["job.failed"]})).await;
        assert_eq!(got, pair("url", "scheme"), "{url}");
    }
    for (url, rule) in [
        ("http://example.com/\u{0}x", "control"),
        ("http://example.com/\nHost: evil", "control"),
        ("http://exa mple.com/", "control"),
        ("http://user:pw@example.com/", "userinfo"),
        ("", "required"),
        ("example.com/hook", "url"),
    ] {
        let got = refused(&p, json!({"url": url, "events": ["job.failed"]})).await;
        assert_eq!(got, pair("url", rule), "{url:?}");
    }
}

#[actix_web::test]
async fn unknown_events_and_bad_secrets_are_refused_naming_the_field() {
    let p = TestPanel::start().await;
    let url = "http://127.0.0.1:9/hook";
    for events in [
        json!(["job.exploded"]),
        json!(["host.*"]),
        json!(["job.failed", "JOB.FAILED"]),
        json!(["job.failed\u{7}"]),
    ] {
        let got = refused(&p, json!({"url": url, "events": events})).await;
        assert_eq!(got, pair("events", "event"), "{events}");
    }
    let got = refused(&p, json!({"url": url, "events": []})).await;
    assert_eq!(got, pair("events", "required"));
    let got = refused(&p, json!({"url": url, "events": ["*"], "secret": "short"})).await;
    assert_eq!(got, pair("secret", "length"));
    let got = refused(
        &p,
        json!({"url": url, "events": ["*"], "secret": "sixteen chars\twith tab"}),
    )
    .await;
    assert_eq!(got, pair("secret", "charset"));
    // Every problem at once, each with its field.
    let (_, v) = register(&p, json!({"url": "ftp://x/", "events": ["nope"]})).await;
    let fields: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["url", "events"], "{v}");
}

#[actix_web::test]
async fn internal_addresses_are_refused_when_the_panel_denies_them() {
    let p = TestPanel::start_with(|s| s.webhook_deny_private = true).await;
    for url in [
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.5/",
    ] {
        let got = refused(&p, json!({"url": url, "events": ["*"]})).await;
        assert_eq!(got, pair("url", "private"), "{url}");
    }
    let (status, v) = register(
        &p,
        json!({"url": "https://hooks.example.com/x", "events": ["*"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

#[actix_web::test]
async fn the_secret_is_shown_once_and_never_stored_in_the_clear() {
    let p = TestPanel::start().await;
    let (status, made) = register(
        &p,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["installation.*"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 70,
        "{secret}"
    );
    let id = made["id"].as_str().unwrap();
    let one: Value = p
        .get(&p.admin, &format!("/webhooks/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["events"], json!(["installation.*"]));
    let list: Value = p.get(&p.admin, "/webhooks").await.json().await.unwrap();
    for shown in [one.to_string(), list.to_string()] {
        assert!(
            !shown.contains(&secret) && !shown.contains("secret"),
            "{shown}"
        );
    }
    let given = "a-given-secret-of-some-length";
    let (_, v) = register(
        &p,
        json!({"url": "http://127.0.0.1:9/", "events": ["*"], "secret": given}),
    )
    .await;
    assert_eq!(v["secret"], given);
    let mut conn = p.conn();
    let raw: Vec<String> = conn
        .hvals(outfitter_contract::redis_keys::WEBHOOKS)
        .await
        .unwrap();
    assert_eq!(raw.len(), 2);
    for r in raw {
        assert!(!r.contains(&secret) && !r.contains(given), "sealed: {r}");
    }
}

#[actix_web::test]
async fn one_occurrence_emitted_twice_is_one_delivery_for_each_matching_webhook() {
    let p = TestPanel::start().await;
    let (_, failed) = register(
        &p,
        json!({"url": "http://127.0.0.1:9/a", "events": ["job.failed"]}),
    )
    .await;
    let (_, all) = register(
        &p,
        json!({"url": "http://127.0.0.1:9/b", "events": ["job.*"]}),
    )
    .await;
    let (_, other) = register(
        &p,
        json!({"url": "http://127.0.0.1:9/c", "events": ["rollout.*"]}),
    )
    .await;
    let mut conn = p.conn();
    let event = Event::new(
        EventKind::JobFailed,
        "job.failed:j-1:1:0",
        json!({"job_id": "j-1"}),
    );
    emit(&mut conn, &event).await.unwrap();
    emit(&mut conn, &event).await.unwrap();
    let count = |hook: &Value| {
        let path = format!("/webhooks/{}/deliveries", hook["id"].as_str().unwrap());
        let p = &p;
        async move {
            let v: Value = p.get(&p.admin, &path).await.json().await.unwrap();
            v["deliveries"].as_array().unwrap().clone()
        }
    };
    let a = count(&failed).await;
    let b = count(&all).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_ne!(a[0]["id"], b[0]["id"], "one id per webhook");
    assert_eq!(a[0]["event"], "job.failed");
    assert_eq!(a[0]["data"]["job_id"], "j-1");
    assert!(count(&other).await.is_empty());
    // A new occurrence (another attempt) is a new delivery.
    emit(
        &mut conn,
        &Event::new(EventKind::JobFailed, "job.failed:j-1:2:0", json!({})),
    )
    .await
    .unwrap();
    assert_eq!(count(&failed).await.len(), 2);
}

#[actix_web::test]
async fn unknown_webhooks_and_deliveries_are_clear_errors() {
    let p = TestPanel::start().await;
    let r = p.get(&p.admin, "/webhooks/wh_0000000000000000").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "webhook_not_found"
    );
    let r = p.get(&p.admin, "/webhooks/..%2Fetc").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (_, hook) = register(&p, json!({"url": "http://127.0.0.1:9/", "events": ["*"]})).await;
    let id = hook["id"].as_str().unwrap();
    let path = format!("/webhooks/{id}/deliveries/dl_00000000000000000000000000000000/redeliver");
    let r = p.post(&p.admin, &path, &json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "delivery_not_found"
    );
    let r = TestPanel::client()
        .delete(p.api(&format!("/webhooks/{id}")))
        .bearer_auth(&p.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = p.get(&p.admin, &format!("/webhooks/{id}/deliveries")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
