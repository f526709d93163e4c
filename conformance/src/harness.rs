//! One bundle's conformance run, step by step: lint, boot, prerequisites, setup, install,
//! smoke checks, reinstall, smoke checks again. Every step is timed and logged; the first
//! failing step ends the run, and the system is torn down whatever happens.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::net::TcpListener;

use crate::bundle::BundleFacts;
use crate::checks::{self, millis};
use crate::container::{Container, ExecOutput, tail_lines};
use crate::network::Link;
use crate::proxy::{self, PROXY_PORT, ProxyConfig};
use outfitter_contract::conformance::{ConformanceSummary, RESULT_FILE, RESULT_SCHEMA};
use outfitter_contract::job::REDACTED;

use crate::report::{BundleResult, LOG_TAIL_LINES, Status, StepResult};
use crate::spec::{TestSpec, value_text};

/// Where bundles are copied inside the system.
const GUEST_INSTALLERS: &str = "/opt/outfitter-conformance/installers";
/// Where the runner binary is copied inside the system.
const GUEST_RUNNER: &str = "/usr/local/bin/outfitter-runner";
/// Extra time an install gets beyond its manifest's `timeout_seconds` (runner start, drain).
const INSTALL_GRACE: Duration = Duration::from_secs(60);
/// Limit for one setup command.
const SETUP_TIMEOUT: Duration = Duration::from_secs(300);

/// How bundles are installed inside the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallVia {
    /// `outfitter-runner exec <bundle> --set k=v…`: the real runner's checks and sandbox.
    Runner(PathBuf),
    /// `bash install.sh` with the contract's environment; for when no runner is built.
    Bash,
}

impl InstallVia {
    fn label(&self) -> &'static str {
        match self {
            Self::Runner(_) => "outfitter-runner exec",
            Self::Bash => "bash install.sh",
        }
    }
}

/// Settings shared by every bundle of a run.
#[derive(Debug, Clone)]
pub struct HarnessConfig {
    pub installers_root: PathBuf,
    pub base: PathBuf,
    pub work_root: PathBuf,
    pub logs_dir: PathBuf,
    pub panel_bin: PathBuf,
    pub install_via: InstallVia,
    pub proxy: Arc<ProxyConfig>,
    /// Human name of the base, recorded in each result.
    pub system: String,
}

/// Collects the steps of one run.
struct Run<'a> {
    config: &'a HarnessConfig,
    id: String,
    secrets: Vec<String>,
    steps: Vec<StepResult>,
    log_dir: PathBuf,
}

impl Run<'_> {
    fn mask(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), REDACTED))
    }

    /// Records a step; returns whether it passed.
    fn record(
        &mut self,
        name: &str,
        started: Instant,
        passed: bool,
        detail: String,
        exit_code: Option<i32>,
        log: &str,
    ) -> bool {
        let log = self.mask(log);
        let log_path = (!log.is_empty()).then(|| {
            let path = self.log_dir.join(format!("{name}.log"));
            let _ = std::fs::create_dir_all(&self.log_dir);
            let _ = std::fs::write(&path, &log);
            path.display().to_string()
        });
        let status = if passed {
            Status::Passed
        } else {
            Status::Failed
        };
        tracing::info!(bundle = %self.id, step = name, ?status, "{}", self.mask(&detail));
        self.steps.push(StepResult {
            name: name.to_owned(),
            status,
            duration_ms: millis(started.elapsed()),
            exit_code,
            detail: self.mask(&detail),
            checks: Vec::new(),
            log_tail: tail_lines(&log, LOG_TAIL_LINES),
            log_path,
        });
        passed
    }
}

