//! The manifest: model, safe loading, the rule table and every check a bundle must pass.

mod bundle;
mod checks;
mod diagnostic;
mod digest;
mod input_checks;
mod lifecycle_checks;
mod model;
pub mod rules;
mod schema_check;
mod script_file;
mod yaml;
mod yaml_tree;

pub use bundle::{Bundle, BundleReport, MANIFEST_FILE, check_bundle, load_bundle};
pub use diagnostic::{Diagnostic, Severity, has_errors};
pub use digest::{bundle_digest, bundle_digest_with_lifecycle};
pub use model::{
    HealthCheck, InputSpec, InputType, Manifest, OsRequirements, ResourceRequirements, RetryPolicy,
    Validation, VisibleValue,
};
pub use rules::Rule;
pub use schema_check::{MANIFEST_SCHEMA, manifest_schema};

/// Parses manifest text (no bundle directory): YAML budget, schema and model. For tools and
/// tests; `load_bundle` is the full check.
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, Vec<Diagnostic>> {
    if bytes.len() as u64 > crate::limits::MAX_MANIFEST_BYTES {
        return Err(vec![Diagnostic::new(
            &rules::M002_TOO_LARGE,
            "",
            format!(
                "the manifest is {} bytes; at most {} are allowed",
                bytes.len(),
                crate::limits::MAX_MANIFEST_BYTES
            ),
        )]);
    }
    let document = yaml::parse(bytes).map_err(|d| vec![d])?;
    let findings = schema_check::check_schema(&document);
    if has_errors(&findings) {
        return Err(findings);
    }
    serde_json::from_value(document).map_err(|error| {
        vec![Diagnostic::new(
            &rules::M009_SCHEMA_VALUE,
            "",
            format!("the manifest does not fit the model: {error}"),
        )]
    })
}
