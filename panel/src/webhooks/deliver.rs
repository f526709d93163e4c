//! The delivery worker (one per panel): claims due deliveries with a lease (so two panels
//! never POST the same delivery at once, and a panel that dies mid-attempt leaves it due
//! again), POSTs each signed, bounded in time and in number at once, and records the
//! outcome: delivered, retried later with exponential backoff and jitter, or failed.

use std::sync::Arc;
use std::time::Duration;

use outfitter_contract::keys::Key;
use outfitter_contract::redis_keys;
use outfitter_redis::RedisConn;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};

use super::emit::QUEUED;
use super::model::{Delivery, Status};
use super::{sign, store, target};
use crate::clock::now_ms;
use crate::scripts;

/// Attempts before a delivery is given up (with a one-minute base: about a day of retries).
pub const MAX_ATTEMPTS: u32 = 31;
/// The longest wait between attempts, in multiples of the base (one hour for one minute).
const CAP_FACTOR: u64 = 60;
/// How often the worker looks for due deliveries queued by other panels or retries.
const POLL: Duration = Duration::from_millis(250);
/// A claim lasts the attempt's timeout plus this, then the delivery is due again.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// How the worker delivers (from the panel's settings).
#[derive(Debug, Clone)]
pub struct Config {
    /// One attempt's whole time: connect, send, answer.
    pub timeout: Duration,
    /// The first retry waits this long; each further one twice as long, up to 60 times it.
    pub retry_base_ms: u64,
    /// Refuse internal addresses (see `target`).
    pub deny_private: bool,
    /// Most attempts in flight at once.
    pub concurrency: usize,
}

/// The wait after failed attempt `attempt` (1-based): `base · 2^(attempt-1)`, capped at
/// `60 · base`, then stretched by a jitter in [1, 1.25) so receivers that failed together do
/// not get their retries together (and the schedule is never shorter than the nominal one).
pub fn backoff_ms(base_ms: u64, attempt: u32, jitter: f64) -> i64 {
    let exp = attempt.saturating_sub(1).min(20);
    let raw = base_ms
        .saturating_mul(1 << exp)
        .min(base_ms.saturating_mul(CAP_FACTOR));
    let scaled = raw as f64 * (1.0 + 0.25 * jitter.clamp(0.0, 1.0));
    scaled.max(1.0) as i64
}

/// The body receivers get; its raw bytes are what the signature covers.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    pub id: &'a str,
    pub event: &'a str,
    /// Unix seconds of this attempt (also in `X-Outfitter-Timestamp`).
    pub timestamp: i64,
    pub data: &'a serde_json::Value,
}

/// The HTTP client of deliveries: no redirects followed (a receiver cannot send the panel
/// elsewhere), the attempt's timeout, and the private-address policy in its resolver.
///
/// A system without CA certificates (a minimal Debian without `ca-certificates`) cannot
/// verify any https receiver: the panel says so once and still delivers to http ones, where
/// https attempts fail (and are retried, and listed) with the TLS error.
pub fn client(cfg: &Config) -> reqwest::Client {
    // reqwest is built without a TLS provider of its own (no aws-lc): ring, once per process.
    // An error means one is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = || {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .dns_resolver(target::Resolver {
                deny_private: cfg.deny_private,
            })
            .user_agent(concat!("Outfitter-Webhooks/", env!("CARGO_PKG_VERSION")))
    };
    match builder().build() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(
                error = %e,
                "webhook deliveries to https URLs will fail: the system's CA certificates \
                 could not be loaded (install ca-certificates)"
            );
            builder()
                .tls_certs_only([])
                .build()
                .expect("a client that trusts no certificate builds")
        }
    }
}

/// Runs the worker forever.
pub async fn run_worker(conn: RedisConn, key: Key, cfg: Config) {
    let http = client(&cfg);
    let slots = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    // An attempt that ends frees a slot: look for more work at once, not at the next poll.
    let freed = Arc::new(Notify::new());
    let mut conn = conn;
    loop {
        tokio::select! {
            () = QUEUED.notified() => {}
            () = freed.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
        if let Err(e) = claim_due(&mut conn, &http, &key, &cfg, &slots, &freed).await {
            tracing::warn!(error = %e, "webhook deliveries could not be claimed");
        }
    }
}

/// Starts an attempt for every due delivery a free slot can take.
async fn claim_due(
    conn: &mut RedisConn,
    http: &reqwest::Client,
    key: &Key,
    cfg: &Config,
    slots: &Arc<Semaphore>,
    freed: &Arc<Notify>,
) -> redis::RedisResult<()> {
    loop {
        let free = slots.available_permits();
        if free == 0 {
            return Ok(());
        }
        let now = now_ms();
        let due: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(redis_keys::WEBHOOK_DUE)
            .arg("-inf")
            .arg(now)
            .arg("LIMIT")
            .arg(0)
            .arg(free)
            .query_async(conn)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let mut started = 0;
        for id in due {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                return Ok(());
            };
            let lease_end = now + (cfg.timeout + LEASE_MARGIN).as_millis() as i64;
            let claimed: Option<(i64, u32)> = scripts::WEBHOOK_CLAIM
                .key(redis_keys::WEBHOOK_DUE)
                .key(redis_keys::webhook_delivery(&id))
                .arg(&id)
                .arg(now)
                .arg(lease_end)
                .invoke_async(conn)
                .await?;
            let Some((claim, attempt)) = claimed else {
                continue;
            };
            started += 1;
            let (mut conn, http, key, cfg) = (conn.clone(), http.clone(), key.clone(), cfg.clone());
            let freed = freed.clone();
            tokio::spawn(async move {
                attempt_one(&mut conn, &http, &key, &cfg, &id, claim, attempt).await;
                drop(permit);
                freed.notify_one();
            });
        }
        if started == 0 {
            // Every due id was claimed by another panel meanwhile.
            return Ok(());
        }
    }
}

