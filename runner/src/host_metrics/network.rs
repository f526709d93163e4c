//! Network interfaces but loopback: byte and packet rates from `/proc/net/dev`.

use std::collections::HashMap;

use outfitter_contract::host_metrics::{Interface, MAX_INTERFACES};
use procfs::Current;
use procfs::net::InterfaceDeviceStatus;

use super::per_second;

/// Bytes and packets received and sent per interface since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
}

/// The counters of every interface but `lo` now (empty when unreadable).
pub(crate) fn counts() -> HashMap<String, Counts> {
    match InterfaceDeviceStatus::current() {
        Ok(dev) => dev
            .0
            .into_values()
            .filter(|d| d.name != "lo")
            .map(|d| {
                let c = Counts {
                    rx_bytes: d.recv_bytes,
                    tx_bytes: d.sent_bytes,
                    rx_packets: d.recv_packets,
                    tx_packets: d.sent_packets,
                };
                (d.name, c)
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "host metrics: /proc/net/dev unreadable");
            HashMap::new()
        }
    }
}

/// The interfaces, busiest (bytes in and out) first, at most [`MAX_INTERFACES`]; rates over
/// `elapsed_s` since `prev` (0 for an interface it lacks).
pub(crate) fn interfaces(
    prev: Option<&HashMap<String, Counts>>,
    now: &HashMap<String, Counts>,
    elapsed_s: f64,
) -> Vec<Interface> {
    let mut out: Vec<Interface> = now
        .iter()
        .map(|(name, c)| {
            let p = prev.and_then(|p| p.get(name)).copied().unwrap_or(*c);
            Interface {
                name: name.clone(),
                rx_bytes_per_s: per_second(p.rx_bytes, c.rx_bytes, elapsed_s),
                tx_bytes_per_s: per_second(p.tx_bytes, c.tx_bytes, elapsed_s),
                rx_packets_per_s: per_second(p.rx_packets, c.rx_packets, elapsed_s),
                tx_packets_per_s: per_second(p.tx_packets, c.tx_packets, elapsed_s),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        let traffic = |i: &Interface| i.rx_bytes_per_s + i.tx_bytes_per_s;
        traffic(b)
            .total_cmp(&traffic(a))
            .then_with(|| a.name.cmp(&b.name))
    });
    out.truncate(MAX_INTERFACES);
    out
}
