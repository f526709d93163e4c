//! nginx `stub_status`: active connections, and requests per second from the delta of its
//! requests counter between two probes.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant;

use outfitter_contract::host_metrics::Nginx;

use super::http;

/// Where nginx answers when no URL is set and an nginx process runs (the path of nginx's own
/// documentation example; a server without a `stub_status` location there answers 404, which
/// is quietly no metrics).
pub(crate) const DEFAULT_STATUS_URL: &str = "http://127.0.0.1/nginx_status";

/// What `stub_status` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub active: u64,
    pub requests: u64,
}

/// Parses the `stub_status` page:
///
/// ```text
/// Active connections: 291
/// server accepts handled requests
///  16630948 16630948 31070465
/// Reading: 6 Writing: 179 Waiting: 106
/// ```
pub(crate) fn parse(text: &str) -> Option<Status> {
    let mut lines = text.lines();
    let active = lines
        .next()?
        .strip_prefix("Active connections:")?
        .trim()
        .parse()
        .ok()?;
    lines
        .next()?
        .trim()
        .starts_with("server accepts handled")
        .then_some(())?;
    let requests = lines.next()?.split_whitespace().nth(2)?.parse().ok()?;
    Some(Status { active, requests })
}

/// Fetches and parses `url`; `None` (and a debug line) when nginx is not there or says
/// something else.
pub(crate) fn probe(url: &str) -> Option<Status> {
    let answer = (|| {
        let (host, port, path) =
            http::parse_http_url(url).ok_or_else(|| format!("not an http:// URL: {url}"))?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("no address")?;
        let stream = TcpStream::connect_timeout(&addr, http::TIMEOUT).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(http::TIMEOUT))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(http::TIMEOUT))
            .map_err(|e| e.to_string())?;
        let (status, body) = http::get(stream, &host, &path).map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("status {status}"));
        }
        parse(&body).ok_or_else(|| "not a stub_status page".to_owned())
    })();
    answer
        .map_err(|e| tracing::debug!(%url, error = %e, "host metrics: nginx stub_status"))
        .ok()
}

/// The metrics from this probe's status and the previous probe's (requests per second over
/// the time between them; 0 on the first probe or after a restart of nginx).
pub(crate) fn metrics(prev: Option<(Instant, Status)>, now: (Instant, Status)) -> Nginx {
    let requests_per_s = match prev {
        Some((then, before)) => {
            let s = now.0.duration_since(then).as_secs_f64();
            crate::host_metrics::per_second(before.requests, now.1.requests, s)
        }
        None => 0.0,
    };
    Nginx {
        active_connections: now.1.active,
        requests_per_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PAGE: &str = "Active connections: 291 \nserver accepts handled requests\n 16630948 16630948 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n";

    #[test]
    fn stub_status_page_parses() {
        assert_eq!(
            parse(PAGE),
            Some(Status {
                active: 291,
                requests: 31_070_465
            })
        );
        assert_eq!(parse("<html>404</html>"), None);
        assert_eq!(parse("Active connections: 1\n"), None);
    }

    #[test]
    fn requests_per_second_come_from_the_counter_between_probes() {
        let t0 = Instant::now();
        let s = |requests| Status {
            active: 2,
            requests,
        };
        assert_eq!(metrics(None, (t0, s(100))).requests_per_s, 0.0);
        let later = t0 + Duration::from_secs(30);
        assert_eq!(
            metrics(Some((t0, s(100))), (later, s(400))).requests_per_s,
            10.0
        );
        assert_eq!(
            metrics(Some((t0, s(400))), (later, s(5))).requests_per_s,
            0.0,
            "a restarted nginx counts from zero"
        );
    }

    #[test]
    fn absent_nginx_is_quietly_none() {
        let port = outfitter_test_support::free_port();
        assert_eq!(
            probe(&format!("http://127.0.0.1:{port}/nginx_status")),
            None
        );
        assert_eq!(probe("ftp://x/"), None);
    }
}
