//! `/api/v1/jobs`: create, read, list, log, cancel, retry, idempotency, and every error code
//! these endpoints return.

mod common;

use common::{TestPanel, demo_body};
use outfitter_contract::control::ControlMessage;
use outfitter_contract::event::Event;
use outfitter_contract::job::{JobState, REDACTED, field};
use outfitter_contract::keys::AgentCrypto;
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_contract::seal;
use redis::AsyncCommands;
use serde_json::{Value, json};

#[actix_web::test]
async fn created_job_is_recorded_signed_sealed_and_queued() {
    let p = TestPanel::start().await;
    let job = p.demo_job().await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["state"], "queued");
    assert_eq!(job["attempts"], 0);
    assert_eq!(job["max_attempts"], 2);
    assert_eq!(job["inputs"]["db_password"], REDACTED);
    assert_eq!(job["inputs"]["site_name"], "my-site");
    for key in [
        "id",
        "app_id",
        "agent_id",
        "state",
        "attempts",
        "exit_code",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
    ] {
        assert!(job.get(key).is_some(), "job JSON lacks {key}: {job}");
    }

    let (env, wire) = p.take_job("web-1").await;
    assert_eq!(env.job_id, id);
    assert_eq!(env.attempt, 1);
    assert_eq!(env.app_id, "demo-form");
    assert!(env.expires_at - env.issued_at == 86_400);
    assert!(
        !env.inputs.contains_key("db_password"),
        "secrets travel sealed only"
    );
    assert_eq!(env.inputs["http_port"], 8080, "defaults are applied");
    assert!(
        !env.inputs.contains_key("db_host"),
        "hidden inputs are dropped"
    );
    let keys = AgentCrypto::from_agent_key(&p.state.secret.agent_key("web-1"));
    let opened = seal::open(&keys.sealing, id, env.sealed_inputs.as_deref().unwrap()).unwrap();
    assert_eq!(opened["db_password"], "correct horse battery");
    let catalog = p.state.catalog.current();
    assert_eq!(env.bundle_digest, catalog.get("demo-form").unwrap().digest);

    let h = p.job_hash("web-1", id).await;
    assert_eq!(h[field::STATE], "queued");
    assert_eq!(h[field::SIGNED], wire);
    assert_eq!(h[field::SEQ], "1");
    assert_eq!(h[field::CREATED_BY], "ops");
    let mut c = p.conn();
    let agent: String = c.hget(redis_keys::JOB_AGENT, id).await.unwrap();
    assert_eq!(agent, "web-1");
    let score: Option<f64> = c.zscore(redis_keys::JOBS_INDEX, id).await.unwrap();
    assert!(score.is_some());
}

#[actix_web::test]
async fn first_event_is_numbered_like_the_contracts_append_script() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let seq = p
        .runner_event(
            "web-1",
            &id,
            Event::state(1, 1, JobState::Running, None, None),
            &[],
        )
        .await;
    assert_eq!(
        seq, 2,
        "the panel's queued event is seq 1; the runner's next one is 2"
    );
    let ids: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(AgentRedisKeys::new("web-1").job_events(&id))
        .arg("-")
        .arg("+")
        .query_async(&mut p.conn())
        .await
        .unwrap();
    assert_eq!(ids[0].0, "0-1");
    let first: Value = serde_json::from_str(&ids[0].1[0].1).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(first["type"], "state");
    assert_eq!(first["state"], "queued");
    assert_eq!(ids[1].0, "0-2");
}

#[actix_web::test]
async fn invalid_inputs_get_422_with_one_error_per_field() {
    let p = TestPanel::start().await;
    let r = p
        .post(
            &p.operator,
            "/jobs",
            &json!({"app_id": "demo-form", "agent_id": "web-1", "inputs": {
                "site_name": "NO", "admin_email": "not-an-email", "workers": 99, "db_password": "short", "nope": 1
            }}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "validation_failed");
    let fields: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for f in ["site_name", "admin_email", "workers", "db_password", "nope"] {
        assert!(fields.contains(&f), "{f} missing in {body}");
    }
    let text = body.to_string();
    assert!(
        !text.contains("short"),
        "no submitted value is echoed: {text}"
    );
    for f in body["fields"].as_array().unwrap() {
        assert!(f["rule"].as_str().unwrap().starts_with('I'), "{f}");
        assert!(!f["message"].as_str().unwrap().is_empty());
    }
}

#[actix_web::test]
async fn unknown_app_or_agent_is_404_and_malformed_ids_are_422() {
    let p = TestPanel::start().await;
    let mut body = demo_body("web-1");
    body["app_id"] = json!("no-such-app");
    let r = p.post(&p.operator, "/jobs", &body).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "app_not_found");

    let r = p.post(&p.operator, "/jobs", &demo_body("nobody")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "agent_not_found");

    let mut body = demo_body("web*");
    body["app_id"] = json!("../etc");
    let r = p.post(&p.operator, "/jobs", &body).await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    let fields: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["app_id", "agent_id"]);
}

