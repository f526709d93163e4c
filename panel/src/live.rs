//! Live job events: ONE pubsub connection per panel process (`PSUBSCRIBE` on every job
//! channel), fanned out to the SSE clients of each job through tokio broadcast channels.
//!
//! Pubsub is lossy (Redis drops a slow subscriber silently; a reconnect misses what was
//! published meanwhile), so it is only a wake-up: every SSE client also re-reads the job's
//! stream after a gap in sequence numbers, after a lag, after a resubscription (`resync`) and
//! on its keepalive tick. The stream is the truth; pubsub makes it fast.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use outfitter_contract::redis_keys;
use outfitter_redis::RedisTarget;
use tokio::sync::broadcast;

/// Buffered events per job channel before a slow SSE client lags (and re-reads the stream).
const PER_JOB_CAPACITY: usize = 256;
/// Buffered events on the all-jobs channel (metrics).
const ALL_CAPACITY: usize = 4096;
/// First wait before resubscribing; doubles on each quick failure, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A subscription that lived this long was healthy: the next failure starts the backoff over.
const HEALTHY_FOR: Duration = Duration::from_secs(10);

/// One event as published by `APPEND_EVENT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEvent {
    pub agent_id: String,
    pub job_id: String,
    pub seq: u64,
    /// The event JSON exactly as stored in the stream.
    pub json: String,
}

/// The fan-out point; cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    jobs: Mutex<HashMap<String, broadcast::Sender<Arc<LiveEvent>>>>,
    resync: broadcast::Sender<()>,
    all: broadcast::Sender<Arc<LiveEvent>>,
    connected: AtomicBool,
}

/// What one SSE client listens to.
#[derive(Debug)]
pub struct Subscription {
    pub events: broadcast::Receiver<Arc<LiveEvent>>,
    pub resync: broadcast::Receiver<()>,
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveHub {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                jobs: Mutex::new(HashMap::new()),
                resync: broadcast::channel(16).0,
                all: broadcast::channel(ALL_CAPACITY).0,
                connected: AtomicBool::new(false),
            }),
        }
    }

    /// Listens to one job. Subscribe BEFORE reading the stream, so nothing falls in between.
    pub fn subscribe(&self, job_id: &str) -> Subscription {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let events = jobs
            .entry(job_id.to_owned())
            .or_insert_with(|| broadcast::channel(PER_JOB_CAPACITY).0)
            .subscribe();
        Subscription {
            events,
            resync: self.inner.resync.subscribe(),
        }
    }

    /// Every event of every job (for metrics).
    pub fn subscribe_all(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.inner.all.subscribe()
    }

    /// Whether the pubsub subscription is up.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Number of jobs with at least one listener.
    pub fn watched_jobs(&self) -> usize {
        self.inner.jobs.lock().map(|j| j.len()).unwrap_or(0)
    }

    /// Delivers one published message.
    pub fn publish(&self, event: LiveEvent) {
        let event = Arc::new(event);
        let _ = self.inner.all.send(event.clone());
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = jobs.get(&event.job_id)
            && tx.send(event.clone()).is_err()
        {
            jobs.remove(&event.job_id);
        }
    }

    /// Tells every client to re-read its stream (after a resubscription).
    pub fn resync(&self) {
        let _ = self.inner.resync.send(());
    }

    fn prune(&self) {
        let mut jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.retain(|_, tx| tx.receiver_count() > 0);
    }
}

/// Parses a pubsub message from a job channel.
pub fn parse_message(channel: &str, payload: &str) -> Option<LiveEvent> {
    let (agent, job) = redis_keys::parse_job_channel(channel)?;
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    let seq = serde_json::from_str::<Seq>(payload).ok()?.seq;
    Some(LiveEvent {
        agent_id: agent.to_owned(),
        job_id: job.to_owned(),
        seq,
        json: payload.to_owned(),
    })
}

/// Runs the subscription forever, reconnecting with backoff. Spawn it once per process;
/// `ping_every` is how often the subscription is pinged and idle job channels are pruned.
/// Subscribes through the one server, or through a cluster's seed nodes in turn: classic
/// pubsub on a cluster delivers a `PUBLISH` made on any node to subscribers on every node, so
/// one reachable node is enough, and the next one takes over when it fails.
pub async fn run(target: RedisTarget, hub: LiveHub, ping_every: Duration) {
    let clients = match target.node_clients() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no pubsub: the Redis URLs do not make clients");
            return;
        }
    };
    let mut backoff = FIRST_BACKOFF;
    for client in clients.iter().cycle() {
        let started = std::time::Instant::now();
        match subscribe_once(client, &hub, ping_every).await {
            Ok(()) => tracing::warn!("pubsub subscription ended; resubscribing"),
            Err(e) => tracing::warn!(error = %e, "pubsub subscription failed; retrying"),
        }
        hub.inner.connected.store(false, Ordering::Relaxed);
        if started.elapsed() >= HEALTHY_FOR {
            backoff = FIRST_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe_once(
    client: &redis::Client,
    hub: &LiveHub,
    ping_every: Duration,
) -> redis::RedisResult<()> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(redis_keys::ALL_JOB_CHANNELS).await?;
    let (mut sink, mut stream) = pubsub.split();
    hub.inner.connected.store(true, Ordering::Relaxed);
    // Anything published while we were away is only in the streams: clients re-read.
    hub.resync();
    let mut tick = tokio::time::interval(ping_every);
    tick.tick().await;
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else { return Ok(()) };
                let payload: String = match msg.get_payload() {
                    Ok(p) => p,
                    Err(_) => continue,
                };
                if let Some(ev) = parse_message(msg.get_channel_name(), &payload) {
                    hub.publish(ev);
                }
            }
            _ = tick.tick() => {
                hub.prune();
                // In subscribed mode (RESP2) Redis answers a PING with `["pong", ""]`, not
                // `PONG`: any reply proves the connection alive, so take it untyped.
                match tokio::time::timeout(Duration::from_secs(5), sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_job_channels_are_parsed() {
        let ch = redis_keys::AgentRedisKeys::new("web-1").job_channel("j1");
        let ev = parse_message(
            &ch,
            r#"{"seq":7,"ts":1,"attempt":1,"type":"progress","percent":5,"message":""}"#,
        )
        .unwrap();
        assert_eq!(
            (ev.agent_id.as_str(), ev.job_id.as_str(), ev.seq),
            ("web-1", "j1", 7)
        );
        assert!(parse_message("outfitter:agent:{a}:control", "{\"seq\":1}").is_none());
        assert!(parse_message(&ch, "not json").is_none());
    }

    #[tokio::test]
    async fn events_reach_only_the_subscribers_of_their_job() {
        let hub = LiveHub::new();
        let mut a = hub.subscribe("a");
        let mut b = hub.subscribe("b");
        hub.publish(LiveEvent {
            agent_id: "x".into(),
            job_id: "a".into(),
            seq: 1,
            json: "{}".into(),
        });
        assert_eq!(a.events.recv().await.unwrap().seq, 1);
        assert!(b.events.try_recv().is_err());
        drop(a);
        hub.prune();
        assert_eq!(hub.watched_jobs(), 1);
    }
}
