//! Jobs that fail a check are refused with their reason and never run: forged, tampered,
//! expired, replayed, addressed to another agent, unknown app, other bundle digest, inputs
//! that do not validate. The happy bundle leaves a marker file when it runs. A bundle changed
//! on disk is rescanned: a job signed for the new bytes runs.

mod support;

use outfitter_contract::job::JobState;
use outfitter_contract::keys::AgentCrypto;
use serde_json::json;
use support::panel::{Enqueued, LONG, ran};
use support::{Panel, RedisServer, RunnerOptions, RunnerProcess, wait_for};

fn setup() -> (RedisServer, Panel, RunnerProcess) {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    (redis, panel, runner)
}

/// Waits for the refusal of `job` on the rejected stream; returns its reason.
fn rejection_of(panel: &Panel, job: &str) -> String {
    wait_for(LONG, &format!("rejection of {job}"), || {
        panel
            .rejections()
            .into_iter()
            .find(|(id, _)| id == job)
            .map(|(_, reason)| reason)
    })
}

fn assert_never_ran(panel: &Panel, job: &Enqueued) {
    assert!(!ran(&job.job_id), "the script must not run");
    assert!(
        panel.list(&panel.names.processing()).is_empty(),
        "refused jobs leave processing"
    );
}

#[test]
fn forged_job_signed_with_another_key_is_rejected_and_never_runs() {
    let (_redis, panel, _runner) = setup();
    let env = panel.envelope("happy", json!({}), json!(null));
    let forger = AgentCrypto::from_agent_key(&outfitter_contract::keys::Key([7; 32]));
    let wire = env.sign(&forger.signing).to_wire();
    panel.enqueue_wire(&env, &wire);
    let reason = rejection_of(&panel, &env.job_id);
    assert!(reason.contains("signature"), "{reason}");
    let record = panel.wait_state(&env.job_id, &[JobState::Rejected], LONG);
    assert!(record.reason.unwrap().contains("signature"));
    let job = Enqueued {
        job_id: env.job_id.clone(),
        envelope: env,
        wire,
    };
    assert_never_ran(&panel, &job);
}

#[test]
fn tampered_job_is_rejected_and_never_runs() {
    let (_redis, panel, _runner) = setup();
    let env = panel.envelope("happy", json!({"greeting": "Hello"}), json!(null));
    let mut signed = env.sign(&panel.keys.signing);
    signed.payload = signed.payload.replace("Hello", "Evil");
    let wire = signed.to_wire();
    panel.enqueue_wire(&env, &wire);
    let reason = rejection_of(&panel, &env.job_id);
    assert!(reason.contains("signature"), "{reason}");
    assert_never_ran(&panel, &Enqueued::of(env, wire));
}

#[test]
fn garbage_on_the_queue_is_rejected() {
    let (_redis, panel, _runner) = setup();
    redis::cmd("LPUSH")
        .arg(panel.names.queue())
        .arg("not json")
        .query::<()>(&mut panel.conn())
        .unwrap();
    let reason = wait_for(LONG, "a rejection", || {
        panel.rejections().into_iter().next().map(|(_, r)| r)
    });
    assert!(reason.contains("not valid JSON"), "{reason}");
    assert!(panel.list(&panel.names.processing()).is_empty());
}

#[test]
fn expired_job_ends_expired_and_never_runs() {
    let (_redis, panel, _runner) = setup();
    let mut env = panel.envelope("happy", json!({}), json!(null));
    env.issued_at -= 7200;
    env.expires_at = env.issued_at + 60;
    let job = panel.enqueue_envelope(&env);
    let record = panel.wait_state(&job.job_id, &[JobState::Expired], LONG);
    assert!(record.reason.unwrap().contains("expired"));
    assert!(rejection_of(&panel, &job.job_id).contains("expired"));
    assert_never_ran(&panel, &job);
}

