//! `outfitter-conformance`: the command line entry point.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use futures_util::StreamExt;
use tokio::signal::unix::{SignalKind, signal};

use outfitter_conformance::FULL_RUN_COMMAND;
use outfitter_conformance::base::{self, Mirrors};
use outfitter_conformance::bundle::{BundleFacts, discover};
use outfitter_conformance::harness::{HarnessConfig, InstallVia, run_bundle};
use outfitter_conformance::proxy::ProxyConfig;
use outfitter_conformance::report::{BundleResult, CatalogEntry, Status, render_catalog, seconds};
use outfitter_conformance::spec::TestSpec;

#[derive(Debug, Parser)]
#[command(
    name = "outfitter-conformance",
    version,
    about = "Install bundles for real, twice, in throwaway systemd containers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the conformance sequence for bundles (ids or directories) and update the catalog.
    Run(RunArgs),
    /// Rewrite docs/catalog.md from the bundles' latest results without running anything.
    Catalog(CatalogArgs),
    /// Build (or verify) the cached base system and exit.
    Base(BaseArgs),
}

#[derive(Debug, clap::Args)]
struct CommonArgs {
    /// The installers root holding one directory per bundle.
    #[arg(long, env = "OUTFITTER_INSTALLERS", default_value = "installers")]
    installers: PathBuf,
    /// The catalog page to rewrite from every bundle's result.
    #[arg(long, default_value = "docs/catalog.md")]
    catalog: PathBuf,
}

