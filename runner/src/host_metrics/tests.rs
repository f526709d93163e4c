//! The collector against this machine's real `/proc`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outfitter_contract::host_metrics::TOP_PROCESSES;

use super::*;

fn collector() -> Collector {
    Collector::new(ServiceSettings::none())
}

/// A child killed when the test ends, however it ends.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_first_collection_has_no_rates() {
    let m = collector().collect();
    assert_eq!(m.cpu_pct, 0.0);
    assert!(m.top_cpu.is_empty(), "{:?}", m.top_cpu);
    for d in &m.disks {
        assert_eq!(
            (d.read_bytes_per_s, d.write_bytes_per_s),
            (0.0, 0.0),
            "{d:?}"
        );
    }
    for n in &m.networks {
        assert_eq!(
            (
                n.rx_bytes_per_s,
                n.tx_bytes_per_s,
                n.rx_packets_per_s,
                n.tx_packets_per_s
            ),
            (0.0, 0.0, 0.0, 0.0),
            "{n:?}"
        );
    }
    assert!(m.processes > 1);
    assert!(m.top_memory.iter().all(|p| p.cpu_pct == 0.0));
}

#[test]
fn a_cpu_burner_shows_in_cpu_share_and_top_cpu() {
    let mut c = collector();
    c.collect();
    let burner = Kill(
        Command::new("yes")
            .stdout(Stdio::null())
            .spawn()
            .expect("yes runs"),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let m = c.collect();
    assert!(m.cpu_pct > 0.0 && m.cpu_pct <= 100.0, "{}", m.cpu_pct);
    let pid = burner.0.id();
    let found = m.top_cpu.iter().find(|p| p.pid == pid);
    assert!(found.is_some(), "yes ({pid}) not in {:?}", m.top_cpu);
    let found = found.unwrap();
    assert_eq!(found.name, "yes");
    assert!(found.cpu_pct > 10.0, "{found:?}");
    assert!(m.top_cpu.len() <= TOP_PROCESSES);
    assert!(
        m.top_cpu.windows(2).all(|w| w[0].cpu_pct >= w[1].cpu_pct),
        "most first: {:?}",
        m.top_cpu
    );
}

#[test]
fn rates_of_a_second_collection_are_never_negative() {
    let mut c = collector();
    c.collect();
    std::thread::sleep(Duration::from_millis(200));
    let m = c.collect();
    let mut rates = vec![m.cpu_pct];
    rates.extend(
        m.disks
            .iter()
            .flat_map(|d| [d.read_bytes_per_s, d.write_bytes_per_s]),
    );
    rates.extend(m.networks.iter().flat_map(|n| {
        [
            n.rx_bytes_per_s,
            n.tx_bytes_per_s,
            n.rx_packets_per_s,
            n.tx_packets_per_s,
        ]
    }));
    rates.extend(m.top_cpu.iter().map(|p| p.cpu_pct));
    assert!(
        rates.iter().all(|r| r.is_finite() && *r >= 0.0),
        "{rates:?}"
    );
    assert!(
        m.clone().clamp().is_empty(),
        "nothing out of the contract's range"
    );
}

#[test]
fn memory_numbers_are_consistent() {
    let m = collector().collect().memory;
    assert!(m.total_mb > 0, "{m:?}");
    assert!(m.used_mb <= m.total_mb, "{m:?}");
    assert!(
        m.available_mb <= m.total_mb && m.free_mb <= m.total_mb,
        "{m:?}"
    );
    let sum = m.used_mb + m.available_mb;
    assert!(
        sum + 1 >= m.total_mb && sum <= m.total_mb,
        "used = total - available, rounded: {m:?}"
    );
    assert!(m.swap_used_mb <= m.swap_total_mb, "{m:?}");
}

#[test]
fn the_root_file_system_is_among_the_disks_largest_first() {
    let disks = collector().collect().disks;
    let root = disks.iter().find(|d| d.mount == "/");
    let root = root.unwrap_or_else(|| panic!("no / in {disks:?}"));
    assert!(
        root.total_mb > 0 && root.used_mb <= root.total_mb,
        "{root:?}"
    );
    assert!(root.free_mb <= root.total_mb, "{root:?}");
    assert!(disks.windows(2).all(|w| w[0].total_mb >= w[1].total_mb));
    assert!(disks.len() <= outfitter_contract::host_metrics::MAX_DISKS);
}

#[test]
fn loopback_is_not_an_interface() {
    let nets = collector().collect().networks;
    assert!(nets.iter().all(|n| n.name != "lo"), "{nets:?}");
    let all = std::fs::read_to_string("/proc/net/dev").unwrap();
    let others = all
        .lines()
        .skip(2)
        .filter(|l| !l.trim_start().starts_with("lo:"))
        .count();
    assert_eq!(
        nets.len(),
        others.min(outfitter_contract::host_metrics::MAX_INTERFACES)
    );
}

#[test]
fn a_process_holding_much_memory_is_in_top_memory() {
    // 3 GiB written (so resident), more than any rustc of a parallel build holds.
    let hog = Kill(
        Command::new("perl")
            .args(["-e", "$x = 'x' x (3 * 1024 ** 3); sleep 60"])
            .spawn()
            .expect("perl runs"),
    );
    let pid = hog.0.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        if rss_kb >= 3 * 1024 * 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "perl never reached 3 GiB: {rss_kb} kB"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let top = collector().collect().top_memory;
    assert_eq!(top.first().map(|p| p.pid), Some(pid), "{top:?}");
    assert!(top[0].rss_mb >= 3 * 1024, "{top:?}");
    assert!(
        top.windows(2).all(|w| w[0].rss_mb >= w[1].rss_mb),
        "{top:?}"
    );
    assert!(top.len() == TOP_PROCESSES);
}

#[test]
fn the_collection_measures_its_own_cpu_time() {
    let mut c = collector();
    c.collect();
    let m = c.collect();
    assert!(m.collect_cpu_us > 0, "a pass over /proc costs something");
    assert!(m.collect_cpu_us < 1_000_000, "{} µs", m.collect_cpu_us);
}
