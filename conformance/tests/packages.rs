//! The Debian packages, installed for real: `scripts/package --dev` builds both .deb files, a
//! throwaway Debian 12 system with systemd installs them with `apt-get install ./…deb`, and
//! then the panel answers `/healthz`, the runner (given an agent by `outfitter-panel agent
//! add`) heartbeats into Redis, both units are enabled, the conffiles are registered, and the
//! man pages and completions are in place; removing the packages stops both services, and
//! purging takes their settings and state.
//!
//! Redis is a private `redis-server` on the host end of the container's private link (the
//! only address the container reaches); apt fetches the packages' dependencies through the
//! harness's package proxy there, which caches them for the next run. Needs what the other container tests need plus
//! cargo-deb, redis-server and redis-cli; `scripts/test` installs them and CI runs as root.
//! `OUTFITTER_SKIP_CONTAINER_TESTS=1` skips it knowingly.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outfitter_conformance::base::Mirrors;
use outfitter_conformance::container::{Container, ExecOutput};
use outfitter_conformance::proxy::{self, PROXY_PORT, ProxyConfig};
use outfitter_contract::host::HEARTBEAT_INTERVAL_SECS;
use outfitter_contract::redis_keys::AgentRedisKeys;

mod common;
use common::{CACHE, base, can_boot, on_path};

const PACKAGES: [&str; 2] = ["outfitter-panel", "outfitter-runner"];
/// The agent the test registers for the packaged runner.
const AGENT: &str = "pkg-1";
/// Where the panel listens inside the system (the test reaches it over the private link).
const PANEL_PORT: u16 = 8080;
/// How long a service may take to answer after a (re)start.
const SERVICE_LIMIT: Duration = Duration::from_secs(45);

/// A `redis-server` of the test's own, on the host end of the container's link.
struct Redis {
    child: Child,
    addr: SocketAddr,
}