#[test]
fn replayed_job_is_rejected_and_runs_only_once() {
    let (_redis, panel, _runner) = setup();
    let job = panel.enqueue("happy", json!({}), json!(null));
    panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    assert!(ran(&job.job_id), "the first delivery ran");
    redis::cmd("LPUSH")
        .arg(panel.names.queue())
        .arg(&job.wire)
        .query::<()>(&mut panel.conn())
        .unwrap();
    let reason = rejection_of(&panel, &job.job_id);
    assert!(reason.contains("replay"), "{reason}");
    assert_never_ran(&panel, &job);
    // The first run's result stays as it was.
    assert_eq!(panel.record(&job.job_id).state, JobState::Succeeded);
}

#[test]
fn job_for_another_agent_is_rejected_and_never_runs() {
    let (_redis, panel, _runner) = setup();
    // Properly signed for agent "other", but pushed onto this agent's queue.
    let other = Panel::for_agent(&panel.redis_url, "other");
    let env = other.envelope("happy", json!({}), json!(null));
    let wire = env.sign(&other.keys.signing).to_wire();
    let mut c = panel.conn();
    redis::cmd("LPUSH")
        .arg(panel.names.queue())
        .arg(&wire)
        .query::<()>(&mut c)
        .unwrap();
    let reason = rejection_of(&panel, &env.job_id);
    assert!(reason.contains("signature"), "{reason}");
    assert_never_ran(&panel, &Enqueued::of(env, wire));
}

#[test]
fn job_naming_another_agent_under_this_agents_key_is_rejected() {
    let (_redis, panel, _runner) = setup();
    let mut env = panel.envelope("happy", json!({}), json!(null));
    env.agent_id = "other".into();
    let wire = env.sign(&panel.keys.signing).to_wire();
    redis::cmd("LPUSH")
        .arg(panel.names.queue())
        .arg(&wire)
        .query::<()>(&mut panel.conn())
        .unwrap();
    let reason = rejection_of(&panel, &env.job_id);
    assert!(reason.contains("addressed to agent \"other\""), "{reason}");
    assert!(!ran(&env.job_id));
}

#[test]
fn unknown_app_and_other_digest_are_rejected() {
    let (_redis, panel, _runner) = setup();
    let mut env = panel.envelope("happy", json!({}), json!(null));
    env.bundle_digest = "00".repeat(32);
    let job = panel.enqueue_envelope(&env);
    let record = panel.wait_state(&job.job_id, &[JobState::Rejected], LONG);
    assert!(record.reason.unwrap().contains("digest mismatch"));
    assert_never_ran(&panel, &job);

    let mut env = panel.envelope("happy", json!({}), json!(null));
    env.app_id = "no-such-app".into();
    let job = panel.enqueue_envelope(&env);
    let record = panel.wait_state(&job.job_id, &[JobState::Rejected], LONG);
    assert!(
        record
            .reason
            .unwrap()
            .contains("not in this server's catalog")
    );
}

#[test]
fn inputs_that_do_not_validate_locally_are_rejected() {
    let (_redis, panel, _runner) = setup();
    let job = panel.enqueue(
        "happy",
        json!({"greeting": "no digits 123 allowed"}),
        json!(null),
    );
    let record = panel.wait_state(&job.job_id, &[JobState::Rejected], LONG);
    let reason = record.reason.unwrap();
    assert!(reason.contains("greeting"), "{reason}");
    assert_never_ran(&panel, &job);
}

#[test]
fn a_bundle_dropped_in_after_start_runs_without_restart() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let installers = tempfile::tempdir().unwrap();
    let options = RunnerOptions {
        installers: installers.path().to_path_buf(),
        ..RunnerOptions::default()
    };
    let _runner = RunnerProcess::start(&panel, &redis.url(), options);
    panel.wait_heartbeat(LONG);
    let dest = installers.path().join("happy");
    std::fs::create_dir(&dest).unwrap();
    for f in ["manifest.yml", "install.sh"] {
        std::fs::copy(support::bundles_dir().join("happy").join(f), dest.join(f)).unwrap();
    }
    let env = panel.envelope_in(&dest, json!({}), json!(null));
    let job = panel.enqueue_envelope(&env);
    panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    assert!(ran(&job.job_id));
}

