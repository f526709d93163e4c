//! The panel's JSON API as a test sees it: bearer token, JSON in and out, and waits on job
//! state with a deadline (never an unbounded poll).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::sse::SseStream;

/// Job states after which nothing happens without a person (docs/protocol.md).
pub const TERMINAL_STATES: &[&str] = &[
    "succeeded",
    "failed",
    "needs_attention",
    "timed_out",
    "canceled",
    "interrupted",
    "rejected",
    "expired",
];

/// A client for one panel's `/api/v1`, authenticated with one token.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// A response's status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The body, if the status is `want`; otherwise an error showing both.
    pub fn expect(self, want: StatusCode) -> Result<Value> {
        if self.status != want {
            bail!("expected {want}, got {}: {}", self.status, self.body);
        }
        Ok(self.body)
    }
}

impl Api {
    /// `panel_url` without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub fn new(panel_url: &str, token: &str) -> Self {
        outfitter_test_support::install_tls_provider();
        Self {
            base: format!("{panel_url}/api/v1"),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("reqwest client builds"),
        }
    }

    /// Any request; `body` is sent as JSON when given.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    pub async fn get(&self, path: &str) -> Result<Reply> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Reply> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `POST /jobs`; the new job's JSON (status 202 required).
    pub async fn create_job(&self, app_id: &str, agent_id: &str, inputs: Value) -> Result<Value> {
        self.post(
            "/jobs",
            &json!({"app_id": app_id, "agent_id": agent_id, "inputs": inputs}),
        )
        .await?
        .expect(StatusCode::ACCEPTED)
        .with_context(|| format!("queueing {app_id} on {agent_id}"))
    }

    /// `GET /jobs/{id}`.
    pub async fn job(&self, id: &str) -> Result<Value> {
        self.get(&format!("/jobs/{id}"))
            .await?
            .expect(StatusCode::OK)
    }

    /// `GET /jobs/{id}/log` as text.
    pub async fn log(&self, id: &str) -> Result<String> {
        let resp = self
            .http
            .get(format!("{}/jobs/{id}/log", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if status != StatusCode::OK {
            bail!("GET /jobs/{id}/log: {status}: {text}");
        }
        Ok(text)
    }

    /// `POST /jobs/{id}/cancel`; any 2xx is accepted.
    pub async fn cancel(&self, id: &str) -> Result<Value> {
        let r = self.post(&format!("/jobs/{id}/cancel"), &json!({})).await?;
        if !r.status.is_success() {
            bail!("cancel {id}: {}: {}", r.status, r.body);
        }
        Ok(r.body)
    }

    /// Polls the job until `done(job)` holds, at most `limit`; returns the job then.
    pub async fn wait_job(
        &self,
        id: &str,
        limit: Duration,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let job = self.job(id).await?;
            if done(&job) {
                return Ok(job);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("job {id} did not become {what} within {limit:?}; last seen: {job}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the job's `state` is `state`.
    pub async fn wait_state(&self, id: &str, state: &str, limit: Duration) -> Result<Value> {
        self.wait_job(id, limit, state, |j| j["state"] == state)
            .await
    }

    /// Waits until the job reaches any terminal state.
    pub async fn wait_terminal(&self, id: &str, limit: Duration) -> Result<Value> {
        self.wait_job(id, limit, "terminal", |j| {
            j["state"]
                .as_str()
                .is_some_and(|s| TERMINAL_STATES.contains(&s))
        })
        .await
    }

    /// Waits until `GET /agents/{id}` says the agent is online (its runner heartbeats).
    pub async fn wait_agent_online(&self, agent_id: &str, limit: Duration) -> Result<Value> {
        self.wait_agent(agent_id, true, limit).await
    }

    /// Waits until `GET /agents/{id}` says `online` is `online`.
    pub async fn wait_agent(&self, agent_id: &str, online: bool, limit: Duration) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let agent = self
                .get(&format!("/agents/{agent_id}"))
                .await?
                .expect(StatusCode::OK)?;
            if agent["online"] == online {
                // Listing records the latest host facts in the registration, as the UI does.
                self.get("/agents").await?.expect(StatusCode::OK)?;
                return Ok(agent);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("agent {agent_id} did not become online={online} within {limit:?}: {agent}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every event of a job from the start (replay, then live) up to and including its
    /// terminal state event, as the JSON the SSE `data:` lines carry. Checks that the SSE
    /// `id:` of each is its `seq`.
    pub async fn events_until_terminal(&self, id: &str, limit: Duration) -> Result<Vec<Value>> {
        let mut stream = self.events(id, None).await?;
        let deadline = tokio::time::Instant::now() + limit;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(msg) = stream.next(left).await? else {
                bail!("the event stream of {id} closed before a terminal state; got {out:?}");
            };
            let event = msg.json()?;
            if msg.id.as_deref() != event["seq"].as_u64().map(|n| n.to_string()).as_deref() {
                bail!("SSE id {:?} is not the event's seq: {event}", msg.id);
            }
            let terminal = event["type"] == "state"
                && event["state"]
                    .as_str()
                    .is_some_and(|s| TERMINAL_STATES.contains(&s));
            out.push(event);
            if terminal {
                return Ok(out);
            }
        }
    }

    /// Opens `GET /jobs/{id}/events`, resuming after `last_event_id` when given.
    pub async fn events(&self, id: &str, last_event_id: Option<u64>) -> Result<SseStream> {
        let mut req = self
            .http
            .get(format!("{}/jobs/{id}/events", self.base))
            .bearer_auth(&self.token)
            .header("Accept", "text/event-stream")
            // The client-wide timeout would cut a long-lived stream.
            .timeout(Duration::from_secs(3600));
        if let Some(n) = last_event_id {
            req = req.header("Last-Event-ID", n.to_string());
        }
        let resp = req.send().await?;
        if resp.status() != StatusCode::OK {
            bail!("GET /jobs/{id}/events: {}", resp.status());
        }
        Ok(SseStream::new(resp))
    }
}
