//! What a runner measures about its server with each heartbeat ([`HostMetrics`], carried in
//! [`crate::host::HostFacts::metrics`]), the compact [`Sample`] of it the history keeps, and
//! the bounds a reader clamps both to.
//!
//! A heartbeat comes from a server, so nothing in it is trusted: [`HostMetrics::clamp`]
//! brings every number into range and every list and name under its cap, and says what it
//! changed, so the reader can log it and show the rest.

use serde::{Deserialize, Serialize};

/// Mounts kept per heartbeat (the largest first, as the runner sends them).
pub const MAX_DISKS: usize = 32;
/// Network interfaces kept per heartbeat.
pub const MAX_INTERFACES: usize = 32;
/// Processes in each top list.
pub const TOP_PROCESSES: usize = 5;
/// Databases listed for a PostgreSQL server.
pub const MAX_DATABASES: usize = 32;
/// Longest name (mount point, interface, process, database) kept, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Largest count or size accepted (bytes, MiB, packets, connections): 2^53, the largest
/// integer a JSON number holds exactly.
pub const MAX_QUANTITY: f64 = 9_007_199_254_740_992.0;
/// Largest load average accepted.
pub const MAX_LOAD: f64 = 1_000_000.0;

/// What a runner measured about its server. Sizes are MiB, rates per second over the time
/// since the previous heartbeat (zero in the first one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostMetrics {
    /// CPU busy time over all CPUs since the previous heartbeat, 0–100.
    pub cpu_pct: f64,
    /// Load averages over 1, 5 and 15 minutes (`/proc/loadavg`).
    pub load: Load,
    /// Memory and swap (`/proc/meminfo`).
    pub memory: Memory,
    /// Mounted file systems backed by a block device, largest first.
    #[serde(default)]
    pub disks: Vec<Disk>,
    /// Network interfaces except loopback.
    #[serde(default)]
    pub networks: Vec<Interface>,
    /// Processes on the server.
    pub processes: u64,
    /// The processes using the most CPU since the previous heartbeat, most first.
    #[serde(default)]
    pub top_cpu: Vec<Process>,
    /// The processes with the largest resident memory, most first.
    #[serde(default)]
    pub top_memory: Vec<Process>,
    /// Metrics of well-known services found on the server.
    #[serde(default)]
    pub services: Services,
    /// CPU time the runner spent collecting these metrics, microseconds.
    #[serde(default)]
    pub collect_cpu_us: u64,
}

/// Load averages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Over one minute.
    pub one: f64,
    /// Over five minutes.
    pub five: f64,
    /// Over fifteen minutes.
    pub fifteen: f64,
}

/// Memory and swap, MiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// `MemTotal`.
    pub total_mb: u64,
    /// `MemTotal − MemAvailable`: what programs hold and cannot give back.
    pub used_mb: u64,
    /// `MemFree`.
    pub free_mb: u64,
    /// `MemAvailable`.
    pub available_mb: u64,
    /// `Cached + Buffers`.
    pub cached_mb: u64,
    /// `SwapTotal`.
    pub swap_total_mb: u64,
    /// `SwapTotal − SwapFree`.
    pub swap_used_mb: u64,
}

/// One mounted file system.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    /// Where it is mounted (`/`, `/var`).
    pub mount: String,
    /// Size, MiB.
    pub total_mb: u64,
    /// Used, MiB.
    pub used_mb: u64,
    /// Free for unprivileged users (`f_bavail`), MiB.
    pub free_mb: u64,
    /// Bytes read from its device per second.
    pub read_bytes_per_s: f64,
    /// Bytes written to its device per second.
    pub write_bytes_per_s: f64,
}

/// One network interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name (`eth0`).
    pub name: String,
    /// Bytes received per second.
    pub rx_bytes_per_s: f64,
    /// Bytes sent per second.
    pub tx_bytes_per_s: f64,
    /// Packets received per second.
    pub rx_packets_per_s: f64,
    /// Packets sent per second.
    pub tx_packets_per_s: f64,
}

/// One process in a top list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// Its pid.
    pub pid: u32,
    /// Its command name (`comm`).
    pub name: String,
    /// Share of one CPU since the previous heartbeat, percent (may exceed 100 on several).
    pub cpu_pct: f64,
    /// Resident memory, MiB.
    pub rss_mb: u64,
}

