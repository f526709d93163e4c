//! What figure 8 reports: its rows (each figure beside its baseline) and the table of
//! batches, from what [`super::measure`] measured.

use super::*;

/// The latency probes' samples.
pub(super) struct Latencies {
    /// `GET /api/v1/rollouts/{id}` while the rollout runs, and `GET /healthz` beside it.
    pub(super) view_busy: Samples,
    pub(super) health_busy: Samples,
    /// The same GET after it ended, and `GET /healthz` before anything ran.
    pub(super) view_idle: Samples,
    pub(super) health_idle: Samples,
    /// `GET /healthz` during the batched `POST /api/v1/jobs` baseline.
    pub(super) health_direct: Samples,
    /// The bare Redis reads behind the rollout GET.
    pub(super) bare: Samples,
}

/// What the figure reports, measured.
pub(super) struct Rows<'a> {
    pub(super) n: usize,
    pub(super) size: usize,
    pub(super) rollout: &'a Run,
    pub(super) direct: &'a Run,
    pub(super) burst_rate: f64,
    pub(super) burst_posted_s: f64,
    pub(super) post_ms: f64,
    /// `POST` returned → the first batch's first job queued (µs).
    pub(super) first_after_post: f64,
    /// POST sent → the record's `finished_at`.
    pub(super) total_s: f64,
    /// Last job ended → the record's `finished_at`.
    pub(super) end_to_record_ms: f64,
    /// POST sent → the bench's poll saw the end.
    pub(super) seen_final_s: f64,
    pub(super) record_bytes: usize,
    pub(super) view_bytes: usize,
    pub(super) history: usize,
    /// The record's revision at the end: how many times it was written.
    pub(super) writes: u64,
}

