//! Hardening of the panel's connections (issue 14): the live-events subscription survives its
//! own pings (every line of a job arrives within 100 ms, `/healthz` keeps `pubsub:true`), and
//! a client trickling a request body is cut off with 408 within `body_read_timeout_secs`.

mod common;

use std::time::{Duration, Instant};

use common::TestPanel;
use futures_util::StreamExt;
use outfitter_contract::event::{Event, EventBody, OutputStream};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The next SSE event's `seq` (skipping comments), within `within`.
async fn next_seq(
    body: &mut futures_util::stream::BoxStream<'static, reqwest::Result<actix_web::web::Bytes>>,
    buf: &mut String,
    within: Duration,
) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
                return Some(id.parse().unwrap());
            }
            continue;
        }
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .ok()??;
        buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
}

#[actix_web::test]
async fn live_lines_arrive_promptly_across_many_ping_intervals() {
    let p = TestPanel::start_with(|s| s.pubsub_ping_secs = 1).await;
    let job = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let r = TestPanel::client()
        .get(p.api(&format!("/jobs/{job}/events")))
        .bearer_auth(&p.viewer)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream().boxed();
    let mut buf = String::new();
    assert_eq!(
        next_seq(&mut body, &mut buf, Duration::from_secs(5)).await,
        Some(1),
        "the queued event"
    );

    // 6 s idle-ish: 6 ping intervals, a line every 250 ms.
    let mut late = Vec::new();
    let mut down = 0;
    for n in 0..24u64 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let sent = Instant::now();
        let seq = p
            .runner_event(
                "web-1",
                &job,
                Event::new(
                    1,
                    1,
                    EventBody::Log {
                        stream: OutputStream::Stdout,
                        line: format!("line {n}"),
                    },
                ),
                &[],
            )
            .await;
        let got = next_seq(&mut body, &mut buf, Duration::from_secs(10)).await;
        assert_eq!(got, Some(seq), "lines in order, none lost");
        let ms = sent.elapsed().as_millis();
        if ms > 100 {
            late.push((n, ms));
        }
        let health: Value = p.get_site("/healthz").await.json().await.unwrap();
        if health["pubsub"] != true {
            down += 1;
        }
    }
    assert!(late.is_empty(), "lines later than 100 ms (n, ms): {late:?}");
    assert_eq!(
        down, 0,
        "/healthz said pubsub:false in {down} of 24 samples"
    );
}

/// Waits until the panel's subscription is up; how long that took.
async fn until_subscribed(p: &TestPanel) -> Duration {
    let started = Instant::now();
    while !p.state.live.is_connected() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never resubscribed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

async fn kill_subscription(p: &TestPanel) {
    let client = redis::Client::open(p.redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let killed: u32 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    // The panel notices the closed connection at once.
    let started = Instant::now();
    while p.state.live.is_connected() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[actix_web::test]
async fn the_resubscribe_backoff_starts_over_after_a_healthy_spell() {
    let p = TestPanel::start().await;
    until_subscribed(&p).await;
    // Five drops in a row: the backoff grows 100 ms, 200, 400, 800, 1.6 s.
    let mut waits = Vec::new();
    for _ in 0..5 {
        kill_subscription(&p).await;
        waits.push(until_subscribed(&p).await);
    }
    assert!(
        waits[4] > Duration::from_millis(1000),
        "backoff grows: {waits:?}"
    );
    // Healthy for longer than the 10 s that resets it, then one drop: back within 100 ms.
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    kill_subscription(&p).await;
    let wait = until_subscribed(&p).await;
    assert!(
        wait < Duration::from_millis(600),
        "resubscribed after {wait:?} (earlier waits {waits:?})"
    );
}

/// What the server did to a trickling client.
struct Trickled {
    reply: String,
    /// Until the first byte of the reply (`None`: no reply).
    answered: Option<Duration>,
    /// Until the server closed the connection (`None`: still open after 6 s of silence).
    closed: Option<Duration>,
}

/// Sends the head of a request, then `piece` of its body every 200 ms.
async fn trickle(p: &TestPanel, head: &str, piece: &'static [u8]) -> Trickled {
    let addr = p.url.strip_prefix("http://").unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..150 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if wr.write_all(piece).await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let (mut answered, mut closed) = (None, None);
    let mut chunk = [0u8; 4096];
    while let Ok(read) = tokio::time::timeout(Duration::from_secs(6), rd.read(&mut chunk)).await {
        match read {
            Ok(0) | Err(_) => {
                closed = Some(started.elapsed());
                break;
            }
            Ok(n) => {
                answered = answered.or(Some(started.elapsed()));
                got.extend_from_slice(&chunk[..n]);
            }
        }
    }
    writer.abort();
    Trickled {
        reply: String::from_utf8_lossy(&got).into_owned(),
        answered,
        closed,
    }
}

#[actix_web::test]
async fn a_trickled_body_is_cut_off_with_408_within_the_bound() {
    let p = TestPanel::start_with(|s| s.body_read_timeout_secs = 1).await;
    let heads = [
        format!(
            "POST /api/v1/jobs HTTP/1.1\r\nHost: panel\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
            p.operator
        ),
        "POST /login HTTP/1.1\r\nHost: panel\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
            .to_owned(),
        format!(
            "POST /api/v1/tokens HTTP/1.1\r\nHost: panel\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{{  \r\n",
            p.admin
        ),
    ];
    for head in &heads {
        let piece: &'static [u8] = if head.contains("chunked") {
            b"1\r\n \r\n"
        } else {
            b" "
        };
        let t = trickle(&p, head, piece).await;
        let first = head.lines().next().unwrap();
        assert!(
            t.reply.starts_with("HTTP/1.1 408"),
            "{first}: got {:?} after {:?}",
            t.reply,
            t.answered
        );
        assert!(t.reply.contains("request_timeout"), "{}", t.reply);
        // 408 at the bound (1 s); closed after actix's 1 s linger for the client to stop.
        assert!(
            t.answered.is_some_and(|d| d < Duration::from_millis(1500)),
            "{first}: 408 after {:?}",
            t.answered
        );
        let closed = t
            .closed
            .unwrap_or_else(|| panic!("{first}: the connection stays open"));
        assert!(
            closed < Duration::from_millis(3500),
            "{first}: closed after {closed:?}"
        );
    }
    // A body that arrives in time is still served.
    let r = p
        .post(&p.operator, "/jobs", &common::demo_body("web-1"))
        .await;
    assert_eq!(r.status(), 202);
}
