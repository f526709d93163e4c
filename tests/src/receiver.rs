//! A webhook receiver for the suites: a real HTTP/1.1 server on a free loopback port that
//! records every request (headers, raw body, when) and answers from a script — a status, or
//! hanging without an answer — then 200 once the script is used up.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Read the request, then say nothing for this long and close.
    Hang(Duration),
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body's bytes exactly as sent.
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map_or("", String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Checks the delivery as a receiver should: `X-Outfitter-Signature` is the HMAC-SHA256
    /// of the raw body with `secret`, the body's `id`, `event` and `timestamp` match their
    /// headers, the timestamp is now, and the secret is nowhere in the payload. Returns the
    /// body.
    pub fn verify(&self, secret: &str) -> Result<serde_json::Value> {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())?;
        mac.update(&self.body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        ensure!(
            self.header("X-Outfitter-Signature") == want,
            "signature: {self:?}"
        );
        ensure!(
            self.header("Content-Type") == "application/json",
            "{self:?}"
        );
        let body = self.json();
        ensure!(body["id"] == self.header("X-Outfitter-Delivery"), "{body}");
        ensure!(body["event"] == self.header("X-Outfitter-Event"), "{body}");
        let ts: i64 = self.header("X-Outfitter-Timestamp").parse()?;
        ensure!(body["timestamp"] == ts, "{body}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        ensure!((now - ts).abs() < 120, "timestamp {ts} is not now ({now})");
        ensure!(
            !String::from_utf8_lossy(&self.body).contains(secret),
            "no secret in the payload"
        );
        Ok(body)
    }
}

#[derive(Debug, Default)]
struct Shared {
    script: VecDeque<Reply>,
    received: Vec<Received>,
}

/// A running receiver; it stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts on a free port; answers `script` in order, then 200.
    pub async fn start(script: Vec<Reply>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Mutex::new(Shared {
            script: script.into(),
            received: Vec::new(),
        }));
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, s.clone()));
            }
        });
        Ok(Self { port, shared, task })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().expect("receiver lock").received.clone()
    }

    /// Waits until at least `n` requests arrived (bounded by `limit`).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Result<Vec<Received>> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.received();
            if got.len() >= n {
                return Ok(got);
            }
            if Instant::now() > deadline {
                bail!(
                    "the receiver got {} of {n} requests within {limit:?}: {got:?}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection: requests one after another (keep-alive).
async fn serve(mut stream: TcpStream, shared: Arc<Mutex<Shared>>) {
    let mut buf = Vec::new();
    loop {
        let Ok(Some(req)) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let reply = {
            let mut s = shared.lock().expect("receiver lock");
            s.received.push(req);
            s.script.pop_front().unwrap_or(Reply::Status(200))
        };
        match reply {
            Reply::Hang(d) => {
                tokio::time::sleep(d).await;
                return;
            }
            Reply::Status(code) => {
                let head = format!(
                    "HTTP/1.1 {code} Scripted\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads one request (head and a `Content-Length` body); `None` when the peer closed.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Received>> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut headers = BTreeMap::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .map(|v| v.parse())
        .transpose()
        .context("Content-Length")?
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Ok(Some(Received {
        headers,
        body,
        at: Instant::now(),
    }))
}
