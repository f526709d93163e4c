//! The facts of a bundle the harness needs, read through the contract's own loader (so a
//! bundle the panel would refuse is refused here too): which one it is, its digest, how long
//! an install may take, which inputs are secret.

use std::path::{Path, PathBuf};

use outfitter_contract::manifest::{Diagnostic, load_bundle};

#[derive(Debug, thiserror::Error)]
#[error("{dir}: not a valid bundle: {}", summary(.diagnostics))]
pub struct BundleError {
    pub dir: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

fn summary(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the harness reads from a valid bundle.
#[derive(Debug, Clone)]
pub struct BundleFacts {
    pub id: String,
    pub name: String,
    pub version: String,
    pub category: String,
    /// The contract's bundle digest (manifest + script); a result is stale once it changes.
    pub digest: String,
    pub install_script: String,
    pub timeout_seconds: u64,
    /// Inputs whose values must never appear in a log (`sensitive` or `password`).
    pub sensitive_inputs: Vec<String>,
    /// The lifecycle scripts the manifest names (`uninstall_script`, …), when it does.
    pub uninstall_script: Option<String>,
    pub upgrade_script: Option<String>,
    pub backup_script: Option<String>,
    pub restore_script: Option<String>,
    /// `health_check.command` and its `timeout_seconds`.
    pub health_check: Option<(String, u64)>,
    /// The apps the manifest `requires`; tests.yml must install each as a prerequisite.
    pub requires: Vec<String>,
}

impl BundleFacts {
    pub fn load(dir: &Path) -> Result<Self, BundleError> {
        let bundle = load_bundle(dir).map_err(|diagnostics| BundleError {
            dir: dir.to_owned(),
            diagnostics,
        })?;
        let m = &bundle.manifest;
        Ok(Self {
            id: m.id.clone(),
            name: m.name.clone(),
            version: m.version.clone(),
            category: m.category.clone(),
            digest: bundle.digest.clone(),
            install_script: m.install_script.clone(),
            timeout_seconds: m.timeout_seconds,
            sensitive_inputs: m
                .inputs
                .iter()
                .filter(|i| i.is_sensitive())
                .map(|i| i.name.clone())
                .collect(),
            uninstall_script: m.uninstall_script.clone(),
            upgrade_script: m.upgrade_script.clone(),
            backup_script: m.backup_script.clone(),
            restore_script: m.restore_script.clone(),
            health_check: m
                .health_check
                .as_ref()
                .map(|h| (h.command.clone(), h.timeout_seconds)),
            requires: m.requires.clone(),
        })
    }

    /// The apps the manifest requires that `prerequisites` (tests.yml) does not install: a
    /// conformance run proves the bundle on the ground the panel will demand.
    pub fn unmet<'a>(&'a self, prerequisites: &[String]) -> Vec<&'a str> {
        self.requires
            .iter()
            .filter(|r| !prerequisites.contains(r))
            .map(String::as_str)
            .collect()
    }
}

/// The bundle directories under an installers root, sorted by id.
pub fn discover(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("manifest.yml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installers() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers")
    }

    #[test]
    fn every_shipped_bundle_installs_what_it_requires_as_a_prerequisite() {
        for dir in discover(&installers()).unwrap() {
            let facts = BundleFacts::load(&dir).unwrap();
            let spec = crate::spec::TestSpec::load(&dir).unwrap();
            let prerequisites: Vec<String> = spec
                .prerequisites
                .iter()
                .map(|p| p.bundle.clone())
                .collect();
            assert!(
                facts.unmet(&prerequisites).is_empty(),
                "{}: tests.yml does not install {:?}",
                facts.id,
                facts.unmet(&prerequisites)
            );
        }
        let db = BundleFacts::load(&installers().join("mariadb-database")).unwrap();
        assert_eq!(db.requires, ["mariadb"]);
        assert_eq!(db.unmet(&[]), ["mariadb"]);
    }

    #[test]
    fn shipped_bundle_yields_its_secret_inputs_and_digest() {
        let facts = BundleFacts::load(&installers().join("postgresql-database")).unwrap();
        assert_eq!(facts.id, "postgresql-database");
        assert_eq!(facts.sensitive_inputs, ["db_password"]);
        assert_eq!(facts.digest.len(), 64);
    }

    #[test]
    fn missing_manifest_is_an_error_naming_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = BundleFacts::load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn discovery_finds_the_shipped_bundles() {
        let ids: Vec<String> = discover(&installers())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(ids.contains(&"nginx".to_owned()), "{ids:?}");
    }
}