/// Runs the whole conformance sequence for the bundle in `bundle_dir`.
pub async fn run_bundle(config: &HarnessConfig, bundle_dir: &Path) -> BundleResult {
    let started = Instant::now();
    let tested_at = crate::report::rfc3339(SystemTime::now());
    let dir_name = bundle_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut run = Run {
        config,
        id: dir_name.clone(),
        secrets: Vec::new(),
        steps: Vec::new(),
        log_dir: config.logs_dir.join(&dir_name),
    };
    let _ = std::fs::remove_dir_all(&run.log_dir);
    let facts = steps(&mut run, bundle_dir).await;
    let step_ms = |name: &str| {
        run.steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.duration_ms)
    };
    let smoke = |name: &str| {
        run.steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.status == Status::Passed)
    };
    let all_passed = !run.steps.is_empty() && run.steps.iter().all(|s| s.status != Status::Failed);
    let expected_exit = TestSpec::load(bundle_dir)
        .map(|s| s.expect_exit)
        .unwrap_or(0);
    BundleResult {
        summary: ConformanceSummary {
            schema: RESULT_SCHEMA.to_owned(),
            digest: facts.as_ref().map(|f| f.digest.clone()).unwrap_or_default(),
            status: if all_passed {
                Status::Passed
            } else {
                Status::Failed
            },
            tested_at,
            install_ms: step_ms("install"),
            reinstall_ms: step_ms("reinstall"),
            smoke_passed: smoke("smoke"),
            reinstall_smoke_passed: smoke("smoke-after-reinstall"),
        },
        bundle: facts.as_ref().map_or(dir_name.clone(), |f| f.id.clone()),
        name: facts.as_ref().map_or(dir_name, |f| f.name.clone()),
        version: facts
            .as_ref()
            .map(|f| f.version.clone())
            .unwrap_or_default(),
        category: facts
            .as_ref()
            .map(|f| f.category.clone())
            .unwrap_or_default(),
        system: config.system.clone(),
        installed_via: config.install_via.label().to_owned(),
        expected_exit,
        total_ms: millis(started.elapsed()),
        steps: run.steps,
    }
}

/// The steps in order; returns the bundle's facts when they could be read.
async fn steps(run: &mut Run<'_>, bundle_dir: &Path) -> Option<BundleFacts> {
    let config = run.config;

    // 1. lint: the real linter, exactly as an author runs it.
    let t = Instant::now();
    let lint = tokio::process::Command::new(&config.panel_bin)
        .arg("lint")
        .arg(bundle_dir)
        .output()
        .await;
    let (passed, detail, code, log) = match lint {
        Ok(out) => {
            let log = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            let warnings = log.lines().filter(|l| l.contains(": warning: ")).count();
            let detail = if out.status.success() {
                format!("clean ({warnings} warnings)")
            } else {
                "lint errors".to_owned()
            };
            (out.status.success(), detail, out.status.code(), log)
        }
        Err(e) => (
            false,
            format!("cannot run {}: {e}", config.panel_bin.display()),
            None,
            String::new(),
        ),
    };
    if !run.record("lint", t, passed, detail, code, &log) {
        return BundleFacts::load(bundle_dir).ok();
    }

    // 2. read the bundle and its tests.yml.
    let t = Instant::now();
    let loaded = BundleFacts::load(bundle_dir)
        .map_err(|e| e.to_string())
        .and_then(|facts| {
            TestSpec::load(bundle_dir)
                .map(|spec| (facts, spec))
                .map_err(|e| e.to_string())
        });
    let (facts, spec) = match loaded {
        Ok(pair) => pair,
        Err(e) => {
            run.record("tests.yml", t, false, e, None, "");
            return BundleFacts::load(bundle_dir).ok();
        }
    };
    run.id.clone_from(&facts.id);
    run.secrets = facts
        .sensitive_inputs
        .iter()
        .filter_map(|name| spec.inputs.get(name))
        .map(value_text)
        .collect();
    run.record(
        "tests.yml",
        t,
        true,
        format!(
            "{} checks, expect exit {}",
            spec.checks.len(),
            spec.expect_exit
        ),
        None,
        "",
    );

    // 3. boot a fresh system.
    let t = Instant::now();
    let mut bundles = vec![facts.id.clone()];
    bundles.extend(spec.prerequisites.iter().map(|p| p.bundle.clone()));
    let container = boot(config, &bundles).await;
    let container = match container {
        Ok(c) => c,
        Err(e) => {
            run.record("boot", t, false, e, None, "");
            return Some(facts);
        }
    };
    run.record(
        "boot",
        t,
        true,
        format!("{} at {}", container.name, container.link.guest_addr),
        None,
        "",
    );

    after_boot(run, &container, &facts, &spec, bundle_dir).await;
    let t = Instant::now();
    drop(container);
    tracing::debug!(bundle = %facts.id, "torn down in {} ms", millis(t.elapsed()));
    Some(facts)
}

