//! A minimal HTTP/1.1 client connection with keep-alive: it writes prepared request bytes
//! and reads one response (Content-Length or chunked). The load generator and the dispatch
//! figure use it so that the client's own cost stays small next to the server's.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response header block accepted.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// One response.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub(crate) fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "status {}, body is not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// The bytes of one request, built once and sent many times.
pub(crate) fn request(method: &str, path: &str, token: &str, json_body: Option<&str>) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nUser-Agent: outfitter-bench\r\n"
    );
    match json_body {
        Some(b) => r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => r.push_str("\r\n"),
    }
    r.into_bytes()
}

/// A keep-alive connection; reconnects by itself when the server closed it.
#[derive(Debug)]
pub(crate) struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self> {
        let mut c = Self {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        };
        c.ensure_connected().await?;
        Ok(c)
    }

    async fn ensure_connected(&mut self) -> Result<&mut TcpStream> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        Ok(self.stream.as_mut().expect("just connected"))
    }

    /// Sends `req` and reads the whole response.
    pub(crate) async fn send(&mut self, req: &[u8]) -> Result<Response> {
        let stream = self.ensure_connected().await?;
        if let Err(e) = stream.write_all(req).await {
            self.stream = None;
            return Err(e.into());
        }
        match self.read_response().await {
            Ok((resp, keep_alive)) => {
                if !keep_alive {
                    self.stream = None;
                }
                Ok(resp)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    /// Reads more bytes into the buffer; fails at end of stream.
    async fn fill(&mut self) -> Result<()> {
        let stream = self.stream.as_mut().context("not connected")?;
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection mid-response");
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn read_response(&mut self) -> Result<(Response, bool)> {
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p;
            }
            if self.buf.len() > MAX_HEADER_BYTES {
                bail!("response headers longer than {MAX_HEADER_BYTES} bytes");
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .context("malformed status line")?;
        let (mut length, mut chunked, mut keep_alive) = (None, false, true);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => {
                    length = Some(value.parse::<usize>().context("bad Content-Length")?)
                }
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => keep_alive = !value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let body = if chunked {
            self.read_chunked().await?
        } else {
            let n = length.unwrap_or(0);
            while self.buf.len() < n {
                self.fill().await?;
            }
            self.buf.drain(..n).collect()
        };
        Ok((Response { status, body }, keep_alive))
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(p) = find(&self.buf, b"\r\n") {
                    break p;
                }
                self.fill().await?;
            };
            let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .with_context(|| format!("bad chunk size {size_text:?}"))?;
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Serves the given raw responses, one per request read, on one connection.
    async fn serve(responses: Vec<&'static str>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for r in responses {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(r.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn content_length_and_chunked_bodies_are_read_on_one_connection() {
        let addr = serve(vec![
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        ])
        .await;
        let mut c = Conn::connect(addr).await.unwrap();
        let req = request("GET", "/x", "t", None);
        let a = c.send(&req).await.unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"hello"[..]));
        let b = c.send(&req).await.unwrap();
        assert_eq!((b.status, b.body.as_slice()), (202, &b"abcde"[..]));
    }

    #[tokio::test]
    async fn a_truncated_response_is_an_error() {
        let addr = serve(vec!["HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nshort"]).await;
        let mut c = Conn::connect(addr).await.unwrap();
        assert!(c.send(&request("GET", "/", "t", None)).await.is_err());
    }

    #[test]
    fn post_request_carries_length_and_token() {
        let r = String::from_utf8(request("POST", "/api/v1/jobs", "tok", Some("{}"))).unwrap();
        assert!(r.starts_with("POST /api/v1/jobs HTTP/1.1\r\n"));
        assert!(r.contains("Authorization: Bearer tok\r\n"));
        assert!(r.ends_with("Content-Length: 2\r\n\r\n{}"));
    }
}
