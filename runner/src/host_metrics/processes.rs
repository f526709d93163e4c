//! The process table: how many, the top by CPU since the previous collection (the delta of
//! `utime + stime` per pid) and the top by resident memory, from `/proc/<pid>/stat`.

use std::collections::HashMap;

use outfitter_contract::host_metrics::{Process, TOP_PROCESSES};

const MIB: u64 = 1024 * 1024;

/// What one pass over `/proc` saw.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub count: u64,
    /// pid → (start time, CPU ticks used): the CPU baseline of the next collection. A pid
    /// whose start time changed is another process.
    pub ticks: HashMap<u32, (u64, u64)>,
    pub rows: Vec<Row>,
}

/// One process of the pass.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub pid: u32,
    pub name: String,
    /// CPU ticks since the previous collection.
    pub delta_ticks: u64,
    pub rss_bytes: u64,
}

/// Reads every process's `stat`. A process that ends while being read is skipped (a normal
/// race); without `prev` every delta is 0 (the first collection has no rates).
pub(crate) fn scan(prev: Option<&HashMap<u32, (u64, u64)>>) -> Table {
    let mut table = Table::default();
    let all = match procfs::process::all_processes() {
        Ok(all) => all,
        Err(e) => {
            tracing::debug!(error = %e, "host metrics: /proc unreadable");
            return table;
        }
    };
    let page = procfs::page_size();
    for p in all.flatten() {
        let Ok(stat) = p.stat() else { continue };
        let Ok(pid) = u32::try_from(stat.pid) else {
            continue;
        };
        let used = stat.utime + stat.stime;
        let delta_ticks = match prev {
            None => 0,
            Some(prev) => match prev.get(&pid) {
                Some(&(start, before)) if start == stat.starttime => used.saturating_sub(before),
                // Born since the previous collection: all it used, it used in between.
                _ => used,
            },
        };
        table.count += 1;
        table.ticks.insert(pid, (stat.starttime, used));
        table.rows.push(Row {
            pid,
            name: stat.comm,
            delta_ticks,
            rss_bytes: stat.rss * page,
        });
    }
    table
}

impl Table {
    /// Whether a process of this command name (`comm`) runs.
    pub(crate) fn runs(&self, name: &str) -> bool {
        self.rows.iter().any(|r| r.name == name)
    }

    /// The [`TOP_PROCESSES`] that used the most CPU over `elapsed_s`, most first; none
    /// without time passed or when nothing used any.
    pub(crate) fn top_cpu(&self, elapsed_s: f64) -> Vec<Process> {
        if elapsed_s <= 0.0 {
            return Vec::new();
        }
        let mut rows: Vec<&Row> = self.rows.iter().filter(|r| r.delta_ticks > 0).collect();
        rows.sort_by(|a, b| b.delta_ticks.cmp(&a.delta_ticks).then(a.pid.cmp(&b.pid)));
        rows.into_iter()
            .take(TOP_PROCESSES)
            .map(|r| process(r, elapsed_s))
            .collect()
    }

    /// The [`TOP_PROCESSES`] with the largest resident memory, most first.
    pub(crate) fn top_memory(&self, elapsed_s: f64) -> Vec<Process> {
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
        rows.into_iter()
            .take(TOP_PROCESSES)
            .map(|r| process(r, elapsed_s))
            .collect()
    }
}

fn process(r: &Row, elapsed_s: f64) -> Process {
    let cpu_pct = if elapsed_s > 0.0 {
        r.delta_ticks as f64 * 100.0 / procfs::ticks_per_second() as f64 / elapsed_s
    } else {
        0.0
    };
    Process {
        pid: r.pid,
        name: r.name.clone(),
        cpu_pct,
        rss_mb: r.rss_bytes / MIB,
    }
}
