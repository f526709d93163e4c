//! The catalog as the panel offers it: the contract's scan plus each bundle's conformance
//! result, minus apps that are not proven when `only_tested_apps` is set; reloadable
//! without a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use outfitter_contract::catalog::Catalog;
use outfitter_contract::manifest::Bundle;
use serde::Deserialize;

/// The conformance harness's result file inside a bundle directory
/// (`RESULT_FILE` in `conformance/src/report.rs`).
pub const CONFORMANCE_FILE: &str = "conformance.json";
/// The status that makes an app offered under `only_tested_apps`.
pub const PASSED: &str = "passed";
/// Shown when the result was for another version of the bundle (its digest differs).
pub const STALE: &str = "stale";

/// The fields of a conformance result the panel reads.
#[derive(Debug, Deserialize)]
struct ConformanceResult {
    status: String,
    digest: String,
}

/// The conformance status of a bundle: `passed`, `failed`, `skipped`, `stale`, or `None`
/// when it was never tested (or the result cannot be read).
fn conformance_status(bundle: &Bundle) -> Option<String> {
    let path = bundle.dir.join(CONFORMANCE_FILE);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice::<ConformanceResult>(&bytes) {
        Ok(r) if r.digest != bundle.digest => Some(STALE.to_owned()),
        Ok(r) => Some(r.status.chars().take(20).collect()),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "conformance result cannot be read");
            None
        }
    }
}

/// One scan of the installers directory plus the filter in force.
#[derive(Debug)]
pub struct Offered {
    pub catalog: Catalog,
    status: BTreeMap<String, String>,
    only_tested: bool,
}

impl Offered {
    /// Scans `root` and reads each bundle's conformance result.
    pub fn load(root: &Path, only_tested: bool) -> Self {
        let catalog = Catalog::scan(root);
        let status = catalog
            .apps()
            .filter_map(|b| Some((b.id().to_owned(), conformance_status(b)?)))
            .collect();
        for bad in catalog.invalid() {
            tracing::warn!(dir = %bad.dir.display(), findings = bad.diagnostics.len(), "invalid bundle is not offered");
        }
        Self {
            catalog,
            status,
            only_tested,
        }
    }

    /// The conformance status of an app, if the harness reported one.
    pub fn status(&self, id: &str) -> Option<&str> {
        self.status.get(id).map(String::as_str)
    }

    fn is_offered(&self, bundle: &Bundle) -> bool {
        !self.only_tested || self.status(bundle.id()) == Some(PASSED)
    }

    /// The offered app with this id.
    pub fn get(&self, id: &str) -> Option<&Bundle> {
        self.catalog.get(id).filter(|b| self.is_offered(b))
    }

    /// Offered apps matching a search.
    pub fn search(&self, query: Option<&str>, category: Option<&str>) -> Vec<&Bundle> {
        self.catalog
            .search(query, category)
            .into_iter()
            .filter(|b| self.is_offered(b))
            .collect()
    }

    /// Categories of offered apps.
    pub fn categories(&self) -> Vec<String> {
        let mut cats: Vec<String> = self
            .catalog
            .apps()
            .filter(|b| self.is_offered(b))
            .map(|b| b.manifest.category.clone())
            .collect();
        cats.dedup();
        cats.sort();
        cats.dedup();
        cats
    }

    /// Valid apps that the status filter hides, with their status (for admins).
    pub fn hidden(&self) -> Vec<(&Bundle, Option<&str>)> {
        self.catalog
            .apps()
            .filter(|b| !self.is_offered(b))
            .map(|b| (b, self.status(b.id())))
            .collect()
    }
}

/// The current catalog, swapped whole on reload.
#[derive(Debug)]
pub struct CatalogHandle(RwLock<Arc<Offered>>);

impl CatalogHandle {
    pub fn new(offered: Offered) -> Self {
        Self(RwLock::new(Arc::new(offered)))
    }

    /// The catalog in force now (cheap; hold it for the whole request).
    pub fn current(&self) -> Arc<Offered> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the catalog.
    pub fn replace(&self, offered: Offered) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(offered);
    }
}
