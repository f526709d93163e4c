//! The version of a bundle before the one under test, taken from the git history of its
//! directory: the newest commit whose `manifest.yml` names another version, checked out
//! into a directory of its own. The upgrade steps install it and upgrade from it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use outfitter_contract::manifest::load_bundle;

/// An earlier version of a bundle, checked out on the host.
#[derive(Debug, Clone)]
pub(super) struct Previous {
    pub version: String,
    /// The commit it was taken from (abbreviated), for the record.
    pub commit: String,
    pub dir: PathBuf,
}

/// Why a bundle has no earlier version to upgrade from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NoPrevious {
    /// Not in a git work tree, or git is missing: nothing to read history from.
    NoHistory(String),
    /// Every commit of `manifest.yml` names the version under test.
    OneVersion,
}

impl NoPrevious {
    pub(super) fn reason(&self) -> String {
        match self {
            Self::NoHistory(why) => {
                format!("no git history to take an earlier version from ({why})")
            }
            Self::OneVersion => {
                "no earlier version: every commit of its manifest.yml names this version".to_owned()
            }
        }
    }
}

/// Finds the version before `current` of the bundle in `bundle_dir` and checks it out into
/// `into` (emptied first; named as the bundle id, which the loader demands). `Err(Ok(_))`
/// when there is none, `Err(Err(_))` when checking it out failed.
pub(super) fn check_out(
    bundle_dir: &Path,
    current: &str,
    into: &Path,
) -> Result<Previous, Result<NoPrevious, String>> {
    let prefix = git(bundle_dir, &["rev-parse", "--show-prefix"])
        .map_err(|e| Ok(NoPrevious::NoHistory(e)))?;
    let prefix = prefix.trim().to_owned();
    // From a subdirectory, git archive would take only that subdirectory of the tree given.
    let top = git(bundle_dir, &["rev-parse", "--show-toplevel"])
        .map_err(|e| Ok(NoPrevious::NoHistory(e)))?;
    let top = PathBuf::from(top.trim());
    let commits = git(bundle_dir, &["log", "--format=%H", "--", "manifest.yml"])
        .map_err(|e| Ok(NoPrevious::NoHistory(e)))?;
    for commit in commits.lines().map(str::trim).filter(|c| !c.is_empty()) {
        let Ok(text) = git(
            bundle_dir,
            &["show", &format!("{commit}:{prefix}manifest.yml")],
        ) else {
            continue;
        };
        let Some(version) = manifest_version(&text) else {
            continue;
        };
        if version == current {
            continue;
        }
        extract(&top, &format!("{commit}:{prefix}"), into).map_err(Err)?;
        load_bundle(into).map_err(|d| {
            let errors: Vec<String> = d
                .iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect();
            Err(format!(
                "version {version} (commit {}) does not load today: {}",
                &commit[..12.min(commit.len())],
                errors.join("; ")
            ))
        })?;
        return Ok(Previous {
            version,
            commit: commit[..12.min(commit.len())].to_owned(),
            dir: into.to_owned(),
        });
    }
    Err(Ok(NoPrevious::OneVersion))
}

/// The `version:` of a manifest's text, when it has one.
fn manifest_version(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: String,
    }
    serde_saphyr::from_str::<Versioned>(text)
        .ok()
        .map(|v| v.version)
}

/// Writes the tree `treeish` into `into`, emptied first.
fn extract(cwd: &Path, treeish: &str, into: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(into);
    std::fs::create_dir_all(into).map_err(|e| format!("create {}: {e}", into.display()))?;
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(cwd)
        .args(["archive", "--format=tar", treeish])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run git archive: {e}"))?;
    let stdout = archive
        .stdout
        .take()
        .ok_or_else(|| "git archive gave no output".to_owned())?;
    let untar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(into)
        .stdin(stdout)
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let archived = archive
        .wait_with_output()
        .map_err(|e| format!("git archive: {e}"))?;
    if !archived.status.success() {
        return Err(format!(
            "git archive {treeish}: {}",
            String::from_utf8_lossy(&archived.stderr).trim()
        ));
    }
    if !untar.status.success() {
        return Err(format!(
            "tar -x into {}: {}",
            into.display(),
            String::from_utf8_lossy(&untar.stderr).trim()
        ));
    }
    Ok(())
}

/// Runs git in `cwd` and returns its stdout.
fn git(cwd: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(cwd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A git repository with bundle `app` (node-exporter's files under another id) committed
    /// once per version, each with a `marker` file naming it, then an edit of the last one
    /// that keeps its version.
    fn repository(versions: &[&str]) -> tempfile::TempDir {
        let repo = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .arg("-C")
                .arg(repo.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@example.test"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        git(&["init", "-q"]);
        let dir = repo.path().join("installers/app");
        std::fs::create_dir_all(&dir).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers/node-exporter");
        for entry in std::fs::read_dir(&shipped).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            }
        }
        let manifest = std::fs::read_to_string(shipped.join("manifest.yml")).unwrap();
        for version in versions {
            let text: Vec<String> = manifest
                .replace("id: node-exporter", "id: app")
                .lines()
                .map(|l| {
                    if l.starts_with("version:") {
                        format!("version: {version}")
                    } else {
                        l.to_owned()
                    }
                })
                .collect();
            std::fs::write(dir.join("manifest.yml"), text.join("\n") + "\n").unwrap();
            std::fs::write(dir.join("marker"), version).unwrap();
            git(&["add", "-A"]);
            git(&["commit", "-q", "-m", version]);
        }
        std::fs::write(dir.join("marker"), "edited").unwrap();
        git(&["commit", "-q", "-am", "same version, another file"]);
        repo
    }

    #[test]
    fn the_newest_commit_of_another_version_is_checked_out() {
        let repo = repository(&["1.0.0", "1.0.1", "1.1.0"]);
        let into = repo.path().join("out/app");
        let previous = check_out(&repo.path().join("installers/app"), "1.1.0", &into).unwrap();
        assert_eq!(previous.version, "1.0.1");
        assert_eq!(previous.commit.len(), 12);
        assert_eq!(
            std::fs::read_to_string(into.join("marker")).unwrap(),
            "1.0.1"
        );
        assert!(into.join("install.sh").is_file());
        assert!(
            !into.join("installers").exists(),
            "the bundle's own tree, not the repository's"
        );
    }

    #[test]
    fn one_version_or_no_history_means_no_previous_version() {
        let repo = repository(&["1.0.0"]);
        let into = repo.path().join("out/app");
        let none = check_out(&repo.path().join("installers/app"), "1.0.0", &into).unwrap_err();
        assert_eq!(none, Ok(NoPrevious::OneVersion));
        let dir = tempfile::tempdir().unwrap();
        let outside = check_out(dir.path(), "1.0.0", &dir.path().join("out")).unwrap_err();
        assert!(
            matches!(outside, Ok(NoPrevious::NoHistory(_))),
            "{outside:?}"
        );
        assert!(outside.unwrap().reason().contains("no git history"));
    }
}
