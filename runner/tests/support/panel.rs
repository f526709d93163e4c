//! A minimal panel: signs jobs for one agent at one key generation and enqueues them with the
//! contract's enqueue write (the record's field list and the `ENQUEUE` script the real panel
//! sends, after the same index entries), and reads job records and events back.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use outfitter_contract::envelope::{ENVELOPE_VERSION, Envelope};
use outfitter_contract::event::Event;
use outfitter_contract::job::{JobRecord, JobState, field, write};
use outfitter_contract::keys::{AgentCrypto, Key, PanelSecret};
use outfitter_contract::lifecycle::LifecycleOrder;
use outfitter_contract::manifest::{RetryPolicy, load_bundle};
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_contract::{scripts, seal};
use serde_json::Value;

use super::{bundles_dir, wait_for};

pub(crate) const AGENT: &str = "test-agent";

/// The contract's enqueue script, loaded once (called by `EVALSHA`), as the panel holds it.
static ENQUEUE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(scripts::ENQUEUE));

pub(crate) use outfitter_contract::clock::now_ms;

pub(crate) struct Panel {
    pub agent_id: String,
    /// The agent's key generation (0 until a rotation), as its registration would hold it.
    pub generation: u32,
    pub secret: PanelSecret,
    pub keys: AgentCrypto,
    pub names: AgentRedisKeys,
    pub redis_url: String,
}

/// A job as enqueued.
#[derive(Debug, Clone)]
pub(crate) struct Enqueued {
    pub job_id: String,
    pub envelope: Envelope,
    pub wire: String,
}

impl Enqueued {
    /// What a test put on the queue itself: `wire` (maybe not `envelope` signed as it is).
    #[allow(dead_code)] // Not every test binary that includes the support module uses it.
    pub(crate) fn of(envelope: Envelope, wire: String) -> Self {
        Enqueued {
            job_id: envelope.job_id.clone(),
            envelope,
            wire,
        }
    }
}

impl Panel {
    pub(crate) fn new(redis_url: &str) -> Self {
        Self::for_agent(redis_url, AGENT)
    }

    pub(crate) fn for_agent(redis_url: &str, agent_id: &str) -> Self {
        Self::at_generation(redis_url, agent_id, 0)
    }

    /// A panel whose agent's key was rotated `generation` times.
    pub(crate) fn at_generation(redis_url: &str, agent_id: &str, generation: u32) -> Self {
        let secret = PanelSecret::from_bytes(vec![42; 32]).unwrap();
        let keys = AgentCrypto::from_agent_key(&secret.agent_key_gen(agent_id, generation));
        Panel {
            agent_id: agent_id.to_owned(),
            generation,
            secret,
            keys,
            names: AgentRedisKeys::new(agent_id),
            redis_url: redis_url.to_owned(),
        }
    }

    /// The key the runner's configuration holds, at this panel's generation.
    pub(crate) fn agent_key(&self) -> Key {
        self.secret.agent_key_gen(&self.agent_id, self.generation)
    }

    pub(crate) fn agent_key_hex(&self) -> String {
        self.agent_key().to_hex()
    }

