//! An agent after registration: `agent config` prints its configuration again, `agent rotate`
//! (and `POST /agents/{id}/rotate`) moves it to a new key that every signature and seal then
//! uses, `agent remove` (and `DELETE /agents/{id}`) unregisters it, with force only when jobs
//! are unfinished. The command line runs as the real binary against the test panel's Redis
//! and secret.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use common::{TestPanel, demo_body};
use outfitter_contract::envelope::{Envelope, EnvelopeError, SignedJob};
use outfitter_contract::event::Event;
use outfitter_contract::job::{JobState, field};
use outfitter_contract::keys::AgentCrypto;
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_contract::seal;
use outfitter_panel::agents;
use redis::AsyncCommands;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_outfitter-panel");

/// Runs `outfitter-panel agent <args…>` against the test panel's Redis and secret.
fn agent_cli(p: &TestPanel, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("agent")
        .args(args)
        .args(["--redis-url", &p.redis.url()]);
    // `agent remove` derives no key, so it takes no `--secret-file` (and refuses one).
    if args.first() != Some(&"remove") {
        cmd.arg("--secret-file").arg(p.dir.path().join("secret"));
    }
    cmd.output().unwrap()
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn config_key(toml_text: &str) -> String {
    let t: toml::Table = toml::from_str(toml_text).unwrap();
    t["agent_key"].as_str().unwrap().to_owned()
}

fn keys_at(p: &TestPanel, agent: &str, generation: u32) -> AgentCrypto {
    AgentCrypto::from_agent_key(&p.state.secret.agent_key_gen(agent, generation))
}

/// Every wire in an agent's queue, oldest first (as the runner takes them), emptying it.
async fn drain_queue(p: &TestPanel, agent: &str) -> Vec<String> {
    let mut c = p.conn();
    let mut out = Vec::new();
    while let Some(w) = c
        .rpop::<_, Option<String>>(AgentRedisKeys::new(agent).queue(), None)
        .await
        .unwrap()
    {
        out.push(w);
    }
    out
}

fn verify(wire: &str, keys: &AgentCrypto) -> Result<Envelope, EnvelopeError> {
    SignedJob::from_wire(wire).unwrap().verify(&keys.signing)
}

fn open_sealed(env: &Envelope, keys: &AgentCrypto) -> Result<BTreeMap<String, Value>, String> {
    seal::open(
        &keys.sealing,
        &env.job_id,
        env.sealed_inputs.as_deref().unwrap(),
    )
    .map_err(|e| e.to_string())
}

async fn audit_actions(p: &TestPanel) -> Vec<(String, String, String)> {
    let entries = outfitter_panel::audit::list(&mut p.conn(), None, 100)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|e| (e.action, e.target, e.detail))
        .collect()
}

async fn code(r: reqwest::Response) -> (u16, String) {
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (s, v["code"].as_str().unwrap_or("").to_owned())
}

