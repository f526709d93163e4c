//! Prometheus metrics (`GET /metrics`).
//!
//! - `outfitter_jobs_total{state,app}`: jobs that entered each state, from the state events this
//!   panel process sees on its pubsub subscription (every job of every agent).
//! - `outfitter_jobs_created_total{app}`: jobs this process enqueued.
//! - `outfitter_job_duration_seconds{app}`: duration of finished attempts.
//! - `outfitter_queue_depth{agent}`, `outfitter_agent_processing{agent}`,
//!   `outfitter_agent_scheduled{agent}`, `outfitter_agents_online`, `outfitter_agents_registered`,
//!   `outfitter_agent_attention{agent,condition}` (1 while a condition of
//!   [`crate::agents::attention`] is raised; absent otherwise) and
//!   `outfitter_agents_needing_attention`: read from Redis at scrape time.
//!
//! - `outfitter_http_requests_total{method,route,status}` and
//!   `outfitter_http_request_duration_seconds{method,route,status}`: every request, by route
//!   pattern (`/api/v1/jobs/{id}`, not the path: one series per route, whatever the ids);
//!   paths that match no route count as `route="unmatched"`.
//! - `outfitter_build_info{version}`: always 1.
//! - `process_*`: resident memory, CPU seconds, open files, start time (see
//!   [`outfitter_contract::process_stats`]).
//!
//! Counters are per panel process; with several panels, sum them per instance in queries.

use std::collections::HashMap;
use std::sync::Arc;

use outfitter_contract::event::{Event, EventBody};
use outfitter_contract::job::field;
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_redis::RedisConn;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::broadcast;

