//! The catalog: every valid bundle under the installers root, plus a report of the invalid
//! ones. A scan never fails as a whole; reloading is scanning again and swapping the result
//! (the panel holds the current catalog behind an `ArcSwap`/`RwLock`; there is no global here).
//! A rescan ([`Catalog::rescan`]) takes over the previous scan's bundle for every directory
//! whose files are unchanged (see [`fingerprint`]), so a reload costs what changed.

mod fingerprint;
#[cfg(test)]
mod rescan_tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::manifest::{Bundle, BundleReport, Diagnostic, check_bundle, rules};
use fingerprint::Fingerprint;

pub use fingerprint::SETTLE;

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

/// How much work one scan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScanStats {
    /// Bundle directories read and checked.
    pub checked: usize,
    /// Bundle directories whose files were unchanged since the previous scan, whose bundle
    /// was taken over without reading them.
    pub reused: usize,
}

/// The installers the panel offers.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    root: PathBuf,
    apps: BTreeMap<String, Arc<Bundle>>,
    invalid: Vec<InvalidBundle>,
    /// Every bundle that passed its own checks (including those M049 then dropped) whose
    /// files are settled, by directory: what the next rescan may take over.
    reusable: HashMap<PathBuf, (Fingerprint, Arc<Bundle>)>,
    stats: ScanStats,
}

/// What became of one bundle directory in a scan.
enum Outcome {
    Reused(Fingerprint, Arc<Bundle>),
    Checked(Box<BundleReport>),
}

impl Catalog {
    /// Scans `root`: each subdirectory not starting with `.` is a bundle. Bundles are checked
    /// in parallel (one worker per core).
    pub fn scan(root: &Path) -> Catalog {
        Self::scan_with(root, None, SETTLE)
    }

    /// Scans the same root again, taking over this scan's bundle for every directory whose
    /// files (manifest and scripts) have the same length, modification and change times,
    /// inode and device as when they were read. Every other directory, every bundle that was
    /// invalid, and every bundle with a symlinked script is checked again; rules across
    /// bundles (M049) are decided over the whole new set. The result equals a fresh
    /// [`Catalog::scan`]; [`Catalog::stats`] says how much was reused.
    pub fn rescan(&self) -> Catalog {
        Self::scan_with(&self.root, Some(self), SETTLE)
    }

    /// The scan; `settle` is how old a file must be for its bundle to be kept for reuse.
    fn scan_with(root: &Path, previous: Option<&Catalog>, settle: Duration) -> Catalog {
        let started = SystemTime::now();
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
        let previous = previous.filter(|p| p.root == root).map(|p| &p.reusable);
        let outcomes = parallel_map(&dirs, |dir| {
            if let Some((fingerprint, bundle)) = previous.and_then(|p| p.get(dir))
                && fingerprint.unchanged(bundle)
            {
                return Outcome::Reused(fingerprint.clone(), Arc::clone(bundle));
            }
            Outcome::Checked(Box::new(check_guarded(dir)))
        });
        for (dir, outcome) in dirs.into_iter().zip(outcomes) {
            let bundle = match outcome {
                Outcome::Reused(fingerprint, bundle) => {
                    catalog.stats.reused += 1;
                    catalog
                        .reusable
                        .insert(dir, (fingerprint, Arc::clone(&bundle)));
                    bundle
                }
                Outcome::Checked(report) => {
                    catalog.stats.checked += 1;
                    let BundleReport {
                        bundle,
                        id_hint,
                        diagnostics,
                        ..
                    } = *report;
                    let Some(bundle) = bundle else {
                        catalog.invalid.push(InvalidBundle {
                            dir,
                            id_hint,
                            diagnostics,
                        });
                        continue;
                    };
                    let bundle = Arc::new(bundle);
                    // Stamped after reading: a file changed since `started` is not settled,
                    // so a change between the read and the stamp cannot hide.
                    if let Some(fingerprint) = Fingerprint::of(&bundle, started, settle) {
                        catalog
                            .reusable
                            .insert(dir, (fingerprint, Arc::clone(&bundle)));
                    }
                    bundle
                }
            };
            catalog.apps.insert(bundle.manifest.id.clone(), bundle);
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
            diagnostics.extend(bundle.warnings.iter().cloned());
            self.invalid.push(InvalidBundle {
                dir: bundle.dir.clone(),
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
        self.apps.get(id).map(Arc::as_ref)
    }

    /// Every valid app, sorted by id.
    pub fn apps(&self) -> impl Iterator<Item = &Bundle> {
        self.apps.values().map(Arc::as_ref)
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

    /// How many bundle directories this scan checked and how many it took over.
    pub fn stats(&self) -> ScanStats {
        self.stats
    }
}

/// Subdirectories of `root` that are not hidden, sorted.
fn bundle_dirs(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(root)? {
        let Ok(entry) = entry else { continue };
        let hidden = entry.file_name().as_encoded_bytes().starts_with(b".");
        // The entry's type comes with the listing; only a symlink needs a `stat` (a
        // symlinked bundle directory is allowed).
        let is_dir = match entry.file_type() {
            Ok(kind) if kind.is_symlink() => fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()),
            Ok(kind) => kind.is_dir(),
            Err(_) => false,
        };
        if !hidden && is_dir {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// `f` over every item, on one scoped thread per core (at most 16); each worker takes the
/// next item from a shared counter, so a slow bundle or a busy core holds up no fixed share.
/// The results are in the order of `items`. Public so that the bench's file-system floor
/// spreads its work exactly as the scan does.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(16);
    if workers <= 1 || items.len() < 64 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break out };
                        out.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            // The scan's `f` catches the panics of a check (`check_guarded`); any other panic
            // is a bug, passed on rather than losing the worker's share of the results.
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
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
