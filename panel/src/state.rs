//! Everything a request handler needs, built once per process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use outfitter_contract::keys::PanelSecret;
use outfitter_contract::redis_tls::{RedisTls, redact_url};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

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
    /// Multiplexed connection for commands (reconnects by itself).
    pub redis: ConnectionManager,
    /// For the dedicated pubsub connection.
    pub redis_client: redis::Client,
    pub catalog: CatalogHandle,
    pub secret: PanelSecret,
    pub templates: tera::Tera,
    pub live: LiveHub,
    pub metrics: Metrics,
    /// Failed sign-ins and invalid tokens, per client address.
    pub throttle: Throttle,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A Redis client for `redis_url`, over TLS with the files of `tls` for `rediss://`.
pub fn client(redis_url: &str, tls: &RedisTls) -> anyhow::Result<redis::Client> {
    let shown = redact_url(redis_url);
    let Some(pem) = tls.load(redis_url)? else {
        return redis::Client::open(redis_url).with_context(|| format!("Redis URL {shown:?}"));
    };
    // The panel's rustls has ring and no other provider (no C build of aws-lc).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = redis::TlsCertificates {
        client_tls: pem
            .client
            .map(|(client_cert, client_key)| redis::ClientTlsConfig {
                client_cert,
                client_key,
            }),
        root_cert: pem.root_cert,
    };
    redis::Client::build_with_tls(redis_url, certs)
        .with_context(|| format!("Redis URL {shown:?} with its TLS files"))
}

/// Connects to Redis with the panel's timeouts.
pub async fn connect(
    redis_url: &str,
    tls: &RedisTls,
) -> anyhow::Result<(redis::Client, ConnectionManager)> {
    let client = client(redis_url, tls)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(3);
    let conn = ConnectionManager::new_with_config(client.clone(), config)
        .await
        .with_context(|| format!("connecting to Redis at {}", redact_url(redis_url)))?;
    Ok((client, conn))
}

impl AppState {
    /// Loads the secret and the catalog, compiles the templates and connects to Redis.
    pub async fn new(settings: Settings) -> anyhow::Result<Self> {
        let secret = PanelSecret::load_or_create(&settings.secret_file)?;
        let (redis_client, redis) = connect(&settings.redis_url, &settings.redis_tls).await?;
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
            settings,
            redis,
            redis_client,
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
            self.redis_client.clone(),
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
        let offered = Offered::load(&self.settings.installers, self.settings.only_tested_apps);
        let n = offered.catalog.len();
        self.catalog.replace(offered);
        n
    }
}

/// Every heartbeat interval: copies fresh heartbeats, decides which servers need attention
/// (and emits their webhook events), and sets the gauges from what it read.
async fn record_heartbeats(mut conn: ConnectionManager, metrics: Metrics, thresholds: Thresholds) {
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
