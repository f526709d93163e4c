//! Figure 6: footprint. Resident memory of the runner idle and while it runs a job, and of
//! the panel with its 1,000-app catalog, read from `/proc/<pid>/status` at moments the other
//! figures create.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::process::{Memory, mib};
use crate::report::{Figure, Row};

/// Readings collected along the run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Readings {
    pub runner_idle: Option<Memory>,
    /// Highest VmRSS sampled while the runner ran the progress job, and its VmHWM after.
    pub runner_busy_max_kib: Option<u64>,
    pub runner_busy_hwm: Option<Memory>,
    pub panel_idle: Option<Memory>,
    /// After the load and scale figures.
    pub panel_after_load: Option<Memory>,
    pub redis_idle: Option<Memory>,
    /// Apps in the panel's catalog.
    pub apps: usize,
}

/// Samples a process's VmRSS every 10 ms in a thread until stopped; keeps the maximum.
#[derive(Debug)]
pub(crate) struct RssSampler {
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub(crate) fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(0));
        let (s, m) = (stop.clone(), max_kib.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(mem) = Memory::of(pid) {
                    m.fetch_max(mem.rss_kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self {
            stop,
            max_kib,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the highest VmRSS seen, in KiB.
    pub(crate) fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.max_kib.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub(crate) fn figure(r: &Readings) -> Figure {
    let show = |m: Option<u64>| m.map(mib).unwrap_or_else(|| "not measured".into());
    let redis = r.redis_idle.map(|m| mib(m.rss_kib)).unwrap_or_default();
    let reference = if redis.is_empty() {
        String::new()
    } else {
        format!("idle redis-server {redis}")
    };
    let rows = vec![
        Row::new(
            "runner VmRSS, idle (heartbeating, waiting on BLMOVE)",
            show(r.runner_idle.map(|m| m.rss_kib)),
        )
        .against(reference.clone(), ""),
        Row::new(
            "runner VmRSS, highest sampled while running the progress job",
            show(r.runner_busy_max_kib),
        ),
        Row::new(
            "runner VmHWM (peak) after the progress job",
            show(r.runner_busy_hwm.map(|m| m.hwm_kib)),
        ),
        Row::new(
            format!("panel VmRSS with {} apps, idle after start", r.apps),
            show(r.panel_idle.map(|m| m.rss_kib)),
        )
        .against(reference, ""),
        Row::new(
            "panel VmRSS after the load and scale figures",
            show(r.panel_after_load.map(|m| m.rss_kib)),
        ),
        Row::new(
            "panel VmHWM (peak) after the load and scale figures",
            show(r.panel_after_load.map(|m| m.hwm_kib)),
        ),
    ];
    Figure {
        number: 6,
        title: "Footprint".into(),
        method: "Resident memory read from `/proc/<pid>/status` (`VmRSS` now, `VmHWM` peak). The runner idle: \
                 one second after its first heartbeat, before any job. Busy: sampled every 10 ms while it \
                 streams the progress job of figure 3. The panel: after start with the generated catalog, and \
                 again after figures 4 and 5. An idle `redis-server` is shown for scale."
            .into(),
        rows,
        goals: vec![],
        tables: vec![],
        summary: format!(
            "6. Footprint: runner idle {} / busy max {}; panel with {} apps {} idle, {} after load",
            show(r.runner_idle.map(|m| m.rss_kib)),
            show(r.runner_busy_max_kib),
            r.apps,
            show(r.panel_idle.map(|m| m.rss_kib)),
            show(r.panel_after_load.map(|m| m.rss_kib)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_sees_own_memory() {
        let s = RssSampler::start(std::process::id());
        std::thread::sleep(Duration::from_millis(50));
        assert!(s.finish() > 0);
    }

    #[test]
    fn missing_readings_say_so() {
        let f = figure(&Readings::default());
        assert!(f.rows.iter().any(|r| r.value == "not measured"));
        assert!(f.summary.starts_with("6. Footprint"));
    }
}
