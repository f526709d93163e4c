//! A minimal HTTP/1.0 GET over a TCP or unix stream, for `stub_status` and the Docker API:
//! one request, the connection closed by the server, the body read to a cap.

use std::io::{self, Read, Write};
use std::time::Duration;

/// How long a service may take to connect or answer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(2);
/// Largest body read (a Docker host with thousands of containers stays under it).
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Sends `GET path` with `Host: host` and returns the status and the body.
pub(crate) fn get(
    mut stream: impl Read + Write,
    host: &str,
    path: &str,
) -> io::Result<(u16, String)> {
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: outfitter-runner\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.take(MAX_BODY).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of headers"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no status line"))?;
    Ok((status, body.to_owned()))
}

/// `http://host[:port]/path` as (host, port, path); `None` for anything else (https included:
/// a local `stub_status` is plain HTTP).
pub(crate) fn parse_http_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, p.parse().ok()?),
        _ => (authority, 80),
    };
    if host.is_empty() {
        return None;
    }
    Some((
        host.trim_matches(['[', ']']).to_owned(),
        port,
        path.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_split_into_host_port_and_path() {
        assert_eq!(
            parse_http_url("http://127.0.0.1/nginx_status"),
            Some(("127.0.0.1".into(), 80, "/nginx_status".into()))
        );
        assert_eq!(
            parse_http_url("http://localhost:8080"),
            Some(("localhost".into(), 8080, "/".into()))
        );
        assert_eq!(
            parse_http_url("http://[::1]:81/s"),
            Some(("::1".into(), 81, "/s".into()))
        );
        assert_eq!(parse_http_url("https://x/"), None);
        assert_eq!(parse_http_url("http://:80/"), None);
    }
}