async fn after_boot(
    run: &mut Run<'_>,
    container: &Container,
    facts: &BundleFacts,
    spec: &TestSpec,
    bundle_dir: &Path,
) {
    let config = run.config;
    for prerequisite in &spec.prerequisites {
        let t = Instant::now();
        let result = install(
            config,
            container,
            &prerequisite.bundle,
            &prerequisite.inputs,
            install_timeout(config, &prerequisite.bundle),
        )
        .await;
        let name = format!("prerequisite {}", prerequisite.bundle);
        let ok = match result {
            Ok(out) => {
                let ok = out.code == Some(0);
                run.record(&name, t, ok, describe(&out, 0), out.code, &out.output)
            }
            Err(e) => run.record(&name, t, false, e, None, ""),
        };
        if !ok {
            return;
        }
    }

    if !spec.fixtures.is_empty() || !spec.setup.is_empty() {
        let t = Instant::now();
        let mut log = String::new();
        for fixture in &spec.fixtures {
            if let Err(e) = container.copy_in(&bundle_dir.join(&fixture.from), &fixture.to) {
                run.record(
                    "setup",
                    t,
                    false,
                    format!("fixture {}: {e}", fixture.from),
                    None,
                    &log,
                );
                return;
            }
        }
        if !run_commands(container, &spec.setup, &mut log).await {
            run.record(
                "setup",
                t,
                false,
                "a setup command failed".into(),
                None,
                &log,
            );
            return;
        }
        run.record(
            "setup",
            t,
            true,
            format!(
                "{} fixtures, {} commands",
                spec.fixtures.len(),
                spec.setup.len()
            ),
            None,
            &log,
        );
    }

    let timeout = Duration::from_secs(facts.timeout_seconds) + INSTALL_GRACE;
    for (install_step, smoke_step) in [("install", "smoke"), ("reinstall", "smoke-after-reinstall")]
    {
        if install_step == "reinstall" && !spec.before_reinstall.is_empty() {
            let t = Instant::now();
            let mut log = String::new();
            let ok = run_commands(container, &spec.before_reinstall, &mut log).await;
            if !run.record(
                "before-reinstall",
                t,
                ok,
                format!("{} commands", spec.before_reinstall.len()),
                None,
                &log,
            ) {
                return;
            }
        }
        let t = Instant::now();
        match install(config, container, &facts.id, &spec.inputs, timeout).await {
            Ok(out) => {
                let ok = out.code == Some(spec.expect_exit);
                if !run.record(
                    install_step,
                    t,
                    ok,
                    describe(&out, spec.expect_exit),
                    out.code,
                    &out.output,
                ) {
                    return;
                }
            }
            Err(e) => {
                run.record(install_step, t, false, e, None, "");
                return;
            }
        }
        if spec.checks.is_empty() {
            continue;
        }
        let t = Instant::now();
        let mut results = Vec::new();
        for check in &spec.checks {
            results.push(checks::run(container, check).await);
        }
        let passed = results.iter().filter(|r| r.passed).count();
        let ok = passed == results.len();
        run.record(
            smoke_step,
            t,
            ok,
            format!("{passed} of {} checks passed", results.len()),
            None,
            "",
        );
        if let Some(step) = run.steps.last_mut() {
            step.checks = results;
            for check in &mut step.checks {
                check.detail = run
                    .secrets
                    .iter()
                    .filter(|s| !s.is_empty())
                    .fold(check.detail.clone(), |d, s| d.replace(s.as_str(), REDACTED));
            }
        }
        if !ok {
            return;
        }
    }
}

