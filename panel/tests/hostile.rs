//! Hostile input gets a clear 4xx in the error table's shape, never a 5xx or a panic. So
//! do hostile heartbeats, the one input a server writes straight into Redis: numbers out of
//! range, ten thousand disks and interfaces and names with markup are clamped on every read
//! (the API shows bounded values, the pages stay escaped); wrong types count as no heartbeat.

mod common;

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use common::{TestPanel, demo_body};
use std::time::Duration;

use outfitter_contract::host_metrics::{MAX_DISKS, MAX_INTERFACES, MAX_NAME_CHARS};
use outfitter_contract::redis_keys::AgentRedisKeys;
use redis::AsyncCommands;
use serde_json::{Value, json};

async fn expect(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "expected {code}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["fields"].is_array(), "{v}");
    v
}

async fn post_raw(p: &TestPanel, body: impl Into<reqwest::Body>) -> reqwest::Response {
    TestPanel::client()
        .post(p.api("/jobs"))
        .bearer_auth(&p.operator)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn unknown_fields_and_wrong_types_are_400_naming_the_problem() {
    let p = TestPanel::start().await;
    let mut body = demo_body("web-1");
    body["priority"] = json!(9);
    let v = expect(
        p.post(&p.operator, "/jobs", &body).await,
        400,
        "invalid_json",
    )
    .await;
    assert!(v["message"].as_str().unwrap().contains("priority"), "{v}");
    let v = expect(
        p.post(
            &p.operator,
            "/jobs",
            &json!({"app_id": 5, "agent_id": "web-1"}),
        )
        .await,
        400,
        "invalid_json",
    )
    .await;
    assert!(
        v["message"].as_str().unwrap().contains("invalid type"),
        "{v}"
    );
    expect(
        p.post(
            &p.operator,
            "/jobs",
            &json!({"app_id": "demo-form", "agent_id": "web-1", "inputs": []}),
        )
        .await,
        400,
        "invalid_json",
    )
    .await;
    expect(post_raw(&p, "{not json").await, 400, "invalid_json").await;
    expect(post_raw(&p, "").await, 400, "invalid_json").await;
    let r = TestPanel::client()
        .post(p.api("/jobs"))
        .bearer_auth(&p.operator)
        .header("content-type", "text/plain")
        .body(demo_body("web-1").to_string())
        .send()
        .await
        .unwrap();
    expect(r, 415, "unsupported_media_type").await;
}

#[actix_web::test]
async fn input_values_with_wrong_types_nul_bytes_or_a_megabyte_are_422() {
    let p = TestPanel::start().await;
    let cases = [
        ("site_name", json!("ab\u{0}cd")),
        ("site_name", json!("x".repeat(1024 * 1024 - 200))),
        ("workers", json!("many")),
        ("workers", json!({"nested": [1, 2]})),
        ("enable_tls", json!("yes please")),
        ("http_port", json!(70_000)),
        ("db_mode", json!("cloud")),
    ];
    for (field, value) in cases {
        let mut body = demo_body("web-1");
        body["inputs"][field] = value;
        let v = expect(
            p.post(&p.operator, "/jobs", &body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(v["fields"][0]["field"], field, "{v}");
        assert!(v.to_string().len() < 4096, "errors do not echo huge values");
    }
    // A raw NUL inside a JSON string is not JSON at all.
    let raw =
        "{\"app_id\":\"demo-form\",\"agent_id\":\"web-1\",\"inputs\":{\"site_name\":\"a\u{0}b\"}}";
    expect(post_raw(&p, raw.to_owned()).await, 400, "invalid_json").await;
}

#[actix_web::test]
async fn deeply_nested_json_is_refused_before_parsing() {
    let p = TestPanel::start().await;
    let deep = format!(
        "{{\"app_id\":\"demo-form\",\"agent_id\":\"web-1\",\"inputs\":{{\"a\":{}1{}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    expect(post_raw(&p, deep).await, 400, "json_too_deep").await;
}

#[actix_web::test]
async fn bodies_over_the_limit_are_413() {
    let p = TestPanel::start().await;
    let big = format!("{{\"app_id\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    expect(post_raw(&p, big).await, 413, "payload_too_large").await;

    // 50 MB, in process (a real socket may be closed before the client finishes sending).
    let app = init_service(outfitter_panel::build_app(p.state.clone())).await;
    let req = TestRequest::post()
        .uri("/api/v1/jobs")
        .insert_header(("authorization", format!("Bearer {}", p.operator)))
        .insert_header(("content-type", "application/json"))
        .set_payload(vec![b' '; 50 * 1024 * 1024])
        .to_request();
    let resp = call_service(&app, req).await;
    assert_eq!(resp.status(), 413);
    let v: Value = serde_json::from_slice(&read_body(resp).await).unwrap();
    assert_eq!(v["code"], "payload_too_large");

    // A form body too, from a signed-in operator with the right CSRF token: just under the
    // limit the handler answers (the form is re-shown with its errors), just over it is 413.
    let (cookie, csrf) = p.sign_in(&p.operator).await;
    let limit = p.state.settings.max_body_bytes;
    let form = |size: usize| {
        let head = format!("_csrf={csrf}&_agent=web-1&site_name=");
        let mut body = head.into_bytes();
        body.resize(size, b'a');
        body
    };
    for (size, want) in [(limit, 422), (limit + 1, 413), (3 * 1024 * 1024, 413)] {
        let req = TestRequest::post()
            .uri("/apps/demo-form")
            .insert_header(("cookie", cookie.as_str()))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(form(size))
            .to_request();
        let resp = call_service(&app, req).await;
        assert_eq!(resp.status().as_u16(), want, "a form body of {size} bytes");
        if want == 413 {
            let v: Value = serde_json::from_slice(&read_body(resp).await).unwrap();
            assert_eq!(v["code"], "payload_too_large", "{v}");
        }
    }
}

/// Signs in through the real login form; returns the cookie header and the session's CSRF.
#[actix_web::test]
async fn path_ids_are_checked_before_touching_redis() {
    let p = TestPanel::start().await;
    for (path, code) in [
        ("/apps/..%2Fetc", "invalid_parameter"),
        ("/apps/..%2F..%2Fetc%2Fpasswd/schema", "invalid_parameter"),
        ("/apps/A%00B", "invalid_parameter"),
        ("/agents/web*", "invalid_parameter"),
        ("/agents/%7Bweb-1%7D", "invalid_parameter"),
        ("/agents/a:b", "invalid_parameter"),
        ("/jobs/*", "invalid_parameter"),
        ("/jobs/..%2F..%2F/log", "invalid_parameter"),
        ("/jobs/%00/events", "invalid_parameter"),
        ("/audit?before=*", "invalid_parameter"),
    ] {
        let r = p.get(&p.admin, path).await;
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (status, v["code"].as_str().unwrap()),
            (400, code),
            "{path}: {v}"
        );
    }
    let r = p.post(&p.admin, "/agents", &json!({"id": "evil*"})).await;
    expect(r, 422, "validation_failed").await;
    let r = p.post(&p.admin, "/agents", &json!({"id": "a{b}"})).await;
    expect(r, 422, "validation_failed").await;
}

#[actix_web::test]
async fn garbage_credentials_are_401() {
    let p = TestPanel::start().await;
    let long = format!("Bearer {}", "a".repeat(10_000));
    let values: [&[u8]; 6] = [
        b"Bearer ",
        b"Bearer \xff\xfe",
        b"Basic dXNlcjpwYXNz",
        b"Bearer oft_zz",
        b"bearer x",
        long.as_bytes(),
    ];
    for auth in values {
        let value = reqwest::header::HeaderValue::from_bytes(auth).unwrap();
        let r = TestPanel::client()
            .get(p.api("/apps"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{:.40}", String::from_utf8_lossy(auth));
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
    }
    let r = TestPanel::client()
        .get(p.api("/apps"))
        .header("cookie", "outfitter_session=../../x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn write_raw(p: &TestPanel, agent: &str, facts: &Value) {
    let _: () = p
        .conn()
        .set_ex(
            AgentRedisKeys::new(agent).heartbeat(),
            facts.to_string(),
            600,
        )
        .await
        .unwrap();
}

fn hostile(agent: &str) -> Value {
    let markup = "<script>alert(1)</script>";
    let disks: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({"mount": format!("/{markup}{i}{}", "x".repeat(200)), "total_mb": 100,
                   "used_mb": 99, "free_mb": 1, "read_bytes_per_s": -5.0,
                   "write_bytes_per_s": 1e308})
        })
        .collect();
    let networks: Vec<Value> = (0..10_000)
        .map(|i| {
            json!({"name": format!("{markup}{i}"), "rx_bytes_per_s": 1e300,
                   "tx_bytes_per_s": -1.0, "rx_packets_per_s": 0.0, "tx_packets_per_s": 0.0})
        })
        .collect();
    json!({
        "agent_id": agent, "os_family": "debian", "os_like": [], "os_version": "12",
        "os_pretty": markup, "arch": "x86_64", "cpus": 2, "ram_mb": 4096,
        "disk_free_mb": 1, "load1": 0.5, "runner_version": "0.1.0",
        "ts": outfitter_panel::clock::now_ms(), "running_jobs": [],
        "metrics": {
            "cpu_pct": 1e308, "load": {"one": -3.0, "five": 1e300, "fifteen": 0.0},
            "memory": {"total_mb": 1000, "used_mb": 5000, "free_mb": 0, "available_mb": 0,
                       "cached_mb": 0, "swap_total_mb": 0, "swap_used_mb": 0},
            "disks": disks, "networks": networks, "processes": 3,
        }
    })
}

#[actix_web::test]
async fn hostile_metrics_are_clamped_in_the_api_and_escaped_on_the_pages() {
    let p = TestPanel::start().await;
    write_raw(&p, "web-1", &hostile("web-1")).await;

    let a: Value = p.get(&p.admin, "/agents/web-1").await.json().await.unwrap();
    assert_eq!(a["online"], true, "{}", a["facts"]["os_pretty"]);
    let m = &a["facts"]["metrics"];
    assert!(m["cpu_pct"].as_f64().unwrap() <= 100.0, "{}", m["cpu_pct"]);
    assert!(m["load"]["one"].as_f64().unwrap() >= 0.0, "{}", m["load"]);
    assert!(m["disks"].as_array().unwrap().len() <= MAX_DISKS);
    assert!(m["networks"].as_array().unwrap().len() <= MAX_INTERFACES);
    for d in m["disks"].as_array().unwrap() {
        assert!(
            d["mount"].as_str().unwrap().chars().count() <= MAX_NAME_CHARS,
            "{d}"
        );
        assert!(d["read_bytes_per_s"].as_f64().unwrap() >= 0.0, "{d}");
    }
    let used = m["memory"]["used_mb"].as_u64().unwrap();
    assert!(
        used <= m["memory"]["total_mb"].as_u64().unwrap(),
        "{}",
        m["memory"]
    );

    // The recorder's next round raises disk_low with the (clamped, markup-laden) mount name;
    // the servers page shows it escaped.
    let mut marked = Value::Null;
    for _ in 0..150 {
        marked = p.get(&p.admin, "/agents/web-1").await.json().await.unwrap();
        if !marked["attention"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(marked["attention"][0]["condition"], "disk_low", "{marked}");
    let (session, _) = p.sign_in(&p.viewer).await;
    let page = TestPanel::client()
        .get(format!("{}/agents", p.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("disk_low: /&lt;script&gt;"),
        "attention detail escaped"
    );
    assert!(
        !page.contains("<script>alert"),
        "no raw markup on the servers page"
    );
}

#[actix_web::test]
async fn a_heartbeat_of_wrong_types_counts_as_none() {
    let p = TestPanel::start().await;
    let mut bad = hostile("web-1");
    bad["cpus"] = json!("many");
    write_raw(&p, "web-1", &bad).await;
    write_raw(&p, "old-1", &json!("not an object")).await;
    for id in ["web-1", "old-1"] {
        let r = p.get(&p.admin, &format!("/agents/{id}")).await;
        assert_eq!(r.status(), 200);
        let a: Value = r.json().await.unwrap();
        assert_eq!(a["online"], false, "{a}");
    }
    let list = p.get(&p.admin, "/agents").await;
    assert_eq!(list.status(), 200);
    let (session, _) = p.sign_in(&p.viewer).await;
    let page = TestPanel::client()
        .get(format!("{}/agents", p.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
}