/// A runner over a private copy of the `happy` bundle (so a test may edit it on disk), and a
/// first job that proves the runner scanned the bundle as it was.
struct EditableHappy {
    panel: Panel,
    dest: std::path::PathBuf,
    _runner: RunnerProcess,
    _installers: tempfile::TempDir,
    _redis: RedisServer,
}

impl EditableHappy {
    fn start() -> Self {
        let redis = RedisServer::start();
        let panel = Panel::new(&redis.url());
        let installers = tempfile::tempdir().unwrap();
        let dest = installers.path().join("happy");
        std::fs::create_dir(&dest).unwrap();
        for f in ["manifest.yml", "install.sh"] {
            std::fs::copy(support::bundles_dir().join("happy").join(f), dest.join(f)).unwrap();
        }
        let options = RunnerOptions {
            installers: installers.path().to_path_buf(),
            ..RunnerOptions::default()
        };
        let runner = RunnerProcess::start(&panel, &redis.url(), options);
        let first = panel.enqueue_envelope(&panel.envelope_in(&dest, json!({}), json!(null)));
        panel.wait_state(&first.job_id, &[JobState::Succeeded], LONG);
        assert!(ran(&first.job_id));
        EditableHappy {
            panel,
            dest,
            _runner: runner,
            _installers: installers,
            _redis: redis,
        }
    }
}

#[test]
fn script_edited_after_the_catalog_scan_never_runs_under_the_old_digest() {
    let EditableHappy { panel, dest, .. } = &EditableHappy::start();

    // The panel validated these bytes; then the script changes on disk.
    let env = panel.envelope_in(dest, json!({}), json!(null));
    let script = dest.join("install.sh");
    let mut text = std::fs::read_to_string(&script).unwrap();
    text.push_str("touch \"${TMPDIR}/outfitter-edited-${JOB_ID}\"\n");
    std::fs::write(&script, text).unwrap();
    let job = panel.enqueue_envelope(&env);

    let record = panel.wait_state(&job.job_id, &[JobState::Rejected], LONG);
    let reason = record.reason.unwrap();
    assert!(reason.contains("digest mismatch"), "{reason}");
    assert_never_ran(panel, &job);
    let edited = format!("/tmp/outfitter-edited-{}", job.job_id);
    assert!(
        !std::path::Path::new(&edited).exists(),
        "the edited script ran"
    );
}

#[test]
fn bundle_changed_on_disk_is_rescanned_and_a_job_for_its_new_digest_runs() {
    let EditableHappy { panel, dest, .. } = &EditableHappy::start();

    // The script changes on disk, and the panel (having rescanned) signs for the new bytes.
    let script = dest.join("install.sh");
    let mut text = std::fs::read_to_string(&script).unwrap();
    text.push_str("echo \"edited script ran\"\n");
    std::fs::write(&script, text).unwrap();
    let env = panel.envelope_in(dest, json!({}), json!(null));
    assert_ne!(
        env.bundle_digest,
        panel
            .envelope_in(
                &support::bundles_dir().join("happy"),
                json!({}),
                json!(null)
            )
            .bundle_digest,
        "the edit changed the digest"
    );
    let job = panel.enqueue_envelope(&env);
    let record = panel.wait_state(
        &job.job_id,
        &[JobState::Succeeded, JobState::Rejected],
        LONG,
    );
    assert_eq!(record.state, JobState::Succeeded, "{:?}", record.reason);
    assert!(ran(&job.job_id));
    let lines = support::panel::log_lines(&panel.events(&job.job_id));
    assert!(lines.contains(&"edited script ran".to_owned()), "{lines:?}");
}
