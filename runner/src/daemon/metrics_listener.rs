//! The local `/metrics` listener (`metrics_bind`, off by default): a few lines of HTTP/1
//! on a tokio listener — `GET /metrics` answers the text exposition format, anything else
//! 404 or 405, one request per connection. It is meant for a Prometheus on the same host or
//! network, like the panel's `/metrics`: no TLS, no authentication.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;

/// The longest request head read; a scrape's is a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// A connection that has not sent its request (or taken the answer) by then is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The panel's content type for the same format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds the address (at start, so that a taken port stops the runner with its reason).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Answers scrapes until the process ends.
pub async fn serve(listener: TcpListener, metrics: Metrics) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let m = metrics.clone();
                tokio::spawn(async move {
                    if tokio::time::timeout(IO_TIMEOUT, answer(stream, &m))
                        .await
                        .is_err()
                    {
                        tracing::debug!("metrics client too slow; dropped");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors, typically: wait rather than spin.
                tracing::warn!(error = %e, "metrics listener cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The status line and body for a request line (`GET /metrics HTTP/1.1`).
fn route(request_line: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => ("200 OK", CONTENT_TYPE, metrics.encode()),
        (_, "/metrics") => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET only\n".into(),
        ),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only /metrics is here\n".into(),
        ),
    }
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let (status, content_type, body) = route(text.lines().next().unwrap_or(""), metrics);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_answers_the_metrics() {
        let m = Metrics::new("a", 0);
        let (status, ctype, body) = route("GET /metrics HTTP/1.1", &m);
        assert_eq!((status, ctype), ("200 OK", CONTENT_TYPE));
        assert!(body.contains("outfitter_runner_build_info"));
        assert_eq!(
            route("GET /metrics?x=1 HTTP/1.0", &m).0,
            "200 OK",
            "a query is ignored"
        );
        assert_eq!(
            route("POST /metrics HTTP/1.1", &m).0,
            "405 Method Not Allowed"
        );
        assert_eq!(route("GET / HTTP/1.1", &m).0, "404 Not Found");
        assert_eq!(route("", &m).0, "404 Not Found");
    }
}
