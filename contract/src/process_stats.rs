//! The usual `process_*` metrics of a Prometheus client, read from `/proc/self` at scrape
//! time (Linux only; a file that cannot be read leaves its metric out). Both daemons register
//! [`ProcessCollector`] in an unprefixed registry so the names are the standard ones.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident set size (`VmRSS`), bytes.
    pub resident_memory_bytes: Option<i64>,
    /// OS threads (`Threads`).
    pub threads: Option<i64>,
    /// Open file descriptors (entries of `/proc/self/fd`).
    pub open_fds: Option<i64>,
    /// CPU time spent so far, seconds (`schedstat`).
    pub cpu_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads them now; what cannot be read is `None`.
    pub fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<i64>().ok())
        };
        ProcessStats {
            resident_memory_bytes: field("VmRSS:").map(|kib| kib * 1024),
            threads: field("Threads:"),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as i64),
            // The first field of schedstat is the time spent on a CPU, in nanoseconds (no
            // clock-tick size needed, unlike `stat`).
            cpu_seconds: std::fs::read_to_string("/proc/self/schedstat")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .map(|ns| ns as f64 / 1e9),
        }
    }
}

/// Registers nothing up front; reads [`ProcessStats`] on each scrape.
#[derive(Debug, Clone, Copy)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = ProcessStats::read();
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_memory_bytes,
            ),
            ("process_threads", "Threads of this process", s.threads),
            ("process_open_fds", "Open file descriptors", s.open_fds),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                ConstGauge::new(v).encode(m)?;
            }
        }
        if let Some(v) = s.cpu_seconds {
            let m = encoder.encode_descriptor(
                "process_cpu_seconds",
                "CPU time spent, in seconds",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(v).encode(m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_threads_and_files() {
        let s = ProcessStats::read();
        assert!(s.resident_memory_bytes.unwrap() > 1024 * 1024, "{s:?}");
        assert!(s.threads.unwrap() >= 1 && s.open_fds.unwrap() >= 3, "{s:?}");
    }
}
