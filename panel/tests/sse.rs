//! Live progress: replay from `Last-Event-ID`, then live events, each exactly once; one
//! pubsub connection for all clients; recovery when pubsub loses events.

mod common;

use std::time::Duration;

use common::TestPanel;
use futures_util::StreamExt;
use outfitter_contract::event::{Event, EventBody, OutputStream};
use outfitter_contract::job::{JobState, field};
use outfitter_contract::redis_keys::AgentRedisKeys;
use serde_json::Value;

/// Reads SSE frames from a response.
struct Sse {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<actix_web::web::Bytes>>,
    buf: String,
}

impl Sse {
    async fn open(
        p: &TestPanel,
        job: &str,
        last: Option<&str>,
    ) -> (reqwest::StatusCode, Option<Sse>) {
        Self::open_path(p, &format!("/jobs/{job}/events"), last).await
    }

    /// `path` may carry a query string (`?last_event_id=`).
    async fn open_path(
        p: &TestPanel,
        path: &str,
        last: Option<&str>,
    ) -> (reqwest::StatusCode, Option<Sse>) {
        let mut req = TestPanel::client()
            .get(p.api(path))
            .bearer_auth(&p.viewer)
            .timeout(Duration::from_secs(60));
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        if status != 200 {
            return (status, None);
        }
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let body = r.bytes_stream().boxed();
        (
            status,
            Some(Sse {
                body,
                buf: String::new(),
            }),
        )
    }

    /// The next event (`id`, data JSON), `None` when the stream ended.
    async fn next(&mut self) -> Option<(u64, Value)> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut data = None;
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).unwrap());
                    }
                }
                if let (Some(id), Some(data)) = (id, data) {
                    return Some((id, data));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an event within 10 s")?;
            self.buf
                .push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }
}

fn log(n: usize) -> Event {
    Event::new(
        1,
        1,
        EventBody::Log {
            stream: OutputStream::Stdout,
            line: format!("line {n}"),
        },
    )
}

#[actix_web::test]
async fn reconnecting_client_with_last_event_id_gets_every_event_exactly_once() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    for n in 0..3 {
        p.runner_event("web-1", &id, log(n), &[]).await; // seq 2..4
    }
    let mut seen = Vec::new();
    let (_, a) = Sse::open(&p, &id, None).await;
    let mut a = a.unwrap();
    while let Some((seq, ev)) = a.next().await {
        assert_eq!(ev["seq"], seq);
        seen.push(seq);
        if seq == 4 {
            break;
        }
    }
    drop(a); // the browser loses its connection
    for n in 3..6 {
        p.runner_event("web-1", &id, log(n), &[]).await; // seq 5..7, missed while away
    }
    let (_, b) = Sse::open(&p, &id, Some(&seen.last().unwrap().to_string())).await;
    let mut b = b.unwrap();
    for _ in 0..3 {
        seen.push(b.next().await.unwrap().0);
    }
    // Live now: more events, then the end.
    p.runner_event("web-1", &id, log(6), &[]).await; // 8
    p.runner_event(
        "web-1",
        &id,
        Event::state(2, 1, JobState::Succeeded, Some(0), None),
        &[(field::STATE, "succeeded".into())],
    )
    .await; // 9
    while let Some((seq, _)) = b.next().await {
        seen.push(seq);
    }
    assert_eq!(
        seen,
        (1..=9).collect::<Vec<u64>>(),
        "each event once, in order, and the stream ends"
    );
}

#[actix_web::test]
async fn stream_id_form_of_last_event_id_is_accepted() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    p.runner_event("web-1", &id, log(0), &[]).await;
    let (_, s) = Sse::open(&p, &id, Some("0-1")).await;
    let (seq, ev) = s.unwrap().next().await.unwrap();
    assert_eq!(seq, 2);
    assert_eq!(ev["line"], "line 0");
}