fn install_timeout(config: &HarnessConfig, id: &str) -> Duration {
    let secs =
        BundleFacts::load(&config.installers_root.join(id)).map_or(1800, |f| f.timeout_seconds);
    Duration::from_secs(secs) + INSTALL_GRACE
}

fn describe(out: &ExecOutput, expected: i32) -> String {
    match (out.timed_out, out.code) {
        (true, _) => format!("timed out after {:.0} s", out.duration.as_secs_f64()),
        (false, Some(code)) if code == expected => format!("exit {code} as expected"),
        (false, Some(code)) => format!(
            "exit {code}, expected {expected}: {}",
            last_error_line(&out.output)
        ),
        (false, None) => "killed by a signal".to_owned(),
    }
}

/// The most telling line of a failed install: its last `error:` line, else its last line.
fn last_error_line(output: &str) -> String {
    output
        .lines()
        .rev()
        .find(|l| l.to_ascii_lowercase().contains("error"))
        .or_else(|| output.lines().last())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// Runs shell commands in order, appending their output to `log`; stops at the first failure.
async fn run_commands(container: &Container, commands: &[String], log: &mut String) -> bool {
    for command in commands {
        log.push_str(&format!("$ {command}\n"));
        let argv = [
            "/bin/bash".to_owned(),
            "-euo".to_owned(),
            "pipefail".to_owned(),
            "-c".to_owned(),
            command.clone(),
        ];
        match container.exec(&argv, &[], SETUP_TIMEOUT).await {
            Ok(out) => {
                log.push_str(&out.output);
                if out.code != Some(0) {
                    log.push_str(&format!("(exit {:?})\n", out.code));
                    return false;
                }
            }
            Err(e) => {
                log.push_str(&format!("{e}\n"));
                return false;
            }
        }
    }
    true
}

/// Installs bundle `id` (already copied in) with `inputs`.
async fn install(
    config: &HarnessConfig,
    container: &Container,
    id: &str,
    inputs: &std::collections::BTreeMap<String, Value>,
    timeout: Duration,
) -> Result<ExecOutput, String> {
    let bundle = format!("{GUEST_INSTALLERS}/{id}");
    let (argv, env): (Vec<String>, Vec<(String, String)>) = match &config.install_via {
        InstallVia::Runner(_) => {
            let mut argv = vec![GUEST_RUNNER.to_owned(), "exec".to_owned(), bundle];
            for (name, value) in inputs {
                argv.push("--set".to_owned());
                argv.push(format!("{name}={}", value_text(value)));
            }
            (argv, Vec::new())
        }
        InstallVia::Bash => {
            let script = BundleFacts::load(&config.installers_root.join(id))
                .map_err(|e| e.to_string())?
                .install_script;
            let mut env = vec![
                ("DEBIAN_FRONTEND".to_owned(), "noninteractive".to_owned()),
                ("PROVISIONING_JOB".to_owned(), "true".to_owned()),
                ("JOB_ID".to_owned(), format!("conformance-{id}")),
            ];
            env.extend(
                inputs
                    .iter()
                    .map(|(k, v)| (k.to_ascii_uppercase(), value_text(v))),
            );
            (
                vec![
                    "/bin/bash".to_owned(),
                    "-c".to_owned(),
                    format!("cd {bundle} && exec bash ./{script}"),
                ],
                env,
            )
        }
    };
    container
        .exec(&argv, &env, timeout)
        .await
        .map_err(|e| e.to_string())
}

/// Boots a system with `bundles` and the runner copied in, and its package proxy serving.
async fn boot(config: &HarnessConfig, bundles: &[String]) -> Result<Container, String> {
    let base = config.base.clone();
    let work_root = config.work_root.clone();
    let installers_root = config.installers_root.clone();
    let runner = match &config.install_via {
        InstallVia::Runner(path) => Some(path.clone()),
        InstallVia::Bash => None,
    };
    let bundles = bundles.to_vec();
    let mut container = tokio::task::spawn_blocking(move || {
        Container::boot(&base, &work_root, |root, link| {
            prepare_root(root, link, &installers_root, &bundles, runner.as_deref())
        })
    })
    .await
    .map_err(|e| format!("boot task failed: {e}"))?
    .map_err(|e| e.to_string())?;
    let listener = TcpListener::bind((container.link.host_addr, PROXY_PORT))
        .await
        .map_err(|e| {
            format!(
                "bind the package proxy on {}: {e}",
                container.link.host_addr
            )
        })?;
    container.attach_task(tokio::spawn(proxy::serve(listener, config.proxy.clone())));
    Ok(container)
}

/// Writes into the new root, before boot: proxy settings for apt, npm and git, the bundles,
/// and the runner.
fn prepare_root(
    root: &Path,
    link: &Link,
    installers_root: &Path,
    bundles: &[String],
    runner: Option<&Path>,
) -> std::io::Result<()> {
    let proxy = format!("http://{}:{PROXY_PORT}/", link.host_addr);
    let write = |rel: &str, text: String| {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)
    };
    write(
        "etc/apt/apt.conf.d/00outfitter-conformance-proxy",
        format!("Acquire::http::Proxy \"{proxy}\";\nAcquire::https::Proxy \"{proxy}\";\n"),
    )?;
    let npmrc = format!("proxy={proxy}\nhttps-proxy={proxy}\n");
    write("etc/npmrc", npmrc.clone())?;
    write("usr/local/etc/npmrc", npmrc)?;
    write("etc/gitconfig", format!("[http]\n\tproxy = {proxy}\n"))?;
    let guest_installers = root.join(GUEST_INSTALLERS.trim_start_matches('/'));
    std::fs::create_dir_all(&guest_installers)?;
    for id in bundles {
        let status = std::process::Command::new("cp")
            .args(["-a", "-T"])
            .arg(installers_root.join(id))
            .arg(guest_installers.join(id))
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!("copying bundle {id} failed")));
        }
        // The result file of an earlier run is not part of the bundle under test.
        let _ = std::fs::remove_file(guest_installers.join(id).join(RESULT_FILE));
    }
    if let Some(runner) = runner {
        let dest = root.join(GUEST_RUNNER.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap_or(root))?;
        std::fs::copy(runner, dest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_prefers_the_last_error() {
        assert_eq!(
            last_error_line("a\nerror: first\nb\nerror: second\nc"),
            "error: second"
        );
        assert_eq!(last_error_line("a\nb"), "b");
    }

    #[test]
    fn prepared_root_points_apt_at_the_link_proxy_and_holds_the_bundle() {
        let root = tempfile::tempdir().unwrap();
        let installers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers");
        let link = crate::network::Link {
            host_if: "ve-oc-0".into(),
            host_addr: "10.213.0.1".parse().unwrap(),
            guest_addr: "10.213.0.2".parse().unwrap(),
        };
        prepare_root(root.path(), &link, &installers, &["nginx".to_owned()], None).unwrap();
        let apt = std::fs::read_to_string(
            root.path()
                .join("etc/apt/apt.conf.d/00outfitter-conformance-proxy"),
        )
        .unwrap();
        assert!(
            apt.contains("Acquire::http::Proxy \"http://10.213.0.1:3142/\";"),
            "{apt}"
        );
        assert!(
            root.path()
                .join("opt/outfitter-conformance/installers/nginx/install.sh")
                .is_file()
        );
        assert!(
            !root
                .path()
                .join("opt/outfitter-conformance/installers/nginx/conformance.json")
                .exists()
        );
    }
}
