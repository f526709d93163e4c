//! `outfitter-runner run`: the daemon. Takes signed jobs with BLMOVE on a dedicated
//! connection, checks and runs them, and keeps the heartbeat, the control channel, the retry
//! scheduler and the outbox flusher going; stops gracefully on SIGTERM.

pub mod checks;
pub mod control;
pub mod digest_check;
pub mod events;
mod fetch;
pub mod heartbeat;
pub mod job;
pub mod link;
pub mod metrics_listener;
pub mod outbox;
pub mod recovery;
pub mod result;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use deadpool_redis::redis;
use outfitter_contract::catalog::Catalog;
use outfitter_contract::keys::AgentCrypto;
use outfitter_contract::manifest::Bundle;
use outfitter_contract::redis_keys::AgentRedisKeys;
use tokio::sync::watch;
use tokio::task::JoinSet;

use self::digest_check::DigestCheck;
use self::link::RedisLink;
use self::outbox::Outbox;
use crate::config::DaemonConfig;
use crate::lifecycle::Stores;
use crate::metrics::{Metrics, RedisOp};
use crate::sandbox::cgroup::CgroupLayout;
use crate::sandbox::sys::Sys;
use crate::sandbox::{Abort, Sandbox, reaper};

/// Seconds one BLMOVE blocks; between calls the loop notices a stop request.
pub const FETCH_BLOCK_SECS: f64 = 1.0;
/// Pause after a Redis failure before trying again.
pub const REDIS_RETRY: Duration = Duration::from_secs(1);
/// How often due retries are promoted and the outbox is flushed.
pub const TICK: Duration = Duration::from_millis(500);
/// How often expired replay-guard entries are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Redis calls of the shared connection time out after this (the blocking connection has
/// no timeout).
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(10);

pub use outfitter_contract::clock::now_ms;

pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("state_dir {path}: {source}")]
    StateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot watch signals: {0}")]
    Signals(std::io::Error),
    // `error`, not `source`: the message says it already (not twice in an `{:#}` chain).
    #[error("metrics_bind {addr}: {error}")]
    MetricsBind {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
}

/// What every task of the daemon shares.
pub struct Shared {
    pub cfg: DaemonConfig,
    pub keys: AgentCrypto,
    pub names: AgentRedisKeys,
    /// The one connection every task but the fetch loop and the control channel sends on.
    pub link: Arc<RedisLink>,
    pub sandbox: Sandbox,
    pub outbox: Outbox,
    pub stores: Stores,
    pub metrics: Metrics,
    catalog: RwLock<Arc<Catalog>>,
    digests: DigestCheck,
    running: Mutex<HashMap<String, Arc<watch::Sender<Option<Abort>>>>>,
    stopping: watch::Receiver<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("agent_id", &self.cfg.agent_id)
            .finish()
    }
}

impl Shared {
    /// A handle on the shared connection (connected on first use and after a failure).
    pub async fn redis(&self) -> Result<link::Conn, redis::RedisError> {
        self.link.get().await
    }