/// What one attempt came to.
struct Outcome {
    delivered: bool,
    code: Option<u16>,
    error: Option<String>,
}

async fn attempt_one(
    conn: &mut RedisConn,
    http: &reqwest::Client,
    key: &Key,
    cfg: &Config,
    id: &str,
    claim: i64,
    attempt: u32,
) {
    let outcome = match prepare(conn, key, cfg, id).await {
        Ok(Some((delivery, url, secret))) => post(http, cfg, &delivery, &url, &secret).await,
        Ok(None) => return,
        Err(why) => Outcome {
            delivered: false,
            code: None,
            error: Some(why),
        },
    };
    let now = now_ms();
    let (status, next) = if outcome.delivered {
        (Status::Delivered, 0)
    } else if attempt >= MAX_ATTEMPTS {
        (Status::Failed, 0)
    } else {
        let wait = backoff_ms(cfg.retry_base_ms, attempt, sign::jitter_fraction());
        (Status::Pending, now + wait)
    };
    let res: redis::RedisResult<i64> = scripts::WEBHOOK_FINISH
        .key(redis_keys::WEBHOOK_DUE)
        .key(redis_keys::webhook_delivery(id))
        .arg(id)
        .arg(claim)
        .arg(status.as_str())
        .arg(now)
        .arg(next)
        .arg(outcome.code.map(|c| c.to_string()).unwrap_or_default())
        .arg(outcome.error.as_deref().unwrap_or(""))
        .invoke_async(conn)
        .await;
    match res {
        Ok(1) => tracing::info!(delivery = id, attempt, status = status.as_str(),
            code = ?outcome.code, error = outcome.error.as_deref().unwrap_or(""), "webhook attempt"),
        Ok(_) => tracing::info!(
            delivery = id,
            "webhook attempt ended after its lease; the newer claim wins"
        ),
        // The lease runs out and the delivery is attempted again: at least once, not lost.
        Err(e) => {
            tracing::warn!(delivery = id, error = %e, "webhook attempt could not be recorded")
        }
    }
}

/// The delivery, its webhook's URL and secret; `Ok(None)` when the delivery is gone; `Err`
/// with the reason when it cannot be sent (webhook deleted, secret unreadable).
async fn prepare(
    conn: &mut RedisConn,
    key: &Key,
    cfg: &Config,
    id: &str,
) -> Result<Option<(Delivery, String, String)>, String> {
    let Some(delivery) = store::delivery(conn, id).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let hook = store::load(conn, &delivery.webhook_id)
        .await
        .map_err(|e| e.to_string())?;
    target::check_url(&hook.url, cfg.deny_private).map_err(|e| e.to_string())?;
    let secret = store::secret(key, &hook).map_err(|e| e.to_string())?;
    Ok(Some((delivery, hook.url, secret)))
}

async fn post(
    http: &reqwest::Client,
    cfg: &Config,
    d: &Delivery,
    url: &str,
    secret: &str,
) -> Outcome {
    let timestamp = now_ms() / 1000;
    let body = serde_json::to_vec(&Payload {
        id: &d.id,
        event: &d.event,
        timestamp,
        data: &d.data,
    })
    .expect("a payload serializes");
    let sent = http
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Outfitter-Signature", sign::signature(secret, &body))
        .header("X-Outfitter-Delivery", &d.id)
        .header("X-Outfitter-Timestamp", timestamp.to_string())
        .header("X-Outfitter-Event", &d.event)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => Outcome {
            delivered: true,
            code: Some(resp.status().as_u16()),
            error: None,
        },
        Ok(resp) => Outcome {
            delivered: false,
            code: Some(resp.status().as_u16()),
            error: Some(format!("the receiver answered {}", resp.status())),
        },
        Err(e) if e.is_timeout() => Outcome {
            delivered: false,
            code: None,
            error: Some(format!("no answer within {:?}", cfg.timeout)),
        },
        Err(e) => Outcome {
            delivered: false,
            code: None,
            error: Some(error_chain(&e)),
        },
    }
}

/// An error with its causes, which say what actually failed (refused, reset, DNS).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_sixty_times_it() {
        let base = 60_000;
        assert_eq!(backoff_ms(base, 1, 0.0), 60_000);
        assert_eq!(backoff_ms(base, 2, 0.0), 120_000);
        assert_eq!(backoff_ms(base, 7, 0.0), 3_600_000);
        assert_eq!(backoff_ms(base, 30, 0.0), 3_600_000);
        assert!(backoff_ms(base, 1, 0.999) < 75_000);
    }

    #[tokio::test]
    async fn https_is_compiled_in() {
        let cfg = Config {
            timeout: Duration::from_secs(5),
            retry_base_ms: 1,
            deny_private: false,
            concurrency: 1,
        };
        // Port 1 refuses: an https URL gets as far as connecting (a build without TLS would
        // refuse the scheme before that).
        let e = client(&cfg)
            .post("https://127.0.0.1:1/")
            .send()
            .await
            .unwrap_err();
        assert!(e.is_connect(), "{e:?}");
    }

    #[test]
    fn retries_cover_at_least_a_day() {
        let shortest: i64 = (1..MAX_ATTEMPTS).map(|a| backoff_ms(60_000, a, 0.0)).sum();
        assert!(shortest >= 86_400_000, "{shortest}");
    }
}