#[actix_web::test]
async fn agent_that_misses_requirements_gets_409_with_the_reason() {
    let p = TestPanel::start().await;
    let mut body = demo_body("web-1");
    body["app_id"] = json!("big-app");
    let r = p.post(&p.operator, "/jobs", &body).await;
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "requirements_not_met");
    assert!(
        v["message"].as_str().unwrap().contains("4096 MiB of RAM"),
        "{v}"
    );

    let r = p.post(&p.operator, "/jobs", &demo_body("old-1")).await;
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("version 10"), "{v}");

    let r = p.post(&p.operator, "/jobs", &demo_body("gone-1")).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "agent_never_seen");
}

#[actix_web::test]
async fn viewers_cannot_queue_and_missing_tokens_are_401() {
    let p = TestPanel::start().await;
    let r = p.post(&p.viewer, "/jobs", &demo_body("web-1")).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "forbidden");
    let r = TestPanel::client()
        .post(p.api("/jobs"))
        .json(&demo_body("web-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
    let r = p.post("oft_0000", "/jobs", &demo_body("web-1")).await;
    assert_eq!(r.status(), 401);
}

#[actix_web::test]
async fn idempotency_key_returns_the_first_job_and_refuses_another_body() {
    let p = TestPanel::start().await;
    let send = |body: Value, key: &'static str| {
        let url = p.api("/jobs");
        let token = p.operator.clone();
        async move {
            TestPanel::client()
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let a = send(demo_body("web-1"), "order-42").await;
    assert_eq!(a.status(), 202);
    assert_eq!(a.headers()["idempotent-replayed"], "false");
    let a: Value = a.json().await.unwrap();
    let b = send(demo_body("web-1"), "order-42").await;
    assert_eq!(b.status(), 202);
    assert_eq!(b.headers()["idempotent-replayed"], "true");
    let b: Value = b.json().await.unwrap();
    assert_eq!(a["id"], b["id"]);
    let depth: u64 = p
        .conn()
        .llen(AgentRedisKeys::new("web-1").queue())
        .await
        .unwrap();
    assert_eq!(depth, 1, "the replay queued nothing");

    let mut other = demo_body("web-1");
    other["inputs"]["site_name"] = json!("other-site");
    let c = send(other, "order-42").await;
    assert_eq!(c.status(), 409);
    assert_eq!(
        c.json::<Value>().await.unwrap()["code"],
        "idempotency_key_reused"
    );

    let d = send(demo_body("web-1"), "bad key with spaces").await;
    assert_eq!(d.status(), 400);
    assert_eq!(
        d.json::<Value>().await.unwrap()["code"],
        "invalid_parameter"
    );
}

#[actix_web::test]
async fn idempotency_key_is_scoped_to_the_caller_and_expires_after_its_ttl() {
    let p = TestPanel::start().await;
    let now = outfitter_panel::clock::now_ms();
    let other = outfitter_panel::auth::tokens::create(
        &mut p.conn(),
        "ops-2",
        outfitter_panel::auth::Role::Operator,
        "test",
        now,
    )
    .await
    .unwrap();
    let send = |token: String, body: Value| {
        let url = p.api("/jobs");
        async move {
            let r = TestPanel::client()
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "deploy-7")
                .json(&body)
                .send()
                .await
                .unwrap();
            let replayed = r.headers()["idempotent-replayed"].to_str().unwrap() == "true";
            assert_eq!(r.status(), 202);
            (r.json::<Value>().await.unwrap()["id"].clone(), replayed)
        }
    };
    let (mine, replayed) = send(p.operator.clone(), demo_body("web-1")).await;
    assert!(!replayed);
    // Another caller's identical key and body is another request: a job of its own.
    let (theirs, replayed) = send(other.clone(), demo_body("web-1")).await;
    assert!(!replayed);
    assert_ne!(mine, theirs);
    // And a different body under the same key is no conflict for that other caller either.
    let mut changed = demo_body("web-1");
    changed["inputs"]["site_name"] = json!("their-site");
    let r = TestPanel::client()
        .post(p.api("/jobs"))
        .bearer_auth(&other)
        .header("Idempotency-Key", "deploy-8")
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // The key lives for the documented 24 h; once Redis expires it, the key is free again.
    let key = redis_keys::idempotency("ops", "deploy-7");
    let ttl: i64 = p.conn().ttl(&key).await.unwrap();
    assert!(
        (86_400 - 60..=86_400).contains(&ttl),
        "the key's TTL is 24 h: {ttl}"
    );
    let (again, replayed) = send(p.operator.clone(), demo_body("web-1")).await;
    assert!(replayed, "within the TTL the first job is returned");
    assert_eq!(again, mine);
    let _: () = p.conn().pexpire(&key, 1).await.unwrap();
    for _ in 0..200 {
        let exists: bool = p.conn().exists(&key).await.unwrap();
        if !exists {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (fresh, replayed) = send(p.operator.clone(), demo_body("web-1")).await;
    assert!(!replayed, "after expiry the key creates a new job");
    assert_ne!(fresh, mine);
}

#[actix_web::test]
async fn get_list_filter_and_page_jobs() {
    let p = TestPanel::start().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(p.demo_job().await["id"].as_str().unwrap().to_owned());
    }
    p.run_job("web-1", &ids[0], 1, JobState::Failed, Some(1))
        .await;

    let r = p.get(&p.viewer, &format!("/jobs/{}", ids[0])).await;
    assert_eq!(r.status(), 200);
    let j: Value = r.json().await.unwrap();
    assert_eq!(j["state"], "failed");
    assert_eq!(j["exit_code"], 1);
    assert_eq!(j["progress"], 50);
    assert_eq!(j["duration_ms"], 1500);

    let page1: Value = p
        .get(&p.viewer, "/jobs?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let got: Vec<&str> = page1["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str()], "newest first");
    let next = page1["next"].as_str().unwrap();
    let page2: Value = p
        .get(&p.viewer, &format!("/jobs?limit=2&before={next}"))
        .await
        .json()
        .await
        .unwrap();
    let got2: Vec<&str> = page2["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(got2, [ids[2].as_str(), ids[1].as_str()]);

    let failed: Value = p
        .get(&p.viewer, "/jobs?state=failed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed["jobs"].as_array().unwrap().len(), 1);
    let by_app: Value = p
        .get(&p.viewer, "/jobs?app_id=demo-form&agent_id=web-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_app["jobs"].as_array().unwrap().len(), 5);
    let none: Value = p
        .get(&p.viewer, "/jobs?agent_id=old-1")
        .await
        .json()
        .await
        .unwrap();
    assert!(none["jobs"].as_array().unwrap().is_empty());

    for bad in [
        "/jobs?state=exploded",
        "/jobs?app_id=../etc",
        "/jobs?agent_id=a*",
        "/jobs?before=not-a-uuid",
        "/jobs?limit=abc",
    ] {
        let r = p.get(&p.viewer, bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["code"],
            "invalid_parameter",
            "{bad}"
        );
    }
    let r = p
        .get(&p.viewer, "/jobs/0193a6c2-6a37-7cc1-9f55-2b8f0e1d4c3a")
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "job_not_found");
    let r = p.get(&p.viewer, "/jobs/..%2Fetc").await;
    assert_eq!(r.status(), 400);
}

#[actix_web::test]
async fn log_is_plain_text_of_the_output() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    p.run_job("web-1", &id, 1, JobState::Succeeded, Some(0))
        .await;
    let r = p.get(&p.viewer, &format!("/jobs/{id}/log")).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    assert!(text.contains("hello from the script\n"), "{text}");
    assert!(
        text.contains("# attempt 1: succeeded (exit code 0)"),
        "{text}"
    );
}

#[actix_web::test]
async fn a_long_log_streams_whole_and_in_order_across_pages() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    // More events than several pages of the reader (500 per round trip).
    let lines = 2_345;
    p.log_lines("web-1", &id, lines).await;
    let text = p
        .get(&p.viewer, &format!("/jobs/{id}/log"))
        .await
        .text()
        .await
        .unwrap();
    let got: Vec<&str> = text.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(got.len(), lines);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line {i:05}")),
        "every line once, in order"
    );
}

