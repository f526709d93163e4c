//! Test harness: a private redis-server on a free port, the real app on a free port (built by
//! the same `build_app` as `serve`), tokens of each role, registered agents with heartbeats,
//! and helpers that play the runner's part by writing into Redis with the contract's types.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::{HttpServer, web};
use outfitter_contract::conformance::{self, ConformanceSummary, Outcome};
use outfitter_contract::envelope::{Envelope, SignedJob};
use outfitter_contract::event::{Event, EventBody, OutputStream};
use outfitter_contract::host::HostFacts;
use outfitter_contract::job::{JobState, field};
use outfitter_contract::keys::AgentCrypto;
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_contract::scripts::APPEND_EVENT;
use outfitter_panel::auth::Role;
use outfitter_panel::{AppState, Settings, agents, auth::tokens, build_app};
use outfitter_redis::RedisConn;
use redis::AsyncCommands;

pub(crate) use outfitter_test_support::RedisServer;
use serde_json::{Value, json};

pub(crate) fn bundles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bundles")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

pub(crate) fn facts(agent: &str, family: &str, version: &str, ram_mb: u64) -> HostFacts {
    HostFacts {
        agent_id: agent.into(),
        os_family: family.into(),
        os_like: vec![],
        os_version: version.into(),
        os_pretty: format!("{family} {version}"),
        arch: "x86_64".into(),
        cpus: 4,
        ram_mb,
        disk_free_mb: 50_000,
        load1: 0.25,
        runner_version: "0.1.0".into(),
        ts: outfitter_panel::clock::now_ms(),
        running_jobs: vec![],
        runner: None,
        metrics: None,
    }
}

/// The panel under test.
pub(crate) struct TestPanel {
    pub redis: RedisServer,
    pub state: web::Data<AppState>,
    pub url: String,
    pub admin: String,
    pub operator: String,
    pub viewer: String,
    pub dir: tempfile::TempDir,
    server: actix_web::dev::ServerHandle,
}

impl TestPanel {
    /// Agents: `web-1` (debian 12, 4 GiB, online), `old-1` (debian 10, online),
    /// `gone-1` (registered, never seen).
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let installers = dir.path().join("installers");
        copy_dir(&bundles_dir(), &installers);
        let mut settings =
            Settings::for_paths(&redis.url(), &installers, &dir.path().join("secret"));
        tweak(&mut settings);
        let state = web::Data::new(AppState::new(settings).await.unwrap());
        AppState::spawn_background(&state.clone().into_inner());
        let mut conn = state.redis.clone();
        let now = outfitter_panel::clock::now_ms();
        for id in ["web-1", "old-1", "gone-1"] {
            assert!(
                agents::register(&mut conn, id, &Default::default(), "test", now)
                    .await
                    .unwrap()
            );
        }
        let admin = tokens::create(&mut conn, "root", Role::Admin, "test", now)
            .await
            .unwrap();
        let operator = tokens::create(&mut conn, "ops", Role::Operator, "test", now)
            .await
            .unwrap();
        let viewer = tokens::create(&mut conn, "eyes", Role::Viewer, "test", now)
            .await
            .unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app_state = state.clone();
        let server = HttpServer::new(move || build_app(app_state.clone()))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let panel = TestPanel {
            redis,
            state,
            url,
            admin,
            operator,
            viewer,
            dir,
            server: handle,
        };
        panel.heartbeat(&facts("web-1", "debian", "12", 4096)).await;
        panel.heartbeat(&facts("old-1", "debian", "10", 4096)).await;
        // Wait until the pubsub fan-out is subscribed, so live tests see every publish.
        for _ in 0..200 {
            if panel.state.live.is_connected() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panel
    }

    pub(crate) fn conn(&self) -> RedisConn {
        self.state.redis.clone()
    }

    /// The current bundle digest of an offered or hidden app.
    pub(crate) fn digest(&self, app: &str) -> String {
        self.state
            .catalog
            .current()
            .catalog
            .get(app)
            .unwrap_or_else(|| panic!("no bundle {app}"))
            .digest
            .clone()
    }

    /// Writes an app's `conformance.json` as the harness would (summary fields only); the
    /// catalog sees it after a reload.
    pub(crate) fn write_conformance(&self, app: &str, summary: &ConformanceSummary) {
        std::fs::write(
            self.dir
                .path()
                .join("installers")
                .join(app)
                .join(conformance::RESULT_FILE),
            serde_json::to_string_pretty(summary).unwrap(),
        )
        .unwrap();
    }

    pub(crate) async fn heartbeat(&self, f: &HostFacts) {
        let mut c = self.conn();
        let _: () = c
            .set_ex(
                AgentRedisKeys::new(&f.agent_id).heartbeat(),
                serde_json::to_string(f).unwrap(),
                600,
            )
            .await
            .unwrap();
    }

