//! Memory and swap from `/proc/meminfo`, MiB.

use outfitter_contract::host_metrics::Memory;
use procfs::{Current, Meminfo};

const MIB: u64 = 1024 * 1024;

/// Memory now; all zero when `/proc/meminfo` cannot be read.
pub(crate) fn read() -> Memory {
    match Meminfo::current() {
        Ok(m) => of(&m),
        Err(e) => {
            tracing::debug!(error = %e, "host metrics: /proc/meminfo unreadable");
            Memory::default()
        }
    }
}

/// `used` is `total − available` (what programs hold and cannot give back); a kernel before
/// 3.14 has no `MemAvailable`, where `free + buffers + cached` stands in for it.
pub(crate) fn of(m: &Meminfo) -> Memory {
    let cached = m.cached + m.buffers;
    let available = m
        .mem_available
        .unwrap_or(m.mem_free + cached)
        .min(m.mem_total);
    Memory {
        total_mb: m.mem_total / MIB,
        used_mb: (m.mem_total - available) / MIB,
        free_mb: m.mem_free / MIB,
        available_mb: available / MIB,
        cached_mb: cached / MIB,
        swap_total_mb: m.swap_total / MIB,
        swap_used_mb: m.swap_total.saturating_sub(m.swap_free) / MIB,
    }
}
