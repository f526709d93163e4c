//! The retention sweep deletes finished jobs older than the retention, and only those.

mod common;

use common::TestPanel;
use outfitter_contract::job::JobState;
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use redis::AsyncCommands;

#[actix_web::test]
async fn old_finished_jobs_are_deleted_and_running_or_recent_ones_kept() {
    let p = TestPanel::start().await;
    let old_done = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let old_running = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let recent_done = p.demo_job().await["id"].as_str().unwrap().to_owned();
    p.run_job("web-1", &old_done, 1, JobState::Succeeded, Some(0))
        .await;
    p.run_job("web-1", &recent_done, 1, JobState::Failed, Some(1))
        .await;
    let mut c = p.conn();
    let long_ago = outfitter_panel::clock::now_ms() - 40 * 86_400_000;
    for id in [&old_done, &old_running] {
        let _: () = c
            .zadd(redis_keys::JOBS_INDEX, id.as_str(), long_ago)
            .await
            .unwrap();
    }
    let deleted = outfitter_panel::retention::sweep(&mut c, 30).await.unwrap();
    assert_eq!(deleted, 1);
    let k = AgentRedisKeys::new("web-1");
    let gone: u64 = c
        .exists(&[k.job(&old_done), k.job_events(&old_done)])
        .await
        .unwrap();
    assert_eq!(gone, 0);
    assert_eq!(
        p.get(&p.viewer, &format!("/jobs/{old_done}"))
            .await
            .status(),
        404
    );
    for kept in [&old_running, &recent_done] {
        assert_eq!(
            p.get(&p.viewer, &format!("/jobs/{kept}")).await.status(),
            200,
            "{kept}"
        );
    }
    let listed: serde_json::Value = p.get(&p.viewer, "/jobs").await.json().await.unwrap();
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn the_sweep_trims_audit_entries_older_than_the_retention() {
    let p = TestPanel::start().await;
    let mut c = p.conn();
    let day = 86_400_000;
    let now = outfitter_panel::clock::now_ms();
    // Entries as `audit::record` writes them, with stream ids (= times) in the past.
    for (age_days, n) in [(45, 0), (40, 1), (31, 2), (29, 3), (1, 4)] {
        let _: String = redis::cmd("XADD")
            .arg(redis_keys::AUDIT)
            .arg(format!("{}-{n}", now - age_days * day))
            .arg("ts")
            .arg(now - age_days * day)
            .arg("who")
            .arg("root")
            .arg("action")
            .arg(format!("test.{age_days}d"))
            .arg("target")
            .arg("x")
            .arg("from")
            .arg("local")
            .arg("detail")
            .arg("")
            .query_async(&mut c)
            .await
            .unwrap();
    }
    outfitter_panel::retention::sweep(&mut c, 30).await.unwrap();
    let page: serde_json::Value = p.get(&p.admin, "/audit").await.json().await.unwrap();
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("test."))
        .collect();
    assert_eq!(
        actions,
        ["test.1d", "test.29d"],
        "newest first, older than 30 days gone"
    );
}
