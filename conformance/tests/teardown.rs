//! Real containers, real teardown: after a container is dropped, or after the harness gets
//! Ctrl-C in the middle of a run, nothing of it is left mounted, running or configured.
//! These tests need root, systemd-nspawn and debootstrap (the base is built once and
//! cached). `scripts/test` installs the tools and CI runs as root, so a missing capability is
//! a failure; `OUTFITTER_SKIP_CONTAINER_TESTS=1` skips them knowingly (a machine without root).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outfitter_conformance::container::Container;

mod common;
use common::{CACHE, base, can_boot};
/// How long the harness may take from its boot step to the install under way.
const INSTALL_START_LIMIT: Duration = Duration::from_secs(60);

/// Waits until a process of the bundle's install runs (the harness gives it
/// `JOB_ID=conformance-<bundle>`), so a signal sent next lands mid-install.
fn wait_for_install_of(bundle: &str) {
    let needle = format!("JOB_ID=conformance-{bundle}").into_bytes();
    let deadline = Instant::now() + INSTALL_START_LIMIT;
    loop {
        let running = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                std::fs::read(entry.path().join("environ"))
                    .is_ok_and(|env| env.split(|&b| b == 0).any(|e| e == needle.as_slice()))
            });
        if running {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the install of {bundle} did not start within {INSTALL_START_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every trace a container named `name` could leave on the host.
fn traces_of(name: &str, root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if mounts.lines().any(|l| l.contains(&*root.to_string_lossy())) {
        found.push(format!("{} is still mounted", root.display()));
    }
    if root.exists() {
        found.push(format!("{} still exists", root.display()));
    }
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if links.unwrap_or_default().contains(&format!("ve-{name}@")) {
        found.push(format!("interface ve-{name} still exists"));
    }
    for hierarchy in ["unified", "systemd", "pids"] {
        let out = Command::new("find")
            .arg(format!("/sys/fs/cgroup/{hierarchy}"))
            .args([
                "-type",
                "d",
                "-path",
                &format!("*/outfitter-conformance/{name}"),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        found.extend(out.lines().map(|l| format!("cgroup {l} still exists")));
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_container_leaves_nothing_behind() {
    if !can_boot(&[]) {
        return;
    }
    let base = base();
    let container =
        Container::boot(&base, &Path::new(CACHE).join("containers"), |_, _| Ok(())).expect("boot");
    let (name, root) = (container.name.clone(), container.root().to_owned());
    let pid = container.init_pid();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "init is running"
    );
    let out = container
        .exec(
            &["systemctl".into(), "is-system-running".into()],
            &[],
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(
        out.output.contains("running") || out.output.contains("degraded"),
        "{}",
        out.output
    );
    assert!(
        !traces_of(&name, &root).is_empty(),
        "a live container is visible"
    );
    drop(container);
    assert_eq!(traces_of(&name, &root), Vec::<String>::new());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "init {pid} is gone"
    );
}

#[test]
fn interrupted_run_tears_its_system_down() {
    if !can_boot(&[]) {
        return;
    }
    base();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_outfitter-conformance"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let logs = tempfile::tempdir().unwrap();
    // A setup-free bundle whose install takes seconds: the signal lands mid-install.
    let mut child = Command::new(&bin)
        .current_dir(&repo)
        .args([
            "run",
            "--via",
            "bash",
            "--no-record",
            "--installers",
            "conformance/tutorial",
            "hello-page",
        ])
        .arg("--logs-dir")
        .arg(logs.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open until the end: a closed pipe would make the harness's own logging fail.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut name = None;
    for line in lines.by_ref().map_while(Result::ok) {
        // "oc-3 at 10.213.0.14 bundle=hello-page step="boot" status=Passed"
        if line.contains("step=\"boot\"") {
            name = line
                .split_whitespace()
                .find(|w| w.starts_with("oc-"))
                .map(str::to_owned);
            break;
        }
    }
    let name = name.expect("the run reported its boot step");
    let root = Path::new(CACHE).join("containers").join(&name).join("root");
    wait_for_install_of("hello-page");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "an interrupted run fails with the usage/setup code"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "teardown took {:?}",
        started.elapsed()
    );
    assert_eq!(traces_of(&name, &root), Vec::<String>::new());
    drop(lines);
}