#[derive(Debug, clap::Args)]
struct BaseArgs {
    /// Cache for the base system and downloaded packages.
    #[arg(
        long,
        env = "OUTFITTER_CONFORMANCE_CACHE",
        default_value = "/var/cache/outfitter-conformance"
    )]
    cache_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Via {
    /// The runner when it is built and has `exec`, else bash (recorded in each result).
    Auto,
    /// `outfitter-runner exec`; fail when it is not available.
    Runner,
    /// `bash install.sh` with the contract's environment.
    Bash,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Bundle ids or bundle directories.
    bundles: Vec<String>,
    /// Every bundle of the installers root.
    #[arg(long, conflicts_with = "bundles")]
    all: bool,
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    base: BaseArgs,
    /// Full logs per bundle and step.
    #[arg(long, default_value = "target/conformance/logs")]
    logs_dir: PathBuf,
    /// Bundles tested at once (each in its own system).
    #[arg(long, short = 'j', default_value_t = 1)]
    jobs: usize,
    #[arg(long, value_enum, default_value_t = Via::Auto)]
    via: Via,
    /// The runner binary copied into each system (default: beside this binary).
    #[arg(long)]
    runner_bin: Option<PathBuf>,
    /// The panel binary whose `lint` checks each bundle (default: beside this binary).
    #[arg(long)]
    panel_bin: Option<PathBuf>,
    /// Leave the bundles' conformance.json and the catalog alone (CI, experiments); the
    /// results are still written beside the logs.
    #[arg(long)]
    no_record: bool,
    /// Another host the package proxy may reach (the host's Debian mirrors and the npm
    /// registry are always allowed).
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct CatalogArgs {
    #[command(flatten)]
    common: CommonArgs,
}

/// Registries beside the Debian mirrors that bundles legitimately download from.
const EXTRA_REGISTRIES: &[&str] = &["registry.npmjs.org"];

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Catalog(args) => write_catalog(&args.common).map(|()| true),
        Command::Base(args) => preflight(false).and_then(|()| {
            let path = base::ensure(&args.cache_dir, &Mirrors::from_host(), &mut |m| {
                tracing::info!("{m}")
            })?;
            println!("{}", path.display());
            Ok(true)
        }),
        Command::Run(args) => tokio::runtime::Runtime::new()
            .context("start the async runtime")
            .and_then(|rt| rt.block_on(run(args))),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("outfitter-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the bundles; Ok(true) when all passed. Ctrl-C, SIGTERM and SIGHUP stop the run and
/// tear down every system before returning.
async fn run(args: RunArgs) -> anyhow::Result<bool> {
    preflight(true)?;
    let dirs = bundle_dirs(&args)?;
    let mirrors = Mirrors::from_host();
    let cache_dir = args.base.cache_dir.clone();
    let base = tokio::task::spawn_blocking({
        let mirrors = mirrors.clone();
        move || base::ensure(&cache_dir, &mirrors, &mut |m| tracing::info!("{m}"))
    })
    .await??;
    let install_via = choose_via(&args).await?;
    let panel_bin = args
        .panel_bin
        .clone()
        .unwrap_or_else(|| sibling("outfitter-panel"));
    let mut allowed_hosts = mirrors.hosts();
    allowed_hosts.extend(EXTRA_REGISTRIES.iter().map(|h| (*h).to_owned()));
    allowed_hosts.extend(args.allow_hosts.iter().cloned());
    let packages = args.base.cache_dir.join("packages");
    std::fs::create_dir_all(&packages).with_context(|| format!("create {}", packages.display()))?;
    let config = HarnessConfig {
        installers_root: args.common.installers.clone(),
        base,
        work_root: args.base.cache_dir.join("containers"),
        logs_dir: args.logs_dir.clone(),
        panel_bin,
        install_via,
        proxy: Arc::new(ProxyConfig {
            allowed_hosts,
            cache_dir: packages,
        }),
        system: format!(
            "Debian 12 ({}) minbase + systemd, systemd-nspawn",
            base::SUITE
        ),
    };

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let jobs = args.jobs.max(1);
    // Every run lives inside this one future, so that dropping it on a signal drops every
    // container, and each container's Drop powers it off and removes it.
    let all = futures_util::stream::iter(dirs)
        .map(|dir| {
            let config = &config;
            async move {
                let result = run_bundle(config, &dir).await;
                (dir, result)
            }
        })
        .buffer_unordered(jobs)
        .collect::<Vec<(PathBuf, BundleResult)>>();
    let results = tokio::select! {
        results = all => results,
        _ = interrupt.recv() => bail!("interrupted; every system was torn down"),
        _ = terminate.recv() => bail!("terminated; every system was torn down"),
        _ = hangup.recv() => bail!("hung up; every system was torn down"),
    };

    let mut all_passed = true;
    for (dir, result) in &results {
        // `--no-record` keeps the bundle's own conformance.json as it is (a test run must not
        // change the tree); the result goes beside the bundle's logs instead.
        let into = if args.no_record {
            let beside_logs = args.logs_dir.join(&result.bundle);
            std::fs::create_dir_all(&beside_logs)
                .with_context(|| format!("create {}", beside_logs.display()))?;
            beside_logs
        } else {
            dir.clone()
        };
        result
            .write(&into)
            .with_context(|| format!("write the result of {}", dir.display()))?;
        all_passed &= result.summary.status == Status::Passed;
        let times = format!(
            "install {}, reinstall {}",
            result.summary.install_ms.map_or("-".into(), seconds),
            result.summary.reinstall_ms.map_or("-".into(), seconds)
        );
        let failed = result.steps.iter().find(|s| s.status == Status::Failed);
        match failed {
            None => println!("{:<22} passed  ({times})", result.bundle),
            Some(step) => println!(
                "{:<22} FAILED  at {}: {}  (log: {})",
                result.bundle,
                step.name,
                step.detail,
                step.log_path.as_deref().unwrap_or("-")
            ),
        }
    }
    if !args.no_record {
        write_catalog(&args.common)?;
    }
    Ok(all_passed)
}

fn bundle_dirs(args: &RunArgs) -> anyhow::Result<Vec<PathBuf>> {
    let root = &args.common.installers;
    if args.all {
        return discover(root).with_context(|| format!("list {}", root.display()));
    }
    if args.bundles.is_empty() {
        bail!("name the bundles to test, or pass --all");
    }
    args.bundles
        .iter()
        .map(|b| {
            let as_path = Path::new(b);
            let dir = if as_path.join("manifest.yml").is_file() {
                as_path.to_owned()
            } else {
                root.join(b)
            };
            if !dir.join("manifest.yml").is_file() {
                bail!(
                    "{b}: no such bundle (looked for {}/manifest.yml)",
                    dir.display()
                );
            }
            Ok(dir)
        })
        .collect()
}

async fn choose_via(args: &RunArgs) -> anyhow::Result<InstallVia> {
    let runner = args
        .runner_bin
        .clone()
        .unwrap_or_else(|| sibling("outfitter-runner"));
    let has_exec = tokio::process::Command::new(&runner)
        .args(["exec", "--help"])
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    match (args.via, has_exec) {
        (Via::Bash, _) => Ok(InstallVia::Bash),
        (Via::Runner | Via::Auto, true) => Ok(InstallVia::Runner(runner)),
        (Via::Runner, false) => bail!(
            "{} has no working `exec` subcommand; build it (cargo build -p outfitter-runner) or pass --via bash",
            runner.display()
        ),
        (Via::Auto, false) => {
            tracing::warn!(
                "{} has no `exec`; installing with bash install.sh instead",
                runner.display()
            );
            Ok(InstallVia::Bash)
        }
    }
}

/// A binary beside this one (cargo puts the workspace's binaries together).
fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Fails early, with the fix, when the host lacks what the harness needs.
fn preflight(need_containers: bool) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("run as root: the harness mounts overlays, creates cgroups and boots containers");
    }
    let mut tools = vec![("debootstrap", "debootstrap")];
    if need_containers {
        tools.extend([
            ("systemd-nspawn", "systemd-container"),
            ("nsenter", "util-linux"),
            ("ip", "iproute2"),
        ]);
    }
    for (tool, package) in tools {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
        if !found {
            bail!("`{tool}` is missing: apt-get install -y {package}");
        }
    }
    Ok(())
}

fn write_catalog(common: &CommonArgs) -> anyhow::Result<()> {
    let dirs = discover(&common.installers)
        .with_context(|| format!("list {}", common.installers.display()))?;
    // A result file that cannot be read stops the render: the catalog must not call a bundle
    // untested because its result is broken.
    let entries = dirs
        .iter()
        .map(|dir| {
            Ok(CatalogEntry {
                id: dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                result: BundleResult::read(dir)
                    .with_context(|| format!("read the result of {}", dir.display()))?,
                current_digest: BundleFacts::load(dir).ok().map(|f| f.digest),
                not_proven: TestSpec::load(dir).ok().and_then(|s| s.not_proven),
            })
        })
        .collect::<anyhow::Result<Vec<CatalogEntry>>>()?;
    let md = render_catalog(&entries, FULL_RUN_COMMAND);
    if let Some(parent) = common.catalog.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    std::fs::write(&common.catalog, md)
        .with_context(|| format!("write {}", common.catalog.display()))?;
    tracing::info!("wrote {}", common.catalog.display());
    Ok(())
}