#[actix_web::test]
async fn cancel_of_a_queued_job_ends_it_at_once() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let r = p
        .post(&p.operator, &format!("/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["outcome"], "canceled");
    assert_eq!(v["job"]["state"], "canceled");
    let depth: u64 = p
        .conn()
        .llen(AgentRedisKeys::new("web-1").queue())
        .await
        .unwrap();
    assert_eq!(depth, 0, "removed from the queue");
    let h = p.job_hash("web-1", &id).await;
    assert_eq!(h[field::CANCEL_REQUESTED], "1");
    assert_eq!(h[field::SEQ], "2");

    let r = p
        .post(&p.operator, &format!("/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_cancelable");
}

#[actix_web::test]
async fn cancel_of_a_running_job_asks_the_runner() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let (_env, _) = p.take_job("web-1").await;
    let now = outfitter_panel::clock::now_ms();
    p.runner_event(
        "web-1",
        &id,
        Event::state(now, 1, JobState::Running, None, None),
        &[(field::STATE, "running".into())],
    )
    .await;
    let client = redis::Client::open(p.redis.url()).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe(AgentRedisKeys::new("web-1").control_channel())
        .await
        .unwrap();
    let r = p
        .post(&p.operator, &format!("/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["outcome"], "requested");
    assert_eq!(v["job"]["cancel_requested"], true);
    use futures_util::StreamExt;
    let msg = tokio::time::timeout(std::time::Duration::from_secs(5), sub.on_message().next())
        .await
        .unwrap()
        .unwrap();
    let payload: String = msg.get_payload().unwrap();
    let control: ControlMessage = serde_json::from_str(&payload).unwrap();
    assert_eq!(control, ControlMessage::Cancel { job_id: id });
}

#[actix_web::test]
async fn retry_queues_a_new_attempt_signed_again() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let (first, _) = p.take_job("web-1").await;
    p.run_job("web-1", &id, 1, JobState::Failed, Some(1)).await;

    let r = p
        .post(&p.viewer, &format!("/jobs/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), 403);
    let r = p
        .post(&p.operator, &format!("/jobs/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "queued");
    assert_eq!(v["exit_code"], Value::Null);
    let (second, wire) = p.take_job("web-1").await;
    assert_eq!(second.job_id, id);
    assert_eq!(second.attempt, 2);
    assert_eq!(
        second.sealed_inputs, first.sealed_inputs,
        "the sealed secrets carry over"
    );
    assert_eq!(p.job_hash("web-1", &id).await[field::SIGNED], wire);

    p.run_job("web-1", &id, 2, JobState::Succeeded, Some(0))
        .await;
    let r = p
        .post(&p.operator, &format!("/jobs/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "not_retryable");
}

#[actix_web::test]
async fn jobs_queued_at_once_for_one_instance_are_all_accepted_and_share_its_installation() {
    let p = TestPanel::start().await;
    let sends = (0..24).map(|_| {
        TestPanel::client()
            .post(p.api("/jobs"))
            .bearer_auth(&p.operator)
            .json(&demo_body("web-1"))
            .send()
    });
    let replies = futures_util::future::join_all(sends).await;
    let mut installations = std::collections::BTreeSet::new();
    let mut jobs = std::collections::BTreeSet::new();
    for r in replies {
        let r = r.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 202, "{v}");
        installations.insert(v["installation_id"].as_str().unwrap().to_owned());
        jobs.insert(v["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(installations.len(), 1, "one instance, one installation");
    assert_eq!(jobs.len(), 24, "every request queued its own job");
    let depth: u64 = p
        .conn()
        .llen(AgentRedisKeys::new("web-1").queue())
        .await
        .unwrap();
    assert_eq!(depth, 24);
}

#[actix_web::test]
async fn concurrent_requests_with_one_idempotency_key_create_one_job() {
    let p = TestPanel::start().await;
    let sends = (0..8).map(|_| {
        TestPanel::client()
            .post(p.api("/jobs"))
            .bearer_auth(&p.operator)
            .header("Idempotency-Key", "burst-1")
            .json(&demo_body("web-1"))
            .send()
    });
    let replies = futures_util::future::join_all(sends).await;
    let mut ids = std::collections::BTreeSet::new();
    for r in replies {
        let r = r.unwrap();
        assert_eq!(r.status(), 202);
        ids.insert(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let depth: u64 = p
        .conn()
        .llen(AgentRedisKeys::new("web-1").queue())
        .await
        .unwrap();
    assert_eq!(depth, 1);
}
