//! A small caching HTTP proxy on the host end of each container's link: the containers'
//! only way out. It forwards plain-HTTP requests (apt) and tunnels CONNECT (https, e.g.
//! npm) to an allowlist of package registries, and keeps immutable downloads (`.deb`
//! files and `by-hash` indexes) on disk so that later tests and runs install from cache.
//!
//! One request per client connection: every response carries `Connection: close`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Port the proxy listens on at each link's host address.
pub const PROXY_PORT: u16 = 3142;

/// What the proxy may reach and where it caches.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Host names (exact) that requests may go to.
    pub allowed_hosts: Vec<String>,
    pub cache_dir: PathBuf,
}

/// Serves one listener until the task is aborted.
pub async fn serve(listener: TcpListener, config: Arc<ProxyConfig>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(client, &config).await {
                tracing::debug!("proxy request failed: {e}");
            }
        });
    }
}

/// The parsed start of a client request.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    host: String,
    port: u16,
    /// Origin-form path (`/debian/pool/…`), empty for CONNECT.
    path: String,
    /// Header lines to pass on (hop-by-hop and proxy headers removed).
    headers: Vec<String>,
}

async fn handle(client: TcpStream, config: &ProxyConfig) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let head = read_head(&mut client).await?;
    let request = match parse_request(&head) {
        Ok(r) => r,
        Err(reason) => return respond(client.get_mut(), 400, reason).await,
    };
    if !config
        .allowed_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&request.host))
    {
        return respond(
            client.get_mut(),
            403,
            "host not on the conformance proxy allowlist",
        )
        .await;
    }
    match request.method.as_str() {
        "CONNECT" => tunnel(client.into_inner(), &request).await,
        "GET" | "HEAD" => forward(client.into_inner(), &request, config).await,
        _ => {
            respond(
                client.get_mut(),
                405,
                "only GET, HEAD and CONNECT are proxied",
            )
            .await
        }
    }
}

async fn tunnel(mut client: TcpStream, request: &Request) -> std::io::Result<()> {
    let mut upstream = match TcpStream::connect((request.host.as_str(), request.port)).await {
        Ok(s) => s,
        Err(_) => return respond(&mut client, 502, "upstream unreachable").await,
    };
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

async fn forward(
    mut client: TcpStream,
    request: &Request,
    config: &ProxyConfig,
) -> std::io::Result<()> {
    let cache_file = cacheable(request).then(|| cache_path(&config.cache_dir, request));
    if let Some(path) = &cache_file
        && let Ok(body) = tokio::fs::read(path).await
    {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        client.write_all(head.as_bytes()).await?;
        if request.method == "GET" {
            client.write_all(&body).await?;
        }
        return Ok(());
    }
    let Ok(upstream) = TcpStream::connect((request.host.as_str(), request.port)).await else {
        return respond(&mut client, 502, "upstream unreachable").await;
    };
    let mut upstream = BufReader::new(upstream);
    let mut out = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n",
        request.method, request.path, request.host
    );
    for header in &request.headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    upstream.get_mut().write_all(out.as_bytes()).await?;

    let head = read_head(&mut upstream).await?;
    let (status, content_length) = parse_response_head(&head);
    client.write_all(&rewrite_connection_close(&head)).await?;
    let keep =
        cache_file.filter(|_| status == 200 && content_length.is_some() && request.method == "GET");
    let mut body = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = upstream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        client.write_all(&buf[..n]).await?;
        if keep.is_some() {
            body.extend_from_slice(&buf[..n]);
        }
    }
    if let (Some(path), Some(expected)) = (keep, content_length)
        && body.len() as u64 == expected
    {
        store(&path, &body).await;
    }
    Ok(())
}

/// Immutable by name: a versioned package file or an index addressed by its hash.
fn cacheable(request: &Request) -> bool {
    let path = request.path.split('?').next().unwrap_or("");
    path.ends_with(".deb") || path.contains("/by-hash/")
}

fn cache_path(dir: &Path, request: &Request) -> PathBuf {
    let url = format!(
        "{}:{}{}",
        request.host.to_ascii_lowercase(),
        request.port,
        request.path
    );
    dir.join(hex::encode(Sha256::digest(url.as_bytes())))
}

/// Writes through a temporary name so that a reader never sees half a file.
async fn store(path: &Path, body: &[u8]) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if tokio::fs::write(&tmp, body).await.is_ok() && tokio::fs::rename(&tmp, path).await.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
}

