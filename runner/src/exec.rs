//! `outfitter-runner exec <bundle-dir> [--set name=value]...`: one bundle through the same
//! validation and sandbox as a real job, without Redis, for authors.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use outfitter_contract::event::OutputStream;
use outfitter_contract::exit_policy::{Decision, code, decide};
use outfitter_contract::manifest::load_bundle;
use tokio::sync::{mpsc, watch};

use crate::attempt::{self, JobIdentity};
use crate::config::Limits;
use crate::output::{LINE_CHANNEL_CAPACITY, OutputLine};
use crate::sandbox::{Abort, Sandbox, SandboxError};

/// Exit status when the bundle itself does not load (sysexits `EX_CONFIG`).
pub const EXIT_INVALID_BUNDLE: i32 = 78;
/// Exit status when the inputs are invalid: the contract's validation error.
pub const EXIT_INVALID_INPUTS: i32 = code::INVALID_INPUT;
/// Exit status when the script could not be started at all.
pub const EXIT_CANNOT_START: i32 = 127;
/// The agent id scripts see under `exec`.
pub const EXEC_AGENT_ID: &str = "local";

/// Parses `name=value`.
pub fn parse_set(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("--set {raw:?}: expected name=value")),
    }
}

/// Runs the bundle; returns the process exit status. `timeout` overrides the manifest's.
pub async fn exec(
    dir: &Path,
    sets: &[(String, String)],
    limits: Limits,
    timeout: Option<Duration>,
    sandbox_sys: &'static dyn crate::sandbox::sys::Sys,
) -> i32 {
    let bundle = match load_bundle(dir) {
        Ok(b) => b,
        Err(diagnostics) => {
            eprintln!(
                "outfitter-runner exec: the bundle {} does not load:",
                dir.display()
            );
            for d in diagnostics {
                eprintln!(
                    "  {} {} {}: {}",
                    d.severity.as_str(),
                    d.rule,
                    d.path,
                    d.message
                );
            }
            return EXIT_INVALID_BUNDLE;
        }
    };
    let submitted = outfitter_contract::inputs::coerce_form(&bundle.manifest, sets);
    let values = match bundle.validate_inputs(&submitted) {
        Ok(v) => v,
        Err(errors) => {
            eprintln!("outfitter-runner exec: invalid inputs; nothing was run:");
            for e in errors {
                eprintln!("  input {}: {} ({})", e.field, e.message, e.rule);
            }
            return EXIT_INVALID_INPUTS;
        }
    };
    let who = JobIdentity {
        job_id: outfitter_contract::ids::new_job_id(),
        attempt: 1,
        agent_id: EXEC_AGENT_ID.to_owned(),
    };
    let facts = outfitter_contract::lifecycle::StepFacts {
        instance: bundle.manifest.id.clone(),
        ..Default::default()
    };
    let mut run = attempt::prepare(
        &bundle,
        &values,
        &who,
        crate::sandbox::Program::Script(bundle.script_path.clone()),
        &facts,
    );
    if let Some(t) = timeout {
        run.timeout = t;
    }
    let masker = run.masker.clone();
    if let Err(e) = crate::sandbox::reaper::become_subreaper(sandbox_sys) {
        eprintln!("[outfitter] not a child subreaper ({e}): setsid escapees reach PID 1");
    }
    tokio::spawn(crate::sandbox::reaper::reap_forever(sandbox_sys));
    let (layout, layout_notes) = if !limits.cgroups {
        (crate::sandbox::cgroup::CgroupLayout::none(), Vec::new())
    } else if !nix::unistd::geteuid().is_root() {
        let note =
            "not running as root: no cgroups; the process group and the subreaper still apply";
        (
            crate::sandbox::cgroup::CgroupLayout::none(),
            vec![note.to_owned()],
        )
    } else {
        crate::sandbox::cgroup::CgroupLayout::detect(sandbox_sys, false)
    };
    for n in layout_notes {
        eprintln!("[outfitter] {n}");
    }
    let sandbox = Sandbox {
        limits: crate::config::Limits {
            cgroups: !layout.is_none(),
            ..limits
        },
        layout,
        sys: sandbox_sys,
    };
    let (tx, mut rx) = mpsc::channel::<OutputLine>(LINE_CHANNEL_CAPACITY);
    let (abort_tx, abort_rx) = watch::channel(None);
    let printer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            print_line(&line);
        }
    });
    tokio::spawn(async move {
        if wait_for_interrupt().await {
            let _ = abort_tx.send(Some(Abort::Cancel));
        }
    });
    let result = sandbox.run(&run, tx, abort_rx).await;
    let _ = printer.await;
    let outcome = match result {
        Ok(o) => o,
        Err(SandboxError::Spawn { source }) => {
            eprintln!("outfitter-runner exec: cannot start the script: {source}");
            return EXIT_CANNOT_START;
        }
    };
    for note in &outcome.notes {
        eprintln!("[outfitter] {}", masker.mask_str(note));
    }
    let verdict = match outcome.finish.ending() {
        Some(ending) => match decide(ending, 1, attempt::retry_settings(&bundle.manifest)) {
            Decision::Finish(state) => state.to_string(),
            Decision::Retry {
                next_attempt,
                delay,
            } => {
                format!(
                    "installation error; a job would retry (attempt {next_attempt} in {}s)",
                    delay.as_secs()
                )
            }
        },
        None => "stopped".to_owned(),
    };
    let mut summary = format!(
        "outfitter-runner exec: {} {}: exit {} ({verdict}) after {:.1}s",
        bundle.manifest.id,
        bundle.manifest.version,
        outcome.finish.exit_status(),
        outcome.duration.as_secs_f64()
    );
    if outcome.discarded_bytes > 0 {
        summary.push_str(&format!(
            "; {} bytes of output discarded",
            outcome.discarded_bytes
        ));
    }
    if !outcome.survivors.is_empty() {
        summary.push_str(&format!("; left running: {}", outcome.survivors.join(", ")));
    }
    eprintln!("{summary}");
    outcome.finish.exit_status()
}

fn print_line(line: &OutputLine) {
    match line.stream {
        OutputStream::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", line.text);
        }
        OutputStream::Stderr => eprintln!("{}", line.text),
        OutputStream::Runner => eprintln!(
            "[outfitter] {}",
            line.text.trim_start_matches("[outfitter] ")
        ),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn wait_for_interrupt() -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return false;
    };
    tokio::select! {
        _ = int.recv() => true,
        _ = term.recv() => true,
    }
}
