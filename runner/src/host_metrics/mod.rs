//! What the runner measures about its server for each heartbeat
//! ([`outfitter_contract::host_metrics::HostMetrics`]): a [`Collector`] keeps the counters of
//! the previous collection, so CPU, disk, network and per-process figures are rates over the
//! time between two heartbeats (zero in the first one).
//!
//! Everything is read from `/proc` (through `procfs`) and `statvfs`, blocking and cheap (see
//! docs/benchmarks.md, "Host metrics collection"); services are asked less often
//! ([`services`]).

mod cpu;
mod disks;
mod memory;
mod network;
mod processes;
pub mod services;

use std::collections::HashMap;
use std::time::Instant;

use outfitter_contract::host_metrics::{HostMetrics, Load, Services};
use procfs::{Current, LoadAverage};

pub use services::{PROBE_EVERY, ServiceSettings, Target};

/// The counters of one collection: the baseline of the next.
#[derive(Debug)]
struct Counters {
    at: Instant,
    cpu: Option<cpu::CpuTicks>,
    sectors: disks::SectorCounts,
    interfaces: HashMap<String, network::Counts>,
    process_ticks: HashMap<u32, (u64, u64)>,
}

/// Collects [`HostMetrics`], one call per heartbeat.
#[derive(Debug)]
pub struct Collector {
    prev: Option<Counters>,
    prober: services::Prober,
}

impl Collector {
    /// A collector that asks the services `settings` allow.
    pub fn new(settings: ServiceSettings) -> Self {
        Self {
            prev: None,
            prober: services::Prober::new(settings),
        }
    }

    /// Measures the server now. Blocking (file reads, and every [`PROBE_EVERY`]th call the
    /// services); `collect_cpu_us` is this thread's CPU time for the call.
    pub fn collect(&mut self) -> HostMetrics {
        let cpu_before = thread_cpu_us();
        let (mut metrics, table) = self.host();
        metrics.services = self.prober.services(&table);
        metrics.collect_cpu_us = thread_cpu_us().saturating_sub(cpu_before);
        metrics
    }

    /// Asks every service now, off schedule (what one probe round costs, for the bench).
    pub fn probe_services(&mut self) -> Services {
        let (_, table) = self.host();
        self.prober.probe(&table)
    }

    /// Everything but the services, and the process table they are detected from.
    fn host(&mut self) -> (HostMetrics, processes::Table) {
        let now = Instant::now();
        let prev = self.prev.take();
        let elapsed_s = prev
            .as_ref()
            .map_or(0.0, |p| now.duration_since(p.at).as_secs_f64());
        let cpu = cpu::CpuTicks::read();
        let sectors = disks::sector_counts();
        let interfaces = network::counts();
        let mut table = processes::scan(prev.as_ref().map(|p| &p.process_ticks));
        let metrics = HostMetrics {
            cpu_pct: match cpu {
                Some(now) => cpu::busy_pct(prev.as_ref().and_then(|p| p.cpu), now),
                None => 0.0,
            },
            load: load(),
            memory: memory::read(),
            disks: disks::disks(
                &disks::block_mounts(),
                prev.as_ref().map(|p| &p.sectors),
                &sectors,
                elapsed_s,
            ),
            networks: network::interfaces(
                prev.as_ref().map(|p| &p.interfaces),
                &interfaces,
                elapsed_s,
            ),
            processes: table.count,
            top_cpu: table.top_cpu(elapsed_s),
            top_memory: table.top_memory(elapsed_s),
            ..HostMetrics::default()
        };
        self.prev = Some(Counters {
            at: now,
            cpu,
            sectors,
            interfaces,
            process_ticks: std::mem::take(&mut table.ticks),
        });
        (metrics, table)
    }
}

fn load() -> Load {
    match LoadAverage::current() {
        Ok(l) => Load {
            one: f64::from(l.one),
            five: f64::from(l.five),
            fifteen: f64::from(l.fifteen),
        },
        Err(e) => {
            tracing::debug!(error = %e, "host metrics: /proc/loadavg unreadable");
            Load::default()
        }
    }
}

/// The rate of a counter that went from `before` to `now` over `elapsed_s`; 0 without time
/// passed or when the counter went back (a restart, a wrap).
pub(crate) fn per_second(before: u64, now: u64, elapsed_s: f64) -> f64 {
    if elapsed_s <= 0.0 || now < before {
        return 0.0;
    }
    (now - before) as f64 / elapsed_s
}

/// This thread's CPU time (user + system), microseconds; 0 where the clock is missing.
pub fn thread_cpu_us() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
