//! After a job with a password, no Redis value holds the password in any common encoding.

mod common;

use base64::Engine as _;
use common::TestPanel;
use outfitter_contract::job::JobState;
use serde_json::json;

const PASSWORD: &str = "S3cret-pa$$word/with+chars=";

fn forms() -> Vec<String> {
    let url = percent_encoding::utf8_percent_encode(PASSWORD, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    vec![
        PASSWORD.to_owned(),
        url,
        PASSWORD.replace('/', "\\/"),
        b64.encode(PASSWORD),
        b64url.encode(PASSWORD),
        hex::encode(PASSWORD),
    ]
}

/// Every string stored anywhere: values of strings, hash fields and values, list items,
/// set and zset members, stream fields and values, and the key names themselves.
async fn every_stored_string(p: &TestPanel) -> Vec<String> {
    let mut c = p.conn();
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(100)
            .query_async(&mut c)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert!(keys.len() > 5, "the job wrote keys: {keys:?}");
    let mut out = keys.clone();
    for k in keys {
        let t: String = redis::cmd("TYPE")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        match t.as_str() {
            "string" => out.push(redis::cmd("GET").arg(&k).query_async(&mut c).await.unwrap()),
            "hash" => {
                let v: Vec<String> = redis::cmd("HGETALL")
                    .arg(&k)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                out.extend(v);
            }
            "list" => {
                let v: Vec<String> = redis::cmd("LRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                out.extend(v);
            }
            "set" => {
                let v: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(&k)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                out.extend(v);
            }
            "zset" => {
                let v: Vec<String> = redis::cmd("ZRANGE")
                    .arg(&k)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                out.extend(v);
            }
            "stream" => {
                let v: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
                    .arg(&k)
                    .arg("-")
                    .arg("+")
                    .query_async(&mut c)
                    .await
                    .unwrap();
                for (id, fields) in v {
                    out.push(id);
                    out.extend(fields);
                }
            }
            other => panic!("unexpected key type {other} for {k}"),
        }
    }
    out
}

#[actix_web::test]
async fn password_input_is_stored_in_no_form_anywhere_in_redis() {
    let p = TestPanel::start().await;
    // Through the API, with an idempotency key (its entry is stored too) ...
    let r = TestPanel::client()
        .post(p.api("/jobs"))
        .bearer_auth(&p.operator)
        .header("Idempotency-Key", "secret-test-1")
        .json(
            &json!({"app_id": "postgresql-database", "agent_id": "web-1",
            "inputs": {"db_name": "shop", "db_owner": "shop", "db_password": PASSWORD}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: serde_json::Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    assert!(!job.to_string().contains(PASSWORD));
    // ... a run, a retry (re-signed envelope), and a failed validation that echoes nothing.
    p.run_job("web-1", id, 1, JobState::Failed, Some(1)).await;
    let r = p
        .post(&p.operator, &format!("/jobs/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let r = p
        .post(
            &p.operator,
            "/jobs",
            &json!({"app_id": "postgresql-database", "agent_id": "web-1",
            "inputs": {"db_name": "BAD NAME", "db_owner": "x", "db_password": PASSWORD}}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(!r.text().await.unwrap().contains(PASSWORD));

    let stored = every_stored_string(&p).await;
    // The scan does see the job: its other inputs are there in the clear.
    assert!(
        stored.iter().any(|v| v.contains(r#""db_name":"shop""#)),
        "the scan reached the job record"
    );
    for form in forms() {
        for value in &stored {
            assert!(
                !value.contains(&form),
                "the password appears as {form:?} in a stored value: {value:.200}"
            );
        }
    }
    // The runner can still get it: it is sealed inside the envelope.
    let (env, _) = p.take_job("web-1").await;
    assert!(env.sealed_inputs.is_some());
}
