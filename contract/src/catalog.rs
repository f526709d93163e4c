//! The catalog: every valid bundle under the installers root, plus a report of the invalid
//! ones. A scan never fails as a whole; reloading is scanning again and swapping the result
//! (the panel holds the current catalog behind an `ArcSwap`/`RwLock`; there is no global here).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::manifest::{Bundle, BundleReport, Diagnostic, check_bundle, rules};

/// A bundle directory that did not load.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidBundle {
    /// The bundle directory (or the root itself when it could not be read).
    pub dir: PathBuf,
    /// The manifest's `id` if it could be read, else `None`.
    pub id_hint: Option<String>,
    /// Every finding; at least one error.
    pub diagnostics: Vec<Diagnostic>,
}

/// The installers the panel offers.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    root: PathBuf,
    apps: BTreeMap<String, Bundle>,
    invalid: Vec<InvalidBundle>,
}

impl Catalog {
    /// Scans `root`: each subdirectory not starting with `.` is a bundle. Bundles are checked
    /// in parallel (one worker per core).
    pub fn scan(root: &Path) -> Catalog {
        let mut catalog = Catalog {
            root: root.to_path_buf(),
            ..Catalog::default()
        };
        let dirs = match bundle_dirs(root) {
            Ok(dirs) => dirs,
            Err(error) => {
                catalog.invalid.push(InvalidBundle {
                    dir: root.to_path_buf(),
                    id_hint: None,
                    diagnostics: vec![Diagnostic::new(
                        &rules::M001_UNREADABLE,
                        "",
                        format!(
                            "cannot read the installers directory {}: {error}",
                            root.display()
                        ),
                    )],
                });
                return catalog;
            }
        };
        for (dir, report) in check_all(dirs) {
            match report.bundle {
                Some(bundle) => {
                    catalog.apps.insert(bundle.manifest.id.clone(), bundle);
                }
                None => catalog.invalid.push(InvalidBundle {
                    dir,
                    id_hint: report.id_hint,
                    diagnostics: report.diagnostics,
                }),
            }
        }
        catalog.drop_unavailable();
        catalog.invalid.sort_by(|a, b| a.dir.cmp(&b.dir));
        catalog
    }

    /// Rule M049: a bundle whose requirements can never be met is not offered.
    fn drop_unavailable(&mut self) {
        let requires = self
            .apps
            .iter()
            .map(|(id, b)| (id.clone(), b.manifest.requires.clone()))
            .collect();
        for (id, why) in crate::dependencies::unavailable(&requires) {
            let Some(bundle) = self.apps.remove(&id) else {
                continue;
            };
            let mut diagnostics = vec![Diagnostic::new(
                &rules::M049_REQUIRES_UNAVAILABLE,
                "requires",
                why,
            )];
            diagnostics.extend(bundle.warnings);
            self.invalid.push(InvalidBundle {
                dir: bundle.dir,
                id_hint: Some(id),
                diagnostics,
            });
        }
    }

    /// The directory that was scanned.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The app with this id.
    pub fn get(&self, id: &str) -> Option<&Bundle> {
        self.apps.get(id)
    }

    /// Every valid app, sorted by id.
    pub fn apps(&self) -> impl Iterator<Item = &Bundle> {
        self.apps.values()
    }

    /// Number of valid apps.
    pub fn len(&self) -> usize {
        self.apps.len()
    }

    /// Whether there is no valid app.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// Apps matching every word of `query` (case-insensitive, in id, name, description,
    /// category or tags) and, when given, exactly `category`. Sorted by id.
    pub fn search(&self, query: Option<&str>, category: Option<&str>) -> Vec<&Bundle> {
        let words: Vec<String> = query
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let category = category.map(str::trim).filter(|c| !c.is_empty());
        self.apps()
            .filter(|bundle| category.is_none_or(|c| bundle.manifest.category == c))
            .filter(|bundle| {
                if words.is_empty() {
                    return true;
                }
                let m = &bundle.manifest;
                let haystack = format!(
                    "{} {} {} {} {}",
                    m.id,
                    m.name,
                    m.description,
                    m.category,
                    m.tags.join(" ")
                )
                .to_lowercase();
                words.iter().all(|word| haystack.contains(word.as_str()))
            })
            .collect()
    }

    /// The categories that have at least one app, sorted.
    pub fn categories(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.apps().map(|b| b.manifest.category.as_str()).collect();
        set.into_iter().map(str::to_owned).collect()
    }

    /// The bundles that did not load, with their findings, sorted by directory.
    pub fn invalid(&self) -> &[InvalidBundle] {
        &self.invalid
    }
}

/// Subdirectories of `root` that are not hidden, sorted.
fn bundle_dirs(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(root)? {
        let Ok(entry) = entry else { continue };
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // `metadata` follows symlinks: a symlinked bundle directory is allowed.
        if !hidden && fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Checks every directory, split over one scoped thread per core.
fn check_all(dirs: Vec<PathBuf>) -> Vec<(PathBuf, BundleReport)> {
    let workers = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(16);
    if workers <= 1 || dirs.len() < 64 {
        return dirs
            .into_iter()
            .map(|dir| (dir.clone(), check_guarded(&dir)))
            .collect();
    }
    let chunk = dirs.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = dirs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|dir| (dir.clone(), check_guarded(dir)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            // `check_guarded` catches panics, so a worker cannot fail to join.
            .flat_map(|handle| handle.join().unwrap_or_default())
            .collect()
    })
}

/// `check_bundle`, turning a panic (a bug in a check) into a finding about that bundle, so
/// one strange bundle can never take the catalog down.
fn check_guarded(dir: &Path) -> BundleReport {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_bundle(dir))).unwrap_or_else(
        |_| BundleReport {
            bundle: None,
            id_hint: None,
            manifest: None,
            diagnostics: vec![Diagnostic::new(
                &rules::M001_UNREADABLE,
                "",
                "checking this bundle crashed the checker; please report it with the bundle",
            )],
        },
    )
}
