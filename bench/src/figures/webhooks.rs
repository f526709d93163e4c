//! Figure 7: webhook deliveries. Deliveries are queued for one webhook with the panel's own
//! emit script (`panel/lua/webhook_emit.lua`), all due at one instant; the panel's delivery
//! worker then signs and POSTs them to a receiver on this machine. Baseline: a bare reqwest
//! POST loop with the same concurrency and body size to the same receiver.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use outfitter_contract::redis_keys;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Ctx;
use crate::report::{Figure, Row};
use crate::stats::{Rate, factor, per_second, thousands};

/// The panel's default number of attempts in flight (`webhook_concurrency`).
const CONCURRENCY: usize = 16;
/// How long the worker gets to deliver everything.
const LIMIT: Duration = Duration::from_secs(600);

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    let n = ctx.plan.webhook_deliveries;
    let (port, count) = receiver().await?;
    let url = format!("http://127.0.0.1:{port}/hook");
    let made: serde_json::Value = ctx
        .http
        .post(format!("{}/api/v1/webhooks", ctx.inst.panel_url()))
        .bearer_auth(&ctx.inst.token)
        .json(&json!({"url": url, "events": ["*"]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let hook = made["id"].as_str().context("webhook id")?.to_owned();

    // Everything due at one instant a moment from now, so the queueing is not measured.
    let data = json!({"job_id": "0192f0e0-0000-7000-8000-000000000000", "app_id": "bench-noop",
        "agent_id": "bench-sink", "state": "failed", "attempts": 1, "exit_code": 1});
    let body_len = data.to_string().len() + 90;
    let due = outfitter_contract::clock::now_ms() + 3_000;
    let script = redis::Script::new(include_str!("../../../panel/lua/webhook_emit.lua"));
    let mut conn = ctx
        .inst
        .redis
        .client()?
        .get_multiplexed_async_connection()
        .await?;
    for i in 0..n {
        let id = format!("dl_{i:032x}");
        let _: i64 = script
            .key(redis_keys::webhook_delivery(&id))
            .key(redis_keys::WEBHOOK_DUE)
            .key(redis_keys::webhook_deliveries(&hook))
            .arg(&id)
            .arg(&hook)
            .arg("job.failed")
            .arg(format!("job.failed:bench:{i}"))
            .arg(data.to_string())
            .arg(due)
            .arg(n)
            .arg(redis_keys::webhook_delivery(""))
            .invoke_async(&mut conn)
            .await?;
    }
    let wait = due - outfitter_contract::clock::now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    let start = Instant::now();
    while count.load(Ordering::Relaxed) < n as u64 {
        ensure!(
            start.elapsed() < LIMIT,
            "{} of {n} deliveries arrived within {LIMIT:?}",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    let panel_rate = per_second(n as u64, took);
    let left: u64 = redis::cmd("ZCARD")
        .arg(redis_keys::WEBHOOK_DUE)
        .query_async(&mut conn)
        .await?;

    // Baseline: the same number of POSTs of the same size, 16 at a time, nothing else.
    count.store(0, Ordering::Relaxed);
    outfitter_test_support::install_tls_provider();
    let client = reqwest::Client::new();
    let body = Arc::new(vec![b'x'; body_len]);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, body, next, url) = (client.clone(), body.clone(), next.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                let r = client.post(&url).body(body.as_ref().clone()).send().await?;
                r.error_for_status()?.bytes().await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let bare = start.elapsed();
    let bare_rate = per_second(n as u64, bare);

    Ok(Figure {
        number: 7,
        title: "Webhooks".into(),
        method: format!(
            "{} deliveries of one event kind are queued for one webhook with the panel's own emit \
             script, all due at the same instant; the clock starts at that instant and stops when the \
             receiver (a minimal HTTP/1.1 server in the bench, answering 200 at once) has counted every \
             one. The one panel's worker claims each delivery with its lease script, opens the \
             webhook's sealed secret, signs the body (HMAC-SHA256), POSTs it ({CONCURRENCY} in flight, \
             the default) and records the outcome. Baseline: a bare reqwest POST loop, {CONCURRENCY} \
             tasks, the same number of bodies of the same size, to the same receiver.",
            thousands(n as u64)
        ),
        rows: vec![
            Row::new(
                format!(
                    "{} deliveries, due at once → all received",
                    thousands(n as u64)
                ),
                format!(
                    "{} ({:.2} s; {left} left queued)",
                    Rate(panel_rate),
                    took.as_secs_f64()
                ),
            )
            .against(
                format!(
                    "bare POST loop {} ({:.2} s)",
                    Rate(bare_rate),
                    bare.as_secs_f64()
                ),
                factor(bare_rate, panel_rate),
            ),
        ],
        goals: vec![],
        tables: vec![],
        summary: format!(
            "7. Webhooks: {} deliveries at {} (bare POST loop {})",
            thousands(n as u64),
            Rate(panel_rate),
            Rate(bare_rate)
        ),
    })
}

/// A receiver on a free port that answers every request 200 and counts them.
async fn receiver() -> Result<(u16, Arc<AtomicU64>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    // One request: the head, then Content-Length bytes.
                    let (head_end, len) = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (i + 4, len);
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    while buf.len() < head_end + len {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + len);
                    c.fetch_add(1, Ordering::Relaxed);
                    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                    if s.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((port, count))
}
