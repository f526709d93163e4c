//! A panel killed with `kill -9` between reserving an `Idempotency-Key` and writing its job
//! leaves nothing stuck: the client's retry gets the job at once (issue 14, defect 2).
//!
//! The moment is hit without any hook in the panel: the first panel talks to Redis through
//! a proxy of this test that forwards the `SET <idempotency key>` and then holds every
//! further command, so the panel is frozen exactly after the reservation when it is killed.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{RedisServer, demo_body, facts};
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_panel::agents;
use outfitter_panel::auth::{Role, tokens};
use outfitter_redis::RedisConn;
use outfitter_test_support::free_port;
use redis::AsyncCommands;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

const BIN: &str = env!("CARGO_BIN_EXE_outfitter-panel");
const KEY: &str = "order-crash-1";

/// A TCP proxy to Redis that freezes (holds every client byte) right after forwarding the
/// first command that contains `needle`.
struct FreezingProxy {
    port: u16,
    frozen: Arc<Notify>,
}

impl FreezingProxy {
    async fn start(upstream: u16, needle: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(Notify::new());
        let is_frozen = Arc::new(AtomicBool::new(false));
        let needle = Arc::new(needle);
        let notify = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
                let (needle, is_frozen, notify) =
                    (needle.clone(), is_frozen.clone(), notify.clone());
                tokio::spawn(async move {
                    let mut seen: Vec<u8> = Vec::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if is_frozen.load(Ordering::SeqCst) {
                            // Held: the panel waits for answers that never come.
                            continue;
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        if seen.windows(needle.len()).any(|w| w == needle.as_slice()) {
                            is_frozen.store(true, Ordering::SeqCst);
                            notify.notify_one();
                        }
                        let keep = seen.len().saturating_sub(needle.len());
                        seen.drain(..keep);
                    }
                });
            }
        });
        Self { port, frozen }
    }
}

/// A running `outfitter-panel serve`, killed on drop.
struct Panel {
    child: Child,
    url: String,
}

impl Panel {
    /// `kill -9`, and wait until it is gone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Panel {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `outfitter-panel serve` against `redis_url`, once it answers `/healthz`.
async fn serve(dir: &std::path::Path, redis_url: &str) -> Panel {
    let port = free_port();
    let cfg = dir.join(format!("panel-{port}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "bind = \"127.0.0.1:{port}\"\ninstallers = \"{}\"\nsecret_file = \"{}\"\nredis_url = \"{redis_url}\"\n",
            common::bundles_dir().display(),
            dir.join("secret").display()
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let panel = Panel {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    outfitter_test_support::install_tls_provider();
    for _ in 0..400 {
        if let Ok(r) = reqwest::get(format!("{}/healthz", panel.url)).await
            && r.status() == 200
        {
            return panel;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the panel did not answer /healthz");
}

async fn create(url: &str, token: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(format!("{url}/api/v1/jobs"))
        .bearer_auth(token)
        .header("Idempotency-Key", KEY)
        .json(&demo_body("web-1"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
}

#[actix_web::test]
async fn a_retry_after_the_panel_died_between_reserving_the_key_and_writing_the_job_succeeds() {
    let redis = RedisServer::start();
    let mut conn: RedisConn =
        redis::aio::ConnectionManager::new(redis::Client::open(redis.url()).unwrap())
            .await
            .unwrap()
            .into();
    let now = outfitter_panel::clock::now_ms();
    assert!(
        agents::register(&mut conn, "web-1", &Default::default(), "test", now)
            .await
            .unwrap()
    );
    let token = tokens::create(&mut conn, "ops", Role::Operator, "test", now)
        .await
        .unwrap();
    let hb = facts("web-1", "debian", "12", 4096);
    let _: () = conn
        .set_ex(
            AgentRedisKeys::new("web-1").heartbeat(),
            serde_json::to_string(&hb).unwrap(),
            600,
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let idem_key = redis_keys::idempotency("ops", KEY);
    let needle = format!("$3\r\nSET\r\n${}\r\n{idem_key}\r\n", idem_key.len()).into_bytes();
    let proxy = FreezingProxy::start(redis.port(), needle).await;
    let mut first = serve(dir.path(), &format!("redis://127.0.0.1:{}/", proxy.port)).await;
    let url1 = first.url.clone();
    let token1 = token.clone();
    let request = tokio::spawn(async move { create(&url1, &token1).await });
    tokio::time::timeout(Duration::from_secs(30), proxy.frozen.notified())
        .await
        .expect("the panel reserved the key");
    let mut entry: Option<String> = None;
    for _ in 0..200 {
        entry = conn.get(&idem_key).await.unwrap();
        if entry.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let entry: Value =
        serde_json::from_str(&entry.expect("the reservation reached Redis")).unwrap();
    let reserved = entry["job_id"].as_str().unwrap().to_owned();

    first.kill();
    assert!(
        request.await.unwrap().is_err(),
        "the first request got no answer"
    );
    let written: bool = conn
        .hexists(redis_keys::JOB_AGENT, &reserved)
        .await
        .unwrap();
    assert!(!written, "the panel died before writing the job");
    let queued: u64 = conn
        .llen(AgentRedisKeys::new("web-1").queue())
        .await
        .unwrap();
    assert_eq!(queued, 0);

    // The client retries against a panel started again.
    let mut second = serve(dir.path(), &redis.url()).await;
    let url = second.url.clone();
    let retried = create(&url, &token).await.unwrap();
    let status = retried.status();
    let replayed = retried.headers().get("idempotent-replayed").cloned();
    let job: Value = retried.json().await.unwrap();
    assert_eq!(status, 202, "the retry after the crash: {job}");
    assert_eq!(
        job["id"],
        reserved.as_str(),
        "the retry wrote the reserved job"
    );
    assert_eq!(replayed.unwrap(), "false");
    assert_eq!(job["state"], "queued");

    let again = create(&url, &token).await.unwrap();
    let again_status = again.status();
    let again_replayed = again.headers().get("idempotent-replayed").cloned();
    let again: Value = again.json().await.unwrap();
    assert_eq!(again_status, 202, "{again}");
    assert_eq!(again["id"], job["id"]);
    assert_eq!(again_replayed.unwrap(), "true");
    let queued: u64 = conn
        .llen(AgentRedisKeys::new("web-1").queue())
        .await
        .unwrap();
    second.kill();
    assert_eq!(queued, 1, "one job queued in all");
}