#[actix_web::test]
async fn query_form_of_last_event_id_resumes_and_the_header_wins() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    p.run_job("web-1", &id, 1, JobState::Succeeded, Some(0))
        .await; // seq 2..5
    let events = format!("/jobs/{id}/events");
    let (_, s) = Sse::open_path(&p, &format!("{events}?last_event_id=3"), None).await;
    let mut s = s.expect("a stream");
    assert_eq!(s.next().await.unwrap().0, 4);
    assert_eq!(s.next().await.unwrap().0, 5);
    assert!(s.next().await.is_none(), "ends after the final state");
    let (_, s) = Sse::open_path(&p, &format!("{events}?last_event_id=0-4"), None).await;
    assert_eq!(s.expect("a stream").next().await.unwrap().0, 5);
    let (status, _) = Sse::open_path(&p, &format!("{events}?last_event_id=5"), None).await;
    assert_eq!(status, 204, "nothing newer than 5");
    let (status, _) = Sse::open_path(&p, &format!("{events}?last_event_id=x"), None).await;
    assert_eq!(status, 400);
    // Both given: the header is the browser's own resume point and wins.
    let (_, s) = Sse::open_path(&p, &format!("{events}?last_event_id=1"), Some("4")).await;
    assert_eq!(s.expect("a stream").next().await.unwrap().0, 5);
}

#[actix_web::test]
async fn finished_job_with_nothing_newer_answers_204_and_bad_ids_400() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    p.run_job("web-1", &id, 1, JobState::Failed, Some(2)).await; // seq 2..5
    let (status, _) = Sse::open(&p, &id, Some("5")).await;
    assert_eq!(status, 204);
    let (_, s) = Sse::open(&p, &id, Some("3")).await;
    let mut s = s.unwrap();
    assert_eq!(s.next().await.unwrap().0, 4);
    assert_eq!(s.next().await.unwrap().0, 5);
    assert!(s.next().await.is_none(), "ends after the final state");
    let (status, _) = Sse::open(&p, &id, Some("abc")).await;
    assert_eq!(status, 400);
    let (status, _) = Sse::open(&p, "0193a6c2-6a37-7cc1-9f55-2b8f0e1d4c3a", None).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn all_clients_share_one_pubsub_connection() {
    let p = TestPanel::start().await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
        let (_, s) = Sse::open(&p, &id, None).await;
        let mut s = s.unwrap();
        assert_eq!(s.next().await.unwrap().0, 1);
        streams.push((id, s));
    }
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut p.conn())
        .await
        .unwrap();
    assert_eq!(
        list.lines().count(),
        1,
        "one subscriber for three SSE clients: {list}"
    );
    for (id, s) in &mut streams {
        p.runner_event("web-1", id, log(9), &[]).await;
        let (seq, ev) = s.next().await.unwrap();
        assert_eq!((seq, ev["line"].as_str().unwrap()), (2, "line 9"));
    }
}

#[actix_web::test]
async fn events_lost_by_pubsub_are_recovered_from_the_stream() {
    let p = TestPanel::start().await;
    let id = p.demo_job().await["id"].as_str().unwrap().to_owned();
    let (_, s) = Sse::open(&p, &id, None).await;
    let mut s = s.unwrap();
    assert_eq!(s.next().await.unwrap().0, 1);
    // An event that reaches the stream but whose publication is lost (as when Redis drops a
    // slow subscriber): written without PUBLISH.
    let k = AgentRedisKeys::new("web-1");
    let mut c = p.conn();
    let seq: u64 = redis::cmd("HINCRBY")
        .arg(k.job(&id))
        .arg(field::SEQ)
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    let mut ev = log(1);
    ev.seq = Some(seq);
    let _: String = redis::cmd("XADD")
        .arg(k.job_events(&id))
        .arg(format!("0-{seq}"))
        .arg("e")
        .arg(serde_json::to_string(&ev).unwrap())
        .query_async(&mut c)
        .await
        .unwrap();
    // The subscription drops; the panel resubscribes and every client re-reads its stream.
    let _: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut c)
        .await
        .unwrap();
    let (got, e) = s.next().await.unwrap();
    assert_eq!(got, 2);
    assert_eq!(e["line"], "line 1");
    // And live delivery works again afterwards.
    p.runner_event("web-1", &id, log(2), &[]).await;
    assert_eq!(s.next().await.unwrap().0, 3);
}