impl Rows<'_> {
    pub(super) fn figure(&self, l: &mut Latencies, table: Table) -> Figure {
        let (n, size) = (self.n, self.size);
        let batches = self.rollout.batches.len();
        let rate = per_second(n as u64, Duration::from_secs_f64(self.total_s));
        let direct_rate = n as f64 / self.direct.elapsed_s();
        let mut gaps = self.rollout.start_gaps();
        let mut direct_gaps = self.direct.start_gaps();
        let mut queueing = self.rollout.queueing();
        let mut direct_queueing = self.direct.queueing();
        let g = gaps.summary();
        let gmax = gaps.percentile(100.0).unwrap_or(f64::NAN);
        let dg = direct_gaps.summary();
        let dgmax = direct_gaps.percentile(100.0).unwrap_or(f64::NAN);
        let q = queueing.summary();
        let dq = direct_queueing.summary();
        let (vb, hb, vi, hi, hd, br) = (
            l.view_busy.summary(),
            l.health_busy.summary(),
            l.view_idle.summary(),
            l.health_idle.summary(),
            l.health_direct.summary(),
            l.bare.summary(),
        );
        let pair = |a: f64, b: f64| format!("{} / {}", Micros(a), Micros(b));
        let rows = vec![
            Row::new(
                format!(
                    "rollout of {n} servers, {batches} batches of {size}: POST sent → record `succeeded`"
                ),
                format!("{:.2} s ({})", self.total_s, Rate(rate)),
            )
            .against(
                format!(
                    "the same {n} jobs through `POST /api/v1/jobs`, {batches} batches of {size}, each \
                     posted the moment the last ended: {:.2} s ({})",
                    self.direct.elapsed_s(),
                    Rate(direct_rate)
                ),
                factor(self.total_s, self.direct.elapsed_s()),
            ),
            Row::new(
                "rollout jobs/s (POST sent → `succeeded`)",
                Rate(rate).to_string(),
            )
            .against(
                format!(
                    "{n} jobs through `POST /api/v1/jobs` at once (8 clients; all posted in {:.2} s): {}",
                    self.burst_posted_s,
                    Rate(self.burst_rate)
                ),
                crate::stats::percent(rate, self.burst_rate),
            ),
            Row::new(
                format!(
                    "driver's start latency: previous batch's last job ended → next batch's first \
                     job queued (p50 / max of {})",
                    g.n
                ),
                pair(g.p50, gmax),
            )
            .against(
                format!("bench posting the next batch: {}", pair(dg.p50, dgmax)),
                format!("{} / {}", factor(g.p50, dg.p50), factor(gmax, dgmax)),
            ),
            Row::new(
                format!(
                    "queueing one batch: its first → last job queued ({size} jobs; p50 / p99 of {})",
                    q.n
                ),
                pair(q.p50, q.p99),
            )
            .against(
                format!(
                    "{size} sequential `POST /api/v1/jobs`: {}",
                    pair(dq.p50, dq.p99)
                ),
                factor(q.p50, dq.p50),
            ),
            Row::new(
                "POST /api/v1/rollouts returned (plan and store) → first batch's first job queued",
                format!(
                    "{} (the POST itself took {:.1} ms)",
                    Micros(self.first_after_post),
                    self.post_ms
                ),
            ),
            Row::new(
                "last job ended → record `succeeded` (the record's `finished_at`)",
                format!(
                    "{:.0} ms (the bench's poll saw it {:.2} s after POST)",
                    self.end_to_record_ms, self.seen_final_s
                ),
            ),
            Row::new(
                format!(
                    "`GET /api/v1/rollouts/{{id}}` while it runs (p50 / p99 of {}; {} bytes)",
                    vb.n, self.view_bytes
                ),
                pair(vb.p50, vb.p99),
            )
            .against(
                format!("`GET /healthz` at the same time: {}", pair(hb.p50, hb.p99)),
                format!("{} / {}", factor(vb.p50, hb.p50), factor(vb.p99, hb.p99)),
            ),
            Row::new(
                format!(
                    "`GET /api/v1/rollouts/{{id}}` after it ended (p50 / p99 of {})",
                    vi.n
                ),
                pair(vi.p50, vi.p99),
            )
            .against(
                format!("`GET /healthz` idle, before: {}", pair(hi.p50, hi.p99)),
                format!("{} / {}", factor(vi.p50, hi.p50), factor(vi.p99, hi.p99)),
            ),
            Row::new(
                "`GET /api/v1/rollouts/{id}` after it ended (p50 / p99)",
                pair(vi.p50, vi.p99),
            )
            .against(
                format!(
                    "bare Redis reads of what it loads (`HMGET` of the record, `LRANGE` of the \
                     history), one client: {}",
                    pair(br.p50, br.p99)
                ),
                format!("{} / {}", factor(vi.p50, br.p50), factor(vi.p99, br.p99)),
            ),
            Row::new(
                "`GET /healthz` during the rollout (p50 / p99)",
                pair(hb.p50, hb.p99),
            )
            .against(
                format!(
                    "during the batched `POST /api/v1/jobs` baseline: {}; idle: {}",
                    pair(hd.p50, hd.p99),
                    pair(hi.p50, hi.p99)
                ),
                format!("{} (p99 vs idle)", factor(hb.p99, hi.p99)),
            ),
            Row::new(
                "rollout record: stored `data` / API body / history entries / writes (its `rev`)",
                format!(
                    "{} bytes ({:.0} per server) / {} bytes / {} / {} ({} written)",
                    thousands(self.record_bytes as u64),
                    self.record_bytes as f64 / n as f64,
                    thousands(self.view_bytes as u64),
                    self.history,
                    self.writes,
                    crate::process::mib(self.writes * self.record_bytes as u64 / 1024)
                ),
            ),
        ];
        Figure {
            number: 8,
            title: "Rollouts".into(),
            method: format!(
                "{n} agents labelled `{}={}` registered through the API with simulated heartbeats, and \
                 a rollout of `bench-noop` over the selector `{}={}` with `batch_size` {size} and \
                 `max_failures` 0. No real runner: the bench's simulated runner takes each job the \
                 moment its `queued` event is published (`LMOVE` queue → processing) and finishes it \
                 with the contract's scripts and record writes (`running` and one output line with \
                 `APPEND_EVENTS`, `succeeded` exit 0 with `FINISH_ATTEMPT`), {WORKERS} jobs at a time, \
                 so the panel's driver (a round every 500 ms) reads real job records. While it runs, \
                 `GET /api/v1/rollouts/{{id}}` (what the rollout page polls) and `GET /healthz` are \
                 each requested on their own connection, {} ms between requests. Baselines in the \
                 same run, on two other sets of {n} agents: the same jobs through `POST /api/v1/jobs`, \
                 in batches of {size} posted one after another with the next batch posted the moment \
                 the simulated runner ended the last job of the previous one (a driver with no delay), \
                 and all at once from 8 clients.",
                LABEL.0,
                LABEL.1,
                LABEL.0,
                LABEL.1,
                PROBE_PAUSE.as_millis()
            ),
            rows,
            goals: vec![],
            tables: vec![table],
            summary: format!(
                "8. Rollouts ({n} servers, {batches}×{size}): {:.2} s to `succeeded`, {} (direct batches \
                 {}, at once {}); batch start after the last ended p50 {} / max {} (direct {}); \
                 rollout GET p99 {} beside /healthz p99 {}; record {} bytes",
                self.total_s,
                Rate(rate),
                Rate(direct_rate),
                Rate(self.burst_rate),
                Micros(g.p50),
                Micros(gmax),
                Micros(dg.p50),
                Micros(vb.p99),
                Micros(hb.p99),
                thousands(self.record_bytes as u64)
            ),
        }
    }
}

/// Per batch: where the time between batches went.
pub(super) fn batch_table(r: &Run, rounds: &[Option<f64>], post_returned: f64) -> Table {
    let mut rows = Vec::new();
    let mut previous_end = post_returned;
    for (i, b) in r.batches.iter().enumerate() {
        let round = rounds.get(i).copied().flatten();
        let show = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| Micros(v).to_string());
        rows.push(vec![
            (i + 1).to_string(),
            show(round.map(|at| at - previous_end)),
            show(round.map(|at| b.first_queued - at)),
            Micros(b.last_queued - b.first_queued).to_string(),
            Micros(b.last_ended - b.last_queued).to_string(),
        ]);
        previous_end = b.last_ended;
    }
    Table {
        heading: "Per batch (the driver's round is the `at` of its `batch N started` history entry, \
                  taken on the panel's clock at the start of the round; for batch 1 the previous end \
                  is `POST /api/v1/rollouts` returning):"
            .into(),
        columns: [
            "batch",
            "previous batch's last job ended → driver's round",
            "round → first job queued",
            "first → last job queued",
            "last queued → last ended (simulated runner)",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    }
}