impl Redis {
    fn start(host: Ipv4Addr) -> Self {
        let port = TcpListener::bind((host, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port on the link")
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", &host.to_string(), "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Self {
            child,
            addr: SocketAddr::from((host, port)),
        };
        wait_for("redis-server answers PING", Duration::from_secs(10), || {
            (redis.cli(&["PING"]) == "PONG").then_some(())
        });
        redis
    }

    fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", &self.addr.ip().to_string()])
            .args(["-p", &self.addr.port().to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` every 200 ms until it gives a value, for at most `limit`.
fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// [`poll`], panicking with `what` when nothing came.
fn wait_for<T>(what: &str, limit: Duration, probe: impl FnMut() -> Option<T>) -> T {
    poll(limit, probe).unwrap_or_else(|| panic!("{what}: not within {limit:?}"))
}

/// Builds both packages from the dev-profile binaries into `out` and returns their paths.
fn build_packages(out: &Path) -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // This test binary lives in <target>/debug/deps: package from the same target directory.
    let target_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_owned()))
        .expect("the target directory");
    let status = Command::new(repo.join("scripts/package"))
        .args(["--dev", "--out"])
        .arg(out)
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .expect("run scripts/package");
    assert!(status.success(), "scripts/package --dev failed: {status}");
    PACKAGES
        .iter()
        .map(|p| {
            let found = std::fs::read_dir(out)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|f| {
                    f.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{p}_")))
                });
            found.unwrap_or_else(|| panic!("scripts/package made no {p}_*.deb"))
        })
        .collect()
}

/// Runs a shell script inside the system as root.
async fn sh(container: &Container, script: &str) -> ExecOutput {
    container
        .exec(
            &["/bin/sh".into(), "-c".into(), script.into()],
            &[("DEBIAN_FRONTEND".into(), "noninteractive".into())],
            Duration::from_secs(180),
        )
        .await
        .expect("exec in the system")
}

/// Runs a shell script inside the system and returns its output; it must succeed.
async fn must(container: &Container, script: &str) -> String {
    let out = sh(container, script).await;
    assert_eq!(
        out.code,
        Some(0),
        "`{script}` failed (exit {:?}, timed out {}):\n{}",
        out.code,
        out.timed_out,
        out.output
    );
    out.output
}

/// The unit's recent journal, for failure messages.
async fn journal(container: &Container, unit: &str) -> String {
    sh(container, &format!("journalctl -u {unit} --no-pager -n 30"))
        .await
        .output
}

/// `GET /healthz` on the panel from the host; the status line and body, or `None` when it
/// does not answer.
fn healthz(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /healthz HTTP/1.0\r\nHost: panel\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.lines().next()?.to_owned();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some(format!("{status}\n{body}"))
}

/// Whether a [`healthz`] answer is `200 OK`.
fn is_ok(answer: &str) -> bool {
    answer
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code == "200")
}

/// Names of the processes running inside the system (its /proc, as `comm`).
async fn processes(container: &Container) -> String {
    must(container, "cat /proc/[0-9]*/comm 2>/dev/null || true").await
}

#[tokio::test(flavor = "multi_thread")]
async fn packages_install_run_and_remove_cleanly() {
    if !can_boot(&["redis-server", "redis-cli"]) {
        return;
    }
    let cargo_deb = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["deb", "--version"])
        .output();
    assert!(
        cargo_deb.is_ok_and(|o| o.status.success()) || on_path("cargo-deb"),
        "cargo-deb is missing (scripts/test installs it: cargo install cargo-deb --locked)"
    );
    let started = Instant::now();
    let out = tempfile::tempdir().unwrap();
    let debs = build_packages(out.path());
    eprintln!("packages built in {:?}", started.elapsed());

    let base = base();
    let mut container = tokio::task::spawn_blocking(move || {
        Container::boot(&base, &Path::new(CACHE).join("containers"), |root, link| {
            let apt = root.join("etc/apt/apt.conf.d/00outfitter-packages-test-proxy");
            let proxy = format!("http://{}:{PROXY_PORT}/", link.host_addr);
            std::fs::write(apt, format!("Acquire::http::Proxy \"{proxy}\";\n"))
        })
    })
    .await
    .unwrap()
    .expect("boot");
    let listener = tokio::net::TcpListener::bind((container.link.host_addr, PROXY_PORT))
        .await
        .expect("bind the package proxy");
    let proxy_config = ProxyConfig {
        allowed_hosts: Mirrors::from_host().hosts(),
        cache_dir: Path::new(CACHE).join("packages"),
    };
    container.attach_task(tokio::spawn(proxy::serve(
        listener,
        std::sync::Arc::new(proxy_config),
    )));
    let redis = Redis::start(container.link.host_addr);
    let panel_addr = SocketAddr::from((container.link.guest_addr, PANEL_PORT));

    // Install both as an operator would: apt-get with the files, dependencies from the archive.
    let mut install =
        String::from("apt-get update -q && apt-get install -y -q --no-install-recommends");
    for deb in &debs {
        let name = deb.file_name().unwrap().to_string_lossy().into_owned();
        container.copy_in(deb, &format!("/root/{name}")).unwrap();
        install.push_str(&format!(" /root/{name}"));
    }
    let installed = must(&container, &install).await;
    assert!(
        installed.contains("outfitter-runner: installed and enabled, not started"),
        "an unconfigured runner says what to do:\n{installed}"
    );

    // Both units are enabled; the runner waits for an agent instead of crash-looping.
    let enabled = must(
        &container,
        "systemctl is-enabled outfitter-panel outfitter-runner",
    )
    .await;
    assert_eq!(
        enabled.split_whitespace().collect::<Vec<_>>(),
        ["enabled", "enabled"]
    );
    let runner_state = sh(&container, "systemctl is-active outfitter-runner").await;
    assert_eq!(
        runner_state.output.trim(),
        "inactive",
        "unconfigured runner"
    );

    // The settings are conffiles, readable only by whom they are for.
    for (package, conf, owner) in [
        (
            "outfitter-panel",
            "/etc/outfitter/panel.toml",
            "root:outfitter-panel 640",
        ),
        (
            "outfitter-runner",
            "/etc/outfitter/runner.toml",
            "root:root 600",
        ),
    ] {
        let conffiles = must(
            &container,
            &format!("dpkg-query -W -f='${{Conffiles}}' {package}"),
        )
        .await;
        assert!(
            conffiles
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{conf} "))),
            "{conf} is a conffile of {package}: {conffiles:?}"
        );
        let stat = must(&container, &format!("stat -c '%U:%G %a' {conf}")).await;
        assert_eq!(stat.trim(), owner, "{conf}");
    }
    // Man pages and completions come with the binaries.
    for package in PACKAGES {
        for file in [
            format!("usr/share/man/man1/{package}.1.gz"),
            format!("usr/share/bash-completion/completions/{package}"),
            format!("usr/share/zsh/vendor-completions/_{package}"),
            format!("usr/share/fish/vendor_completions.d/{package}.fish"),
            format!("usr/bin/{package}"),
        ] {
            assert!(
                container.root().join(&file).is_file(),
                "/{file} is installed"
            );
        }
    }
    must(&container, "getent passwd outfitter-panel").await;

    // Point the panel at Redis (the shipped file is all comments) and restart it.
    std::fs::write(
        container.root().join("etc/outfitter/panel.toml"),
        format!(
            "bind = \"0.0.0.0:{PANEL_PORT}\"\nredis_url = \"{}\"\n",
            redis.url()
        ),
    )
    .unwrap();
    // Its first starts failed (no Redis on 127.0.0.1): clear the start limit they counted.
    must(
        &container,
        "systemctl reset-failed outfitter-panel; systemctl restart outfitter-panel",
    )
    .await;
    let bundles = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("manifest.yml").is_file())
        .count();
    let Some(health) = poll(SERVICE_LIMIT, || healthz(panel_addr).filter(|h| is_ok(h))) else {
        panic!(
            "the panel does not answer /healthz with 200 ({:?}); its journal:\n{}",
            healthz(panel_addr),
            journal(&container, "outfitter-panel").await
        );
    };
    assert!(
        health.contains(&format!("\"apps\":{bundles}")),
        "the panel serves the packaged catalog ({bundles} bundles): {health}"
    );

    // Register an agent the documented way and paste its lines into runner.toml.
    must(
        &container,
        &format!(
            "runuser -u outfitter-panel -- env \
             OUTFITTER_SECRET_FILE=/var/lib/outfitter-panel/panel.secret \
             outfitter-panel agent add {AGENT} --config /etc/outfitter/panel.toml \
             >> /etc/outfitter/runner.toml && systemctl restart outfitter-runner"
        ),
    )
    .await;
    let heartbeat = AgentRedisKeys::new(AGENT).heartbeat();
    let limit = SERVICE_LIMIT + Duration::from_secs(HEARTBEAT_INTERVAL_SECS);
    let beat = poll(limit, || {
        (redis.cli(&["EXISTS", &heartbeat]) == "1").then_some(())
    });
    if beat.is_none() {
        panic!(
            "no heartbeat at {heartbeat}; runner journal:\n{}",
            journal(&container, "outfitter-runner").await
        );
    }
    let healthy = healthz(panel_addr).unwrap_or_default();
    assert!(is_ok(&healthy), "panel after the runner: {healthy}");

    // Remove: both services stop, the conffiles stay.
    must(
        &container,
        "apt-get remove -y -q outfitter-panel outfitter-runner",
    )
    .await;
    let running = processes(&container).await;
    assert!(
        !running.lines().any(|p| p.starts_with("outfitter-")),
        "no outfitter process after remove:\n{running}"
    );
    assert_eq!(healthz(panel_addr), None, "the panel is gone");
    for unit in PACKAGES {
        let state = sh(&container, &format!("systemctl is-active {unit}")).await;
        assert_ne!(state.output.trim(), "active", "{unit} after remove");
    }
    assert!(
        container.root().join("etc/outfitter/runner.toml").is_file(),
        "remove keeps conffiles"
    );

    // Reinstalled over the settings it kept, the configured runner starts by itself.
    let runner_deb = debs[1].file_name().unwrap().to_string_lossy().into_owned();
    must(
        &container,
        &format!("apt-get install -y -q /root/{runner_deb}"),
    )
    .await;
    let state = sh(&container, "systemctl is-active outfitter-runner").await;
    assert_eq!(
        state.output.trim(),
        "active",
        "reinstalled configured runner"
    );

    // Purge: settings and state go; the system user stays (docs/operations.md).
    must(
        &container,
        "apt-get purge -y -q outfitter-panel outfitter-runner",
    )
    .await;
    let running = processes(&container).await;
    assert!(
        !running.lines().any(|p| p.starts_with("outfitter-")),
        "no outfitter process after purge:\n{running}"
    );
    for gone in [
        "etc/outfitter/panel.toml",
        "etc/outfitter/runner.toml",
        "var/lib/outfitter-panel",
        "var/lib/outfitter/runner",
    ] {
        assert!(!container.root().join(gone).exists(), "/{gone} after purge");
    }
    eprintln!("packages test took {:?}", started.elapsed());
}
