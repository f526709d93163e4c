//! Everything a request handler needs, built once per process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use outfitter_contract::keys::PanelSecret;
use outfitter_redis::{RedisConn, RedisTarget, Timeouts};

use crate::agents::attention::{self, Thresholds};
use crate::auth::throttle::Throttle;
use crate::catalog_view::{CatalogHandle, Offered};
use crate::clock::now_ms;
use crate::live::LiveHub;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::{agents, live, metrics, retention, templates};

/// Shared state of the panel.
pub struct AppState {
    pub settings: Settings,
    /// Multiplexed connection for commands (reconnects by itself; a cluster's routes each
    /// command to its slot's node).
    pub redis: RedisConn,
    /// Where the dedicated pubsub connection goes (one server, or any node of a cluster).
    pub redis_target: RedisTarget,
    pub catalog: CatalogHandle,
    pub secret: PanelSecret,
    pub templates: tera::Tera,
    pub live: LiveHub,
    pub metrics: Metrics,
    /// Failed sign-ins and invalid tokens, per client address.
    pub throttle: Throttle,
    /// Every agent's status as read within the last second, for the app page's picker.
    pub agents_seen: agents::snapshot::Snapshot,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The Redis of `settings`: one server or a cluster (`redis_cluster`), with its TLS files.
pub fn redis_target(settings: &Settings) -> anyhow::Result<RedisTarget> {
    Ok(RedisTarget::new(
        &settings.redis_url,
        settings.redis_cluster,
        &settings.redis_tls,
    )?)
}

/// Connects to the Redis of `settings` with the panel's timeouts.
pub async fn connect(settings: &Settings) -> anyhow::Result<(RedisTarget, RedisConn)> {
    let target = redis_target(settings)?;
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        response: Some(Duration::from_secs(5)),
    };
    let conn = target
        .connect_managed(timeouts, 3)
        .await
        .with_context(|| format!("connecting to Redis at {}", target.shown()))?;
    Ok((target, conn))
}

impl AppState {
    /// Loads the secret and the catalog, compiles the templates and connects to Redis.
    pub async fn new(settings: Settings) -> anyhow::Result<Self> {
        let secret = PanelSecret::load_or_create(&settings.secret_file)?;
        let (redis_target, redis) = connect(&settings).await?;
        let offered = Offered::load(&settings.installers, settings.only_tested_apps);
        tracing::info!(
            apps = offered.catalog.len(),
            invalid = offered.catalog.invalid().len(),
            "catalog loaded"
        );
        Ok(Self {
            catalog: CatalogHandle::new(offered),
            templates: templates::load()?,
            live: LiveHub::new(),
            metrics: Metrics::new(),
            throttle: Throttle::new(
                settings.auth_failure_burst,
                Duration::from_secs(settings.auth_failure_refill_secs),
            ),
            agents_seen: agents::snapshot::Snapshot::default(),
            settings,
            redis,
            redis_target,
            secret,
        })
    }

    /// Starts the background tasks of one panel process: the pubsub fan-out, the metrics
    /// observer, the heartbeat recorder, the installation settler, the rollout driver and
    /// the schedule tick (both queue jobs, so they hold the whole state), the webhook job
    /// watcher and delivery worker, and the retention sweep. Call once, on a runtime that
    /// outlives the server.
    pub fn spawn_background(self: &Arc<Self>) {
        tokio::spawn(crate::schedules::tick::run(Arc::clone(self)));
        tokio::spawn(live::run(
            self.redis_target.clone(),
            self.live.clone(),
            Duration::from_secs(self.settings.pubsub_ping_secs.max(1)),
        ));
        tokio::spawn(metrics::observe_events(
            self.metrics.clone(),
            self.live.subscribe_all(),
            self.redis.clone(),
        ));
        tokio::spawn(record_heartbeats(
            self.redis.clone(),
            self.metrics.clone(),
            self.settings.attention,
        ));
        tokio::spawn(crate::installations::settle::run_settler(
            self.redis.clone(),
        ));
        tokio::spawn(crate::installations::store::run_index_by_app(
            self.redis.clone(),
        ));
        tokio::spawn(crate::rollouts::driver::run(Arc::clone(self)));
        tokio::spawn(crate::webhooks::watch::run_job_watcher(self.redis.clone()));
        tokio::spawn(crate::webhooks::deliver::run_worker(
            self.redis.clone(),
            self.secret.webhook_key(),
            self.webhook_config(),
        ));
        tokio::spawn(retention::run(
            self.redis.clone(),
            self.settings.retention_days,
        ));
    }

    /// How this panel delivers webhooks (from its settings).
    pub fn webhook_config(&self) -> crate::webhooks::deliver::Config {
        let s = &self.settings;
        crate::webhooks::deliver::Config {
            timeout: Duration::from_millis(s.webhook_timeout_ms),
            retry_base_ms: s.webhook_retry_base_ms,
            deny_private: s.webhook_deny_private,
            concurrency: s.webhook_concurrency,
        }
    }

    /// Rescans the installers directory.
    pub fn reload_catalog(&self) -> usize {
        let offered = self
            .catalog
            .current()
            .reload(self.settings.only_tested_apps);
        let n = offered.catalog.len();
        self.catalog.replace(offered);
        n
    }
}

/// Every heartbeat interval: copies fresh heartbeats, decides which servers need attention
/// (and emits their webhook events), and sets the gauges from what it read.
async fn record_heartbeats(mut conn: RedisConn, metrics: Metrics, thresholds: Thresholds) {
    let every = Duration::from_secs(outfitter_contract::host::HEARTBEAT_INTERVAL_SECS);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let statuses = match agents::record_heartbeats(&mut conn).await {
            Ok(statuses) => statuses,
            Err(e) => {
                tracing::debug!(error = %e, "reading heartbeats failed");
                continue;
            }
        };
        metrics.set_agents(&statuses);
        if let Err(e) = attention::check(&mut conn, &statuses, &thresholds, now_ms()).await {
            tracing::warn!(error = %e, "checking which servers need attention failed");
        }
    }
}
