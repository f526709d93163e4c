//! The limits of the machine itself, measured in the same run as the figures they bound:
//! a bare Redis hand-off, a bare spawn of the same script, raw pipe and Redis rates.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};

use crate::stats::{Samples, per_second};

/// Microseconds since the epoch of a wall-clock time.
pub(crate) fn wall_micros(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e6)
        .unwrap_or(0.0)
}

/// Parses bash's `$EPOCHREALTIME` (`1700000000.123456`; a comma in some locales) into
/// microseconds since the epoch.
pub(crate) fn parse_epoch_realtime(s: &str) -> Option<f64> {
    let (secs, frac) = s.trim().split_once(['.', ','])?;
    let secs: u64 = secs.parse().ok()?;
    let frac = format!("{frac:0<6}");
    let micros: u64 = frac.get(..6)?.parse().ok()?;
    Some(secs as f64 * 1e6 + micros as f64)
}

/// Reads the time a `bench-mark` script wrote as its first instruction, and removes the file.
pub(crate) fn take_mark(mark_file: &Path) -> Result<f64> {
    let text = std::fs::read_to_string(mark_file)
        .with_context(|| format!("the script wrote no mark to {}", mark_file.display()))?;
    std::fs::remove_file(mark_file)?;
    parse_epoch_realtime(&text).with_context(|| format!("mark {text:?} is not $EPOCHREALTIME"))
}

/// `LPUSH` on one connection until a `BLMOVE … RIGHT LEFT` blocked on another returns: the
/// bare queue hand-off the panel and runner build on. `payload` is a job-sized value.
pub(crate) fn redis_handoff(client: &redis::Client, n: usize, payload: &str) -> Result<Samples> {
    let (src, dst) = (
        "outfitter:bench:{baseline}:queue",
        "outfitter:bench:{baseline}:processing",
    );
    let mut pusher = client.get_connection()?;
    let mut mover = client.get_connection()?;
    let (tx, rx) = mpsc::channel::<Result<Instant, String>>();
    let taker = std::thread::spawn(move || {
        for _ in 0..n {
            let r: redis::RedisResult<Option<String>> = redis::cmd("BLMOVE")
                .arg(src)
                .arg(dst)
                .arg("RIGHT")
                .arg("LEFT")
                .arg(5)
                .query(&mut mover);
            let sent = match r {
                Ok(Some(_)) => tx.send(Ok(Instant::now())),
                Ok(None) => tx.send(Err("BLMOVE timed out".into())),
                Err(e) => tx.send(Err(e.to_string())),
            };
            if sent.is_err() {
                return;
            }
        }
    });
    let mut samples = Samples::new();
    for _ in 0..n {
        // Let the taker block first, as a runner waiting for work does.
        std::thread::sleep(Duration::from_micros(300));
        let t0 = Instant::now();
        redis::cmd("LPUSH")
            .arg(src)
            .arg(payload)
            .query::<i64>(&mut pusher)?;
        let t1 = rx
            .recv_timeout(Duration::from_secs(10))
            .context("the BLMOVE side stopped")?
            .map_err(anyhow::Error::msg)?;
        samples.push(t1 - t0);
    }
    let _ = taker.join();
    redis::cmd("DEL")
        .arg(src)
        .arg(dst)
        .query::<i64>(&mut pusher)?;
    Ok(samples)
}

/// Times of one bare spawn of a script.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpawnTimes {
    /// From just before spawn to the script's first instruction (needs a mark file).
    pub to_first_instruction: Option<Duration>,
    /// From just before spawn to exit with all output read.
    pub to_exit: Duration,
}

/// One spawn of `bash <script>` as a minimal loop does it: own process group, stdin
/// `/dev/null`, stdout and stderr read to the end (concurrently), exit status reaped.
pub(crate) fn spawn_once(script: &Path, mark_file: Option<&Path>) -> Result<SpawnTimes> {
    let wall0 = SystemTime::now();
    let t0 = Instant::now();
    let out = Command::new("/bin/bash")
        .arg(script)
        .env_clear()
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?
        .wait_with_output()?;
    let to_exit = t0.elapsed();
    ensure!(
        out.status.success(),
        "{} exited with {}",
        script.display(),
        out.status
    );
    ensure!(
        !out.stdout.is_empty(),
        "{} printed nothing",
        script.display()
    );
    let to_first_instruction = match mark_file {
        Some(f) => {
            let mark = take_mark(f)?;
            Some(Duration::from_secs_f64(
                ((mark - wall_micros(wall0)) / 1e6).max(0.0),
            ))
        }
        None => None,
    };
    Ok(SpawnTimes {
        to_first_instruction,
        to_exit,
    })
}