/// Service metrics; each is present only when that service was found and answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Services {
    /// A local PostgreSQL server.
    #[serde(default)]
    pub postgres: Option<Postgres>,
    /// A local nginx with `stub_status`.
    #[serde(default)]
    pub nginx: Option<Nginx>,
    /// A local Redis server.
    #[serde(default)]
    pub redis: Option<RedisService>,
    /// The local Docker engine.
    #[serde(default)]
    pub docker: Option<Docker>,
}

/// PostgreSQL: connections and database sizes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Postgres {
    /// Rows of `pg_stat_activity` (client backends).
    pub connections: u64,
    /// Databases and their size, largest first.
    #[serde(default)]
    pub databases: Vec<Database>,
}

/// One PostgreSQL database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Database {
    /// Its name.
    pub name: String,
    /// `pg_database_size`, MiB.
    pub size_mb: u64,
}

/// nginx `stub_status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Nginx {
    /// Active connections.
    pub active_connections: u64,
    /// Requests per second since the previous heartbeat.
    pub requests_per_s: f64,
}

/// Redis `INFO`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RedisService {
    /// `used_memory`, MiB.
    pub used_memory_mb: u64,
    /// `connected_clients`.
    pub clients: u64,
}

/// Docker containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Docker {
    /// Running now.
    pub running: u64,
    /// All, stopped included.
    pub total: u64,
}

/// Tracks what [`HostMetrics::clamp`] changed.
struct Clamps(Vec<String>);

impl Clamps {
    fn rate(&mut self, field: &str, v: &mut f64, max: f64) {
        let clamped = if v.is_nan() { 0.0 } else { v.clamp(0.0, max) };
        if clamped != *v {
            self.0.push(format!("{field} {v} is outside 0..={max}"));
            *v = clamped;
        }
    }

    fn quantity(&mut self, field: &str, v: &mut u64) {
        let max = MAX_QUANTITY as u64;
        if *v > max {
            self.0.push(format!("{field} {v} is above {max}"));
            *v = max;
        }
    }

    /// A part of a whole (used of total) is at most the whole.
    fn part(&mut self, field: &str, v: &mut u64, whole: u64, whole_field: &str) {
        if *v > whole {
            self.0
                .push(format!("{field} {v} is above {whole_field} {whole}"));
            *v = whole;
        }
    }

    fn name(&mut self, field: &str, name: &mut String) {
        let clean: String = name
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME_CHARS)
            .collect();
        if clean != *name {
            self.0.push(format!(
                "{field} is longer than {MAX_NAME_CHARS} characters or holds control characters"
            ));
            *name = clean;
        }
    }

    fn list<T>(&mut self, field: &str, list: &mut Vec<T>, max: usize) {
        if list.len() > max {
            self.0.push(format!(
                "{field} has {} entries, more than {max}",
                list.len()
            ));
            list.truncate(max);
        }
    }

    fn process(&mut self, field: &str, p: &mut Process) {
        self.name(&format!("{field}.name"), &mut p.name);
        self.rate(&format!("{field}.cpu_pct"), &mut p.cpu_pct, MAX_LOAD);
        self.quantity(&format!("{field}.rss_mb"), &mut p.rss_mb);
    }
}

