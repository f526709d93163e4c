//! A small Server-Sent Events reader over a reqwest response (enough for the panel's
//! `/jobs/{id}/events`: `id:`, `event:`, `data:` lines, messages ended by a blank line).

use std::time::Duration;

use anyhow::{Result, bail};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

/// One SSE message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseMessage {
    /// `data` parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&self.data)?)
    }
}

/// The messages of one open SSE response, in order.
pub struct SseStream {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for SseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseStream")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl SseStream {
    /// Reads messages from a response whose body is `text/event-stream`.
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            body: resp.bytes_stream().map(|r| r.map(|b| b.to_vec())).boxed(),
            buf: Vec::new(),
        }
    }

    /// The next message (comments and keep-alives skipped); `None` when the server closed
    /// the stream. Fails if nothing arrives within `limit`.
    pub async fn next(&mut self, limit: Duration) -> Result<Option<SseMessage>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(block) = self.take_block() {
                if let Some(msg) = parse_block(&block) {
                    return Ok(Some(msg));
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => bail!("no SSE message within {limit:?}"),
                Ok(None) => return Ok(None),
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk?),
            }
        }
    }

    /// One complete message block (up to a blank line), if buffered. Works on bytes so a
    /// UTF-8 character split across two chunks is never mangled.
    fn take_block(&mut self) -> Option<String> {
        let (end, sep) = [&b"\r\n\r\n"[..], b"\n\n"]
            .into_iter()
            .filter_map(|sep| {
                self.buf
                    .windows(sep.len())
                    .position(|w| w == sep)
                    .map(|p| (p, sep.len()))
            })
            .min()?;
        let block = String::from_utf8_lossy(&self.buf[..end]).replace("\r\n", "\n");
        self.buf.drain(..end + sep);
        Some(block)
    }
}

/// Parses one block; `None` for a block with only comments.
fn parse_block(block: &str) -> Option<SseMessage> {
    let (mut id, mut event, mut data, mut any) = (None, None, Vec::new(), false);
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value.to_owned()),
            _ => continue,
        }
        any = true;
    }
    any.then(|| SseMessage {
        id,
        event,
        data: data.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_with_id_event_and_multiline_data_parses() {
        let m = parse_block("id: 7\nevent: log\ndata: {\"a\":\ndata: 1}").unwrap();
        assert_eq!(m.id.as_deref(), Some("7"));
        assert_eq!(m.event.as_deref(), Some("log"));
        assert_eq!(m.data, "{\"a\":\n1}");
    }

    #[test]
    fn comment_only_block_is_skipped() {
        assert_eq!(parse_block(": keep-alive"), None);
    }
}
