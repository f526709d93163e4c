//! The heartbeat: host facts under a key with a TTL, every few seconds.

use std::sync::Arc;
use std::time::Duration;

use outfitter_contract::host::{HEARTBEAT_INTERVAL_SECS, HEARTBEAT_TTL_SECS, HostFacts};
use outfitter_contract::host_metrics::HostMetrics;

use super::{Shared, now_ms, store};
use crate::host_metrics::Collector;
use crate::metrics::RedisOp;

/// Reads `KEY=value` lines of /etc/os-release (values may be quoted).
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_owned(),
                v.trim().trim_matches('"').trim_matches('\'').to_owned(),
            )
        })
        .collect()
}

fn meminfo_mb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn disk_free_mb(path: &str) -> u64 {
    nix::sys::statvfs::statvfs(path)
        .map(|s| s.blocks_available() * s.fragment_size() / (1024 * 1024))
        .unwrap_or(0)
}

/// What this server looks like right now (the daemon adds its own counts, `runner`).
pub fn host_facts(agent_id: &str, running_jobs: Vec<String>) -> HostFacts {
    let os = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let os = parse_os_release(&os);
    let get = |k: &str| {
        os.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let load1 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    HostFacts {
        agent_id: agent_id.to_owned(),
        os_family: get("ID"),
        os_like: get("ID_LIKE")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        os_version: get("VERSION_ID"),
        os_pretty: get("PRETTY_NAME"),
        arch: std::env::consts::ARCH.to_owned(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        ram_mb: meminfo_mb(&meminfo, "MemTotal:"),
        disk_free_mb: disk_free_mb("/"),
        load1,
        runner_version: env!("CARGO_PKG_VERSION").to_owned(),
        ts: now_ms(),
        running_jobs,
        runner: None,
        metrics: None,
    }
}

/// Measures the host on a blocking thread (file reads, and every sixth beat a service probe
/// that may wait on a socket or on `psql`), handing the collector back with its counters.
/// A collector lost to a panic is replaced: the next beat has no rates, like the first.
async fn collect(shared: &Shared, collector: Collector) -> (Collector, Option<HostMetrics>) {
    let settings = shared.cfg.service_metrics.clone();
    match tokio::task::spawn_blocking(move || {
        let mut collector = collector;
        let metrics = collector.collect();
        (collector, metrics)
    })
    .await
    {
        Ok((collector, metrics)) => (collector, Some(metrics)),
        Err(e) => {
            tracing::warn!(error = %e, "host metrics collection failed");
            (Collector::new(settings), None)
        }
    }
}

/// Beats until the process ends.
pub async fn beat_forever(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(HEARTBEAT_INTERVAL_SECS));
    let mut collector = Collector::new(shared.cfg.service_metrics.clone());
    loop {
        tick.tick().await;
        let mut facts = host_facts(&shared.cfg.agent_id, shared.running_jobs());
        facts.runner = Some(shared.metrics.stats());
        let (kept, metrics) = collect(&shared, collector).await;
        collector = kept;
        facts.metrics = metrics;
        let sent = match shared.redis().await {
            Ok(mut conn) => store::heartbeat(&mut conn, &shared.names, &facts, HEARTBEAT_TTL_SECS)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            shared.metrics.redis_error(RedisOp::Heartbeat);
            tracing::debug!(error = %e, "heartbeat not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted() {
        let kv = parse_os_release(
            "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n# c\n",
        );
        assert!(kv.contains(&("VERSION_ID".into(), "12".into())));
        assert!(kv.contains(&(
            "PRETTY_NAME".into(),
            "Debian GNU/Linux 12 (bookworm)".into()
        )));
    }

    #[test]
    fn this_host_reports_facts() {
        let f = host_facts("a", vec![]);
        assert!(f.ram_mb > 0 && f.cpus > 0);
        assert!(!f.arch.is_empty());
    }
}
