//! Watching job events straight from Redis: a pattern subscription on the jobs' live
//! channels (`A:job:<id>:live`), each event stamped with the moment it arrived. The runner
//! publishes a job's terminal state in the same Lua step that writes the result, so the
//! arrival of that event is the moment the result is visible to anyone.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use outfitter_contract::event::{Event, EventBody};
use outfitter_contract::redis_keys::{AgentRedisKeys, parse_job_channel};
use tokio::sync::mpsc;

/// One event as the bench saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub at: Instant,
    pub wall: SystemTime,
    pub job_id: String,
    pub event: Event,
}

impl Seen {
    /// Whether this is the job's terminal state event.
    pub(crate) fn is_terminal(&self) -> bool {
        matches!(&self.event.body, EventBody::State { state, .. } if state.is_terminal())
    }

    /// The state this event announces, if it is a state event.
    pub(crate) fn state(&self) -> Option<&'static str> {
        match &self.event.body {
            EventBody::State { state, .. } => Some(state.as_str()),
            _ => None,
        }
    }
}

/// A live subscription; events queue up in memory until read.
#[derive(Debug)]
pub(crate) struct Watcher {
    rx: mpsc::UnboundedReceiver<Result<Seen, String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Subscribes to the live channel of every job of the agents matching `agent_pattern`
    /// (a Redis glob, e.g. `bench-d1` or `bench-t*`). Returns once the subscription is active.
    pub(crate) async fn start(client: &redis::Client, agent_pattern: &str) -> Result<Self> {
        let pattern = AgentRedisKeys::new(agent_pattern).job_channel("*");
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.psubscribe(&pattern).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut stream = pubsub.into_on_message();
            while let Some(msg) = stream.next().await {
                let (at, wall) = (Instant::now(), SystemTime::now());
                let channel = msg.get_channel_name().to_owned();
                let parsed = parse_job_channel(&channel)
                    .map(|(_, job)| job.to_owned())
                    .ok_or_else(|| format!("unexpected channel {channel}"))
                    .and_then(|job_id| {
                        serde_json::from_slice::<Event>(msg.get_payload_bytes())
                            .map(|event| Seen {
                                at,
                                wall,
                                job_id,
                                event,
                            })
                            .map_err(|e| format!("event on {channel} does not parse: {e}"))
                    });
                if tx.send(parsed).is_err() {
                    break;
                }
            }
        });
        Ok(Self { rx, task })
    }

    /// The next event, waiting at most `limit`.
    pub(crate) async fn next(&mut self, limit: Duration) -> Result<Seen> {
        match tokio::time::timeout(limit, self.rx.recv()).await {
            Err(_) => bail!("no job event within {limit:?}"),
            Ok(None) => bail!("the Redis subscription ended"),
            Ok(Some(r)) => r.map_err(anyhow::Error::msg),
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
