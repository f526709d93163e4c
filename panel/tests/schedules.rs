//! Schedules in one panel process: bad input refused with the field and the rule, the
//! lifecycle (create, list, get, pause, resume, delete) audited, and the tick's promises with
//! the clock in the test's hand: panels ticking at once queue one job per due time, a panel
//! that queued and died before advancing leaves the same job to the next tick, a missed due
//! time is run once or skipped as the schedule says.

mod common;

use common::TestPanel;
use outfitter_panel::schedules::{self, RunKind, tick};
use serde_json::{Value, json};

/// A bundle with one plain input (the test bundles all ask for a secret, which a schedule
/// does not store), added to the panel's installers.
fn add_plain_bundle(p: &TestPanel) {
    let dir = p.dir.path().join("installers/sched-task");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("manifest.yml"),
        "id: sched-task\nname: Scheduled task\nversion: 1.0.0\ndescription: A plain task.\n\
         category: testing\nauthor: Outfitter tests\nos_requirements:\n  family: [debian]\n\
         timeout_seconds: 30\nidempotent: true\ninputs:\n  - name: greeting\n    type: string\n\
         \x20   label: Greeting\n    required: true\n",
    )
    .unwrap();
    std::fs::write(dir.join("install.sh"), "#!/usr/bin/env bash\necho hi\n").unwrap();
    p.state.reload_catalog();
    assert!(p.state.catalog.current().get("sched-task").is_some());
}

fn job_schedule(cron: &str, catch_up: &str) -> Value {
    json!({
        "name": "plain",
        "cron": cron,
        "timezone": "Europe/Berlin",
        "catch_up": catch_up,
        "target": {"kind": "job", "app_id": "sched-task", "agent_id": "web-1",
                   "inputs": {"greeting": "hello"}},
    })
}

async fn create(p: &TestPanel, body: &Value) -> Value {
    let r = p.post(&p.operator, "/schedules", body).await;
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{v}");
    v
}