    /// Waits before retrying a Redis call; false when the runner is stopping instead.
    pub async fn pause_unless_stopping(&self) -> bool {
        let mut stopping = self.stopping.clone();
        tokio::select! {
            () = tokio::time::sleep(REDIS_RETRY) => !*self.stopping.borrow(),
            _ = stopping.wait_for(|s| *s) => false,
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog lock").clone()
    }

    async fn reload_catalog(&self) -> Arc<Catalog> {
        let root = self.cfg.installers.clone();
        let previous = self.catalog();
        // Unchanged bundles are taken over from the last scan; the digest is checked on disk
        // again before each job runs, whatever the scan kept.
        let fresh = tokio::task::spawn_blocking(move || {
            if previous.root() == root {
                previous.rescan()
            } else {
                Catalog::scan(&root)
            }
        })
        .await
        .unwrap_or_default();
        let fresh = Arc::new(fresh);
        *self.catalog.write().expect("catalog lock") = fresh.clone();
        fresh
    }

    /// The local bundle of `app_id` with exactly `digest`; the catalog is scanned again when
    /// it does not have it (a bundle dropped in since start works without a restart). With
    /// `from_store`, the runner's own copy of that version serves when the catalog has moved
    /// on (an installation's uninstall, backup, restore or change of settings).
    pub async fn bundle_matching(
        &self,
        app_id: &str,
        digest: &str,
        from_store: bool,
    ) -> Result<Bundle, String> {
        // The files must still hash to the digest: a bundle edited on disk since the last
        // scan is rescanned rather than run under the old digest.
        let found = |c: &Catalog| {
            c.get(app_id)
                .filter(|b| b.digest == digest)
                .filter(|b| self.digests.matches(b))
                .cloned()
        };
        if let Some(b) = found(&self.catalog()) {
            return Ok(b);
        }
        let fresh = self.reload_catalog().await;
        if let Some(b) = found(&fresh) {
            return Ok(b);
        }
        // A version this runner installed earlier, after the catalog moved on: its own copy
        // (checked and hashed again) runs the installation's uninstall, backup or restore.
        if from_store
            && let Ok(b) = self.stores.bundles.load(digest)
            && b.id() == app_id
        {
            return Ok(b);
        }
        Err(match fresh.get(app_id) {
            Some(b) => format!(
                "bundle digest mismatch: the panel validated {app_id} as {digest}, this server has {} (sync the installers)",
                b.digest
            ),
            None => format!("app {app_id:?} is not in this server's catalog"),
        })
    }

    fn register(&self, job: &str, abort: Arc<watch::Sender<Option<Abort>>>) {
        let mut running = self.running.lock().expect("running lock");
        running.insert(job.to_owned(), abort);
        self.metrics.set_running(running.len());
    }

    fn unregister(&self, job: &str) {
        let mut running = self.running.lock().expect("running lock");
        running.remove(job);
        self.metrics.set_running(running.len());
    }

    /// Asks a running job to stop because of a cancel; false when it does not run here.
    pub fn cancel(&self, job: &str) -> bool {
        match self.running.lock().expect("running lock").get(job) {
            Some(tx) => tx.send(Some(Abort::Cancel)).is_ok(),
            None => false,
        }
    }

    fn abort_all(&self, why: Abort) {
        for tx in self.running.lock().expect("running lock").values() {
            let _ = tx.send(Some(why));
        }
    }

    pub fn running_jobs(&self) -> Vec<String> {
        self.running
            .lock()
            .expect("running lock")
            .keys()
            .cloned()
            .collect()
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(cfg: DaemonConfig, sys: &'static dyn Sys) -> Result<(), DaemonError> {
    let listener = match cfg.metrics_bind {
        Some(addr) => Some(
            metrics_listener::bind(addr)
                .await
                .map_err(|error| DaemonError::MetricsBind { addr, error })?,
        ),
        None => None,
    };
    let (shared, stop) = start(cfg, sys)?;
    if let Some(l) = listener {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, "serving /metrics");
        }
        tokio::spawn(metrics_listener::serve(l, shared.metrics.clone()));
    }
    serve(Arc::new(shared), stop).await
}

/// Builds the shared state (no Redis call yet).
fn start(
    cfg: DaemonConfig,
    sys: &'static dyn Sys,
) -> Result<(Shared, watch::Sender<bool>), DaemonError> {
    let link = RedisLink::new(cfg.redis.clone(), REDIS_TIMEOUT);
    let outbox =
        Outbox::open(cfg.state_dir.join("outbox")).map_err(|source| DaemonError::StateDir {
            path: cfg.state_dir.display().to_string(),
            source,
        })?;
    if let Err(e) = reaper::become_subreaper(sys) {
        tracing::warn!(error = %e, "cannot become a child subreaper; setsid escapees reach PID 1");
    }
    let layout = if cfg.limits.cgroups {
        let (layout, notes) = CgroupLayout::detect(sys, true);
        for n in notes {
            tracing::warn!("{n}");
        }
        for e in layout.remove_stale(sys) {
            tracing::warn!(error = %e, "cannot remove a stale job cgroup");
        }
        layout
    } else {
        CgroupLayout::none()
    };
    tracing::info!(?layout, "sandbox cgroups");
    let catalog = Catalog::scan(&cfg.installers);
    for bad in catalog.invalid() {
        tracing::warn!(dir = %bad.dir.display(), errors = bad.diagnostics.len(), "invalid bundle skipped");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Shared {
        keys: AgentCrypto::from_agent_key(&cfg.agent_key),
        names: AgentRedisKeys::new(&cfg.agent_id),
        link,
        sandbox: Sandbox {
            limits: cfg.limits.clone(),
            layout,
            sys,
        },
        outbox,
        stores: Stores::new(&cfg.state_dir),
        metrics: Metrics::new(&cfg.agent_id, now_ms()),
        catalog: RwLock::new(Arc::new(catalog)),
        digests: DigestCheck::default(),
        running: Mutex::new(HashMap::new()),
        stopping: stop_rx,
        cfg,
    };
    Ok((shared, stop_tx))
}

async fn serve(shared: Arc<Shared>, stop: watch::Sender<bool>) -> Result<(), DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    // Signals are watched from the start: a runner still waiting for Redis to settle the
    // last run stops on SIGTERM too.
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: no new jobs; waiting for the running ones"),
            _ = int.recv() => tracing::info!("SIGINT: no new jobs; waiting for the running ones"),
        }
        let _ = stop.send(true);
    });
    let mut stopping = shared.stopping.clone();
    let sys = shared.sandbox.sys;
    let mut background = JoinSet::new();
    background.spawn(reaper::reap_forever(sys));

    // Nothing is taken before what the last run left behind is settled. A stop meanwhile
    // leaves the rest to the next start, as a crash would.
    tokio::select! {
        () = settle_previous_run(&shared) => {}
        _ = stopping.wait_for(|s| *s) => {}
    }
    if *shared.stopping.borrow() {
        background.abort_all();
        tracing::info!("stopped before taking jobs");
        return Ok(());
    }
    background.spawn(heartbeat::beat_forever(shared.clone()));
    background.spawn(control::listen_forever(shared.clone()));
    background.spawn(fetch::tick_forever(shared.clone()));

    // The fetch loop notices the stop between two BLMOVEs, so no taken job is dropped.
    let fetch = tokio::spawn(fetch::fetch_loop(shared.clone()));
    let _ = stopping.wait_for(|s| *s).await;
    let mut jobs = fetch.await.unwrap_or_default();
    let grace = shared.cfg.stop_grace;
    if tokio::time::timeout(grace, drain(&mut jobs)).await.is_err() {
        tracing::warn!(
            seconds = grace.as_secs(),
            "stop grace period over; killing running jobs (recovered at the next start)"
        );
        shared.abort_all(Abort::Shutdown);
        drain(&mut jobs).await;
    }
    let running = shared.running_jobs();
    if let Err(e) = shared
        .outbox
        .flush_finished(&shared.link, &shared.names, &running)
        .await
    {
        tracing::warn!(error = %e, "outbox not empty at exit; flushed at the next start");
    }
    background.abort_all();
    tracing::info!("stopped");
    Ok(())
}

