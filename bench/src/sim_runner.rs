//! A stand-in for many runners at once: it takes each job queued for the agents matching a
//! pattern the moment the job's `queued` event is published, and finishes it with the
//! contract's own scripts and record writes, as a runner whose script printed one line and
//! exited 0 records it: `LMOVE` queue → processing (the runner's `BLMOVE`), the `running`
//! event with [`write::running`] and the output line ([`scripts::APPEND_EVENTS`]), then the
//! result with [`write::finished`] ([`scripts::FINISH_ATTEMPT`]). The panel reads real job
//! records; nothing of the panel is imitated. It does not check signatures (it has no agent
//! keys) and runs no script: a job ends as soon as its record is written.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use futures_util::StreamExt;
use outfitter_contract::clock::now_ms;
use outfitter_contract::envelope::{Envelope, SignedJob};
use outfitter_contract::event::{Event, EventBody, OutputStream};
use outfitter_contract::job::{JobState, write};
use outfitter_contract::redis_keys::{AgentRedisKeys, parse_job_channel};
use outfitter_contract::scripts;
use redis::Script;
use redis::aio::MultiplexedConnection;
use tokio::sync::{Semaphore, mpsc};

/// The runner's scripts, loaded once (`EVALSHA`, reloaded on `NOSCRIPT`).
pub(crate) static APPEND_EVENTS: LazyLock<Script> =
    LazyLock::new(|| Script::new(scripts::APPEND_EVENTS));
static FINISH_ATTEMPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::FINISH_ATTEMPT));

/// The line every simulated job prints.
const LINE: &str = "installed";

/// One job the simulated runner finished, with wall-clock moments.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub agent_id: String,
    /// When its `queued` event arrived (the enqueue script publishes it in the same step
    /// that pushes the job onto the queue).
    pub queued: SystemTime,
    /// When its result was in Redis (the finish script returned).
    pub ended: SystemTime,
}

/// A running simulated runner; dropping it stops it.
#[derive(Debug)]
pub(crate) struct SimRunner {
    rx: mpsc::UnboundedReceiver<Result<Finished, String>>,
    task: tokio::task::JoinHandle<()>,
}

impl SimRunner {
    /// Subscribes to the job channels of the agents matching `agent_pattern` (a Redis glob)
    /// and finishes their jobs, at most `workers` at a time. Returns once subscribed.
    pub(crate) async fn start(
        client: &redis::Client,
        agent_pattern: &str,
        workers: usize,
    ) -> Result<Self> {
        let pattern = AgentRedisKeys::new(agent_pattern).job_channel("*");
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.psubscribe(&pattern).await?;
        let conn = client.get_multiplexed_async_connection().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let slots = Arc::new(Semaphore::new(workers));
        let task = tokio::spawn(async move {
            let mut stream = pubsub.into_on_message();
            while let Some(msg) = stream.next().await {
                let queued = SystemTime::now();
                let Some((agent, job)) = parse_job_channel(msg.get_channel_name())
                    .map(|(a, j)| (a.to_owned(), j.to_owned()))
                else {
                    continue;
                };
                let is_queued =
                    serde_json::from_slice::<Event>(msg.get_payload_bytes()).is_ok_and(|e| {
                        matches!(
                            e.body,
                            EventBody::State {
                                state: JobState::Queued,
                                ..
                            }
                        )
                    });
                if !is_queued {
                    continue; // its own running/log/succeeded events come back here too
                }
                let permit = slots.clone().acquire_owned().await.expect("never closed");
                let (mut conn, tx) = (conn.clone(), tx.clone());
                tokio::spawn(async move {
                    let done = finish(&mut conn, &agent)
                        .await
                        .map(|ended| Finished {
                            agent_id: agent.clone(),
                            queued,
                            ended,
                        })
                        .map_err(|e| format!("simulated job {job} on {agent}: {e:#}"));
                    let _ = tx.send(done);
                    drop(permit);
                });
            }
        });
        Ok(Self { rx, task })
    }