async fn refused(p: &TestPanel, body: &Value) -> (u16, Value) {
    let r = p.post(&p.operator, "/schedules", body).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

fn field_of(v: &Value) -> (String, String) {
    (
        v["fields"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        v["fields"][0]["rule"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[actix_web::test]
async fn bad_schedules_are_refused_naming_the_field_and_the_rule() {
    let p = TestPanel::start().await;
    add_plain_bundle(&p);
    let mut body = job_schedule("61 * * * *", "skip");
    let (status, v) = refused(&p, &body).await;
    assert_eq!(
        (status, field_of(&v)),
        (422, ("cron".into(), "syntax".into())),
        "{v}"
    );

    body["cron"] = json!("0 0 30 2 *");
    let (status, v) = refused(&p, &body).await;
    assert_eq!(
        (status, field_of(&v)),
        (422, ("cron".into(), "fires".into())),
        "{v}"
    );

    body["cron"] = json!("0 3 * * *");
    body["timezone"] = json!("Mars/Olympus_Mons");
    let (status, v) = refused(&p, &body).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(field_of(&v), ("timezone".into(), "iana_zone".into()));

    body["timezone"] = json!("UTC");
    body["target"]["app_id"] = json!("no-such-app");
    let (status, v) = refused(&p, &body).await;
    assert_eq!(
        (status, v["code"].clone()),
        (404, json!("app_not_found")),
        "{v}"
    );

    body["target"]["app_id"] = json!("sched-task");
    body["target"]["agent_id"] = json!("nobody-1");
    let (status, v) = refused(&p, &body).await;
    assert_eq!(
        (status, v["code"].clone()),
        (404, json!("agent_not_found")),
        "{v}"
    );

    body["target"]["agent_id"] = json!("Bad*Agent");
    let (status, v) = refused(&p, &body).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(field_of(&v), ("target.agent_id".into(), "id".into()));

    body["target"]["agent_id"] = json!("web-1");
    body["target"]["inputs"] = json!({});
    let (status, v) = refused(&p, &body).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(field_of(&v).0, "target.inputs.greeting");

    let secret = json!({"name": "s", "cron": "0 3 * * *", "target": {
        "kind": "job", "app_id": "demo-form", "agent_id": "web-1",
        "inputs": {"site_name": "my-site", "admin_email": "a@example.com", "db_password": "correct horse battery"}}});
    let (status, v) = refused(&p, &secret).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(
        field_of(&v),
        ("target.inputs.db_password".into(), "secret".into())
    );

    let missing = json!({"name": "b", "cron": "0 3 * * *", "target": {
        "kind": "installation", "installation_id": "0192f0c4-2f7e-7cc3-9e6c-3d5e4a1b2c3d", "action": "backup"}});
    let (status, v) = refused(&p, &missing).await;
    assert_eq!(
        (status, v["code"].clone()),
        (404, json!("installation_not_found")),
        "{v}"
    );

    let purge_on_backup = json!({"name": "b", "cron": "0 3 * * *", "target": {
        "kind": "installation", "installation_id": "0192f0c4-2f7e-7cc3-9e6c-3d5e4a1b2c3d",
        "action": "backup", "purge": true}});
    let (status, v) = refused(&p, &purge_on_backup).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(field_of(&v), ("target.purge".into(), "action".into()));

    let bad_kind = json!({"name": "k", "cron": "0 3 * * *", "target": {"kind": "teleport"}});
    let (status, v) = refused(&p, &bad_kind).await;
    assert_eq!(
        (status, v["code"].clone()),
        (400, json!("invalid_json")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("teleport"), "{v}");

    let mut nameless = job_schedule("0 3 * * *", "skip");
    nameless["name"] = json!("  ");
    let (status, v) = refused(&p, &nameless).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(field_of(&v).0, "name");

    let r = p
        .post(&p.viewer, "/schedules", &job_schedule("0 3 * * *", "skip"))
        .await;
    assert_eq!(r.status(), 403);

    let ghost = "0192f0c4-2f7e-7cc3-9e6c-3d5e4a1b2c3d";
    for action in ["pause", "resume"] {
        let r = p
            .post(
                &p.operator,
                &format!("/schedules/{ghost}/{action}"),
                &json!({}),
            )
            .await;
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (status, v["code"].clone()),
            (404, json!("schedule_not_found")),
            "{v}"
        );
    }
    let r = p.get(&p.viewer, &format!("/schedules/{ghost}")).await;
    assert_eq!(r.status(), 404);
    let r = p.get(&p.viewer, "/schedules/not-an-id").await;
    assert_eq!(r.status(), 400);
    let r = TestPanel::client()
        .delete(p.api(&format!("/schedules/{ghost}")))
        .bearer_auth(&p.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[actix_web::test]
async fn a_schedule_is_created_listed_paused_resumed_and_deleted_with_audit_entries() {
    let p = TestPanel::start().await;
    add_plain_bundle(&p);
    let before = outfitter_panel::clock::now_ms();
    let s = create(&p, &job_schedule("0 3 * * *", "run_once")).await;
    let id = s["id"].as_str().unwrap().to_owned();
    assert_eq!(s["timezone"], "Europe/Berlin");
    assert_eq!(s["catch_up"], "run_once");
    assert_eq!(s["created_by"], "ops");
    assert_eq!(s["target"]["kind"], "job");
    let next = s["next_due"].as_i64().unwrap();
    assert!(
        next > before && next - before <= 86_400_000 + 3_600_000,
        "{s}"
    );

    let list: Value = p.get(&p.viewer, "/schedules").await.json().await.unwrap();
    assert_eq!(list["schedules"][0]["id"], json!(id));
    assert!(list["schedules"][0]["last_run"].is_null());

    let paused: Value = p
        .post(&p.operator, &format!("/schedules/{id}/pause"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paused["paused"], true);
    assert!(paused["next_due"].is_null(), "{paused}");
    let r = p
        .post(&p.viewer, &format!("/schedules/{id}/resume"), &json!({}))
        .await;
    assert_eq!(r.status(), 403);
    let resumed: Value = p
        .post(&p.operator, &format!("/schedules/{id}/resume"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["next_due"], json!(next));

    let one: Value = p
        .get(&p.viewer, &format!("/schedules/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["runs"], json!([]));

    let r = TestPanel::client()
        .delete(p.api(&format!("/schedules/{id}")))
        .bearer_auth(&p.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        p.get(&p.viewer, &format!("/schedules/{id}")).await.status(),
        404
    );

    let audit: Value = p
        .get(&p.admin, "/audit?limit=50")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == json!(id))
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "schedule.delete",
            "schedule.resume",
            "schedule.pause",
            "schedule.create"
        ]
    );
}

/// A schedule whose due time the test sets off by calling the tick itself (its cron fires
/// once a year, so the panel's own tick stays out of the way until the test says `now`).
async fn yearly(p: &TestPanel, catch_up: &str) -> (String, i64) {
    let s = create(p, &job_schedule("0 0 1 1 *", catch_up)).await;
    (
        s["id"].as_str().unwrap().to_owned(),
        s["next_due"].as_i64().unwrap(),
    )
}

async fn runs(p: &TestPanel, id: &str) -> Vec<Value> {
    let v: Value = p
        .get(&p.viewer, &format!("/schedules/{id}"))
        .await
        .json()
        .await
        .unwrap();
    v["runs"].as_array().unwrap().clone()
}

/// Jobs created by the schedule (its caller's name).
async fn jobs_of(p: &TestPanel, id: &str) -> Vec<Value> {
    let v: Value = p
        .get(&p.viewer, "/jobs?app_id=sched-task&limit=100")
        .await
        .json()
        .await
        .unwrap();
    v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["created_by"] == json!(format!("schedule:{id}")))
        .cloned()
        .collect()
}

#[actix_web::test]
async fn panels_ticking_at_once_queue_one_job_per_due_time() {
    let p = TestPanel::start().await;
    add_plain_bundle(&p);
    let (id, due) = yearly(&p, "skip").await;
    // Four ticks at once, as four panels would run them at the due time.
    let state = &p.state;
    let (a, b, c, d) = tokio::join!(
        tick::tick(state, due),
        tick::tick(state, due + 100),
        tick::tick(state, due + 200),
        tick::tick(state, due + 300)
    );
    let recorded: usize = [a, b, c, d].into_iter().map(Result::unwrap).sum();
    assert_eq!(recorded, 1);
    let runs = runs(&p, &id).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["due"], json!(due));
    assert_eq!(runs[0]["kind"], "on_time");
    let jobs = jobs_of(&p, &id).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(runs[0]["job_id"], jobs[0]["id"]);
    // Moved on to the next year's due time.
    let s: Value = p
        .get(&p.viewer, &format!("/schedules/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        s["next_due"].as_i64().unwrap() > due + 300 * 86_400_000,
        "{s}"
    );
    assert_eq!(s["last_run"]["job_id"], jobs[0]["id"]);
}

#[actix_web::test]
async fn a_panel_that_died_after_queueing_leaves_the_same_job_to_the_next_tick() {
    let p = TestPanel::start().await;
    add_plain_bundle(&p);
    let (id, due) = yearly(&p, "skip").await;
    let mut conn = p.conn();
    let schedule = schedules::store::load(&mut conn, &id).await.unwrap();
    // The dead panel's half: queued, never advanced.
    let queued = schedules::target::fire(&p.state, &id, &schedule.def.target, due)
        .await
        .unwrap();
    assert_eq!(tick::tick(&p.state, due + 2_000).await.unwrap(), 1);
    let runs = runs(&p, &id).await;
    assert_eq!(runs[0]["job_id"], json!(queued.job_id().unwrap()));
    assert_eq!(jobs_of(&p, &id).await.len(), 1);
}

#[actix_web::test]
async fn a_missed_due_time_is_run_once_or_skipped_as_the_schedule_says() {
    let p = TestPanel::start().await;
    add_plain_bundle(&p);
    let (once, due) = yearly(&p, "run_once").await;
    let (skip, _) = yearly(&p, "skip").await;
    let late = due + tick::GRACE_MS + 5_000;
    assert_eq!(tick::tick(&p.state, late).await.unwrap(), 2);
    // And again: nothing more is due.
    assert_eq!(tick::tick(&p.state, late + 1_000).await.unwrap(), 0);

    let once_runs = runs(&p, &once).await;
    assert_eq!(once_runs.len(), 1);
    assert_eq!(once_runs[0]["kind"], json!(RunKind::CatchUp));
    assert!(once_runs[0]["job_id"].is_string());
    assert_eq!(jobs_of(&p, &once).await.len(), 1);

    let skip_runs = runs(&p, &skip).await;
    assert_eq!(skip_runs.len(), 1);
    assert_eq!(skip_runs[0]["kind"], "skipped");
    assert!(skip_runs[0].get("job_id").is_none());
    assert!(jobs_of(&p, &skip).await.is_empty());
}

#[actix_web::test]
async fn a_run_that_cannot_queue_is_recorded_and_the_schedule_moves_on() {
    let p = TestPanel::start().await;
    add_plain_bundle(&p);
    let (id, due) = yearly(&p, "skip").await;
    // The agent goes away after the schedule was made.
    let r = TestPanel::client()
        .delete(p.api("/agents/web-1?force=true"))
        .bearer_auth(&p.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(tick::tick(&p.state, due).await.unwrap(), 1);
    let runs = runs(&p, &id).await;
    assert!(runs[0]["job_id"].is_null());
    assert!(
        runs[0]["error"].as_str().unwrap().contains("web-1"),
        "{runs:?}"
    );
    assert_eq!(tick::tick(&p.state, due + 1_000).await.unwrap(), 0);
}

#[actix_web::test]
async fn the_panels_own_tick_runs_a_seconds_schedule_once_per_due_time() {
    let p = TestPanel::start().await;
    add_plain_bundle(&p);
    let s = create(&p, &job_schedule("* * * * * *", "run_once")).await;
    let id = s["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(3_600)).await;
    let r = p
        .post(&p.operator, &format!("/schedules/{id}/pause"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let runs = runs(&p, &id).await;
    assert!(runs.len() >= 2, "{runs:?}");
    let mut dues: Vec<i64> = runs.iter().map(|r| r["due"].as_i64().unwrap()).collect();
    dues.sort_unstable();
    // Distinct whole seconds (a tick stalled past a period on a busy machine collapses the
    // due times it missed into one catch-up run, so a gap of several seconds may appear).
    for w in dues.windows(2) {
        assert!(w[1] > w[0] && (w[1] - w[0]) % 1_000 == 0, "{dues:?}");
    }
    let jobs = jobs_of(&p, &id).await;
    assert_eq!(jobs.len(), runs.len(), "{jobs:?} vs {runs:?}");
    let mut ran: Vec<&str> = runs.iter().map(|r| r["job_id"].as_str().unwrap()).collect();
    ran.sort_unstable();
    ran.dedup();
    assert_eq!(ran.len(), runs.len());
}

fn rollout_schedule(target_extra: &Value) -> Value {
    let mut target = json!({"kind": "rollout", "app_id": "sched-task",
                            "inputs": {"greeting": "hello"}, "agents": ["web-1"]});
    for (k, v) in target_extra.as_object().unwrap() {
        target[k] = v.clone();
    }
    json!({"name": "weekly fleet", "cron": "0 0 1 1 *", "timezone": "UTC", "target": target})
}

#[actix_web::test]
async fn bad_rollout_targets_are_refused_naming_the_field_and_the_rule() {
    let p = TestPanel::start().await;
    add_plain_bundle(&p);
    let cases = [
        (json!({"dry_run": true}), 422, "target.dry_run", "schedule"),
        (
            json!({"selector": {"labels": {"env": "prod"}}}),
            422,
            "target.selector",
            "one_of",
        ),
        (json!({"agents": []}), 422, "target.agents", "required"),
        (json!({"batch_size": 0}), 422, "target.batch_size", "range"),
    ];
    for (extra, status, field, rule) in cases {
        let (got, v) = refused(&p, &rollout_schedule(&extra)).await;
        assert_eq!(
            (got, field_of(&v)),
            (status, (field.to_owned(), rule.to_owned())),
            "{extra}: {v}"
        );
    }
    let mut bad_label = rollout_schedule(&json!({}));
    bad_label["target"]
        .as_object_mut()
        .unwrap()
        .remove("agents");
    bad_label["target"]["selector"] = json!({"labels": {"Bad Key": "x"}});
    let (status, v) = refused(&p, &bad_label).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(field_of(&v).1, "label", "{v}");

    let mut no_app = rollout_schedule(&json!({}));
    no_app["target"]["app_id"] = json!("no-such-app");
    let (status, v) = refused(&p, &no_app).await;
    assert_eq!(
        (status, v["code"].clone()),
        (404, json!("app_not_found")),
        "{v}"
    );
}

#[actix_web::test]
async fn a_rollout_schedule_starts_one_rollout_per_due_time() {
    let p = TestPanel::start().await;
    add_plain_bundle(&p);
    let s = create(&p, &rollout_schedule(&json!({}))).await;
    let id = s["id"].as_str().unwrap().to_owned();
    let due = s["next_due"].as_i64().unwrap();
    let mut conn = p.conn();
    let schedule = schedules::store::load(&mut conn, &id).await.unwrap();
    // A panel that started the rollout and died before advancing, then two ticks at once.
    let first = schedules::target::fire(&p.state, &id, &schedule.def.target, due)
        .await
        .unwrap();
    let rollout_id = first
        .rollout_id()
        .expect("a rollout target starts a rollout");
    let state = &p.state;
    let (a, b) = tokio::join!(tick::tick(state, due), tick::tick(state, due + 100));
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let runs = runs(&p, &id).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["rollout_id"], json!(rollout_id), "{runs:?}");
    assert!(runs[0].get("job_id").is_none(), "{runs:?}");

    let list: Value = p
        .get(&p.viewer, "/rollouts?limit=200")
        .await
        .json()
        .await
        .unwrap();
    let mine: Vec<&Value> = list["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["created_by"] == json!(format!("schedule:{id}")))
        .collect();
    assert_eq!(mine.len(), 1, "{list}");
    assert_eq!(mine[0]["id"], json!(rollout_id));
    assert_eq!(mine[0]["app_id"], "sched-task");
}
