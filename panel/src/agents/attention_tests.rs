use outfitter_contract::host_metrics::{Disk, HostMetrics, Load, Memory};

use super::*;

const NOW: i64 = 1_800_000_000_000;

/// The defaults: disk 90%, memory 95%, offline 2 min, load 2 × cores for 10 min.
fn thresholds() -> Thresholds {
    crate::settings::SettingsLayer::default()
        .settings()
        .attention
}

fn metrics(disk_used_pct: u64, memory_used_pct: u64, load1: f64) -> HostMetrics {
    HostMetrics {
        load: Load {
            one: load1,
            ..Load::default()
        },
        memory: Memory {
            total_mb: 1000,
            used_mb: memory_used_pct * 10,
            ..Memory::default()
        },
        disks: vec![
            Disk {
                mount: "/".into(),
                total_mb: 1000,
                used_mb: 100,
                ..Disk::default()
            },
            Disk {
                mount: "/var".into(),
                total_mb: 1000,
                used_mb: disk_used_pct * 10,
                ..Disk::default()
            },
        ],
        ..HostMetrics::default()
    }
}

fn status(online: bool, ts: i64, m: Option<HostMetrics>) -> AgentStatus {
    AgentStatus {
        id: "web-1".into(),
        online,
        registered_at: 0,
        registered_by: "test".into(),
        key_generation: 0,
        labels: Default::default(),
        last_seen: Some(ts),
        facts: Some(HostFacts {
            agent_id: "web-1".into(),
            cpus: 2,
            ts,
            metrics: m,
            ..HostFacts::default()
        }),
        queue_depth: 0,
        processing: 0,
        scheduled: 0,
        attention: Vec::new(),
    }
}

fn events(r: &Record) -> Vec<(&str, &str)> {
    r.pending
        .iter()
        .map(|p| (p.event.as_str(), p.key.as_str()))
        .collect()
}

#[test]
fn a_full_disk_raises_once_and_recovers_once() {
    let t = thresholds();
    let full = evaluate(
        &Record::default(),
        &status(true, NOW, Some(metrics(95, 10, 0.1))),
        &t,
        NOW,
    );
    assert_eq!(
        events(&full),
        [("server.disk_low", "server.disk_low:web-1:1800000000000")]
    );
    assert_eq!(full.raised[&Condition::DiskLow].detail, "/var 95.0% used");

    let sent = Record {
        pending: vec![],
        ..full
    };
    let still = evaluate(
        &sent,
        &status(true, NOW + 5000, Some(metrics(96, 10, 0.1))),
        &t,
        NOW + 5000,
    );
    assert_eq!(still, sent, "a condition that holds is not raised again");

    let freed = evaluate(
        &sent,
        &status(true, NOW + 10_000, Some(metrics(50, 10, 0.1))),
        &t,
        NOW + 10_000,
    );
    assert!(freed.raised.is_empty());
    assert_eq!(
        events(&freed),
        [(
            "server.recovered",
            "server.recovered:web-1:disk_low:1800000000000"
        )]
    );
    assert_eq!(freed.pending[0].data["recovered_at"], NOW + 10_000);
}

#[test]
fn thresholds_are_strictly_above() {
    let t = thresholds();
    let at = evaluate(
        &Record::default(),
        &status(true, NOW, Some(metrics(90, 95, 4.0))),
        &t,
        NOW,
    );
    assert!(at.raised.is_empty(), "{at:?}");
    let above = evaluate(
        &Record::default(),
        &status(true, NOW, Some(metrics(91, 96, 0.0))),
        &t,
        NOW,
    );
    assert_eq!(
        above.raised.keys().copied().collect::<Vec<_>>(),
        [Condition::DiskLow, Condition::MemoryLow]
    );
}

