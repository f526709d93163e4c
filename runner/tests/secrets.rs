//! Sensitive values never rest in plaintext: not in events, the job log, the record, the
//! runner's own log; hidden inputs never reach the script.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use outfitter_contract::job::{JobState, REDACTED};
use serde_json::json;
use support::panel::{LONG, log_lines};
use support::{Panel, RedisServer, RunnerOptions, RunnerProcess};

const SECRET: &str = "Sup3r s3cret/pa$$+word";

fn setup() -> (RedisServer, Panel, RunnerProcess) {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    (redis, panel, runner)
}

/// Spellings of the secret the bundle prints, and pieces that would betray it.
fn betrayals() -> Vec<String> {
    let uri = percent_encoding::utf8_percent_encode(SECRET, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    vec![
        SECRET.to_owned(),
        "s3cret".to_owned(),
        uri.clone(),
        uri.replace("%20", "+"),
        STANDARD.encode(SECRET)[..20].to_owned(),
        STANDARD.encode(format!("a{SECRET}"))[4..24].to_owned(),
        STANDARD.encode(format!("ab{SECRET}"))[4..24].to_owned(),
    ]
    .into_iter()
    // Any 8 characters in a row of the value, its hex or its base64.
    .chain(windows(SECRET))
    .chain(windows(&hex::encode(SECRET)))
    .chain(windows(&hex::encode_upper(SECRET)))
    .chain(windows(&STANDARD.encode(SECRET)))
    .collect()
}

fn windows(s: &str) -> Vec<String> {
    s.as_bytes()
        .windows(8)
        .map(|w| String::from_utf8(w.to_vec()).unwrap())
        .collect()
}

/// The `n` stdout lines after the line `marker` (the one stderr line may arrive among them).
fn after(lines: &[String], marker: &str, n: usize) -> Vec<String> {
    let stdout: Vec<&String> = lines
        .iter()
        .filter(|l| !l.starts_with("token on stderr"))
        .collect();
    let at = stdout.iter().position(|l| *l == marker).expect(marker);
    stdout[at + 1..at + 1 + n]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

fn assert_clean(what: &str, text: &str) {
    for b in betrayals() {
        assert!(!text.contains(&b), "{what} contains {b:?}:\n{text}");
    }
}

#[test]
fn sensitive_value_never_appears_in_events_logs_or_the_record() {
    let (_redis, panel, runner) = setup();
    let job = panel.enqueue(
        "secret-echo",
        json!({"label": "visible"}),
        json!({"api_token": SECRET}),
    );
    panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    let events = panel.events(&job.job_id);
    let lines = log_lines(&events);
    // The script did print it, in every spelling, and each was masked.
    assert!(lines.contains(&format!("token={REDACTED}")), "{lines:?}");
    assert!(
        lines.contains(&format!("token on stderr: {REDACTED}")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("url=https://user:{REDACTED}@example.com/")),
        "{lines:?}"
    );
    assert!(lines.contains(&format!("form=t={REDACTED}")), "{lines:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("b64=") && l.contains(REDACTED))
            .count(),
        3,
        "{lines:?}"
    );
    assert!(lines.contains(&"label=visible".to_owned()));
    // Fragments, hex, and encodings wrapped over several lines: masked on every line.
    assert!(lines.contains(&format!("half={REDACTED}")), "{lines:?}");
    assert!(lines.contains(&format!("hex={REDACTED}")), "{lines:?}");
    let wrapped_hex = after(&lines, "--- xxd -p -c 7", 4);
    assert_eq!(wrapped_hex[0], format!("78{REDACTED}"), "{lines:?}");
    assert!(
        wrapped_hex[1..].iter().all(|l| l == REDACTED),
        "{wrapped_hex:?}"
    );
    let wrapped_b64 = after(&lines, "--- base64 -w 8", 4);
    assert!(wrapped_b64.iter().all(|l| l == REDACTED), "{wrapped_b64:?}");

    assert_clean("events", &serde_json::to_string(&events).unwrap());
    assert_clean("record", &format!("{:?}", panel.record_fields(&job.job_id)));
    assert_clean("queue entry", &job.wire);
    assert_clean("job log", &runner.job_log(&job.job_id));
    assert_clean("runner log", &runner.stderr());
    let dump = dump_redis(&panel);
    assert!(
        dump.contains("label=visible"),
        "the dump shows values as text"
    );
    assert_clean("redis", &dump);
    let record = panel.record(&job.job_id);
    assert!(
        record.last_lines.iter().any(|l| l.contains(REDACTED)),
        "{:?}",
        record.last_lines
    );
}

#[test]
fn hidden_input_never_reaches_the_script() {
    let (_redis, panel, _runner) = setup();
    // A panel that forgot to drop the hidden input: the runner drops it itself.
    let job = panel.enqueue(
        "hidden-input",
        json!({"mode": "basic", "extra": "should-not-arrive"}),
        json!(null),
    );
    // docs/runner.md: the runner drops hidden inputs (as the panel does); the job runs.
    panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    let lines = log_lines(&panel.events(&job.job_id));
    assert_eq!(panel.record(&job.job_id).state, JobState::Succeeded);
    assert!(lines.contains(&"extra is absent".to_owned()), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("should-not-arrive")));

    // The same input, visible: it arrives.
    let shown = panel.enqueue(
        "hidden-input",
        json!({"mode": "advanced", "extra": "arrives"}),
        json!(null),
    );
    panel.wait_state(&shown.job_id, &[JobState::Succeeded], LONG);
    assert!(log_lines(&panel.events(&shown.job_id)).contains(&"extra is set: arrives".to_owned()));
}

/// Every key and value in Redis, as text.
fn dump_redis(panel: &Panel) -> String {
    let mut c = panel.conn();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert!(!keys.is_empty());
    let mut out = String::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query(&mut c).unwrap();
        let value: redis::Value = match kind.as_str() {
            "string" => redis::cmd("GET").arg(&key).query(&mut c).unwrap(),
            "hash" => redis::cmd("HGETALL").arg(&key).query(&mut c).unwrap(),
            "list" => redis::cmd("LRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query(&mut c)
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query(&mut c)
                .unwrap(),
            "stream" => redis::cmd("XRANGE")
                .arg(&key)
                .arg("-")
                .arg("+")
                .query(&mut c)
                .unwrap(),
            other => panic!("unexpected key type {other} for {key}"),
        };
        out.push_str(&format!("{key} = {value:?}\n"));
    }
    out
}