    pub(crate) fn conn(&self) -> redis::Connection {
        redis::Client::open(self.redis_url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// An envelope for a bundle of the runner's test bundles, attempt 1, valid for an hour.
    pub(crate) fn envelope(&self, app: &str, inputs: Value, sensitive: Value) -> Envelope {
        self.envelope_in(&bundles_dir().join(app), inputs, sensitive)
    }

    pub(crate) fn envelope_in(
        &self,
        bundle_dir: &Path,
        inputs: Value,
        sensitive: Value,
    ) -> Envelope {
        let bundle = load_bundle(bundle_dir).unwrap_or_else(|d| panic!("test bundle loads: {d:?}"));
        let job_id = outfitter_contract::ids::new_job_id();
        let to_map = |v: Value| -> BTreeMap<String, Value> {
            match v {
                Value::Object(m) => m.into_iter().collect(),
                Value::Null => BTreeMap::new(),
                other => panic!("inputs must be an object, got {other}"),
            }
        };
        let sensitive = to_map(sensitive);
        let sealed_inputs = (!sensitive.is_empty())
            .then(|| seal::seal(&self.keys.sealing, &job_id, &sensitive).unwrap());
        let now = now_ms() / 1000;
        Envelope {
            v: ENVELOPE_VERSION,
            job_id,
            agent_id: self.agent_id.clone(),
            app_id: bundle.manifest.id.clone(),
            app_version: bundle.manifest.version.clone(),
            bundle_digest: bundle.digest,
            inputs: to_map(inputs),
            sealed_inputs,
            issued_at: now,
            expires_at: now + 3600,
            attempt: 1,
            lifecycle: None,
        }
    }

    /// A lifecycle job for the bundle in `bundle_dir`: its envelope carries `order`.
    pub(crate) fn enqueue_lifecycle(
        &self,
        bundle_dir: &Path,
        inputs: Value,
        order: LifecycleOrder,
    ) -> Enqueued {
        let mut env = self.envelope_in(bundle_dir, inputs, Value::Null);
        env.lifecycle = Some(order);
        self.enqueue_envelope(&env)
    }

    /// Signs with this agent's key and enqueues.
    pub(crate) fn enqueue(&self, app: &str, inputs: Value, sensitive: Value) -> Enqueued {
        let env = self.envelope(app, inputs, sensitive);
        self.enqueue_envelope(&env)
    }

    pub(crate) fn enqueue_envelope(&self, env: &Envelope) -> Enqueued {
        let wire = env.sign(&self.keys.signing).to_wire();
        self.enqueue_wire(env, &wire);
        Enqueued {
            job_id: env.job_id.clone(),
            envelope: env.clone(),
            wire,
        }
    }

    /// The panel's enqueue step with any wire (forged, tampered…): the index entries, then the
    /// contract's `ENQUEUE` with the record `job::write::created` lists (`max_attempts` from
    /// the test bundle's retry policy, sensitive inputs shown redacted), in one step.
    pub(crate) fn enqueue_wire(&self, env: &Envelope, wire: &str) {
        let mut c = self.conn();
        let now = now_ms();
        let max_attempts = load_bundle(&bundles_dir().join(&env.app_id))
            .map(|b| b.manifest.effective_retry())
            .unwrap_or_else(|_| RetryPolicy::default())
            .max_attempts;
        // The names of the sensitive inputs are what the envelope seals (for this agent).
        let sensitive: Vec<String> = env
            .sealed_inputs
            .as_deref()
            .and_then(|s| seal::open(&self.keys.sealing, &env.job_id, s).ok())
            .map(|values| values.into_keys().collect())
            .unwrap_or_default();
        let shown = write::shown_inputs(&env.inputs, sensitive.iter().map(String::as_str));
        let record = write::created(&write::Created {
            envelope: env,
            wire,
            inputs: &shown,
            max_attempts,
            created_at: now,
            created_by: "runner-tests",
        });
        redis::pipe()
            .zadd(redis_keys::JOBS_INDEX, &env.job_id, now)
            .hset(redis_keys::JOB_AGENT, &env.job_id, &env.agent_id)
            .query::<()>(&mut c)
            .unwrap();
        let call = scripts::enqueue(env, wire, &record, now);
        let mut inv = ENQUEUE.prepare_invoke();
        for k in &call.keys {
            inv.key(k);
        }
        for a in &call.args {
            inv.arg(a);
        }
        inv.invoke::<u64>(&mut c).unwrap();
    }

    pub(crate) fn record_fields(&self, job: &str) -> HashMap<String, String> {
        redis::cmd("HGETALL")
            .arg(self.names.job(job))
            .query(&mut self.conn())
            .unwrap()
    }

    pub(crate) fn record(&self, job: &str) -> JobRecord {
        JobRecord::from_fields(&self.record_fields(job)).unwrap()
    }

    /// Every event of the job, in stream order, with their sequence numbers.
    pub(crate) fn events(&self, job: &str) -> Vec<Event> {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(self.names.job_events(job))
            .arg("-")
            .arg("+")
            .query(&mut self.conn())
            .unwrap();
        entries
            .into_iter()
            .map(|(_, kv)| {
                let e = kv.into_iter().find(|(k, _)| k == scripts::EVENT_FIELD);
                serde_json::from_str(&e.unwrap().1).unwrap()
            })
            .collect()
    }

    /// Waits until the job's state is one of `states`; returns the record.
    pub(crate) fn wait_state(
        &self,
        job: &str,
        states: &[JobState],
        timeout: Duration,
    ) -> JobRecord {
        let mut last = None;
        wait_for(
            timeout,
            &format!("job {job} to reach {states:?} (last seen {last:?})"),
            || {
                let fields = self.record_fields(job);
                let r = JobRecord::from_fields(&fields).ok()?;
                last = Some(r.state);
                states.contains(&r.state).then_some(r)
            },
        )
    }

    /// Entries of the agent's rejected stream: (job_id, reason).
    pub(crate) fn rejections(&self) -> Vec<(String, String)> {
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
            .arg(self.names.rejected())
            .arg("-")
            .arg("+")
            .query(&mut self.conn())
            .unwrap();
        entries
            .into_iter()
            .map(|(_, m)| {
                (
                    m.get("job_id").cloned().unwrap_or_default(),
                    m.get("reason").cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(&mut self.conn())
            .unwrap()
    }

    /// The panel's cancel: flag, then publish on the control channel.
    pub(crate) fn cancel(&self, job: &str) {
        let mut c = self.conn();
        redis::cmd("HSET")
            .arg(self.names.job(job))
            .arg(field::CANCEL_REQUESTED)
            .arg("1")
            .query::<()>(&mut c)
            .unwrap();
        let msg = serde_json::to_string(&outfitter_contract::control::ControlMessage::Cancel {
            job_id: job.to_owned(),
        })
        .unwrap();
        redis::cmd("PUBLISH")
            .arg(self.names.control_channel())
            .arg(msg)
            .query::<()>(&mut c)
            .unwrap();
    }

    /// Waits until the runner's heartbeat exists (it is up and connected).
    pub(crate) fn wait_heartbeat(&self, timeout: Duration) -> Value {
        wait_for(timeout, "the runner's heartbeat", || {
            let v: Option<String> = redis::cmd("GET")
                .arg(self.names.heartbeat())
                .query(&mut self.conn())
                .ok()?;
            v.and_then(|s| serde_json::from_str(&s).ok())
        })
    }
}

/// The text of every log event, in order.
pub(crate) fn log_lines(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            outfitter_contract::event::EventBody::Log { line, .. } => Some(line.clone()),
            _ => None,
        })
        .collect()
}

/// The states of every state event, in order.
pub(crate) fn states(events: &[Event]) -> Vec<JobState> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            outfitter_contract::event::EventBody::State { state, .. } => Some(*state),
            _ => None,
        })
        .collect()
}

/// Whether the happy bundle ran for this job (it leaves a marker file, removed here).
pub(crate) fn ran(job_id: &str) -> bool {
    let marker = format!("/tmp/outfitter-ran-{job_id}");
    let ran = Path::new(&marker).exists();
    let _ = std::fs::remove_file(&marker);
    ran
}

pub(crate) const LONG: Duration = Duration::from_secs(30);
