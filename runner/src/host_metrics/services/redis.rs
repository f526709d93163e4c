//! Redis `INFO`: memory used and connected clients.

use outfitter_contract::host_metrics::RedisService;

use super::http::TIMEOUT;

/// Where Redis answers when no URL is set and a `redis-server` process runs.
pub(crate) const DEFAULT_URL: &str = "redis://127.0.0.1:6379/";

const MIB: u64 = 1024 * 1024;

/// Reads `used_memory` and `connected_clients` from `INFO` text (`key:value` lines, `#`
/// section headings); `None` when either is missing.
pub(crate) fn parse(info: &str) -> Option<RedisService> {
    let field = |name: &str| {
        info.lines().find_map(|l| {
            let (k, v) = l.trim().split_once(':')?;
            (k == name).then(|| v.trim().parse::<u64>().ok())?
        })
    };
    Some(RedisService {
        used_memory_mb: field("used_memory")? / MIB,
        clients: field("connected_clients")?,
    })
}

/// Asks the Redis at `url` (`INFO clients` and `INFO memory`: one section each, which every
/// Redis version takes); `None` (and a debug line) when it is not there, wants a password it
/// was not given, or answers something else.
pub(crate) fn probe(url: &str) -> Option<RedisService> {
    let answer = (|| -> Result<RedisService, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_connection_with_timeout(TIMEOUT)
            .map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        conn.set_write_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let (clients, memory): (String, String) = redis::pipe()
            .cmd("INFO")
            .arg("clients")
            .cmd("INFO")
            .arg("memory")
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        parse(&format!("{clients}\n{memory}")).ok_or_else(|| "INFO without the fields".to_owned())
    })();
    answer
        .map_err(|e| tracing::debug!(error = %e, "host metrics: redis INFO"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_text_parses() {
        let info = "# Clients\r\nconnected_clients:7\r\ncluster_connections:0\r\n\r\n# Memory\r\nused_memory:5242880\r\nused_memory_human:5.00M\r\nused_memory_rss:9000000\r\n";
        assert_eq!(
            parse(info),
            Some(RedisService {
                used_memory_mb: 5,
                clients: 7
            })
        );
        assert_eq!(parse("# Server\r\nredis_version:7.0.15\r\n"), None);
    }

    #[test]
    fn absent_redis_is_quietly_none() {
        let port = outfitter_test_support::free_port();
        assert_eq!(probe(&format!("redis://127.0.0.1:{port}/")), None);
        assert_eq!(probe("not a url"), None);
    }

    #[test]
    fn a_private_redis_server_reports_its_clients_and_memory() {
        let server = outfitter_test_support::RedisServer::start();
        let got = probe(&server.url()).expect("INFO answered");
        assert!(got.clients >= 1, "the probe itself is a client: {got:?}");
        let mut conn = redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let blob = "x".repeat(4 * 1024 * 1024);
        for i in 0..4 {
            redis::cmd("SET")
                .arg(format!("k{i}"))
                .arg(&blob)
                .query::<()>(&mut conn)
                .unwrap();
        }
        let after = probe(&server.url()).expect("INFO answered");
        assert!(
            after.used_memory_mb >= got.used_memory_mb + 15,
            "16 MiB of values show: {got:?} then {after:?}"
        );
        assert!(
            after.clients >= 2,
            "the second connection counts: {after:?}"
        );
    }
}
