//! A fresh system for one run: the root prepared before boot (proxy settings, bundles, the
//! runner), booted, with its package proxy serving.

use std::path::{Path, PathBuf};

use outfitter_contract::conformance::RESULT_FILE;
use tokio::net::TcpListener;

use super::{HarnessConfig, InstallVia};
use crate::container::Container;
use crate::network::Link;
use crate::proxy::{self, PROXY_PORT};

/// Where bundles are copied inside the system.
pub(super) const GUEST_INSTALLERS: &str = "/opt/outfitter-conformance/installers";
/// Where earlier versions of a bundle (from its git history) are copied inside the system.
pub(super) const GUEST_PREVIOUS: &str = "/opt/outfitter-conformance/previous";
/// Where the runner binary is copied inside the system.
pub(super) const GUEST_RUNNER: &str = "/usr/local/bin/outfitter-runner";

/// Where one version of a bundle is: on the host, where the contract's loader reads it, and
/// inside the system, where its scripts run.
#[derive(Debug, Clone)]
pub(super) struct BundlePlace {
    pub host: PathBuf,
    pub guest: String,
}

impl BundlePlace {
    /// The version under test, as `prepare_root` copied it in.
    pub(super) fn current(config: &HarnessConfig, id: &str) -> Self {
        Self {
            host: config.installers_root.join(id),
            guest: format!("{GUEST_INSTALLERS}/{id}"),
        }
    }
}

/// Boots a system with `bundles` and the runner copied in, and its package proxy serving.
pub(super) async fn boot(config: &HarnessConfig, bundles: &[String]) -> Result<Container, String> {
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
    use std::path::Path;

    use super::*;

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
