//! The runner's own copy of every bundle version it ran, by digest
//! (`<state dir>/bundles/<digest>/<app id>/`: the manifest and every script; the app's own
//! directory name, as a bundle's must be), so an upgrade can roll back to the previous
//! version after the catalog has moved on.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use outfitter_contract::manifest::{Bundle, MANIFEST_FILE, load_bundle};

/// Where the copies live under the state directory.
pub const BUNDLES_DIR: &str = "bundles";

/// Why a stored bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("bundle store {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("bundle {digest} is not in this runner's bundle store")]
    Missing { digest: String },
    #[error("the stored bundle {digest} does not load: {reason}")]
    Invalid { digest: String, reason: String },
    #[error("the stored bundle {digest} hashes to {found}: its files changed")]
    Tampered { digest: String, found: String },
}

/// The bundle store under one state directory.
#[derive(Debug, Clone)]
pub struct BundleStore {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A digest is 64 hex digits; anything else never becomes a directory name.
fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl BundleStore {
    pub fn new(state_dir: &Path) -> Self {
        BundleStore {
            root: state_dir.join(BUNDLES_DIR),
        }
    }

    fn dir_of(&self, digest: &str) -> Option<PathBuf> {
        is_digest(digest).then(|| self.root.join(digest))
    }

    /// Keeps a copy of `bundle` unless one is there already. The copy is written beside its
    /// place and renamed into it, so a crash leaves a whole copy or none.
    pub fn keep(&self, bundle: &Bundle) -> Result<(), StoreError> {
        let Some(target) = self.dir_of(&bundle.digest) else {
            return Err(StoreError::Invalid {
                digest: bundle.digest.clone(),
                reason: "not a digest".into(),
            });
        };
        // Every job asks: one `stat` of the copy's manifest where a copy of this bundle puts
        // it, rather than listing the digest's directory as `has` does.
        if target.join(bundle.id()).join(MANIFEST_FILE).is_file() {
            return Ok(());
        }
        fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
        // Unique per process: a copy a crashed runner left half-written is replaced here.
        let staged = self.root.join(format!(
            ".incoming-{}-{}",
            bundle.digest,
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&staged);
        let app_dir = staged.join(bundle.id());
        fs::create_dir_all(&app_dir).map_err(io_err(&app_dir))?;
        let mut files = vec![bundle.dir.join(MANIFEST_FILE), bundle.script_path.clone()];
        files.extend(bundle.lifecycle_paths.iter().map(|(_, p)| p.clone()));
        for from in files {
            let rel = from
                .strip_prefix(&bundle.dir)
                .map_err(|_| StoreError::Invalid {
                    digest: bundle.digest.clone(),
                    reason: format!("{} is outside the bundle", from.display()),
                })?;
            let to = app_dir.join(rel);
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            fs::copy(&from, &to).map_err(io_err(&from))?;
        }
        match fs::rename(&staged, &target) {
            Ok(()) => Ok(()),
            // Another job of the same bundle stored it first.
            Err(_) if self.has(&bundle.digest) => {
                let _ = fs::remove_dir_all(&staged);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&staged);
                Err(io_err(&target)(e))
            }
        }
    }

    /// The bundle directory inside the copy of `digest`: its one subdirectory.
    fn bundle_dir(&self, digest: &str) -> Option<PathBuf> {
        let entries = fs::read_dir(self.dir_of(digest)?).ok()?;
        entries
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join(MANIFEST_FILE).is_file())
    }

    /// Whether a copy of `digest` is kept (not verified: [`BundleStore::load`] does that).
    pub fn has(&self, digest: &str) -> bool {
        self.bundle_dir(digest).is_some()
    }

    /// Loads the copy of `digest`, checked like a catalog bundle and hashed again.
    pub fn load(&self, digest: &str) -> Result<Bundle, StoreError> {
        let missing = || StoreError::Missing {
            digest: digest.to_owned(),
        };
        let dir = self.bundle_dir(digest).ok_or_else(missing)?;
        let bundle = load_bundle(&dir).map_err(|d| StoreError::Invalid {
            digest: digest.to_owned(),
            reason: d
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        })?;
        let found = bundle.digest_on_disk().map_err(|d| StoreError::Invalid {
            digest: digest.to_owned(),
            reason: d.to_string(),
        })?;
        if bundle.digest != digest || found != digest {
            return Err(StoreError::Tampered {
                digest: digest.to_owned(),
                found,
            });
        }
        Ok(bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_of_test_bundle(into: &Path) -> Bundle {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bundles/lifecycle-app");
        let dir = into.join("lifecycle-app");
        fs::create_dir_all(&dir).unwrap();
        for e in fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
        load_bundle(&dir).unwrap()
    }

    #[test]
    fn a_kept_bundle_loads_by_digest_after_the_catalog_copy_is_gone() {
        let catalog = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let bundle = copy_of_test_bundle(catalog.path());
        let store = BundleStore::new(state.path());
        store.keep(&bundle).unwrap();
        store.keep(&bundle).unwrap();
        drop(catalog);
        let loaded = store.load(&bundle.digest).unwrap();
        assert_eq!(loaded.digest, bundle.digest);
        assert!(loaded.script_for("restore_script").unwrap().is_file());
    }

    #[test]
    fn a_stored_script_changed_on_disk_is_refused() {
        let catalog = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let bundle = copy_of_test_bundle(catalog.path());
        let store = BundleStore::new(state.path());
        store.keep(&bundle).unwrap();
        let script = state
            .path()
            .join(BUNDLES_DIR)
            .join(&bundle.digest)
            .join("lifecycle-app/restore.sh");
        fs::write(&script, "#!/bin/bash\nrm -rf /\n").unwrap();
        let err = store.load(&bundle.digest).unwrap_err();
        assert!(matches!(err, StoreError::Tampered { .. }), "{err}");
    }

    #[test]
    fn only_a_digest_names_a_stored_bundle() {
        let state = tempfile::tempdir().unwrap();
        let store = BundleStore::new(state.path());
        for bad in ["", "..", "../../etc", &"g".repeat(64)] {
            assert!(!store.has(bad));
            assert!(matches!(store.load(bad), Err(StoreError::Missing { .. })));
        }
    }
}
