//! The read-only base system every test boots from: `debootstrap --variant=minbase` of
//! Debian 12 plus systemd, systemd-sysv and dbus, built once and cached. A stamp file names
//! the recipe; a base with another stamp is rebuilt.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{Flock, FlockArg};

/// The Debian release of the base.
pub const SUITE: &str = "bookworm";
/// Packages added to minbase: a real init, so services start as on a real host.
const EXTRA_PACKAGES: &str = "systemd,systemd-sysv,dbus";
/// Bump when the recipe below changes, to force a rebuild of cached bases.
const RECIPE_VERSION: u32 = 1;
/// Inside the base: proves it was finished, and by which recipe.
const STAMP: &str = ".outfitter-conformance-base";
/// Used when the host's apt sources name no Debian mirror.
const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("debootstrap failed (is the `debootstrap` package installed?): {0}")]
    Debootstrap(String),
}

/// Where packages come from: the host's own Debian mirror, so that only package
/// registries are ever contacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrors {
    pub main: String,
    pub security: Option<String>,
}

impl Mirrors {
    /// The first Debian archive and security URIs of the host's apt sources.
    pub fn from_host() -> Self {
        let mut texts = Vec::new();
        texts.extend(std::fs::read_to_string("/etc/apt/sources.list").ok());
        if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
            let mut paths: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "sources" || e == "list"))
                .collect();
            paths.sort();
            texts.extend(paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
        }
        Self::from_sources(&texts.join("\n"))
    }

    /// Parses one-line (`deb URI suite …`) and deb822 (`URIs:`) sources.
    fn from_sources(text: &str) -> Self {
        let mut uris = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("deb ") {
                uris.extend(
                    rest.split_whitespace()
                        .find(|w| w.starts_with("http"))
                        .map(str::to_owned),
                );
            } else if let Some(rest) = line.strip_prefix("URIs:") {
                uris.extend(rest.split_whitespace().map(str::to_owned));
            }
        }
        let http = |u: &&String| u.starts_with("http://");
        let main = uris
            .iter()
            .filter(http)
            .find(|u| u.trim_end_matches('/').ends_with("/debian"))
            .cloned()
            .unwrap_or_else(|| FALLBACK_MIRROR.to_owned());
        let security = uris
            .iter()
            .filter(http)
            .find(|u| u.contains("security"))
            .cloned();
        Self {
            main: main.trim_end_matches('/').to_owned(),
            security: security.map(|s| s.trim_end_matches('/').to_owned()),
        }
    }

    /// Host names the package proxy must let through.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = std::iter::once(&self.main)
            .chain(self.security.as_ref())
            .filter_map(|u| url_host(u))
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    fn sources_list(&self) -> String {
        let mut list = format!(
            "deb {0} {SUITE} main\ndeb {0} {SUITE}-updates main\n",
            self.main
        );
        if let Some(security) = &self.security {
            list.push_str(&format!("deb {security} {SUITE}-security main\n"));
        }
        list
    }

    fn recipe(&self) -> String {
        format!(
            "recipe {RECIPE_VERSION}\nsuite {SUITE}\npackages {EXTRA_PACKAGES}\n{}",
            self.sources_list()
        )
    }
}

/// The host part of an http(s) URL.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    (!host.is_empty()).then(|| host.to_owned())
}

/// Returns the base directory under `cache_dir`, building it first when missing or stale.
/// Concurrent runs wait for one another on a lock instead of building twice.
pub fn ensure(
    cache_dir: &Path,
    mirrors: &Mirrors,
    log: &mut dyn FnMut(&str),
) -> Result<PathBuf, BaseError> {
    let io = |what: String| move |source| BaseError::Io { what, source };
    std::fs::create_dir_all(cache_dir).map_err(io(format!("create {}", cache_dir.display())))?;
    let lock_path = cache_dir.join("base.lock");
    let lock_file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(format!("open {}", lock_path.display())))?;
    let _lock =
        Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, errno)| BaseError::Io {
            what: "lock the base".into(),
            source: errno.into(),
        })?;

    let base = cache_dir.join("base");
    let recipe = mirrors.recipe();
    if std::fs::read_to_string(base.join(STAMP)).is_ok_and(|s| s == recipe) {
        return Ok(base);
    }
    log(&format!(
        "building the base system in {} (debootstrap {SUITE}, about a minute)",
        base.display()
    ));
    let staging = cache_dir.join("base.new");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(format!("remove {}", staging.display())))?;
    }
    let output = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={EXTRA_PACKAGES}"),
            SUITE,
        ])
        .arg(&staging)
        .arg(&mirrors.main)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BaseError::Debootstrap(e.to_string()))?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        return Err(BaseError::Debootstrap(crate::container::tail_lines(
            &text, 20,
        )));
    }
    let write = |rel: &str, text: &str| {
        let path = staging.join(rel);
        std::fs::write(&path, text).map_err(io(format!("write {}", path.display())))
    };
    write("etc/apt/sources.list", &mirrors.sources_list())?;
    // No resolver: the private link reaches only the package proxy, and an empty resolver
    // list fails name lookups at once instead of after a timeout.
    write(
        "etc/resolv.conf",
        "# outfitter-conformance: no DNS on the private link\n",
    )?;
    // Each boot gets its own machine id.
    write("etc/machine-id", "")?;
    write("etc/hostname", "conformance\n")?;
    write(
        "etc/hosts",
        "127.0.0.1 localhost conformance\n::1 localhost ip6-localhost ip6-loopback\n",
    )?;
    let _ = Command::new("chroot")
        .arg(&staging)
        .args(["apt-get", "clean"])
        .status();
    write(STAMP, &recipe)?;
    if base.exists() {
        std::fs::remove_dir_all(&base).map_err(io(format!("remove the old {}", base.display())))?;
    }
    std::fs::rename(&staging, &base)
        .map_err(io(format!("move {} into place", staging.display())))?;
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_sources_give_archive_and_security_mirrors() {
        let m = Mirrors::from_sources(
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n\n\
             Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n",
        );
        assert_eq!(m.main, "http://deb.debian.org/debian");
        assert_eq!(
            m.security.as_deref(),
            Some("http://deb.debian.org/debian-security")
        );
        assert_eq!(m.hosts(), ["deb.debian.org"]);
    }

    #[test]
    fn one_line_sources_are_understood() {
        let m = Mirrors::from_sources(
            "deb [arch=amd64] http://ftp.de.debian.org/debian/ bookworm main\n",
        );
        assert_eq!(m.main, "http://ftp.de.debian.org/debian");
        assert_eq!(m.security, None);
    }

    #[test]
    fn no_sources_fall_back_to_the_debian_cdn() {
        assert_eq!(Mirrors::from_sources("").main, FALLBACK_MIRROR);
    }

    #[test]
    fn recipe_changes_with_the_mirror() {
        let a = Mirrors {
            main: "http://a/debian".into(),
            security: None,
        };
        let b = Mirrors {
            main: "http://b/debian".into(),
            security: None,
        };
        assert_ne!(a.recipe(), b.recipe());
    }

    #[test]
    fn url_host_strips_scheme_port_and_path() {
        assert_eq!(
            url_host("http://deb.debian.org:8080/debian").as_deref(),
            Some("deb.debian.org")
        );
        assert_eq!(url_host("nonsense"), None);
    }
}