use crate::agents::AgentStatus;
use crate::live::LiveEvent;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateApp {
    state: String,
    app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct App {
    app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms … about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabel {
    agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentCondition {
    agent: String,
    condition: &'static str,
}

fn duration_histogram() -> Histogram {
    // 0.25 s … about 2.3 h.
    Histogram::new(exponential_buckets(0.25, 2.0, 16))
}

/// The panel's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

struct Inner {
    registry: Registry,
    jobs: Family<StateApp, Counter>,
    created: Family<App, Counter>,
    durations: Family<App, Histogram, fn() -> Histogram>,
    queue_depth: Family<AgentLabel, Gauge>,
    processing: Family<AgentLabel, Gauge>,
    scheduled: Family<AgentLabel, Gauge>,
    attention: Family<AgentCondition, Gauge>,
    needing_attention: Gauge,
    online: Gauge,
    registered: Gauge,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: Family<HttpLabels, Histogram, fn() -> Histogram>,
    /// Unprefixed: the standard `process_*` names.
    process: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("outfitter");
        let jobs = Family::<StateApp, Counter>::default();
        let created = Family::<App, Counter>::default();
        let durations =
            Family::<App, Histogram, fn() -> Histogram>::new_with_constructor(duration_histogram);
        let queue_depth = Family::<AgentLabel, Gauge>::default();
        let processing = Family::<AgentLabel, Gauge>::default();
        let scheduled = Family::<AgentLabel, Gauge>::default();
        let attention = Family::<AgentCondition, Gauge>::default();
        let needing_attention = Gauge::default();
        let online = Gauge::default();
        let registered = Gauge::default();
        registry.register("jobs", "Jobs that entered each state, by app", jobs.clone());
        registry.register(
            "jobs_created",
            "Jobs enqueued by this panel, by app",
            created.clone(),
        );
        registry.register(
            "job_duration_seconds",
            "Duration of finished job attempts, by app",
            durations.clone(),
        );
        registry.register(
            "queue_depth",
            "Jobs waiting in each agent's queue",
            queue_depth.clone(),
        );
        registry.register(
            "agent_processing",
            "Jobs each agent's runner has taken and not finished",
            processing.clone(),
        );
        registry.register(
            "agent_scheduled",
            "Retries waiting for their time, per agent",
            scheduled.clone(),
        );
        registry.register(
            "agent_attention",
            "1 for each condition that makes a server need attention (disk_low, offline, …)",
            attention.clone(),
        );
        registry.register(
            "agents_needing_attention",
            "Servers with at least one attention condition raised",
            needing_attention.clone(),
        );
        registry.register(
            "agents_online",
            "Agents with a live heartbeat",
            online.clone(),
        );
        registry.register("agents_registered", "Registered agents", registered.clone());
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency = Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route pattern and status",
            http_latency.clone(),
        );
        let build = Family::<Version, Gauge>::default();
        build
            .get_or_create(&Version {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The panel's version (always 1)", build);
        let mut process = Registry::default();
        process.register_collector(Box::new(
            outfitter_contract::process_stats::ProcessCollector,
        ));
        Self {
            inner: Arc::new(Inner {
                registry,
                jobs,
                created,
                durations,
                queue_depth,
                processing,
                scheduled,
                attention,
                needing_attention,
                online,
                registered,
                http_requests,
                http_latency,
                process,
            }),
        }
    }

    pub fn job_created(&self, app: &str) {
        self.inner
            .created
            .get_or_create(&App {
                app: app.to_owned(),
            })
            .inc();
    }

    fn state_entered(&self, state: &str, app: &str, duration_ms: Option<i64>) {
        self.inner
            .jobs
            .get_or_create(&StateApp {
                state: state.to_owned(),
                app: app.to_owned(),
            })
            .inc();
        if let Some(ms) = duration_ms {
            self.inner
                .durations
                .get_or_create(&App {
                    app: app.to_owned(),
                })
                .observe(ms.max(0) as f64 / 1000.0);
        }
    }

    /// Counts one answered request; `route` is the matched pattern, if any.
    pub fn http_request(&self, method: &str, route: Option<&str>, status: u16, seconds: f64) {
        let labels = HttpLabels {
            method: method.to_owned(),
            route: route.unwrap_or("unmatched").to_owned(),
            status,
        };
        self.inner.http_requests.get_or_create(&labels).inc();
        self.inner
            .http_latency
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Sets the per-agent gauges from a fresh read of the agents.
    pub fn set_agents(&self, agents: &[AgentStatus]) {
        self.inner.queue_depth.clear();
        self.inner.processing.clear();
        self.inner.scheduled.clear();
        self.inner.attention.clear();
        for a in agents {
            for r in &a.attention {
                let l = AgentCondition {
                    agent: a.id.clone(),
                    condition: r.condition.as_str(),
                };
                self.inner.attention.get_or_create(&l).set(1);
            }
            let l = AgentLabel {
                agent: a.id.clone(),
            };
            self.inner
                .queue_depth
                .get_or_create(&l)
                .set(a.queue_depth as i64);
            self.inner
                .processing
                .get_or_create(&l)
                .set(a.processing as i64);
            self.inner
                .scheduled
                .get_or_create(&l)
                .set(a.scheduled as i64);
        }
        self.inner
            .online
            .set(agents.iter().filter(|a| a.online).count() as i64);
        self.inner.registered.set(agents.len() as i64);
        self.inner
            .needing_attention
            .set(agents.iter().filter(|a| !a.attention.is_empty()).count() as i64);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        encode_registry(&mut out, &self.inner.registry)
            .and_then(|()| encode_registry(&mut out, &self.inner.process))
            .and_then(|()| encode_eof(&mut out))
            .expect("writing to a String");
        out
    }
}

/// Counts state events from the live subscription. Spawn once per process.
pub async fn observe_events(
    metrics: Metrics,
    mut rx: broadcast::Receiver<Arc<LiveEvent>>,
    mut conn: RedisConn,
) {
    // job id → app id; jobs are short-lived, so the cache is simply dropped when it grows.
    let mut apps: HashMap<String, String> = HashMap::new();
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "metrics fell behind the event stream");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        // Most events are log lines: skip them without a full parse.
        if !ev.json.contains(r#""type":"state""#) {
            continue;
        }
        let Ok(Event {
            body: EventBody::State { state, .. },
            ..
        }) = serde_json::from_str::<Event>(&ev.json)
        else {
            continue;
        };
        let key = AgentRedisKeys::new(&ev.agent_id).job(&ev.job_id);
        let (app, started, finished): (Option<String>, Option<i64>, Option<i64>) =
            if state.is_terminal() {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg(field::APP_ID)
                    .arg(field::STARTED_AT)
                    .arg(field::FINISHED_AT)
                    .query_async::<(Option<String>, Option<String>, Option<String>)>(&mut conn)
                    .await
                    .map(|(a, s, f)| {
                        (
                            a,
                            s.and_then(|v| v.parse().ok()),
                            f.and_then(|v| v.parse().ok()),
                        )
                    })
                    .unwrap_or((None, None, None))
            } else {
                let cached = apps.get(&ev.job_id).cloned();
                match cached {
                    Some(a) => (Some(a), None, None),
                    None => {
                        let a: Option<String> = redis::cmd("HGET")
                            .arg(&key)
                            .arg(field::APP_ID)
                            .query_async(&mut conn)
                            .await
                            .unwrap_or(None);
                        (a, None, None)
                    }
                }
            };
        let app = app.unwrap_or_else(|| "unknown".into());
        let duration = match (started, finished) {
            (Some(s), Some(f)) if f >= s => Some(f - s),
            _ => None,
        };
        if state.is_terminal() {
            apps.remove(&ev.job_id);
        } else {
            if apps.len() > 10_000 {
                apps.clear();
            }
            apps.insert(ev.job_id.clone(), app.clone());
        }
        metrics.state_entered(state.as_str(), &app, duration);
    }
}
