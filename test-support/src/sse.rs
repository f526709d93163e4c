//! A Server-Sent Events reader over a reqwest response, as a browser reads the panel's
//! `GET /api/v1/jobs/{id}/events`: `id:`, `event:` and `data:` lines, messages ended by a
//! blank line (`\n\n` or `\r\n\r\n`), comments skipped. The end-to-end tests and the bench's
//! progress figure (100,000 events) read with it, so the buffer is cut in bulk, not per
//! message.

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
    /// Where the unread part of `buf` starts (the read part is dropped when the next chunk
    /// arrives, not per message: many small events must not cost a copy of the buffer each).
    start: usize,
}

impl std::fmt::Debug for SseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseStream")
            .field("buffered", &(self.buf.len() - self.start))
            .finish()
    }
}

impl SseStream {
    /// Reads messages from a response whose body is `text/event-stream`.
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            body: resp.bytes_stream().map(|r| r.map(|b| b.to_vec())).boxed(),
            buf: Vec::new(),
            start: 0,
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
                Ok(Some(chunk)) => {
                    self.buf.drain(..self.start);
                    self.start = 0;
                    self.buf.extend_from_slice(&chunk?);
                }
            }
        }
    }

    /// One complete message block, if buffered (bytes, so a UTF-8 character split across
    /// two chunks survives).
    fn take_block(&mut self) -> Option<String> {
        let unread = &self.buf[self.start..];
        let (end, next) = block_end(unread)?;
        let block = String::from_utf8_lossy(&unread[..end]).replace("\r\n", "\n");
        self.start += next;
        Some(block)
    }
}

/// Where the first message block ends (a blank line, `\n\n` or `\r\n\r\n`), and where the
/// next one starts; one pass over the bytes.
fn block_end(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'\n') {
        let nl = i + p;
        match b.get(nl + 1) {
            Some(b'\n') => return Some((nl, nl + 2)),
            Some(b'\r') if b.get(nl + 2) == Some(&b'\n') => {
                let end = if nl > 0 && b[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                return Some((end, nl + 3));
            }
            _ => i = nl + 1,
        }
    }
    None
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
            "data" => data.push(value),
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
    fn blocks_end_at_a_blank_line_of_either_style() {
        assert_eq!(block_end(b"data: a\n\ndata: b"), Some((7, 9)));
        assert_eq!(block_end(b"data: a\r\n\r\nx"), Some((7, 11)));
        assert_eq!(block_end(b"data: a\ndata: b\n"), None);
    }

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