#[test]
fn load_counts_only_after_it_lasts() {
    let t = thresholds();
    let mut r = Record::default();
    // Two cores × 2 = 4: a load of 5 starts the clock without raising.
    r = evaluate(&r, &status(true, NOW, Some(metrics(0, 0, 5.0))), &t, NOW);
    assert_eq!(r.load_above_since, Some(NOW));
    assert!(r.raised.is_empty());
    let later = NOW + t.load_ms - 1;
    r = evaluate(
        &r,
        &status(true, later, Some(metrics(0, 0, 5.0))),
        &t,
        later,
    );
    assert!(r.raised.is_empty());
    let lasted = NOW + t.load_ms;
    r = evaluate(
        &r,
        &status(true, lasted, Some(metrics(0, 0, 5.0))),
        &t,
        lasted,
    );
    assert_eq!(r.raised[&Condition::LoadHigh].since, NOW);
    assert_eq!(
        events(&r),
        [("server.load_high", "server.load_high:web-1:1800000000000")]
    );

    // A dip below resets the clock.
    let mut dip = Record::default();
    dip = evaluate(&dip, &status(true, NOW, Some(metrics(0, 0, 5.0))), &t, NOW);
    dip = evaluate(
        &dip,
        &status(true, NOW + 1, Some(metrics(0, 0, 1.0))),
        &t,
        NOW + 1,
    );
    assert_eq!(dip.load_above_since, None);
}

#[test]
fn offline_waits_for_the_threshold_and_freezes_the_other_conditions() {
    let t = thresholds();
    let full = evaluate(
        &Record::default(),
        &status(true, NOW, Some(metrics(99, 0, 0.0))),
        &t,
        NOW,
    );
    let full = Record {
        pending: vec![],
        ..full
    };
    // The heartbeat expired a moment ago: not yet offline.
    let gone = status(false, NOW, Some(metrics(10, 0, 0.0)));
    let soon = evaluate(&full, &gone, &t, NOW + t.offline_ms - 1);
    assert_eq!(soon, full);
    let late = evaluate(&full, &gone, &t, NOW + t.offline_ms);
    assert!(
        late.raised.contains_key(&Condition::DiskLow),
        "old facts clear nothing"
    );
    assert_eq!(late.raised[&Condition::Offline].since, NOW);
    assert_eq!(
        events(&late),
        [("server.offline", "server.offline:web-1:1800000000000")]
    );

    let back = evaluate(
        &Record {
            pending: vec![],
            ..late
        },
        &status(true, NOW + 200_000, Some(metrics(99, 0, 0.0))),
        &t,
        NOW + 200_000,
    );
    assert_eq!(
        events(&back),
        [(
            "server.recovered",
            "server.recovered:web-1:offline:1800000000000"
        )]
    );
    assert_eq!(
        back.raised.keys().copied().collect::<Vec<_>>(),
        [Condition::DiskLow]
    );
}

#[test]
fn never_seen_and_metric_less_servers_raise_nothing() {
    let t = thresholds();
    let mut never = status(false, NOW, None);
    never.last_seen = None;
    never.facts = None;
    assert_eq!(
        evaluate(&Record::default(), &never, &t, NOW + 10 * t.offline_ms),
        Record::default()
    );
    let old_runner = status(true, NOW, None);
    assert_eq!(
        evaluate(&Record::default(), &old_runner, &t, NOW),
        Record::default()
    );
}

#[test]
fn pending_events_survive_until_cleared_and_keep_their_keys() {
    let t = thresholds();
    let full = evaluate(
        &Record::default(),
        &status(true, NOW, Some(metrics(99, 0, 0.0))),
        &t,
        NOW,
    );
    // A panel died before emitting: the next look (a later heartbeat) keeps the same event.
    let again = evaluate(
        &full,
        &status(true, NOW + 5000, Some(metrics(99, 0, 0.0))),
        &t,
        NOW + 5000,
    );
    assert_eq!(events(&again), events(&full));
    let json = serde_json::to_string(&again).unwrap();
    assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), again);
}