async fn read_head<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let n = reader.read_until(b'\n', &mut head).await?;
        if n == 0 || head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "head too large",
            ));
        }
    }
}

async fn respond(client: &mut TcpStream, status: u16, reason: &str) -> std::io::Result<()> {
    let body = format!("{reason}\n");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await?;
    client.write_all(body.as_bytes()).await
}

fn parse_request(head: &[u8]) -> Result<Request, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8")?;
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let start = lines.next().ok_or("empty request")?;
    let mut parts = start.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err("bad request line");
    };
    let (host, port, path) = if method == "CONNECT" {
        let (host, port) = target.rsplit_once(':').ok_or("CONNECT needs host:port")?;
        (
            host,
            port.parse().map_err(|_| "bad CONNECT port")?,
            String::new(),
        )
    } else {
        let rest = target
            .strip_prefix("http://")
            .ok_or("proxy requests need an absolute http:// URL")?;
        let (authority, path) = rest
            .find('/')
            .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| "bad port")?),
            None => (authority, 80),
        };
        (host, port, path.to_owned())
    };
    let hop_by_hop = [
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "upgrade",
    ];
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter(|l| {
            let name = l
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            !hop_by_hop.contains(&name.as_str())
        })
        .map(str::to_owned)
        .collect();
    Ok(Request {
        method: method.to_owned(),
        host: host.to_owned(),
        port,
        path,
        headers,
    })
}

/// Status code and Content-Length of a response head.
fn parse_response_head(head: &[u8]) -> (u16, Option<u64>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok());
    (status, length)
}

/// The response head with any Connection/Keep-Alive header replaced by `Connection: close`.
fn rewrite_connection_close(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if name != "connection" && name != "keep-alive" {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_get_is_split_into_host_port_and_path() {
        let r = parse_request(b"GET http://deb.debian.org/debian/pool/a.deb HTTP/1.1\r\nHost: deb.debian.org\r\nUser-Agent: apt\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.path.as_str()),
            ("deb.debian.org", 80, "/debian/pool/a.deb")
        );
        assert_eq!(r.headers, ["User-Agent: apt"]);
        assert!(cacheable(&r));
    }

    #[test]
    fn connect_target_gives_host_and_port() {
        let r = parse_request(b"CONNECT registry.npmjs.org:443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            (r.method.as_str(), r.host.as_str(), r.port),
            ("CONNECT", "registry.npmjs.org", 443)
        );
    }

    #[test]
    fn origin_form_request_is_refused() {
        assert!(parse_request(b"GET /index.html HTTP/1.1\r\n\r\n").is_err());
    }

    #[test]
    fn release_files_are_not_cached_but_by_hash_indexes_are() {
        let r = parse_request(
            b"GET http://deb.debian.org:80/debian/dists/bookworm/InRelease HTTP/1.1\r\n\r\n",
        )
        .unwrap();
        assert!(!cacheable(&r));
        let r = parse_request(b"GET http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/ab HTTP/1.1\r\n\r\n").unwrap();
        assert!(cacheable(&r));
    }

    #[test]
    fn response_head_gives_status_and_length_and_is_made_to_close() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n";
        assert_eq!(parse_response_head(head), (200, Some(42)));
        let rewritten = String::from_utf8(rewrite_connection_close(head)).unwrap();
        assert_eq!(
            rewritten,
            "HTTP/1.1 200 OK\r\nContent-Length: 42\r\nConnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn host_off_the_allowlist_gets_403() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ProxyConfig {
            allowed_hosts: vec!["deb.debian.org".into()],
            cache_dir: dir.path().into(),
        });
        let server = tokio::spawn(serve(listener, config));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET http://evil.example/ HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        server.abort();
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    }

    #[tokio::test]
    async fn cached_package_is_served_without_upstream() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        // An allowlisted name that cannot resolve proves the bytes came from the cache.
        let host = "cached.invalid";
        let request = parse_request(
            format!("GET http://{host}/pool/x_1.0_all.deb HTTP/1.1\r\n\r\n").as_bytes(),
        )
        .unwrap();
        std::fs::write(cache_path(dir.path(), &request), b"package bytes").unwrap();
        let config = Arc::new(ProxyConfig {
            allowed_hosts: vec![host.into()],
            cache_dir: dir.path().into(),
        });
        let server = tokio::spawn(serve(listener, config));
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(format!("GET http://{host}/pool/x_1.0_all.deb HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        server.abort();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("\r\n\r\npackage bytes"), "{reply}");
    }
}
