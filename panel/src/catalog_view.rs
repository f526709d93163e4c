//! The catalog as the panel offers it: the contract's scan, minus apps the conformance
//! status hides (when `only_tested_apps` is set), reloadable without a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use outfitter_contract::catalog::Catalog;
use outfitter_contract::manifest::Bundle;

/// The conformance status of each app, as the harness writes it.
pub type StatusMap = BTreeMap<String, String>;

/// The status that makes an app offered under `only_tested_apps`.
pub const PASSED: &str = "passed";

/// One scan of the installers directory plus the filter in force.
#[derive(Debug)]
pub struct Offered {
    pub catalog: Catalog,
    status: Option<StatusMap>,
    only_tested: bool,
}

impl Offered {
    /// Scans `root` and reads the status file, if any. A status file that cannot be read
    /// hides everything under `only_tested` (fail closed) and is reported in the log.
    pub fn load(root: &Path, status_file: Option<&Path>, only_tested: bool) -> Self {
        let catalog = Catalog::scan(root);
        let status = status_file.map(|p| match std::fs::read(p).map(|b| serde_json::from_slice::<StatusMap>(&b)) {
            Ok(Ok(map)) => map,
            Ok(Err(e)) => {
                tracing::error!(file = %p.display(), error = %e, "catalog status file is not a JSON object of strings");
                StatusMap::new()
            }
            Err(e) => {
                tracing::error!(file = %p.display(), error = %e, "catalog status file cannot be read");
                StatusMap::new()
            }
        });
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
        self.status.as_ref()?.get(id).map(String::as_str)
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
