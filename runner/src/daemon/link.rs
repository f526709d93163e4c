//! The daemon's one multiplexed Redis connection (to the one server, or a cluster connection):
//! every task sends on a clone of it, so a call costs its own round trip and nothing else (a
//! pool's check-out sends `PING` first). A connection that failed is dropped and the next call
//! connects again.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis::aio::ConnectionLike;
use deadpool_redis::redis::{self, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use outfitter_redis::{RedisConn, RedisTarget, Timeouts};
use tokio::sync::Mutex;

/// Connects on first use and again after a failure.
#[derive(Debug)]
pub struct RedisLink {
    target: RedisTarget,
    timeout: Duration,
    /// The live connection and its generation (a failed call drops only the one it used).
    current: Mutex<Option<(u64, RedisConn)>>,
    generation: std::sync::atomic::AtomicU64,
}

impl RedisLink {
    /// Calls and connecting time out after `timeout`.
    pub fn new(target: RedisTarget, timeout: Duration) -> Arc<Self> {
        Arc::new(RedisLink {
            target,
            timeout,
            current: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A handle on the live connection, connecting first when there is none.
    pub async fn get(self: &Arc<Self>) -> RedisResult<Conn> {
        let mut current = self.current.lock().await;
        if let Some((generation, conn)) = current.as_ref() {
            return Ok(Conn {
                link: self.clone(),
                generation: *generation,
                conn: conn.clone(),
            });
        }
        let timeouts = Timeouts {
            connect: self.timeout,
            response: Some(self.timeout),
        };
        let conn = self.target.connect_plain(timeouts).await?;
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *current = Some((generation, conn.clone()));
        Ok(Conn {
            link: self.clone(),
            generation,
            conn,
        })
    }

    async fn forget(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }
}

/// Whether a failed call means the connection is gone (rather than a refused command).
fn broken(e: &RedisError) -> bool {
    e.is_unrecoverable_error() || e.is_io_error() || e.is_timeout() || e.is_connection_dropped()
}

/// One task's handle on the shared connection.
pub struct Conn {
    link: Arc<RedisLink>,
    generation: u64,
    conn: RedisConn,
}

impl Conn {
    async fn check<T>(&self, r: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &r
            && broken(e)
        {
            self.link.forget(self.generation).await;
        }
        r
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let r = self.conn.req_packed_command(cmd).await;
            self.check(r).await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let r = self.conn.req_packed_commands(pipeline, offset, count).await;
            self.check(r).await
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// Where the outbox takes its connection from: the daemon's [`RedisLink`], or a pool of its
/// own (a test that flushes an outbox without a daemon).
pub trait Connections: Sync {
    type Conn: ConnectionLike + Send + Sync;
    fn connection(&self) -> impl std::future::Future<Output = RedisResult<Self::Conn>> + Send;
}

impl Connections for Arc<RedisLink> {
    type Conn = Conn;
    async fn connection(&self) -> RedisResult<Conn> {
        self.get().await
    }
}

impl Connections for deadpool_redis::Pool {
    type Conn = deadpool_redis::Connection;
    async fn connection(&self) -> RedisResult<deadpool_redis::Connection> {
        self.get().await.map_err(|e| match e {
            deadpool_redis::PoolError::Backend(e) => e,
            other => RedisError::from((redis::ErrorKind::Io, "redis pool", other.to_string())),
        })
    }
}
