//! Smoke checks against a booted system: an HTTP request made from inside its network
//! namespace, a listening TCP port read from its `/proc/<init>/net`, a shell command.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;

use crate::container::Container;
use crate::spec::{Check, CheckKind, HttpCheck};

/// Limit for one attempt of a check.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between attempts of a failing check.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Largest HTTP response read.
const MAX_RESPONSE: usize = 1024 * 1024;

/// The outcome of one check after its retries.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    /// What was observed on the last attempt.
    pub detail: String,
    pub duration_ms: u64,
}

/// Runs `check` until it passes or its `wait_seconds` are used up.
pub async fn run(container: &Container, check: &Check) -> CheckResult {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(check.wait_seconds);
    loop {
        let (passed, detail) = attempt(container, check.kind()).await;
        if passed || Instant::now() >= deadline {
            return CheckResult {
                name: check.name.clone(),
                passed,
                detail,
                duration_ms: millis(started.elapsed()),
            };
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

async fn attempt(container: &Container, kind: CheckKind<'_>) -> (bool, String) {
    match kind {
        CheckKind::Http(http) => {
            let pid = container.init_pid();
            let http = http.clone();
            match tokio::task::spawn_blocking(move || http_in_netns(pid, &http)).await {
                Ok(Ok(response)) => judge_http(&response, kind),
                Ok(Err(e)) => (false, e),
                Err(e) => (false, format!("probe thread failed: {e}")),
            }
        }
        CheckKind::Port(port) => {
            let pid = container.init_pid();
            let tables: String = ["tcp", "tcp6"]
                .iter()
                .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
                .collect();
            if listening_ports(&tables).contains(&port) {
                (true, format!("port {port} is listening"))
            } else {
                (false, format!("nothing listens on TCP port {port}"))
            }
        }
        CheckKind::Command(command) => {
            let argv = ["/bin/bash".to_owned(), "-c".to_owned(), command.to_owned()];
            match container.exec(&argv, &[], ATTEMPT_TIMEOUT).await {
                Ok(out) if out.code == Some(0) => (true, "exit 0".into()),
                Ok(out) => {
                    let tail = crate::container::tail_lines(&out.output, 5);
                    let code = out
                        .code
                        .map_or_else(|| "no exit code".to_owned(), |c| format!("exit {c}"));
                    (false, format!("{code}: {tail}"))
                }
                Err(e) => (false, e.to_string()),
            }
        }
    }
}

/// A parsed HTTP response: status code and decoded body.
#[derive(Debug)]
struct Response {
    status: u16,
    body: String,
}

fn judge_http(response: &Response, kind: CheckKind<'_>) -> (bool, String) {
    let CheckKind::Http(check) = kind else {
        return (false, "not an http check".into());
    };
    if response.status != check.status {
        return (
            false,
            format!("status {} (expected {})", response.status, check.status),
        );
    }
    if let Some(needle) = &check.body_contains
        && !response.body.contains(needle.as_str())
    {
        let start: String = response.body.chars().take(200).collect();
        return (
            false,
            format!(
                "status {}, body lacks {needle:?}; it starts {start:?}",
                response.status
            ),
        );
    }
    (true, format!("status {}", response.status))
}

/// Makes the request from a thread that joined the system's network namespace, so that
/// services bound to the system's loopback are reachable and nothing on the host is.
fn http_in_netns(pid: u32, check: &HttpCheck) -> Result<Response, String> {
    let check = check.clone();
    std::thread::spawn(move || {
        let netns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .map_err(|e| format!("open netns: {e}"))?;
        nix::sched::setns(netns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
        http_get(&check)
    })
    .join()
    .map_err(|_| "probe thread panicked".to_owned())?
}

fn http_get(check: &HttpCheck) -> Result<Response, String> {
    let rest = check
        .url
        .strip_prefix("http://")
        .ok_or("url must start with http://")?;
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    // "[::1]" and "10.0.0.1" get the default port; "[::1]:81" and "10.0.0.1:81" keep theirs.
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(h, _)| !h.is_empty() && (!h.contains(':') || h.ends_with(']')));
    let with_port = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr: SocketAddr = with_port
        .parse()
        .map_err(|_| format!("{authority} is not an IP address (with optional port)"))?;
    let host = check.host.as_deref().unwrap_or(authority);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: outfitter-conformance\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE as u64)
        .read_to_end(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete HTTP response head")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status code in the response")?;
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Decodes a chunked body; stops quietly at the first malformed size line.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&body[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 || body.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = body.get(eol + 4 + size..).unwrap_or_default();
    }
    out
}

/// Ports in state LISTEN in the text of `/proc/net/tcp` and `/proc/net/tcp6`.
fn listening_ports(tables: &str) -> Vec<u16> {
    const LISTEN: &str = "0A";
    tables
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields.get(1)?, fields.get(3)?);
            if *state != LISTEN {
                return None;
            }
            u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
        })
        .collect()
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_entries_yield_their_ports() {
        let tables = "  sl  local_address rem_address   st tx_queue\n\
           0: 0100007F:1538 00000000:0000 0A 00000000:00000000\n\
           1: 0100007F:1538 0100007F:9C40 01 00000000:00000000\n\
           0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(listening_ports(tables), [5432, 80]);
    }

    #[test]
    fn chunked_body_is_decoded() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let r = parse_response(raw).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "hello world"));
    }

    #[test]
    fn wrong_status_fails_with_both_codes() {
        let check = HttpCheck {
            url: "http://127.0.0.1/".into(),
            host: None,
            status: 200,
            body_contains: None,
        };
        let (passed, detail) = judge_http(
            &Response {
                status: 404,
                body: String::new(),
            },
            CheckKind::Http(&check),
        );
        assert!(!passed);
        assert_eq!(detail, "status 404 (expected 200)");
    }

    #[test]
    fn missing_body_text_fails() {
        let check = HttpCheck {
            url: "http://127.0.0.1/".into(),
            host: None,
            status: 200,
            body_contains: Some("x.test".into()),
        };
        assert!(
            !judge_http(
                &Response {
                    status: 200,
                    body: "Welcome".into()
                },
                CheckKind::Http(&check)
            )
            .0
        );
        assert!(
            judge_http(
                &Response {
                    status: 200,
                    body: "<h1>x.test</h1>".into()
                },
                CheckKind::Http(&check)
            )
            .0
        );
    }

    #[test]
    fn http_get_reads_status_and_body_from_a_real_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            request
        });
        let check = HttpCheck {
            url: format!("http://127.0.0.1:{port}/x"),
            host: Some("a.test".into()),
            status: 201,
            body_contains: None,
        };
        let r = http_get(&check).unwrap();
        assert_eq!((r.status, r.body.as_str()), (201, "ok"));
        assert!(server.join().unwrap().contains("Host: a.test\r\n"));
    }
}
