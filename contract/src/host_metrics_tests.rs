//! Clamping of hostile heartbeats and the stream encoding of a sample.

use super::*;

fn hostile() -> HostMetrics {
    HostMetrics {
        cpu_pct: f64::NAN,
        load: Load {
            one: -3.0,
            five: f64::INFINITY,
            fifteen: 2.5,
        },
        memory: Memory {
            total_mb: u64::MAX,
            ..Memory::default()
        },
        disks: (0..100)
            .map(|i| Disk {
                mount: format!("/m{i}<script>\u{7}"),
                total_mb: 100,
                used_mb: 95,
                ..Disk::default()
            })
            .collect(),
        networks: vec![Interface {
            name: "x".repeat(500),
            rx_bytes_per_s: -1.0,
            ..Interface::default()
        }],
        top_cpu: vec![Process::default(); 9],
        ..HostMetrics::default()
    }
}

#[test]
fn clamping_names_every_field_it_changed_and_leaves_values_in_range() {
    let mut m = hostile();
    let said = m.clamp().join("\n");
    for field in [
        "cpu_pct",
        "load.one",
        "load.five",
        "memory.total_mb",
        "disks has 100 entries, more than 32",
        "disks.mount",
        "networks.name",
        "networks.rx_bytes_per_s",
        "top_cpu has 9 entries, more than 5",
    ] {
        assert!(said.contains(field), "{field} missing from {said}");
    }
    assert_eq!(m.cpu_pct, 0.0);
    assert_eq!(m.load.one, 0.0);
    assert_eq!(m.load.five, MAX_LOAD);
    assert_eq!(m.load.fifteen, 2.5);
    assert_eq!(m.memory.total_mb, MAX_QUANTITY as u64);
    assert_eq!(m.disks.len(), MAX_DISKS);
    assert_eq!(m.disks[0].mount, "/m0<script>");
    assert_eq!(m.networks[0].name.chars().count(), MAX_NAME_CHARS);
    assert_eq!(m.top_cpu.len(), TOP_PROCESSES);
    assert!(m.clamp().is_empty(), "clamping twice changes nothing more");
}

#[test]
fn a_sample_survives_the_stream_encoding_to_its_precision() {
    let s = Sample {
        cpu_pct: 12.34,
        load1: 0.57,
        memory_pct: 63.21,
        swap_pct: 0.0,
        disk_pct: 91.06,
        disk_read_bps: 1024.4,
        disk_write_bps: 5e6,
        net_rx_bps: 300.0,
        net_tx_bps: 7.6,
    };
    let stored = s.to_stream();
    assert_eq!(stored, [123, 57, 632, 0, 911, 1024, 5_000_000, 300, 8]);
    let text: Vec<(String, String)> = SAMPLE_FIELDS
        .iter()
        .zip(stored)
        .map(|((n, _), v)| ((*n).to_owned(), v.to_string()))
        .collect();
    let back = Sample::from_stream(text.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    assert_eq!(back.cpu_pct, 12.3);
    assert_eq!(back.disk_pct, 91.1);
    assert_eq!(back.disk_write_bps, 5e6);
}

#[test]
fn stored_values_out_of_range_read_back_clamped() {
    let back = Sample::from_stream([("c", "99999"), ("l", "nan"), ("i", "-5"), ("zz", "1")]);
    assert_eq!(back.cpu_pct, 100.0);
    assert_eq!(back.load1, 0.0);
    assert_eq!(back.net_rx_bps, 0.0);
}

#[test]
fn a_sample_takes_the_fullest_disk_and_sums_the_rates() {
    let m = HostMetrics {
        memory: Memory {
            total_mb: 1000,
            used_mb: 250,
            ..Memory::default()
        },
        disks: vec![
            Disk {
                mount: "/".into(),
                total_mb: 100,
                used_mb: 40,
                read_bytes_per_s: 10.0,
                ..Disk::default()
            },
            Disk {
                mount: "/var".into(),
                total_mb: 10,
                used_mb: 9,
                read_bytes_per_s: 5.0,
                ..Disk::default()
            },
        ],
        ..HostMetrics::default()
    };
    let s = m.sample();
    assert_eq!(s.memory_pct, 25.0);
    assert_eq!(s.disk_pct, 90.0);
    assert_eq!(s.disk_read_bps, 15.0);
    assert_eq!(
        m.fullest_disk().map(|(d, _)| d.mount.as_str()),
        Some("/var")
    );
}

#[test]
fn parts_larger_than_their_whole_are_cut_to_it() {
    let mut m = HostMetrics {
        memory: Memory {
            total_mb: 1000,
            used_mb: 5000,
            swap_total_mb: 0,
            swap_used_mb: 7,
            ..Memory::default()
        },
        disks: vec![Disk {
            mount: "/".into(),
            total_mb: 100,
            used_mb: 101,
            free_mb: 900,
            ..Disk::default()
        }],
        ..HostMetrics::default()
    };
    let changes = m.clamp();
    assert_eq!(m.memory.used_mb, 1000);
    assert_eq!(m.memory.swap_used_mb, 0);
    assert_eq!((m.disks[0].used_mb, m.disks[0].free_mb), (100, 100));
    assert!(
        changes
            .iter()
            .any(|c| c == "memory.used_mb 5000 is above memory.total_mb 1000"),
        "{changes:?}"
    );
    assert!(m.memory_used_pct() <= 100.0);
}

#[test]
fn the_mean_of_samples_is_taken_field_by_field() {
    let a = Sample {
        cpu_pct: 10.0,
        net_rx_bps: 100.0,
        ..Sample::default()
    };
    let b = Sample {
        cpu_pct: 30.0,
        net_rx_bps: 300.0,
        ..Sample::default()
    };
    let m = Sample::mean(&[a, b]);
    assert_eq!(m.cpu_pct, 20.0);
    assert_eq!(m.net_rx_bps, 200.0);
    assert_eq!(Sample::mean(&[]), Sample::default());
}
