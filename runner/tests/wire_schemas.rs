//! schemas/job.schema.json and schemas/event.schema.json describe exactly what the contract
//! serializes: checked on constructed values and on everything a real run produces.

mod support;

use std::path::PathBuf;

use outfitter_contract::envelope::{MAX_SIGNED_JOB_BYTES, SignedJob};
use outfitter_contract::event::{Event, EventBody, OutputStream};
use outfitter_contract::job::JobState;
use serde_json::{Value, json};
use support::panel::LONG;
use support::{Panel, RedisServer, RunnerOptions, RunnerProcess};

fn schema(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_valid(schema: &Value, instance: &Value) {
    let v = jsonschema::validator_for(schema).expect("schema compiles");
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{instance}\n{errors:#?}");
}

fn assert_invalid(schema: &Value, instance: &Value) {
    let v = jsonschema::validator_for(schema).unwrap();
    assert!(!v.is_valid(instance), "accepted: {instance}");
}

/// The envelope part of the job schema, as a schema of its own.
fn envelope_schema() -> Value {
    let job = schema("job.schema.json");
    json!({
        "$schema": job["$schema"],
        "$defs": job["$defs"],
        "$ref": "#/$defs/envelope",
    })
}

fn check_signed(wire: &str) {
    let signed: Value = serde_json::from_str(wire).unwrap();
    assert_valid(&schema("job.schema.json"), &signed);
    let payload: Value = serde_json::from_str(signed["payload"].as_str().unwrap()).unwrap();
    assert_valid(&envelope_schema(), &payload);
}

#[test]
fn signed_jobs_match_the_job_schema() {
    let panel = Panel::new("redis://127.0.0.1:1/");
    let plain = panel.envelope("happy", json!({"greeting": "Hi"}), json!(null));
    check_signed(&plain.sign(&panel.keys.signing).to_wire());
    let sealed = panel.envelope(
        "secret-echo",
        json!({"label": "x"}),
        json!({"api_token": "s"}),
    );
    assert!(sealed.sealed_inputs.is_some());
    check_signed(&sealed.sign(&panel.keys.signing).to_wire());
}

#[test]
fn job_schema_refuses_what_the_contract_refuses() {
    let job = schema("job.schema.json");
    assert_invalid(&job, &json!({"payload": "{}", "sig": "ab", "extra": 1}));
    assert_invalid(&job, &json!({"payload": "{}", "sig": "zz".repeat(32)}));
    let panel = Panel::new("redis://127.0.0.1:1/");
    let env = panel.envelope("happy", json!({}), json!(null));
    let mut payload = serde_json::to_value(&env).unwrap();
    payload["unknown"] = json!(1);
    assert_invalid(&envelope_schema(), &payload);
    let mut payload = serde_json::to_value(&env).unwrap();
    payload["attempt"] = json!(0);
    assert_invalid(&envelope_schema(), &payload);
    // Serde refuses the same unknown field.
    let wire = SignedJob {
        payload: serde_json::to_string(&json!({"unknown": 1})).unwrap(),
        sig: String::new(),
    };
    assert!(serde_json::from_str::<outfitter_contract::envelope::Envelope>(&wire.payload).is_err());
}

#[test]
fn job_schema_repeats_the_contract_size_limit() {
    let job = schema("job.schema.json");
    assert_eq!(
        job["properties"]["payload"]["maxLength"],
        json!(MAX_SIGNED_JOB_BYTES)
    );
}

#[test]
fn every_event_kind_matches_the_event_schema() {
    let event = schema("event.schema.json");
    let mut samples = Vec::new();
    for st in JobState::ALL {
        samples.push(Event::state(1, 1, st, None, None));
        samples.push(Event::state(1, 2, st, Some(124), Some("why".into())));
    }
    for stream in [
        OutputStream::Stdout,
        OutputStream::Stderr,
        OutputStream::Runner,
    ] {
        samples.push(Event::new(
            1,
            1,
            EventBody::Log {
                stream,
                line: "a line".into(),
            },
        ));
    }
    samples.push(Event::new(
        1,
        1,
        EventBody::Progress {
            percent: 100,
            message: "done".into(),
        },
    ));
    for mut e in samples {
        assert_valid(
            &event,
            &serde_json::from_str(&e.to_unsequenced_json()).unwrap(),
        );
        e.seq = Some(7);
        assert_valid(&event, &serde_json::to_value(&e).unwrap());
    }
    assert_invalid(
        &event,
        &json!({"ts": 1, "attempt": 1, "type": "progress", "percent": 101, "message": ""}),
    );
    assert_invalid(
        &event,
        &json!({"ts": 1, "attempt": 1, "type": "log", "stream": "stdout", "line": "x", "state": "queued"}),
    );
    let states: Vec<&str> = event["oneOf"][0]["properties"]["state"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        JobState::ALL.map(JobState::as_str),
        "the schema lists every job state"
    );
}

#[test]
fn everything_a_real_run_stores_matches_the_schemas() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let _runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    let ok = panel.enqueue("happy", json!({}), json!(null));
    let retried = panel.enqueue("flaky", json!({}), json!(null));
    panel.wait_state(&ok.job_id, &[JobState::Succeeded], LONG);
    let record = panel.wait_state(&retried.job_id, &[JobState::Succeeded], LONG);
    let event = schema("event.schema.json");
    for job in [&ok.job_id, &retried.job_id] {
        let events = panel.events(job);
        assert!(events.len() > 3);
        for e in events {
            assert_valid(&event, &serde_json::to_value(&e).unwrap());
        }
    }
    // The retry was re-signed by the runner: its wire matches too.
    check_signed(&panel.record_fields(&retried.job_id)["signed"]);
    assert_eq!(record.attempts, 3);
}
