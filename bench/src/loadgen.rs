//! The bench's load generator: a closed loop like `wrk`'s. `connections` keep-alive HTTP/1.1
//! connections each send one prepared request, wait for the whole response, and send the
//! next, for a fixed time; every response's latency is kept.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::http1::Conn;
use crate::stats::{Samples, Summary, per_second};

/// What one load run measured.
#[derive(Debug, Clone)]
pub(crate) struct LoadResult {
    /// Responses with the expected status.
    pub ok: u64,
    /// Responses with another status, and failed requests.
    pub errors: u64,
    /// The first unexpected response or error, for the report.
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latency: Summary,
    /// Body size of the last good response.
    pub body_bytes: usize,
}

impl LoadResult {
    /// Good responses per second.
    pub(crate) fn rate(&self) -> f64 {
        per_second(self.ok, self.elapsed)
    }
}

/// Sends `request` over `connections` connections for `duration`; a response counts as good
/// when its status is `want_status`.
pub(crate) async fn run(
    addr: SocketAddr,
    request: Vec<u8>,
    want_status: u16,
    connections: usize,
    duration: Duration,
) -> Result<LoadResult> {
    let request: Arc<[u8]> = request.into();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let request = request.clone();
        let mut conn = Conn::connect(addr).await?;
        tasks.push(tokio::spawn(async move {
            let mut w = Worker::default();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match conn.send(&request).await {
                    Ok(resp) if resp.status == want_status => {
                        w.latency.push(t0.elapsed());
                        w.ok += 1;
                        w.body_bytes = resp.body.len();
                    }
                    Ok(resp) => w.error(format!(
                        "status {}: {}",
                        resp.status,
                        String::from_utf8_lossy(&resp.body)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    )),
                    Err(e) => {
                        w.error(format!("{e:#}"));
                        // A refused or reset connection would spin; give the server a moment.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            w
        }));
    }
    let mut total = Worker::default();
    for t in tasks {
        let w = t.await?;
        total.ok += w.ok;
        total.errors += w.errors;
        total.first_error = total.first_error.or(w.first_error);
        total.latency.extend(&w.latency);
        total.body_bytes = total.body_bytes.max(w.body_bytes);
    }
    let elapsed = start.elapsed();
    Ok(LoadResult {
        ok: total.ok,
        errors: total.errors,
        first_error: total.first_error,
        elapsed,
        latency: total.latency.summary(),
        body_bytes: total.body_bytes,
    })
}

#[derive(Default)]
struct Worker {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Samples,
    body_bytes: usize,
}

impl Worker {
    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A tiny keep-alive server answering every request with `status` and "ok".
    async fn server(status: u16) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let r = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
                        if s.write_all(r.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn counts_good_responses_and_their_latency() {
        let addr = server(200).await;
        let req = crate::http1::request("GET", "/", "t", None);
        let r = run(addr, req, 200, 4, Duration::from_millis(200))
            .await
            .unwrap();
        assert!(r.ok > 10, "{r:?}");
        assert_eq!(r.errors, 0);
        assert_eq!(r.body_bytes, 2);
        assert!(r.latency.p99 >= r.latency.p50 && r.latency.p50 > 0.0);
    }

    #[tokio::test]
    async fn unexpected_status_counts_as_error() {
        let addr = server(500).await;
        let req = crate::http1::request("GET", "/", "t", None);
        let r = run(addr, req, 200, 1, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(r.ok, 0);
        assert!(r.errors > 0);
        assert!(r.first_error.unwrap().starts_with("status 500"));
    }
}
