//! Every agent's status as read at most [`MAX_AGE`] ago, for the app page's target
//! picker.
//!
//! Reading the statuses takes two round trips and a parse of every heartbeat; the app page
//! did that on every request and spent almost half its time there (docs/benchmarks.md,
//! figure 4). The picker only offers servers: a submission is checked against Redis
//! again (`jobs::enqueue`), so an offer a second old costs nothing but a refused submit.
//! This panel's own changes to registrations ([`Snapshot::invalidate`]) show at once;
//! another panel's, and heartbeats, within [`MAX_AGE`].

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use outfitter_redis::RedisConn;

use super::AgentStatus;

/// How old a snapshot may be when it is handed out.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Statuses read at one moment.
type Taken = (Instant, Arc<[AgentStatus]>);

/// The shared snapshot; one per panel process.
#[derive(Debug, Default)]
pub struct Snapshot {
    taken: RwLock<Option<Taken>>,
    /// Bumped by every invalidation, so a read that began before one is not kept.
    generation: std::sync::atomic::AtomicU64,
    /// One refresh at a time: requests arriving meanwhile wait for its result instead of
    /// each reading the same statuses.
    refresh: tokio::sync::Mutex<()>,
}

impl Snapshot {
    /// The statuses, read again when the snapshot is older than [`MAX_AGE`].
    pub async fn get(&self, conn: &mut RedisConn) -> redis::RedisResult<Arc<[AgentStatus]>> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let _one_at_a_time = self.refresh.lock().await;
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let generation = self.generation();
        let started = Instant::now();
        let read: Arc<[AgentStatus]> = super::list(conn).await?.into();
        let mut taken = self.taken.write().unwrap_or_else(PoisonError::into_inner);
        if self.generation() == generation {
            *taken = Some((started, Arc::clone(&read)));
        }
        Ok(read)
    }

    /// Forgets the snapshot: the next [`Snapshot::get`] reads Redis. Called after this
    /// panel registers, relabels, rotates or removes an agent.
    pub fn invalidate(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        *self.taken.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn fresh(&self) -> Option<Arc<[AgentStatus]>> {
        let taken = self.taken.read().unwrap_or_else(PoisonError::into_inner);
        taken
            .as_ref()
            .filter(|(at, _)| at.elapsed() < MAX_AGE)
            .map(|(_, statuses)| Arc::clone(statuses))
    }
}
