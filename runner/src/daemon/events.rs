//! One writer task per running job: events in order, batched (one round trip per batch, so
//! 100k lines take seconds), spooled to the outbox while Redis is unreachable.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Shared;
use super::store::{self, Outgoing};
use crate::metrics::RedisOp;

/// Events per round trip.
pub const BATCH: usize = 512;
/// Events waiting for the writer.
const QUEUE: usize = 2048;

/// Sends a job's events to Redis, in order.
#[derive(Debug)]
pub struct EventWriter {
    tx: mpsc::Sender<Outgoing>,
    task: JoinHandle<()>,
}

impl EventWriter {
    /// A writer for `job_id`, whose next event gets sequence number `next_seq` when known.
    pub fn start(shared: Arc<Shared>, job_id: String, next_seq: Option<u64>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Outgoing>(QUEUE);
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            let mut next_seq = next_seq;
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(o) => batch.push(o),
                        Err(_) => break,
                    }
                }
                deliver(&shared, &job_id, &mut batch, &mut next_seq).await;
                batch.clear();
            }
        });
        EventWriter { tx, task }
    }

    pub async fn send(&self, o: Outgoing) {
        // The task only ends when the channel closes.
        let _ = self.tx.send(o).await;
    }

    /// Waits until every event sent is in Redis or in the outbox.
    pub async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// Appends a batch, or spools it. `next_seq` is the sequence number the next event will get
/// while this writer is the job's only appender (it is, while the job runs): spooled events
/// carry it so that a batch Redis applied without answering is not appended twice.
async fn deliver(
    shared: &Shared,
    job_id: &str,
    batch: &mut [Outgoing],
    next_seq: &mut Option<u64>,
) {
    if let Some(n) = *next_seq {
        for (i, o) in batch.iter_mut().enumerate() {
            o.seq = Some(n + i as u64);
        }
    }
    if !shared.outbox.is_spooling(job_id).await {
        let sent = match shared.redis().await {
            Ok(mut conn) => store::append_events(&mut conn, &shared.names, job_id, batch)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(seqs) => {
                *next_seq = seqs.last().map(|s| s + 1);
                return;
            }
            Err(e) => {
                shared.metrics.redis_error(RedisOp::Events);
                tracing::warn!(job = job_id, error = %e, "redis unavailable; events go to the outbox")
            }
        }
    }
    *next_seq = next_seq.map(|n| n + batch.len() as u64);
    if let Err(e) = shared.outbox.spool(job_id, batch).await {
        // Nowhere to put them: the per-job log file still has the lines.
        tracing::error!(job = job_id, error = %e, "cannot write the outbox; events lost");
    }
}
