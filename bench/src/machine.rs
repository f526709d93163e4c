//! What machine the figures come from: cores, CPU model, memory, kernel, OS, Redis.

use std::process::Command;

use crate::redis_server::server_version;

/// Facts about this machine.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub ram_mib: u64,
    pub kernel: String,
    pub os: String,
    pub redis: String,
    pub rustc: String,
}

impl Machine {
    pub(crate) fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        Self {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model: proc_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            ram_mib: proc_field(&meminfo, "MemTotal")
                .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib / 1024)
                .unwrap_or(0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
            os: os_release
                .lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
                .unwrap_or_else(|| "unknown".into()),
            redis: server_version(),
            rustc: Command::new("rustc")
                .arg("--version")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// The 1, 5 and 15 minute load averages now (`/proc/loadavg`), e.g. `0.52 0.61 0.70`: the
/// machine may be shared, and figures taken under load say so.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The value of `name` in a `/proc` file of `name : value` lines (first occurrence).
fn proc_field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_match_whole_names() {
        let text = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nmodel\t\t: 85\n";
        assert_eq!(
            proc_field(text, "model name").as_deref(),
            Some("Example CPU @ 2.0GHz")
        );
        assert_eq!(proc_field(text, "model").as_deref(), Some("85"));
        assert_eq!(proc_field(text, "cache"), None);
    }

    #[test]
    fn this_machine_is_described() {
        let m = Machine::detect();
        assert!(m.nproc >= 1);
        assert!(m.ram_mib > 0);
        assert_ne!(m.kernel, "unknown");
    }
}