async fn drain(jobs: &mut JoinSet<()>) {
    while jobs.join_next().await.is_some() {}
}

/// Flushes the outbox, then recovers the processing list, retrying until Redis answers.
async fn settle_previous_run(shared: &Arc<Shared>) {
    loop {
        match shared
            .outbox
            .flush_finished(&shared.link, &shared.names, &[])
            .await
        {
            Ok(_) => break,
            Err(e) => {
                if e.is_redis() {
                    shared.metrics.redis_error(RedisOp::Recovery);
                }
                tracing::warn!(error = %e, "waiting for redis to flush the outbox")
            }
        }
        if !shared.pause_unless_stopping().await {
            return;
        }
    }
    loop {
        match recovery::recover(shared).await {
            Ok(done) => {
                for r in done {
                    if let recovery::Recovered::Interrupted { .. } = r {
                        shared
                            .metrics
                            .job_finished(outfitter_contract::job::JobState::Interrupted, None);
                    }
                    tracing::info!(?r, "recovered");
                }
                return;
            }
            Err(e) => {
                shared.metrics.redis_error(RedisOp::Recovery);
                tracing::warn!(error = %e, "waiting for redis to recover the processing list")
            }
        }
        if !shared.pause_unless_stopping().await {
            return;
        }
    }
}
