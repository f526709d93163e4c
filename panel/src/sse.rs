//! Server-sent events of one job: replay from the stream after `Last-Event-ID`, then live
//! events, each delivered once, in sequence order. The SSE `id:` is the event's `seq`.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::web::Bytes;
use outfitter_contract::event::{Event, EventBody};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::jobs::events::{self, PAGE};
use crate::live::Subscription;
use crate::state::AppState;

/// Keepalive comment (and stream re-read) interval.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// Reconnect delay the browser is told to use.
const RETRY_MS: u32 = 2000;

/// Parses `Last-Event-ID`: a sequence number, or the stream id `0-<seq>`.
pub fn parse_last_event_id(value: &str) -> Option<u64> {
    let v = value.trim();
    v.strip_prefix("0-").unwrap_or(v).parse().ok()
}

/// Whether an event ends the job (a terminal state).
pub fn is_terminal_event(json: &str) -> bool {
    matches!(
        serde_json::from_str::<Event>(json).map(|e| e.body),
        Ok(EventBody::State { state, .. }) if state.is_terminal()
    )
}

fn frame(seq: u64, json: &str) -> Bytes {
    // Event JSON never contains a raw newline (serde escapes them), so one `data:` line.
    Bytes::from(format!("id: {seq}\ndata: {json}\n\n"))
}

struct Client {
    state: actix_web::web::Data<AppState>,
    agent_id: String,
    job_id: String,
    last: u64,
    /// Whether the latest delivered event was a terminal state.
    ended: bool,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
}

enum Step {
    Go,
    Done,
}

impl Client {
    async fn send(&self, bytes: Bytes) -> Step {
        match self.tx.send(Ok(bytes)).await {
            Ok(()) => Step::Go,
            Err(_) => Step::Done,
        }
    }

    /// Sends every stored event after `last`; `Done` when the last stored event ends the job
    /// (a terminal state followed by a retry does not end it) or the client left.
    async fn catch_up(&mut self) -> Step {
        let mut conn = self.state.redis.clone();
        loop {
            let page = match events::read_after(
                &mut conn,
                &self.agent_id,
                &self.job_id,
                self.last,
                PAGE,
            )
            .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(job = %self.job_id, error = %e, "re-reading job events failed");
                    return Step::Go;
                }
            };
            let full = page.len() == PAGE;
            for ev in page {
                if ev.seq <= self.last {
                    continue;
                }
                if let Step::Done = self.deliver(ev.seq, &ev.json).await {
                    return Step::Done;
                }
            }
            if !full {
                return if self.ended { Step::Done } else { Step::Go };
            }
        }
    }

    async fn deliver(&mut self, seq: u64, json: &str) -> Step {
        if let Step::Done = self.send(frame(seq, json)).await {
            return Step::Done;
        }
        self.last = seq;
        self.ended = is_terminal_event(json);
        Step::Go
    }

    async fn deliver_live(&mut self, seq: u64, json: &str) -> Step {
        match self.deliver(seq, json).await {
            Step::Go if self.ended => Step::Done,
            step => step,
        }
    }

    async fn run(mut self, mut sub: Subscription) {
        if let Step::Done = self
            .send(Bytes::from(format!("retry: {RETRY_MS}\n\n")))
            .await
        {
            return;
        }
        if let Step::Done = self.catch_up().await {
            return;
        }
        let mut tick = tokio::time::interval(KEEPALIVE);
        tick.tick().await;
        loop {
            let step = tokio::select! {
                msg = sub.events.recv() => match msg {
                    Ok(ev) if ev.seq <= self.last => Step::Go,
                    Ok(ev) if ev.seq == self.last + 1 => self.deliver_live(ev.seq, &ev.json).await,
                    // A gap: something was missed; the stream has it.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
                    Err(broadcast::error::RecvError::Closed) => Step::Done,
                },
                r = sub.resync.recv() => match r {
                    Err(broadcast::error::RecvError::Closed) => Step::Done,
                    _ => self.catch_up().await,
                },
                _ = tick.tick() => match self.send(Bytes::from_static(b": keepalive\n\n")).await {
                    Step::Go => self.catch_up().await,
                    Step::Done => Step::Done,
                },
                _ = self.tx.closed() => Step::Done,
            };
            if let Step::Done = step {
                return;
            }
        }
    }
}

/// Starts streaming one job's events after `after`; the returned stream is the response body.
pub fn open(
    state: actix_web::web::Data<AppState>,
    agent_id: String,
    job_id: String,
    after: u64,
) -> ReceiverStream<Result<Bytes, Infallible>> {
    let (tx, rx) = mpsc::channel(64);
    // Subscribe before the first read of the stream: an event published in between is
    // then both read and received, and the sequence check drops the second copy.
    let sub = state.live.subscribe(&job_id);
    let client = Client {
        state,
        agent_id,
        job_id,
        last: after,
        ended: false,
        tx,
    };
    actix_web::rt::spawn(client.run(sub));
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_accepts_seq_or_stream_id() {
        assert_eq!(parse_last_event_id("5"), Some(5));
        assert_eq!(parse_last_event_id("0-12"), Some(12));
        assert_eq!(parse_last_event_id("x"), None);
        assert_eq!(parse_last_event_id("-1"), None);
    }

    #[test]
    fn only_terminal_state_events_end_a_stream() {
        assert!(is_terminal_event(
            r#"{"seq":3,"ts":1,"attempt":1,"type":"state","state":"succeeded","exit_code":0}"#
        ));
        assert!(!is_terminal_event(
            r#"{"seq":2,"ts":1,"attempt":1,"type":"state","state":"running"}"#
        ));
        assert!(!is_terminal_event(
            r#"{"seq":2,"ts":1,"attempt":1,"type":"log","stream":"stdout","line":"x"}"#
        ));
    }
}