impl HostMetrics {
    /// Brings every value into its range (percentages 0–100, rates and sizes 0–2^53, no NaN),
    /// every list under its cap and every name under [`MAX_NAME_CHARS`] without control
    /// characters. Returns what it changed, one line per field, for the reader's log.
    pub fn clamp(&mut self) -> Vec<String> {
        let mut c = Clamps(Vec::new());
        c.rate("cpu_pct", &mut self.cpu_pct, 100.0);
        c.rate("load.one", &mut self.load.one, MAX_LOAD);
        c.rate("load.five", &mut self.load.five, MAX_LOAD);
        c.rate("load.fifteen", &mut self.load.fifteen, MAX_LOAD);
        let m = &mut self.memory;
        for (field, v) in [
            ("memory.total_mb", &mut m.total_mb),
            ("memory.used_mb", &mut m.used_mb),
            ("memory.free_mb", &mut m.free_mb),
            ("memory.available_mb", &mut m.available_mb),
            ("memory.cached_mb", &mut m.cached_mb),
            ("memory.swap_total_mb", &mut m.swap_total_mb),
            ("memory.swap_used_mb", &mut m.swap_used_mb),
        ] {
            c.quantity(field, v);
        }
        for (field, v) in [
            ("memory.used_mb", &mut m.used_mb),
            ("memory.free_mb", &mut m.free_mb),
            ("memory.available_mb", &mut m.available_mb),
            ("memory.cached_mb", &mut m.cached_mb),
        ] {
            c.part(field, v, m.total_mb, "memory.total_mb");
        }
        c.part(
            "memory.swap_used_mb",
            &mut m.swap_used_mb,
            m.swap_total_mb,
            "memory.swap_total_mb",
        );
        c.list("disks", &mut self.disks, MAX_DISKS);
        for d in &mut self.disks {
            c.name("disks.mount", &mut d.mount);
            c.quantity("disks.total_mb", &mut d.total_mb);
            c.quantity("disks.used_mb", &mut d.used_mb);
            c.quantity("disks.free_mb", &mut d.free_mb);
            c.part(
                "disks.used_mb",
                &mut d.used_mb,
                d.total_mb,
                "disks.total_mb",
            );
            c.part(
                "disks.free_mb",
                &mut d.free_mb,
                d.total_mb,
                "disks.total_mb",
            );
            c.rate(
                "disks.read_bytes_per_s",
                &mut d.read_bytes_per_s,
                MAX_QUANTITY,
            );
            c.rate(
                "disks.write_bytes_per_s",
                &mut d.write_bytes_per_s,
                MAX_QUANTITY,
            );
        }
        c.list("networks", &mut self.networks, MAX_INTERFACES);
        for n in &mut self.networks {
            c.name("networks.name", &mut n.name);
            c.rate(
                "networks.rx_bytes_per_s",
                &mut n.rx_bytes_per_s,
                MAX_QUANTITY,
            );
            c.rate(
                "networks.tx_bytes_per_s",
                &mut n.tx_bytes_per_s,
                MAX_QUANTITY,
            );
            c.rate(
                "networks.rx_packets_per_s",
                &mut n.rx_packets_per_s,
                MAX_QUANTITY,
            );
            c.rate(
                "networks.tx_packets_per_s",
                &mut n.tx_packets_per_s,
                MAX_QUANTITY,
            );
        }
        c.quantity("processes", &mut self.processes);
        c.list("top_cpu", &mut self.top_cpu, TOP_PROCESSES);
        for p in &mut self.top_cpu {
            c.process("top_cpu", p);
        }
        c.list("top_memory", &mut self.top_memory, TOP_PROCESSES);
        for p in &mut self.top_memory {
            c.process("top_memory", p);
        }
        let s = &mut self.services;
        if let Some(pg) = &mut s.postgres {
            c.quantity("services.postgres.connections", &mut pg.connections);
            c.list(
                "services.postgres.databases",
                &mut pg.databases,
                MAX_DATABASES,
            );
            for d in &mut pg.databases {
                c.name("services.postgres.databases.name", &mut d.name);
                c.quantity("services.postgres.databases.size_mb", &mut d.size_mb);
            }
        }
        if let Some(n) = &mut s.nginx {
            c.quantity(
                "services.nginx.active_connections",
                &mut n.active_connections,
            );
            c.rate(
                "services.nginx.requests_per_s",
                &mut n.requests_per_s,
                MAX_QUANTITY,
            );
        }
        if let Some(r) = &mut s.redis {
            c.quantity("services.redis.used_memory_mb", &mut r.used_memory_mb);
            c.quantity("services.redis.clients", &mut r.clients);
        }
        if let Some(d) = &mut s.docker {
            c.quantity("services.docker.running", &mut d.running);
            c.quantity("services.docker.total", &mut d.total);
            c.part(
                "services.docker.running",
                &mut d.running,
                d.total,
                "services.docker.total",
            );
        }
        c.quantity("collect_cpu_us", &mut self.collect_cpu_us);
        c.0
    }

    /// Memory in use, percent of the total (0 when the total is unknown).
    pub fn memory_used_pct(&self) -> f64 {
        percent(self.memory.used_mb, self.memory.total_mb)
    }

