//! The local outbox: what Redis has not acknowledged yet, on disk, so that a Redis outage (or
//! a runner crash) loses nothing. A result comes here only when applying it to Redis failed
//! (or its job's events are spooled), and is then synced to disk; spooled events always are.
//!
//! Per job, `<job>.events.jsonl` holds events that could not be appended (in order; once the
//! file exists every later event of the job goes there too, to keep the order), with
//! `<job>.events.done` counting the lines already delivered; `<job>.result.json` holds the
//! final result. Flushing delivers the events, then applies the result, then deletes the files.
//! An event Redis already holds under the sequence number it was expected to get (a batch
//! applied whose reply was lost) is not appended again. Without that expectation (the very
//! first batch of a job failed) delivery is at least once.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use outfitter_contract::redis_keys::AgentRedisKeys;
use tokio::sync::Mutex;

use super::link::Connections;
use super::store::{self, JobResult, Outgoing};

/// Events delivered per round trip when flushing.
pub const FLUSH_BATCH: usize = 512;

/// Why a flush stopped.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("redis: {0}")]
    Redis(#[from] deadpool_redis::redis::RedisError),
}

impl OutboxError {
    /// Whether Redis failed (rather than the disk).
    pub fn is_redis(&self) -> bool {
        !matches!(self, OutboxError::Io { .. })
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The outbox directory; one lock serializes every file operation and flush.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    lock: Mutex<()>,
}

impl Outbox {
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Outbox {
            dir,
            lock: Mutex::new(()),
        })
    }

    fn events_path(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.events.jsonl"))
    }

    fn done_path(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.events.done"))
    }

    fn result_path(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.result.json"))
    }

    /// Whether the job's events are being spooled (then new ones must be spooled too).
    pub async fn is_spooling(&self, job: &str) -> bool {
        let _g = self.lock.lock().await;
        self.events_path(job).exists()
    }

    /// Appends events to the job's spool file (and syncs it).
    pub async fn spool(&self, job: &str, batch: &[Outgoing]) -> Result<(), OutboxError> {
        let _g = self.lock.lock().await;
        let path = self.events_path(job);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut text = String::new();
        for o in batch {
            text.push_str(&serde_json::to_string(o).expect("events serialize"));
            text.push('\n');
        }
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(io_err(&path))
    }

    /// Writes the job's result atomically (temp file, rename), for a result Redis did not take
    /// (or that must follow spooled events); [`Outbox::make_durable`] then syncs it (see
    /// docs/runner.md, "Nothing lost").
    pub async fn put_result(&self, result: &JobResult) -> Result<(), OutboxError> {
        let _g = self.lock.lock().await;
        let path = self.result_path(&result.job_id);
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec(result).expect("results serialize");
        (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            std::fs::rename(&tmp, &path)
        })()
        .map_err(io_err(&path))
    }

    /// Syncs the job's result file and the outbox directory to disk, for a result that must
    /// wait for Redis (it then survives a host crash too). On a blocking thread: an `fsync`
    /// takes milliseconds on a busy disk.
    pub async fn make_durable(&self, job: &str) -> Result<(), OutboxError> {
        let _g = self.lock.lock().await;
        let path = self.result_path(job);
        let dir = self.dir.clone();
        let synced = path.clone();
        tokio::task::spawn_blocking(move || {
            if synced.exists() {
                std::fs::File::open(&synced)?.sync_all()?;
            }
            std::fs::File::open(&dir)?.sync_all()
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        .map_err(io_err(&path))
    }

    /// Job ids with anything pending.
    pub fn pending_jobs(&self) -> Vec<String> {
        let mut jobs: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".events.jsonl")
                    .or_else(|| name.strip_suffix(".result.json"))
                    .map(str::to_owned)
            })
            .collect();
        jobs.sort();
        jobs.dedup();
        jobs
    }

    /// Whether a result is waiting for this job.
    pub fn has_result(&self, job: &str) -> bool {
        self.result_path(job).exists()
    }

    /// Delivers the job's spooled events, then (if `with_result`) its result.
    pub async fn flush_job(
        &self,
        redis: &impl Connections,
        names: &AgentRedisKeys,
        job: &str,
        with_result: bool,
    ) -> Result<(), OutboxError> {
        let _g = self.lock.lock().await;
        let events = self.events_path(job);
        if events.exists() {
            let done_path = self.done_path(job);
            let mut done: usize = std::fs::read_to_string(&done_path)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            let file = std::fs::File::open(&events).map_err(io_err(&events))?;
            let mut lines = BufReader::new(file).lines().skip(done);
            loop {
                let mut batch = Vec::with_capacity(FLUSH_BATCH);
                for line in lines.by_ref().take(FLUSH_BATCH) {
                    let line = line.map_err(io_err(&events))?;
                    match serde_json::from_str::<Outgoing>(&line) {
                        Ok(o) => batch.push(o),
                        // A torn last line (crash while writing) is skipped.
                        Err(e) => {
                            tracing::warn!(job, error = %e, "skipping unreadable outbox line")
                        }
                    }
                }
                if batch.is_empty() {
                    break;
                }
                let mut conn = redis.connection().await?;
                let count = batch.len();
                let there = store::already_appended(&mut conn, names, job, &batch).await?;
                let missing: Vec<Outgoing> = batch
                    .into_iter()
                    .zip(there)
                    .filter(|(_, there)| !there)
                    .map(|(o, _)| o)
                    .collect();
                if !missing.is_empty() {
                    store::append_events(&mut conn, names, job, &missing).await?;
                }
                done += count;
                std::fs::write(&done_path, done.to_string()).map_err(io_err(&done_path))?;
            }
            std::fs::remove_file(&events).map_err(io_err(&events))?;
            let _ = std::fs::remove_file(&done_path);
        }
        let result_path = self.result_path(job);
        if with_result && result_path.exists() {
            let text = std::fs::read(&result_path).map_err(io_err(&result_path))?;
            match serde_json::from_slice::<JobResult>(&text) {
                Ok(result) => {
                    let mut conn = redis.connection().await?;
                    store::apply_result(&mut conn, names, &result).await?;
                }
                Err(e) => tracing::error!(job, error = %e, "unreadable outbox result dropped"),
            }
            std::fs::remove_file(&result_path).map_err(io_err(&result_path))?;
        }
        Ok(())
    }

    /// Flushes every pending job whose result is complete (jobs still running keep spooling).
    pub async fn flush_finished(
        &self,
        redis: &impl Connections,
        names: &AgentRedisKeys,
        running: &[String],
    ) -> Result<usize, OutboxError> {
        let mut flushed = 0;
        for job in self.pending_jobs() {
            if running.contains(&job) {
                // Catch up on the spool; the writer keeps appending under the lock.
                self.flush_job(redis, names, &job, false).await?;
            } else {
                self.flush_job(redis, names, &job, true).await?;
                flushed += 1;
            }
        }
        Ok(flushed)
    }
}
