//! The heartbeat's history in a real Redis: a month of beats, time-compressed, stays within
//! its caps and its memory budget; averages are the averages; bad samples are refused.

use outfitter_contract::host_metrics::Sample;
use outfitter_contract::metrics_history::{self, HEARTBEAT, HOURS, MINUTES, RAW, Range};
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_test_support::RedisServer;
use redis::Commands;

const BUDGET_BYTES: u64 = 200 * 1024;

fn beat(conn: &mut redis::Connection, names: &AgentRedisKeys, ts: i64, s: &Sample) -> i64 {
    let call = metrics_history::heartbeat(names, "{}", 20, Some((ts, s)));
    let script = redis::Script::new(HEARTBEAT);
    let mut inv = script.prepare_invoke();
    for k in &call.keys {
        inv.key(k);
    }
    for a in &call.args {
        inv.arg(a);
    }
    inv.invoke(conn).expect("heartbeat script runs")
}

fn entries(conn: &mut redis::Connection, key: &str) -> Vec<(String, Vec<(String, String)>)> {
    redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query(conn)
        .unwrap()
}

#[test]
fn a_month_of_beats_stays_within_the_caps_and_200_kb() {
    let redis = RedisServer::start();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let names = AgentRedisKeys::new("web-1");
    let day = 86_400_000_i64;
    let start = 1_700_000_000_000_i64 - 1_700_000_000_000 % HOURS.width_ms;
    let sample = |i: i64| Sample {
        cpu_pct: (i % 100) as f64,
        load1: 1.25,
        memory_pct: 63.2,
        swap_pct: 0.0,
        disk_pct: 45.5,
        disk_read_bps: 123_456.0,
        disk_write_bps: 2_345_678.0,
        net_rx_bps: 98_765.0,
        net_tx_bps: 54_321.0,
    };
    // 29 days at one beat per five minutes fill the hours; the last day beats every 5 s.
    let mut ts = start;
    let mut i = 0;
    while ts < start + 29 * day {
        assert_eq!(beat(&mut conn, &names, ts, &sample(i)), 1);
        ts += 300_000;
        i += 1;
    }
    while ts < start + 30 * day {
        beat(&mut conn, &names, ts, &sample(i));
        ts += RAW.width_ms;
        i += 1;
    }
    let len =
        |conn: &mut redis::Connection, r: Range| -> u64 { conn.xlen(r.stream(&names)).unwrap() };
    let raw = len(&mut conn, Range::Hour);
    assert!(
        (720..=721).contains(&raw),
        "{raw}: an hour of 5 s beats, both ends kept"
    );
    let minutes = len(&mut conn, Range::Day);
    assert!(
        (1439..=1441).contains(&minutes),
        "{minutes}: a day of minutes"
    );
    let hours = len(&mut conn, Range::Month);
    assert!((719..=720).contains(&hours), "{hours} hours");
    let mut bytes = 0;
    for key in metrics_history::keys(&names) {
        let used: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .query(&mut conn)
            .unwrap();
        bytes += used;
    }
    eprintln!("history of one server after 30 days: {bytes} bytes");
    assert!(bytes <= BUDGET_BYTES, "{bytes} bytes is over the budget");

    // Nothing older than a tier keeps is left.
    let oldest = entries(&mut conn, &Range::Hour.stream(&names))[0].0.clone();
    let oldest_ms: i64 = oldest.split('-').next().unwrap().parse().unwrap();
    assert!(ts - oldest_ms <= RAW.keep_ms + RAW.width_ms);
    assert_eq!(MINUTES.keep_ms, day);
}

#[test]
fn an_average_is_the_mean_of_its_bucket_and_is_written_when_the_next_begins() {
    let redis = RedisServer::start();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let names = AgentRedisKeys::new("web-2");
    let t0 = 1_800_000_000_000_i64 - 1_800_000_000_000 % HOURS.width_ms;
    for (k, cpu) in [10.0, 20.0, 60.0].into_iter().enumerate() {
        let s = Sample {
            cpu_pct: cpu,
            ..Sample::default()
        };
        beat(&mut conn, &names, t0 + k as i64 * 5_000, &s);
    }
    assert!(entries(&mut conn, &names.metrics_minutes()).is_empty());
    beat(&mut conn, &names, t0 + 60_000, &Sample::default());
    let minutes = entries(&mut conn, &names.metrics_minutes());
    assert_eq!(minutes.len(), 1);
    assert_eq!(minutes[0].0, format!("{t0}-0"));
    let back = Sample::from_stream(minutes[0].1.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    assert_eq!(back.cpu_pct, 30.0);
    // A beat from a clock set back is not stored, and the heartbeat itself still is.
    assert_eq!(beat(&mut conn, &names, t0, &Sample::default()), 0);
    assert_eq!(entries(&mut conn, &names.metrics_raw()).len(), 4);
}

#[test]
fn a_hostile_sample_is_refused_with_the_field_named() {
    let redis = RedisServer::start();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let names = AgentRedisKeys::new("web-3");
    let call = metrics_history::heartbeat(&names, "{}", 20, Some((1_000, &Sample::default())));
    let mut args = call.args.clone();
    let at = args.iter().position(|a| a == "m").unwrap();
    args[at + 1] = "-5".into();
    let script = redis::Script::new(HEARTBEAT);
    let mut inv = script.prepare_invoke();
    for k in &call.keys {
        inv.key(k);
    }
    for a in &args {
        inv.arg(a);
    }
    let err = inv.invoke::<i64>(&mut conn).unwrap_err().to_string();
    assert!(
        err.contains("sample value m must be a non-negative integer"),
        "{err}"
    );
    let raw: u64 = conn.xlen(names.metrics_raw()).unwrap();
    assert_eq!(raw, 0);
}