    /// The fullest mount and how full it is, percent.
    pub fn fullest_disk(&self) -> Option<(&Disk, f64)> {
        self.disks
            .iter()
            .map(|d| (d, percent(d.used_mb, d.total_mb)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The compact sample the history keeps of this heartbeat.
    pub fn sample(&self) -> Sample {
        let sum = |f: fn(&Disk) -> f64| self.disks.iter().map(f).sum::<f64>();
        let net = |f: fn(&Interface) -> f64| self.networks.iter().map(f).sum::<f64>();
        Sample {
            cpu_pct: self.cpu_pct,
            load1: self.load.one,
            memory_pct: self.memory_used_pct(),
            swap_pct: percent(self.memory.swap_used_mb, self.memory.swap_total_mb),
            disk_pct: self.fullest_disk().map_or(0.0, |(_, p)| p),
            disk_read_bps: sum(|d| d.read_bytes_per_s),
            disk_write_bps: sum(|d| d.write_bytes_per_s),
            net_rx_bps: net(|n| n.rx_bytes_per_s),
            net_tx_bps: net(|n| n.tx_bytes_per_s),
        }
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 100.0 / whole as f64).clamp(0.0, 100.0)
    }
}

/// One point of a server's history: what the charts draw. Percentages 0–100, rates in bytes
/// per second summed over every disk or interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// CPU busy, percent.
    pub cpu_pct: f64,
    /// One-minute load average.
    pub load1: f64,
    /// Memory in use, percent.
    pub memory_pct: f64,
    /// Swap in use, percent.
    pub swap_pct: f64,
    /// The fullest mount, percent used.
    pub disk_pct: f64,
    /// Bytes read per second, all disks.
    pub disk_read_bps: f64,
    /// Bytes written per second, all disks.
    pub disk_write_bps: f64,
    /// Bytes received per second, all interfaces.
    pub net_rx_bps: f64,
    /// Bytes sent per second, all interfaces.
    pub net_tx_bps: f64,
}

/// How a [`Sample`] is stored in a history stream: one short field per value, as an integer
/// (Redis keeps small integers in a stream entry in a few bytes), with its scale.
pub const SAMPLE_FIELDS: [(&str, f64); 9] = [
    ("c", 10.0),  // cpu_pct, tenths of a percent
    ("l", 100.0), // load1, hundredths
    ("m", 10.0),  // memory_pct
    ("s", 10.0),  // swap_pct
    ("d", 10.0),  // disk_pct
    ("r", 1.0),   // disk_read_bps
    ("w", 1.0),   // disk_write_bps
    ("i", 1.0),   // net_rx_bps
    ("o", 1.0),   // net_tx_bps
];

impl Sample {
    fn values(&self) -> [f64; 9] {
        [
            self.cpu_pct,
            self.load1,
            self.memory_pct,
            self.swap_pct,
            self.disk_pct,
            self.disk_read_bps,
            self.disk_write_bps,
            self.net_rx_bps,
            self.net_tx_bps,
        ]
    }

    fn from_values(v: [f64; 9]) -> Self {
        Sample {
            cpu_pct: v[0],
            load1: v[1],
            memory_pct: v[2],
            swap_pct: v[3],
            disk_pct: v[4],
            disk_read_bps: v[5],
            disk_write_bps: v[6],
            net_rx_bps: v[7],
            net_tx_bps: v[8],
        }
    }

    /// The field-by-field mean of `samples` (the default sample when there are none), as the
    /// history's averages are taken.
    pub fn mean(samples: &[Sample]) -> Sample {
        if samples.is_empty() {
            return Sample::default();
        }
        let mut sum = [0.0; 9];
        for s in samples {
            for (acc, v) in sum.iter_mut().zip(s.values()) {
                *acc += v;
            }
        }
        Sample::from_values(sum.map(|v| v / samples.len() as f64))
    }

    /// The stored integers, in [`SAMPLE_FIELDS`] order; a value out of range (NaN, negative,
    /// a percentage above 100) is stored clamped.
    pub fn to_stream(&self) -> [i64; 9] {
        let mut out = [0; 9];
        for (i, v) in self.values().into_iter().enumerate() {
            out[i] = scaled(i, v);
        }
        out
    }

    /// Reads a stored entry's field/value pairs back; a missing or unreadable field is 0 and
    /// every value is clamped as [`Sample::to_stream`] does.
    pub fn from_stream<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut v = [0.0; 9];
        for (name, raw) in fields {
            if let Some(i) = SAMPLE_FIELDS.iter().position(|(n, _)| *n == name) {
                let n = raw.parse::<f64>().unwrap_or(0.0);
                v[i] = scaled(i, n / SAMPLE_FIELDS[i].1) as f64 / SAMPLE_FIELDS[i].1;
            }
        }
        Sample::from_values(v)
    }
}

/// Value `i` of a sample as its stored integer: percentages within 0–100, load within
/// [`MAX_LOAD`], rates within [`MAX_QUANTITY`], NaN as 0.
fn scaled(i: usize, v: f64) -> i64 {
    let max = match i {
        0 | 2 | 3 | 4 => 100.0,
        1 => MAX_LOAD,
        _ => MAX_QUANTITY,
    };
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, max) };
    (v * SAMPLE_FIELDS[i].1).round() as i64
}

#[cfg(test)]
#[path = "host_metrics_tests.rs"]
mod tests;
