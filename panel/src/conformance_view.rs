//! A bundle's conformance result as the catalog, the app page and the API show it: the
//! contract's reading of `conformance.json` and its passed/failed/stale/untested rule.

use outfitter_contract::conformance::{
    CatalogStatus, ConformanceSummary, catalog_status, read_summary,
};
use outfitter_contract::manifest::Bundle;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// The latest conformance run of an app's bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Conformance {
    /// `passed` or `failed` for the current bundle; `stale` when the result was recorded for
    /// another version of the bundle (its digest differs); `untested` when there is no
    /// readable result.
    #[schema(schema_with = status_schema)]
    pub status: CatalogStatus,
    /// When the run started (RFC 3339); for a stale result, when the older bundle was tested.
    #[schema(example = "2026-11-22T10:51:10Z")]
    pub tested_at: Option<String>,
    /// Wall time of the first install on a fresh system, in milliseconds.
    #[schema(example = 16607)]
    pub install_ms: Option<u64>,
    /// Wall time of the second install with the same inputs (idempotency), in milliseconds.
    #[schema(example = 2269)]
    pub reinstall_ms: Option<u64>,
}

/// The status values, taken from the contract so the document cannot drift.
fn status_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(CatalogStatus::ALL.iter().map(|s| s.as_str())))
        .description(Some("passed | failed | stale | untested"))
        .build()
}

impl Conformance {
    /// No readable result.
    pub fn untested() -> Self {
        Self::from_summary(None, "")
    }

    /// What a result (if any) says about a bundle whose digest is now `current_digest`.
    pub fn from_summary(summary: Option<&ConformanceSummary>, current_digest: &str) -> Self {
        Self {
            status: catalog_status(summary, current_digest),
            tested_at: summary.map(|s| s.tested_at.clone()),
            install_ms: summary.and_then(|s| s.install_ms),
            reinstall_ms: summary.and_then(|s| s.reinstall_ms),
        }
    }

    /// Reads the bundle's `conformance.json`; a file that cannot be used is logged and the
    /// bundle counts as untested.
    pub fn load(bundle: &Bundle) -> Self {
        match read_summary(&bundle.dir) {
            Ok(summary) => Self::from_summary(summary.as_ref(), &bundle.digest),
            Err(e) => {
                tracing::warn!(app = bundle.id(), error = %e, "conformance result cannot be used");
                Self::untested()
            }
        }
    }
}
