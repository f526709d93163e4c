//! `outfitter-bench`: measures Outfitter against the limits of the machine it runs on and
//! writes `docs/benchmarks.md`. It starts its own redis-server, the release panel and runners
//! as processes, and generated bundles in a temporary directory; nothing else is touched.

mod baselines;
mod binaries;
mod bundles;
mod figures;
mod http1;
mod installation;
mod loadgen;
mod machine;
mod process;
mod profile;
mod redis_server;
mod report;
mod sim_runner;
mod sse;
mod stats;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;

use crate::bundles::{Bundles, Sizes};
use crate::figures::footprint::{self, Readings};
use crate::figures::{Ctx, Plan};
use crate::installation::Installation;
use crate::process::Memory;
use crate::report::{Figure, Report};

#[derive(Debug, Parser)]
#[command(
    name = "outfitter-bench",
    about = "Benchmarks Outfitter and writes docs/benchmarks.md"
)]
struct Args {
    /// The one-minute version (fewer jobs, shorter load runs).
    #[arg(long)]
    quick: bool,
    /// Only these figures (comma-separated numbers 1-13); the document is then not written
    /// unless --out names a file.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=FIGURES))]
    only: Vec<u8>,
    /// Where to write the report (default: docs/benchmarks.md of this workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Profile the runner with perf also in --quick mode (the full run always does, where
    /// perf works).
    #[arg(long)]
    profile: bool,
    /// Keep the temporary directory (logs of every process) and print where it is.
    #[arg(long)]
    keep: bool,
    /// What a child process of the bench measures (not for people).
    #[command(subcommand)]
    child: Option<Child>,
}

/// The number of the last figure.
const FIGURES: i64 = 13;

