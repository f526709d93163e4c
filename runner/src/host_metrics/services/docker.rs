//! Docker: containers running and in all, from `GET /containers/json?all=1` on the engine's
//! unix socket.

use std::os::unix::net::UnixStream;
use std::path::Path;

use outfitter_contract::host_metrics::Docker;

use super::http;

/// The engine's socket when no other is set.
pub(crate) const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Counts the containers of a `/containers/json` answer (an array of objects with `State`).
pub(crate) fn parse(json: &str) -> Option<Docker> {
    let list: Vec<serde_json::Value> = serde_json::from_str(json).ok()?;
    let running = list
        .iter()
        .filter(|c| c.get("State").and_then(|s| s.as_str()) == Some("running"))
        .count();
    Some(Docker {
        running: running as u64,
        total: list.len() as u64,
    })
}

/// Asks the engine on `socket`; `None` (and a debug line) when there is none or it answers
/// something else.
pub(crate) fn probe(socket: &Path) -> Option<Docker> {
    let answer = (|| -> Result<Docker, String> {
        let stream = UnixStream::connect(socket).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(http::TIMEOUT))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(http::TIMEOUT))
            .map_err(|e| e.to_string())?;
        let (status, body) =
            http::get(stream, "docker", "/containers/json?all=1").map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("status {status}"));
        }
        parse(&body).ok_or_else(|| "not a container list".to_owned())
    })();
    answer
        .map_err(
            |e| tracing::debug!(socket = %socket.display(), error = %e, "host metrics: docker"),
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_list_counts_running_and_all() {
        let json = r#"[{"Id":"a1","Names":["/web"],"State":"running","Status":"Up 2 hours"},
                       {"Id":"b2","Names":["/job"],"State":"exited","Status":"Exited (0)"},
                       {"Id":"c3","Names":["/db"],"State":"running","Status":"Up 1 day"}]"#;
        assert_eq!(
            parse(json),
            Some(Docker {
                running: 2,
                total: 3
            })
        );
        assert_eq!(parse("[]"), Some(Docker::default()));
        assert_eq!(parse(r#"{"message":"page not found"}"#), None);
    }

    #[test]
    fn a_missing_socket_is_quietly_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(&dir.path().join("docker.sock")), None);
    }

    #[test]
    fn an_engine_answering_over_the_socket_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let engine = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 1024];
            let n = s.read(&mut req).unwrap();
            let req = String::from_utf8_lossy(&req[..n]).into_owned();
            let body = r#"[{"State":"running"},{"State":"created"}]"#;
            write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            req
        });
        assert_eq!(
            probe(&path),
            Some(Docker {
                running: 1,
                total: 2
            })
        );
        assert!(
            engine
                .join()
                .unwrap()
                .starts_with("GET /containers/json?all=1 HTTP/1.0\r\n")
        );
    }
}