/// Spawns per second of `script` from `loops` parallel minimal loops, `per_loop` each.
pub(crate) fn spawn_rate(script: &Path, loops: usize, per_loop: usize) -> Result<f64> {
    let start = Instant::now();
    let handles: Vec<_> = (0..loops)
        .map(|_| {
            let script = script.to_owned();
            std::thread::spawn(move || -> Result<()> {
                for _ in 0..per_loop {
                    spawn_once(&script, None)?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("a spawn loop panicked"))??;
    }
    Ok(per_second((loops * per_loop) as u64, start.elapsed()))
}

/// Lines per second a reader gets from `script`'s stdout through a pipe, and how many.
pub(crate) fn pipe_line_rate(script: &Path) -> Result<(f64, u64)> {
    let start = Instant::now();
    let mut child = Command::new("/bin/bash")
        .arg(script)
        .env_clear()
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout is piped")?;
    let mut lines = 0u64;
    for line in BufReader::new(stdout).lines() {
        line?;
        lines += 1;
    }
    let status = child.wait()?;
    ensure!(
        status.success(),
        "{} exited with {status}",
        script.display()
    );
    Ok((per_second(lines, start.elapsed()), lines))
}

/// Calls per second of the contract's `APPEND_EVENT` Lua script from one unpipelined client:
/// what storing and publishing one event costs Redis and one round trip, with nobody listening.
pub(crate) fn append_event_rate(client: &redis::Client, n: usize) -> Result<f64> {
    use outfitter_contract::event::{Event, EventBody, OutputStream};
    use outfitter_contract::redis_keys::AgentRedisKeys;
    let keys = AgentRedisKeys::new("bench-baseline");
    let job = "append-event-baseline";
    let script = redis::Script::new(outfitter_contract::scripts::APPEND_EVENT);
    let mut conn = client.get_connection()?;
    let event = Event::new(
        0,
        1,
        EventBody::Log {
            stream: OutputStream::Stdout,
            line: "line 12345 of 100000".into(),
        },
    )
    .to_unsequenced_json();
    let start = Instant::now();
    for _ in 0..n {
        let _: u64 = script
            .key(keys.job(job))
            .key(keys.job_events(job))
            .arg(keys.job_channel(job))
            .arg(&event)
            .invoke(&mut conn)?;
    }
    let rate = per_second(n as u64, start.elapsed());
    redis::cmd("DEL")
        .arg(keys.job(job))
        .arg(keys.job_events(job))
        .query::<i64>(&mut conn)?;
    Ok(rate)
}

/// One pass over every process the way a process-tree search does it: list `/proc`, read
/// each `/proc/<pid>/stat`. Returns the time per pass and the number of processes.
pub(crate) fn proc_scan(passes: usize) -> Result<(Samples, usize)> {
    let mut samples = Samples::new();
    let mut count = 0;
    for _ in 0..passes {
        let t0 = Instant::now();
        count = 0;
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok() {
                count += 1;
            }
        }
        samples.push(t0.elapsed());
    }
    Ok((samples, count))
}

/// Writing a small file, `fsync`, rename (an atomic durable write) in `dir`, `n` times.
pub(crate) fn durable_write(dir: &Path, n: usize) -> Result<Samples> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let (tmp, path) = (dir.join("probe.json.tmp"), dir.join("probe.json"));
    let body = vec![b'x'; 1024];
    let mut samples = Samples::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        samples.push(t0.elapsed());
    }
    std::fs::remove_file(&path)?;
    Ok(samples)
}

/// `PUBLISH` on one connection until a subscriber on another has the message.
pub(crate) fn pubsub_latency(client: &redis::Client, n: usize) -> Result<Samples> {
    let channel = "outfitter:bench:baseline:live";
    let mut sub_conn = client.get_connection()?;
    let mut publisher = client.get_connection()?;
    let (tx, rx) = mpsc::channel::<Instant>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let listener = std::thread::spawn(move || -> Result<()> {
        let mut ps = sub_conn.as_pubsub();
        ps.subscribe(channel)?;
        ready_tx.send(()).ok();
        for _ in 0..n {
            let _ = ps.get_message()?;
            if tx.send(Instant::now()).is_err() {
                break;
            }
        }
        Ok(())
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .context("subscriber did not start")?;
    let mut samples = Samples::new();
    for i in 0..n {
        std::thread::sleep(Duration::from_micros(200));
        let t0 = Instant::now();
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(i)
            .query(&mut publisher)?;
        if receivers != 1 {
            bail!("PUBLISH reached {receivers} subscribers, expected 1");
        }
        let t1 = rx
            .recv_timeout(Duration::from_secs(10))
            .context("subscriber stopped")?;
        samples.push(t1 - t0);
    }
    listener
        .join()
        .map_err(|_| anyhow::anyhow!("subscriber panicked"))??;
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_realtime_parses_with_either_separator() {
        assert_eq!(
            parse_epoch_realtime("1700000000.000123\n"),
            Some(1_700_000_000_000_123.0)
        );
        assert_eq!(
            parse_epoch_realtime("1700000000,5"),
            Some(1_700_000_000_500_000.0)
        );
        assert_eq!(parse_epoch_realtime("soon"), None);
    }

    #[test]
    fn bare_spawn_reports_first_instruction_before_exit() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("mark");
        let script = dir.path().join("s.sh");
        std::fs::write(
            &script,
            format!(
                "printf '%s\\n' \"$EPOCHREALTIME\" > '{}'\necho hi\n",
                mark.display()
            ),
        )
        .unwrap();
        let t = spawn_once(&script, Some(&mark)).unwrap();
        let first = t.to_first_instruction.unwrap();
        assert!(first <= t.to_exit, "{t:?}");
        assert!(!mark.exists(), "the mark is consumed");
    }

    #[test]
    fn a_failing_script_is_an_error_not_a_sample() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "echo x; exit 3\n").unwrap();
        assert!(spawn_once(&script, None).is_err());
    }

    #[test]
    fn proc_scan_finds_this_process_and_durable_write_leaves_nothing() {
        let (mut s, count) = proc_scan(2).unwrap();
        assert!(count >= 1);
        assert_eq!(s.len(), 2);
        assert!(s.percentile(50.0).unwrap() > 0.0);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(durable_write(dir.path(), 3).unwrap().len(), 3);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn redis_baselines_measure_real_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let server = crate::redis_server::RedisServer::start(dir.path()).unwrap();
        let client = server.client().unwrap();
        let mut handoff = redis_handoff(&client, 20, "job").unwrap();
        assert_eq!(handoff.len(), 20);
        assert!(handoff.percentile(50.0).unwrap() > 0.0);
        assert!(append_event_rate(&client, 50).unwrap() > 0.0);
        assert_eq!(pubsub_latency(&client, 10).unwrap().len(), 10);
    }
}
