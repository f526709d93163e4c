//! Reading the panel's `GET /api/v1/jobs/{id}/events` (Server-Sent Events) as a browser
//! would: `id:` and `data:` lines, messages ended by a blank line.

use std::time::Duration;

use anyhow::{Result, bail};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

/// The `data:` payloads of one open SSE response, in order.
pub(crate) struct SseStream {
    body: BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts (the read part is dropped in bulk, not per
    /// message: 100,000 events must not cost a copy of the buffer each).
    start: usize,
}

impl std::fmt::Debug for SseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseStream")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl SseStream {
    /// Opens the event stream of `job_id` on the panel at `base` (`http://host:port`).
    pub(crate) async fn open(
        http: &reqwest::Client,
        base: &str,
        token: &str,
        job_id: &str,
    ) -> Result<Self> {
        let resp = http
            .get(format!("{base}/api/v1/jobs/{job_id}/events"))
            .bearer_auth(token)
            .header("Accept", "text/event-stream")
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("GET /api/v1/jobs/{job_id}/events: {}", resp.status());
        }
        Ok(Self {
            body: resp.bytes_stream().map(|r| r.map(|b| b.to_vec())).boxed(),
            buf: Vec::new(),
            start: 0,
        })
    }

    /// The next message's data (comments and keep-alives skipped); `None` when the server
    /// closed the stream. Fails if nothing arrives within `limit`.
    pub(crate) async fn next(&mut self, limit: Duration) -> Result<Option<String>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(block) = self.take_block() {
                if let Some(data) = data_of(&block) {
                    return Ok(Some(data));
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

    /// One complete message block, if buffered (bytes, so a split UTF-8 character survives).
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

/// The joined `data:` lines of a block; `None` for a block without data (comments).
fn data_of(block: &str) -> Option<String> {
    let data: Vec<&str> = block
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|v| v.strip_prefix(' ').unwrap_or(v))
        .collect();
    (!data.is_empty()).then(|| data.join("\n"))
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
    fn data_lines_are_joined_and_comments_skipped() {
        assert_eq!(
            data_of("id: 3\ndata: {\"a\":\ndata: 1}").as_deref(),
            Some("{\"a\":\n1}")
        );
        assert_eq!(data_of(": keep-alive"), None);
    }
}