/// Measurements the bench runs in a child process of its own, so that their CPU and peak
/// memory are theirs alone.
#[derive(Debug, clap::Subcommand)]
enum Child {
    /// Figure 12: scan (or only read) the bundles under `dir`; prints JSON.
    #[command(name = figures::discovery::CHILD, hide = true)]
    DiscoverChild {
        dir: PathBuf,
        #[arg(value_enum)]
        mode: figures::discovery::ChildMode,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Child::DiscoverChild { dir, mode }) = &args.child {
        return match figures::discovery::child(dir, *mode) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("outfitter-bench {}: {e:#}", figures::discovery::CHILD);
                ExitCode::FAILURE
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("outfitter-bench: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("outfitter-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every figure asked for; `Ok(false)` when some figure could not be measured.
async fn run(args: &Args) -> Result<bool> {
    let wanted = |n: u8| args.only.is_empty() || args.only.contains(&n);
    let mut plan = Plan::new(args.quick);
    if args.profile {
        plan.profile = profile::available();
        if !plan.profile {
            eprintln!("outfitter-bench: perf does not work here; no profiles");
        }
    }
    let building = Instant::now();
    let bins = binaries::release_binaries()?;
    let build_time = building.elapsed();
    // The run's own time starts here: building the programs is not part of it.
    let started = Instant::now();
    let started_wall = utc_now();
    let machine = machine::Machine::detect();
    let load_before = machine::load_average();
    let tmp = tempfile::Builder::new()
        .prefix("outfitter-bench-")
        .tempdir()?;
    let dir = tmp.path().to_owned();
    if args.keep {
        eprintln!("outfitter-bench: files in {}", dir.display());
    }
    let bundles = Bundles::generate(
        &dir.join("bundles"),
        Sizes {
            lines: plan.progress_lines,
            ticks: plan.ticks,
            apps: plan.apps,
        },
    )?;
    let inst = Installation::start(
        &bins,
        &dir.join("run"),
        &bundles.panel_catalog,
        &bundles.runner_catalog,
    )
    .await?;
    outfitter_test_support::install_tls_provider();
    let mut ctx = Ctx {
        inst,
        bundles,
        plan,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()?,
        work_dir: dir.clone(),
    };
    let mut readings = Readings {
        apps: plan.apps,
        panel_idle: ctx.inst.panel_memory().ok(),
        redis_idle: Memory::of(ctx.inst.redis.pid()).ok(),
        ..Readings::default()
    };
    ctx.inst.add_and_start_runner(figures::dispatch::AGENT)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    readings.runner_idle = ctx
        .inst
        .runner_pid(figures::dispatch::AGENT)
        .and_then(|pid| Memory::of(pid).ok());

    let mut figures: Vec<Figure> = Vec::new();
    let mut failures = Vec::new();
    let mut record = |name: &str, r: Result<Figure>| match r {
        Ok(f) => {
            println!("{}", f.summary);
            figures.push(f);
        }
        Err(e) => {
            eprintln!("outfitter-bench: {name} failed: {e:#}");
            failures.push((name.to_owned(), format!("{e:#}")));
        }
    };
    if wanted(1) {
        record(
            "1. Dispatch latency",
            figures::dispatch::measure(&mut ctx).await,
        );
    }
    if wanted(3) || wanted(6) {
        record(
            "3. Progress",
            figures::progress::measure(&mut ctx, &mut readings).await,
        );
    }
    if wanted(2) {
        record(
            "2. Throughput",
            figures::throughput::measure(&mut ctx).await,
        );
    }
    if wanted(4) {
        record("4. Panel", figures::panel_load::measure(&mut ctx).await);
    }
    if wanted(5) {
        record("5. Scale", figures::scale::measure(&mut ctx).await);
    }
    if wanted(7) {
        record("7. Webhooks", figures::webhooks::measure(&mut ctx).await);
    }
    if wanted(6) {
        readings.panel_after_load = ctx.inst.panel_memory().ok();
        record("6. Footprint", Ok(footprint::figure(&readings)));
    }
    // After the footprint's readings, which stay those of figures 4 and 5.
    if wanted(8) {
        record("8. Rollouts", figures::rollouts::measure(&mut ctx).await);
    }
    if wanted(9) {
        record(
            "9. Host metrics collection",
            figures::collector::measure(&mut ctx).await,
        );
    }
    if wanted(10) {
        record(
            "10. Fleet metrics",
            figures::fleet_metrics::measure(&mut ctx).await,
        );
    }
    if wanted(11) {
        record("11. Cluster", figures::cluster::measure(&mut ctx).await);
    }
    if wanted(12) {
        record("12. Discovery", figures::discovery::measure(&mut ctx).await);
    }
    // Last: its 200 MB stream fills Redis for a minute and a half (deleted at the end).
    if wanted(13) {
        record("13. Big logs", figures::big_logs::measure(&mut ctx).await);
    }
    if !wanted(3) {
        figures.retain(|f| f.number != 3);
    }
    figures.sort_by_key(|f| f.number);
    let ok = failures.is_empty();
    let report = Report {
        command: format!(
            "cargo run --release -p outfitter-bench{}",
            if args.quick { " -- --quick" } else { "" }
        ),
        quick: args.quick,
        started: started_wall,
        elapsed: started.elapsed(),
        build_time,
        machine,
        load: (load_before, machine::load_average()),
        figures,
        failures,
    };
    let out = match (&args.out, args.only.is_empty()) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(default_out()),
        (None, false) => None,
    };
    if let Some(path) = out {
        report::write(&path, &report.markdown())?;
        eprintln!("outfitter-bench: wrote {}", path.display());
    }
    if args.keep {
        let kept = tmp.keep();
        eprintln!("outfitter-bench: kept {}", kept.display());
    }
    Ok(ok)
}

/// `docs/benchmarks.md` of the workspace this bench was built from.
fn default_out() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|w| w.join("docs").join("benchmarks.md"))
        .unwrap_or_else(|| PathBuf::from("docs/benchmarks.md"))
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    utc_minutes(time::OffsetDateTime::now_utc())
}

fn utc_minutes(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.format(format).unwrap_or_else(|_| "unknown time".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_minutes_of_known_instants() {
        let at = |s| time::OffsetDateTime::from_unix_timestamp(s).unwrap();
        assert_eq!(utc_minutes(at(0)), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minutes(at(19_723 * 86_400)), "2024-01-01 00:00 UTC");
        assert_eq!(
            utc_minutes(at(11_016 * 86_400 + 3_720)),
            "2000-02-29 01:02 UTC"
        );
    }

    #[test]
    fn only_accepts_figure_numbers() {
        assert!(Args::try_parse_from(["b", "--only", "1,3"]).is_ok());
        assert!(Args::try_parse_from(["b", "--only", "9"]).is_ok());
        assert!(Args::try_parse_from(["b", "--only", "12"]).is_ok());
        assert!(Args::try_parse_from(["b", "--only", "0"]).is_err());
        assert!(Args::try_parse_from(["b", "--only", &(FIGURES + 1).to_string()]).is_err());
    }

    #[test]
    fn the_discovery_child_is_a_hidden_subcommand() {
        let args = Args::try_parse_from(["b", "discover-child", "/tmp/x", "floor"]).unwrap();
        assert!(matches!(
            args.child,
            Some(Child::DiscoverChild {
                mode: figures::discovery::ChildMode::Floor,
                ..
            })
        ));
        assert!(Args::try_parse_from(["b", "discover-child", "/tmp/x", "other"]).is_err());
        let help = <Args as clap::CommandFactory>::command()
            .render_help()
            .to_string();
        assert!(!help.contains("discover-child"), "{help}");
    }
}