async fn delete(p: &TestPanel, token: &str, path: &str) -> reqwest::Response {
    TestPanel::client()
        .delete(p.api(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn config_prints_the_same_key_as_add() {
    let p = TestPanel::start().await;
    let added = stdout_ok(&agent_cli(&p, &["add", "db-9"]));
    let again = stdout_ok(&agent_cli(&p, &["config", "db-9"]));
    assert_eq!(again, added);
    assert_eq!(
        config_key(&again),
        p.state.secret.agent_key("db-9").to_hex(),
        "a never-rotated agent keeps the generation-0 key"
    );
    let actions = audit_actions(&p).await;
    assert!(
        actions
            .iter()
            .any(|(a, t, d)| a == "agent.config" && t == "db-9" && d == "key generation 0"),
        "{actions:?}"
    );

    let unknown = agent_cli(&p, &["config", "nobody"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no registered agent \"nobody\""));
    let bad = agent_cli(&p, &["config", "web*"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must match"));
}

#[actix_web::test]
async fn rotate_moves_signing_and_sealing_to_a_new_key_and_retry_re_signs_old_jobs() {
    let p = TestPanel::start().await;
    let old_job = p.demo_job().await["id"].as_str().unwrap().to_owned();

    let out = agent_cli(&p, &["rotate", "web-1"]);
    let config = stdout_ok(&out);
    let notice = String::from_utf8_lossy(&out.stderr);
    let (old, new) = (keys_at(&p, "web-1", 0), keys_at(&p, "web-1", 1));
    assert_eq!(
        config_key(&config),
        p.state.secret.agent_key_gen("web-1", 1).to_hex()
    );
    assert_ne!(
        config_key(&config),
        p.state.secret.agent_key("web-1").to_hex()
    );
    assert!(notice.contains("now has key generation 1"), "{notice}");
    assert!(
        notice.contains(
            "1 queued job(s) were signed with the old key. Once the runner has the new key it \
             rejects each as forged (state `rejected`, reason \"signature does not verify with \
             this agent's key\")"
        ) && notice.contains(&old_job),
        "{notice}"
    );
    // `config` now prints the rotated key.
    assert_eq!(stdout_ok(&agent_cli(&p, &["config", "web-1"])), config);

    // A job queued after the rotation is signed and sealed with the new key only.
    let new_job = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let wires = drain_queue(&p, "web-1").await;
    assert_eq!(wires.len(), 2);
    let env = verify(&wires[1], &new).expect("the new key verifies the new job");
    assert_eq!(env.job_id, new_job);
    assert_eq!(verify(&wires[1], &old), Err(EnvelopeError::BadSignature));
    assert_eq!(
        open_sealed(&env, &new).unwrap()["db_password"],
        "correct horse battery"
    );
    assert!(open_sealed(&env, &old).is_err());

    // The job queued before: the runner's check (the contract's `verify`, with the new key)
    // refuses it with exactly the reason the notice quotes.
    let refused = verify(&wires[0], &new).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "signature does not verify with this agent's key"
    );
    assert_eq!(verify(&wires[0], &old).unwrap().job_id, old_job);
    // … and files it as the runner does: `rejected` with that reason.
    let now = outfitter_panel::clock::now_ms();
    p.runner_event(
        "web-1",
        &old_job,
        Event::state(now, 0, JobState::Rejected, None, Some(refused.to_string())),
        &[
            (field::STATE, "rejected".into()),
            (field::REASON, refused.to_string()),
            (field::FINISHED_AT, now.to_string()),
        ],
    )
    .await;

    // A retry re-signs it, and re-seals its secrets, with the new key.
    let r = p
        .post(&p.operator, &format!("/jobs/{old_job}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let wires = drain_queue(&p, "web-1").await;
    assert_eq!(wires.len(), 1);
    let retried = verify(&wires[0], &new).expect("the retry verifies with the new key");
    assert_eq!(retried.job_id, old_job);
    assert_eq!(verify(&wires[0], &old), Err(EnvelopeError::BadSignature));
    assert_eq!(
        open_sealed(&retried, &new).unwrap()["db_password"],
        "correct horse battery"
    );
    assert!(open_sealed(&retried, &old).is_err());
    assert_eq!(p.job_hash("web-1", &old_job).await[field::SIGNED], wires[0]);

    let actions = audit_actions(&p).await;
    assert!(
        actions.iter().any(|(a, t, d)| a == "agent.rotate"
            && t == "web-1"
            && d.starts_with("key generation 1; at rotation: 1 queued")),
        "{actions:?}"
    );
}

#[actix_web::test]
async fn retry_refuses_an_envelope_no_key_generation_signed() {
    let p = TestPanel::start().await;
    let job = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let (env, _) = p.take_job("web-1").await;
    // As if the panel secret had been replaced since: another key signed the stored envelope.
    let other = AgentCrypto::from_agent_key(&outfitter_contract::keys::Key([9; 32]));
    let k = AgentRedisKeys::new("web-1");
    let _: () = p
        .conn()
        .hset_multiple(
            k.job(&job),
            &[
                (field::SIGNED, env.sign(&other.signing).to_wire()),
                (field::STATE, "rejected".into()),
            ],
        )
        .await
        .unwrap();
    let r = p
        .post(&p.operator, &format!("/jobs/{job}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "not_retryable");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("was not signed by this panel's secret under any key generation (0 to 0)"),
        "{v}"
    );
    let depth: u64 = p.conn().llen(k.queue()).await.unwrap();
    assert_eq!(depth, 0, "nothing was queued");
}

#[actix_web::test]
async fn rotate_over_the_api_is_for_admins_and_counts_generations() {
    let p = TestPanel::start().await;
    assert_eq!(
        code(
            p.post(&p.operator, "/agents/web-1/rotate", &json!({}))
                .await
        )
        .await,
        (403, "forbidden".into())
    );
    assert_eq!(
        code(p.post(&p.viewer, "/agents/web-1/rotate", &json!({})).await).await,
        (403, "forbidden".into())
    );
    assert_eq!(
        code(p.post(&p.admin, "/agents/nobody/rotate", &json!({})).await).await,
        (404, "agent_not_found".into())
    );
    assert_eq!(
        code(p.post(&p.admin, "/agents/web*/rotate", &json!({})).await).await,
        (400, "invalid_parameter".into())
    );
    for generation in [1u32, 2] {
        let r = p.post(&p.admin, "/agents/web-1/rotate", &json!({})).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["agent"]["key_generation"], generation);
        assert_eq!(
            config_key(v["runner_config"].as_str().unwrap()),
            p.state.secret.agent_key_gen("web-1", generation).to_hex()
        );
        assert_eq!(
            v["waiting"],
            json!({"queued": [], "retrying": [], "running": []})
        );
        assert!(
            v["notice"]
                .as_str()
                .unwrap()
                .contains(&format!("now has key generation {generation}"))
        );
    }
    let one: Value = p
        .get(&p.viewer, "/agents/web-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["key_generation"], 2);
    // The other agents keep their keys.
    let other = agents::keys::load(&mut p.conn(), &p.state.secret, "old-1")
        .await
        .unwrap();
    assert_eq!(other.generation, 0);
    assert_eq!(other.agent_key, p.state.secret.agent_key("old-1"));
}

#[actix_web::test]
async fn remove_refuses_with_queued_jobs_and_force_cancels_them() {
    let p = TestPanel::start().await;
    let job = p.demo_job().await["id"].as_str().unwrap().to_owned();

    let refused = agent_cli(&p, &["remove", "web-1"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("agent_busy") && err.contains("1 queued, 0 retrying and 0 running"),
        "{err}"
    );
    assert_eq!(
        code(delete(&p, &p.admin, "/agents/web-1").await).await,
        (409, "agent_busy".into())
    );
    assert_eq!(
        code(delete(&p, &p.operator, "/agents/web-1?force=true").await).await,
        (403, "forbidden".into())
    );
    assert_eq!(p.job_hash("web-1", &job).await[field::STATE], "queued");
    let history = AgentRedisKeys::new("web-1").metrics_raw();
    let _: String = p.conn().xadd(&history, "*", &[("c", "1")]).await.unwrap();

    let out = stdout_ok(&agent_cli(&p, &["remove", "web-1", "--force"]));
    assert!(
        out.contains(&format!("canceled 1 waiting job(s): {job}")),
        "{out}"
    );
    let rec = p.job_hash("web-1", &job).await;
    assert_eq!(rec[field::STATE], "canceled");
    assert_eq!(
        rec[field::REASON],
        "canceled before it started: agent web-1 was removed by cli:".to_owned()
            + &std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    let depth: u64 = p
        .conn()
        .llen(AgentRedisKeys::new("web-1").queue())
        .await
        .unwrap();
    assert_eq!(depth, 0);
    let history_left: bool = p.conn().exists(&history).await.unwrap();
    assert!(!history_left, "the metrics history goes with the agent");
    assert_eq!(
        code(p.get(&p.viewer, "/agents/web-1").await).await,
        (404, "agent_not_found".into())
    );
    assert_eq!(
        code(p.post(&p.operator, "/jobs", &demo_body("web-1")).await).await,
        (404, "agent_not_found".into())
    );
    // The job's history stays readable.
    let v: Value = p
        .get(&p.viewer, &format!("/jobs/{job}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "canceled");
    let actions = audit_actions(&p).await;
    assert!(
        actions.iter().any(|(a, t, d)| a == "agent.remove"
            && t == "web-1"
            && d == "force; key generation 0; canceled 1 waiting job(s); 0 still running"),
        "{actions:?}"
    );
}

#[actix_web::test]
async fn remove_over_the_api_leaves_running_jobs_alone() {
    let p = TestPanel::start().await;
    let waiting = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let running = p.demo_job().await["id"].as_str().unwrap().to_owned();
    // The runner takes the newer one (as BLMOVE does) and starts it.
    let k = AgentRedisKeys::new("web-1");
    let wire = p.job_hash("web-1", &running).await[field::SIGNED].clone();
    let mut c = p.conn();
    let _: i64 = c.lrem(k.queue(), 1, &wire).await.unwrap();
    let _: i64 = c.lpush(k.processing(), &wire).await.unwrap();
    p.runner_event(
        "web-1",
        &running,
        Event::state(
            outfitter_panel::clock::now_ms(),
            1,
            JobState::Running,
            None,
            None,
        ),
        &[(field::STATE, "running".into())],
    )
    .await;

    let r = delete(&p, &p.admin, "/agents/web-1").await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "agent_busy");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("1 queued, 0 retrying and 1 running"),
        "{v}"
    );
    assert_eq!(
        code(delete(&p, &p.admin, "/agents/web-1?force=maybe").await).await,
        (400, "invalid_parameter".into())
    );
    let r = delete(&p, &p.admin, "/agents/web-1?force=true").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["canceled"], json!([waiting]));
    assert_eq!(v["still_running"], json!([running]));
    let rec = p.job_hash("web-1", &running).await;
    assert_eq!(rec[field::STATE], "running");
    assert_eq!(rec[field::CANCEL_REQUESTED], "0", "no stop was asked for");
    assert_eq!(
        code(delete(&p, &p.admin, "/agents/web-1").await).await,
        (404, "agent_not_found".into())
    );
}

/// Moves a queued job to the agent's scheduled retries, as the runner does after exit 2.
async fn make_retrying(p: &TestPanel, agent: &str, job: &str) {
    let k = AgentRedisKeys::new(agent);
    let wire = p.job_hash(agent, job).await[field::SIGNED].clone();
    let mut c = p.conn();
    let _: i64 = c.lrem(k.queue(), 1, &wire).await.unwrap();
    let due = outfitter_panel::clock::now_ms() + 3_600_000;
    let _: i64 = c.zadd(k.scheduled(), &wire, due).await.unwrap();
    let _: i64 = c.hset(k.job(job), field::STATE, "retrying").await.unwrap();
}

#[actix_web::test]
async fn rotation_notice_names_waiting_retries_and_force_remove_cancels_them() {
    let p = TestPanel::start().await;
    let job = p.demo_job().await["id"].as_str().unwrap().to_owned();
    make_retrying(&p, "web-1", &job).await;
    let v: Value = p
        .post(&p.admin, "/agents/web-1/rotate", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["waiting"],
        json!({"queued": [], "retrying": [job], "running": []})
    );
    let notice = v["notice"].as_str().unwrap();
    assert!(
        notice.contains("1 automatic retry(ies) wait, signed by the runner with the old key")
            && notice.contains("rejects each as forged when it falls due")
            && notice.ends_with(&format!("{job}\n")),
        "{notice}"
    );
    let v: Value = delete(&p, &p.admin, "/agents/web-1?force=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["canceled"], json!([job]));
    assert_eq!(v["key_generation"], 1);
    assert_eq!(p.job_hash("web-1", &job).await[field::STATE], "canceled");
    let left: u64 = p
        .conn()
        .zcard(AgentRedisKeys::new("web-1").scheduled())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[actix_web::test]
async fn a_removed_id_registered_again_never_gets_an_old_key_back() {
    let p = TestPanel::start().await;
    let r = p.post(&p.admin, "/agents/gone-1/rotate", &json!({})).await;
    assert_eq!(r.status(), 200);
    let r = delete(&p, &p.admin, "/agents/gone-1").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["key_generation"], 1);
    let r = p.post(&p.admin, "/agents", &json!({"id": "gone-1"})).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["agent"]["key_generation"], 2);
    let key = config_key(v["runner_config"].as_str().unwrap());
    assert_eq!(key, p.state.secret.agent_key_gen("gone-1", 2).to_hex());
    for g in [0, 1] {
        assert_ne!(key, p.state.secret.agent_key_gen("gone-1", g).to_hex());
    }
}

#[actix_web::test]
async fn registrations_from_before_generations_keep_the_original_key() {
    let p = TestPanel::start().await;
    // A registration as older panels wrote it: no `key_generation`.
    let legacy = json!({"id": "web-1", "registered_at": 1, "registered_by": "test"});
    let _: i64 = p
        .conn()
        .hset(redis_keys::AGENTS, "web-1", legacy.to_string())
        .await
        .unwrap();
    p.demo_job().await;
    let wires = drain_queue(&p, "web-1").await;
    assert!(verify(&wires[0], &keys_at(&p, "web-1", 0)).is_ok());
    let config = stdout_ok(&agent_cli(&p, &["config", "web-1"]));
    assert_eq!(
        config_key(&config),
        p.state.secret.agent_key("web-1").to_hex()
    );
}

#[actix_web::test]
async fn heartbeat_recording_never_undoes_a_rotation_or_a_removal() {
    let p = TestPanel::start().await;
    let mut c = p.conn();
    let (stale, _) = agents::registration_raw(&mut c, "web-1")
        .await
        .unwrap()
        .unwrap();
    let r = p.post(&p.admin, "/agents/web-1/rotate", &json!({})).await;
    assert_eq!(r.status(), 200);
    // A writer holding the registration from before the rotation loses.
    let (_, reg) = agents::registration_raw(&mut c, "web-1")
        .await
        .unwrap()
        .unwrap();
    let undo = agents::Registration {
        key_generation: 0,
        ..reg
    };
    assert!(
        !agents::replace_registration(&mut c, "web-1", &stale, Some(&undo))
            .await
            .unwrap()
    );
    agents::record_heartbeats(&mut c).await.unwrap();
    let reg = agents::registration(&mut c, "web-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reg.key_generation, 1);
    assert!(reg.last_seen.is_some(), "the heartbeat was still recorded");

    // web-1 is online (live heartbeat): recording must not bring it back after removal.
    let r = delete(&p, &p.admin, "/agents/web-1").await;
    assert_eq!(r.status(), 200);
    agents::record_heartbeats(&mut c).await.unwrap();
    assert!(
        agents::registration(&mut c, "web-1")
            .await
            .unwrap()
            .is_none()
    );
}