    /// Signs in with `token` as a browser would: (the session cookie, its CSRF token).
    pub(crate) async fn sign_in(&self, token: &str) -> (String, String) {
        let p = self;
        let csrf_in = |html: &str| {
            let re = regex::Regex::new(r#"name="_csrf"[^>]*value="([^"]+)""#).unwrap();
            re.captures(html).expect("a _csrf field")[1].to_owned()
        };
        let cookies = |r: &reqwest::Response| -> Vec<String> {
            r.headers()
                .get_all("set-cookie")
                .iter()
                .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
                .filter(|c| !c.ends_with('='))
                .collect()
        };
        let login = p.get_site("/login").await;
        let jar = cookies(&login).join("; ");
        let csrf = csrf_in(&login.text().await.unwrap());
        let done = TestPanel::client()
            .post(format!("{}/login", p.url))
            .header("cookie", jar)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("_csrf={csrf}&token={token}&next=%2F"))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 303);
        let session = cookies(&done)
            .into_iter()
            .find(|c| c.starts_with("outfitter_session="))
            .expect("a session cookie");
        let home = TestPanel::client()
            .get(format!("{}/", p.url))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let csrf = csrf_in(&home.text().await.unwrap());
        (session, csrf)
    }

    pub(crate) fn client() -> reqwest::Client {
        outfitter_test_support::install_tls_provider();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    pub(crate) fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.url)
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        Self::client()
            .get(self.api(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// GET `path` of the site (not under `/api/v1`) without a token or cookie.
    pub(crate) async fn get_site(&self, path: &str) -> reqwest::Response {
        Self::client()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn post(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        Self::client()
            .post(self.api(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a job as the operator and returns its JSON (asserting 202).
    pub(crate) async fn create_job(&self, body: &Value) -> Value {
        let r = self.post(&self.operator, "/jobs", body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 202, "{v}");
        v
    }

    pub(crate) async fn demo_job(&self) -> Value {
        self.create_job(&demo_body("web-1")).await
    }

    /// Pops the next signed job of an agent's queue and verifies it with the agent's key.
    pub(crate) async fn take_job(&self, agent: &str) -> (Envelope, String) {
        let mut c = self.conn();
        let wire: Option<String> = c
            .rpop(AgentRedisKeys::new(agent).queue(), None)
            .await
            .unwrap();
        let wire = wire.expect("a queued job");
        let keys = AgentCrypto::from_agent_key(&self.state.secret.agent_key(agent));
        let env = SignedJob::from_wire(&wire)
            .unwrap()
            .verify(&keys.signing)
            .expect("signature verifies");
        (env, wire)
    }

    /// Appends an event as the runner does (the contract's script), with fields to set.
    pub(crate) async fn runner_event(
        &self,
        agent: &str,
        job: &str,
        ev: Event,
        fields: &[(&str, String)],
    ) -> u64 {
        let k = AgentRedisKeys::new(agent);
        let script = redis::Script::new(APPEND_EVENT);
        let mut inv = script.prepare_invoke();
        inv.key(k.job(job))
            .key(k.job_events(job))
            .arg(k.job_channel(job))
            .arg(ev.to_unsequenced_json());
        for (f, v) in fields {
            inv.arg(*f).arg(v);
        }
        inv.invoke_async(&mut self.conn()).await.unwrap()
    }

    /// Appends `count` stdout lines `line 00000`, `line 00001`, … to a job's events, as the
    /// runner's event script does (a long log for the readers to page through).
    pub(crate) async fn log_lines(&self, agent: &str, job: &str, count: usize) {
        for i in 0..count {
            let line = EventBody::Log {
                stream: OutputStream::Stdout,
                line: format!("line {i:05}"),
            };
            self.runner_event(agent, job, Event::new(1, 1, line), &[])
                .await;
        }
    }

    /// Plays a whole attempt: running, a log line, progress, then the final state.
    pub(crate) async fn run_job(
        &self,
        agent: &str,
        job: &str,
        attempt: u32,
        end: JobState,
        exit: Option<i32>,
    ) {
        let now = outfitter_panel::clock::now_ms();
        self.runner_event(
            agent,
            job,
            Event::state(now, attempt, JobState::Running, None, None),
            &[
                (field::STATE, "running".into()),
                (field::ATTEMPTS, attempt.to_string()),
                (field::STARTED_AT, now.to_string()),
            ],
        )
        .await;
        self.runner_event(
            agent,
            job,
            Event::new(
                now,
                attempt,
                EventBody::Log {
                    stream: OutputStream::Stdout,
                    line: "hello from the script".into(),
                },
            ),
            &[],
        )
        .await;
        self.runner_event(
            agent,
            job,
            Event::new(
                now,
                attempt,
                EventBody::Progress {
                    percent: 50,
                    message: "halfway".into(),
                },
            ),
            &[
                (field::PROGRESS, "50".into()),
                (field::PROGRESS_MESSAGE, "halfway".into()),
            ],
        )
        .await;
        let mut fields = vec![
            (field::STATE, end.as_str().to_owned()),
            (field::FINISHED_AT, (now + 1500).to_string()),
        ];
        if let Some(code) = exit {
            fields.push((field::EXIT_CODE, code.to_string()));
        }
        self.runner_event(
            agent,
            job,
            Event::state(now + 1500, attempt, end, exit, None),
            &fields,
        )
        .await;
    }

    pub(crate) async fn job_hash(&self, agent: &str, job: &str) -> HashMap<String, String> {
        self.conn()
            .hgetall(AgentRedisKeys::new(agent).job(job))
            .await
            .unwrap()
    }
}

impl Drop for TestPanel {
    fn drop(&mut self) {
        // Stop accepting; the runtime ends with the test anyway.
        drop(self.server.stop(false));
    }
}

/// A valid request for the demo app.
/// A conformance summary as the harness writes it.
pub(crate) fn conformance_summary(
    status: Outcome,
    digest: &str,
    tested_at: &str,
    install_ms: u64,
    reinstall_ms: u64,
) -> ConformanceSummary {
    ConformanceSummary {
        schema: conformance::RESULT_SCHEMA.to_owned(),
        digest: digest.to_owned(),
        status,
        tested_at: tested_at.to_owned(),
        install_ms: Some(install_ms),
        reinstall_ms: Some(reinstall_ms),
        smoke_passed: Some(status == Outcome::Passed),
        reinstall_smoke_passed: Some(status == Outcome::Passed),
    }
}

pub(crate) fn demo_body(agent: &str) -> Value {
    json!({
        "app_id": "demo-form",
        "agent_id": agent,
        "inputs": {
            "site_name": "my-site",
            "admin_email": "admin@example.com",
            "db_password": "correct horse battery",
        }
    })
}