    /// The next `n` finished jobs, waiting at most `limit` for each.
    pub(crate) async fn collect(&mut self, n: usize, limit: Duration) -> Result<Vec<Finished>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match tokio::time::timeout(limit, self.rx.recv()).await {
                Err(_) => bail!(
                    "{} of {n} simulated jobs finished; none more within {limit:?}",
                    out.len()
                ),
                Ok(None) => bail!("the simulated runner's subscription ended"),
                Ok(Some(r)) => out.push(r.map_err(anyhow::Error::msg)?),
            }
        }
        Ok(out)
    }
}

impl Drop for SimRunner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Takes the oldest job of `agent`'s queue and records its attempt as a runner does; the
/// moment the result was written.
async fn finish(conn: &mut MultiplexedConnection, agent: &str) -> Result<SystemTime> {
    let names = AgentRedisKeys::new(agent);
    let (wire, env) = take_oldest(conn, &names).await?;
    // The oldest job of the queue, as a runner takes it; with one job per agent at a time
    // (all the figures queue) it is the one whose event was seen.
    let job = env.job_id.as_str();

    let started_at = now_ms();
    let running = Event::state(started_at, env.attempt, JobState::Running, None, None);
    let line = Event::new(
        now_ms(),
        env.attempt,
        EventBody::Log {
            stream: OutputStream::Stdout,
            line: LINE.to_owned(),
        },
    );
    let mut inv = APPEND_EVENTS.prepare_invoke();
    inv.key(names.job(job))
        .key(names.job_events(job))
        .arg(names.job_channel(job));
    let running_fields = write::running(env.attempt, started_at);
    inv.arg(running.to_unsequenced_json())
        .arg(running_fields.len());
    for (k, v) in &running_fields {
        inv.arg(*k).arg(v);
    }
    inv.arg(line.to_unsequenced_json()).arg(0);
    let _: Vec<u64> = inv.invoke_async(conn).await?;

    finish_succeeded(conn, &names, job, &wire, env.attempt, &[LINE.to_owned()]).await?;
    Ok(SystemTime::now())
}

/// Moves the oldest job of an agent's queue to its processing list, as a runner takes it: the
/// job as it was on the wire, and its envelope.
pub(crate) async fn take_oldest(
    conn: &mut MultiplexedConnection,
    names: &AgentRedisKeys,
) -> Result<(String, Envelope)> {
    let wire: Option<String> = redis::cmd("LMOVE")
        .arg(names.queue())
        .arg(names.processing())
        .arg("RIGHT")
        .arg("LEFT")
        .query_async(conn)
        .await?;
    let wire = wire.context("the queue is empty")?;
    let env: Envelope = serde_json::from_str(&SignedJob::from_wire(&wire)?.payload)?;
    Ok((wire, env))
}

/// Ends attempt `attempt` of `job` (taken as `wire`) `succeeded` with exit code 0, as the
/// runner's `FINISH_ATTEMPT` step does, `last_lines` kept in the record.
pub(crate) async fn finish_succeeded(
    conn: &mut MultiplexedConnection,
    names: &AgentRedisKeys,
    job: &str,
    wire: &str,
    attempt: u32,
    last_lines: &[String],
) -> Result<()> {
    let finished_at = now_ms();
    let fields = write::finished(
        &write::AttemptEnd {
            attempt,
            finished_at,
            exit_code: Some(0),
            last_lines,
            survivors: &[],
        },
        &write::Next::End {
            state: JobState::Succeeded,
            reason: None,
        },
    );
    let result = Event::state(finished_at, attempt, JobState::Succeeded, Some(0), None);
    let call = scripts::finish_attempt(
        names,
        job,
        &scripts::AttemptEnd {
            event_json: &result.to_unsequenced_json(),
            processing_wire: wire,
            finished_at,
            retry: None,
        },
        &fields,
    );
    let mut inv = FINISH_ATTEMPT.prepare_invoke();
    for k in &call.keys {
        inv.key(k);
    }
    for a in &call.args {
        inv.arg(a);
    }
    let applied: i64 = inv.invoke_async(conn).await?;
    ensure!(applied == 1, "the result of {job} had been applied before");
    Ok(())
}
