//! CPU busy share over all CPUs, from the delta of the `cpu` line of `/proc/stat`.

use procfs::{CpuTime, CurrentSI, KernelStats};

/// Busy and total ticks of all CPUs since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuTicks {
    pub busy: u64,
    pub total: u64,
}

impl CpuTicks {
    /// The counters now; `None` when `/proc/stat` cannot be read.
    pub(crate) fn read() -> Option<Self> {
        match KernelStats::current() {
            Ok(stats) => Some(Self::of(&stats.total)),
            Err(e) => {
                tracing::debug!(error = %e, "host metrics: /proc/stat unreadable");
                None
            }
        }
    }

    /// Idle and iowait are idle; everything else (steal included) is busy. `user` already
    /// holds `guest`, so guest time is not added twice.
    pub(crate) fn of(t: &CpuTime) -> Self {
        let idle = t.idle + t.iowait.unwrap_or(0);
        let total = t.user
            + t.nice
            + t.system
            + idle
            + t.irq.unwrap_or(0)
            + t.softirq.unwrap_or(0)
            + t.steal.unwrap_or(0);
        Self {
            busy: total.saturating_sub(idle),
            total,
        }
    }
}

/// Busy percent (0–100) between two readings; 0 without a previous one or without time passed.
pub(crate) fn busy_pct(prev: Option<CpuTicks>, now: CpuTicks) -> f64 {
    let Some(prev) = prev else { return 0.0 };
    let total = now.total.saturating_sub(prev.total);
    if total == 0 {
        return 0.0;
    }
    let busy = now.busy.saturating_sub(prev.busy).min(total);
    busy as f64 * 100.0 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_is_the_delta_of_busy_over_the_delta_of_total() {
        let a = CpuTicks {
            busy: 100,
            total: 1000,
        };
        let b = CpuTicks {
            busy: 150,
            total: 1200,
        };
        assert_eq!(busy_pct(None, b), 0.0);
        assert_eq!(busy_pct(Some(a), b), 25.0);
        assert_eq!(busy_pct(Some(b), b), 0.0, "no time passed");
        assert_eq!(busy_pct(Some(b), a), 0.0, "counters went back");
    }
}
