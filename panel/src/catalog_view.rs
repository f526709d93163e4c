//! The catalog as the panel offers it: the contract's scan plus each bundle's conformance
//! result, minus apps that are not proven when `only_tested_apps` is set; reloadable
//! without a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use outfitter_contract::catalog::Catalog;
use outfitter_contract::conformance::CatalogStatus;
use outfitter_contract::manifest::Bundle;

use crate::conformance_view::Conformance;

/// A part of an app's page, and the app's id.
type PartKey = (&'static str, String);

/// One scan of the installers directory plus the filter in force.
#[derive(Debug)]
pub struct Offered {
    pub catalog: Catalog,
    conformance: BTreeMap<String, Conformance>,
    only_tested: bool,
    /// The API listing of this scan, built once.
    listing: crate::catalog_listing::Listing,
    /// What was made of each app alone (the parts of its page that only depend on the
    /// bundle), by part and app id: a bundle cannot change within one scan, so neither can
    /// that.
    per_app: Mutex<HashMap<PartKey, Arc<str>>>,
    /// The last of each part of an app's page that also depends on something else (its
    /// `input`), with that input: made again only when the input changes.
    per_input: Mutex<HashMap<PartKey, (String, Arc<str>)>>,
}

impl Offered {
    /// Scans `root` and reads each bundle's conformance result.
    pub fn load(root: &Path, only_tested: bool) -> Self {
        Self::from_scan(Catalog::scan(root), only_tested)
    }

    /// Scans the same root again, taking over every bundle of this scan whose files are
    /// unchanged (`Catalog::rescan`); conformance results are read again.
    pub fn reload(&self, only_tested: bool) -> Self {
        Self::from_scan(self.catalog.rescan(), only_tested)
    }

    fn from_scan(catalog: Catalog, only_tested: bool) -> Self {
        let stats = catalog.stats();
        tracing::debug!(
            checked = stats.checked,
            reused = stats.reused,
            "installers directory scanned"
        );
        let conformance = catalog
            .apps()
            .map(|b| (b.id().to_owned(), Conformance::load(b)))
            .collect();
        for bad in catalog.invalid() {
            tracing::warn!(dir = %bad.dir.display(), findings = bad.diagnostics.len(), "invalid bundle is not offered");
        }
        let mut offered = Self {
            catalog,
            conformance,
            only_tested,
            listing: Default::default(),
            per_app: Mutex::default(),
            per_input: Mutex::default(),
        };
        offered.listing = crate::catalog_listing::Listing::build(&offered);
        offered
    }

    /// The API listing of this scan.
    pub fn listing(&self) -> &crate::catalog_listing::Listing {
        &self.listing
    }

    /// What `make` makes of the app `id` for `part`, made on the first call of this scan
    /// and shared after. Two first calls at once may both make it; one result is kept.
    pub fn once_per_app<E>(
        &self,
        part: &'static str,
        id: &str,
        make: impl FnOnce() -> Result<String, E>,
    ) -> Result<Arc<str>, E> {
        let per_app = || self.per_app.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (part, id.to_owned());
        if let Some(done) = per_app().get(&key) {
            return Ok(Arc::clone(done));
        }
        let done: Arc<str> = make()?.into();
        per_app().insert(key, Arc::clone(&done));
        Ok(done)
    }

    /// What `make` makes of the app `id` for `part` from `input` (which says everything
    /// `make` reads besides the bundle): the last one made for the app is shared while
    /// `input` stays the same.
    pub fn last_per_app<E>(
        &self,
        part: &'static str,
        id: &str,
        input: String,
        make: impl FnOnce() -> Result<String, E>,
    ) -> Result<Arc<str>, E> {
        let per_input = || {
            self.per_input
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        let key = (part, id.to_owned());
        if let Some((seen, done)) = per_input().get(&key)
            && *seen == input
        {
            return Ok(Arc::clone(done));
        }
        let done: Arc<str> = make()?.into();
        per_input().insert(key, (input, Arc::clone(&done)));
        Ok(done)
    }

    /// The latest conformance result of an app (`untested` when there is none).
    pub fn conformance(&self, id: &str) -> Conformance {
        self.conformance
            .get(id)
            .cloned()
            .unwrap_or_else(Conformance::untested)
    }

    /// Under `only_tested_apps`, only bundles the contract's rule calls proven are offered.
    fn is_offered(&self, bundle: &Bundle) -> bool {
        // Looked at for every app of every search: the result is read, not cloned.
        !self.only_tested
            || self
                .conformance
                .get(bundle.id())
                .is_some_and(|c| c.status.is_proven())
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
    pub fn hidden(&self) -> Vec<(&Bundle, CatalogStatus)> {
        self.catalog
            .apps()
            .filter(|b| !self.is_offered(b))
            .map(|b| (b, self.conformance(b.id()).status))
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
