//! PostgreSQL: client connections and database sizes, asked through `psql` as the `postgres`
//! user (`runuser -u postgres -- psql -XAt`), the way an operator would on the server: peer
//! authentication on the local socket needs no password and no client library.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outfitter_contract::host_metrics::{Database, MAX_DATABASES, Postgres};

/// How long `psql` may take before it is killed.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One query, so one connection: our own backend is not counted; template databases and
/// those that take no connections are left out.
const QUERY: &str = "select 'c', '', count(*) from pg_stat_activity \
     where backend_type = 'client backend' and pid <> pg_backend_pid() \
     union all \
     select 'd', datname::text, pg_database_size(oid) / 1048576 from pg_database \
     where datallowconn and not datistemplate";

/// Whether the server looks like it has a PostgreSQL to ask: a `postgres` user and `psql` on
/// the `PATH`.
pub(crate) fn present() -> bool {
    let user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .is_some();
    user && on_path("psql")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| Path::new(&dir).join(program).is_file())
    })
}

/// Parses `psql -XAt -F '\t'` output of [`QUERY`]: `c\t\t<n>` and `d\t<name>\t<MiB>` lines.
/// Databases largest first, at most [`MAX_DATABASES`]; `None` without the count line.
pub(crate) fn parse(out: &str) -> Option<Postgres> {
    let mut connections = None;
    let mut databases = Vec::new();
    for line in out.lines() {
        let Some((kind, rest)) = line.split_once('\t') else {
            continue;
        };
        let Some((name, value)) = rest.rsplit_once('\t') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue;
        };
        match kind {
            "c" => connections = Some(value),
            "d" => databases.push(Database {
                name: name.to_owned(),
                size_mb: value,
            }),
            _ => {}
        }
    }
    databases.sort_by(|a, b| b.size_mb.cmp(&a.size_mb).then_with(|| a.name.cmp(&b.name)));
    databases.truncate(MAX_DATABASES);
    Some(Postgres {
        connections: connections?,
        databases,
    })
}

/// Runs the query through `program` (`runuser`, or a stand-in in tests); `None` (and a debug
/// line) when it cannot run, fails, or takes longer than [`TIMEOUT`].
pub(crate) fn probe_with(program: &str) -> Option<Postgres> {
    let answer = (|| -> Result<Postgres, String> {
        let mut child = Command::new(program)
            .args([
                "-u", "postgres", "--", "psql", "-XAt", "-F", "\t", "-c", QUERY,
            ])
            .env("PGCONNECT_TIMEOUT", "3")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{program}: {e}"))?;
        let deadline = Instant::now() + TIMEOUT;
        while child.try_wait().map_err(|e| e.to_string())?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("psql took longer than {TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "psql {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        parse(&String::from_utf8_lossy(&out.stdout))
            .ok_or_else(|| "no count in psql's answer".into())
    })();
    answer
        .map_err(|e| tracing::debug!(error = %e, "host metrics: postgres"))
        .ok()
}

/// [`probe_with`] `runuser`.
pub(crate) fn probe() -> Option<Postgres> {
    probe_with("runuser")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_output_parses_largest_database_first() {
        let out = "c\t\t3\nd\tpostgres\t7\nd\tshop\t120\nd\tname with\ttab\t1\n";
        let pg = parse(out).unwrap();
        assert_eq!(pg.connections, 3);
        let names: Vec<_> = pg
            .databases
            .iter()
            .map(|d| (d.name.as_str(), d.size_mb))
            .collect();
        assert_eq!(
            names,
            [("shop", 120), ("postgres", 7), ("name with\ttab", 1)]
        );
        assert_eq!(parse("psql: error: connection refused\n"), None);
    }

    #[test]
    fn a_missing_client_is_quietly_none() {
        assert_eq!(probe_with("/nonexistent/runuser"), None);
        assert_eq!(probe_with("false"), None, "a failing psql");
    }
}
