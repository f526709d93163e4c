//! Helpers shared by the contract's integration tests: throwaway bundles on disk.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::fs;
use std::path::{Path, PathBuf};

use outfitter_contract::manifest::{Bundle, Diagnostic, load_bundle};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A clean install script that passes every script rule.
pub(crate) const CLEAN_SCRIPT: &str =
    "#!/usr/bin/env bash\nset -euo pipefail\necho \"::progress 100 done\"\n";

/// A valid manifest for a bundle directory named `app`.
pub(crate) fn base() -> Value {
    json!({
        "id": "app",
        "name": "Test app",
        "version": "1.0.0",
        "description": "An app for tests.",
        "category": "web",
        "author": "Tests",
        "os_requirements": { "family": ["debian", "ubuntu"], "min_version": "11" },
        "timeout_seconds": 600,
        "idempotent": true,
        "inputs": [
            { "name": "server_name", "type": "string", "label": "Server name",
              "required": true, "default": "example.com",
              "validation": { "pattern": "[a-z0-9.-]+", "max_length": 253 } }
        ]
    })
}

/// A bundle directory `<tmp>/<name>` holding `manifest.yml` and `install.sh`.
pub(crate) struct TestBundle {
    _tmp: TempDir,
    pub dir: PathBuf,
}

impl TestBundle {
    /// Writes raw manifest bytes and a script into a fresh `<tmp>/app`.
    pub(crate) fn raw(manifest: &[u8], script: &str) -> Self {
        Self::named("app", manifest, script)
    }

    /// Same, with a chosen directory name.
    pub(crate) fn named(name: &str, manifest: &[u8], script: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(name);
        fs::create_dir(&dir).expect("bundle dir");
        fs::write(dir.join("manifest.yml"), manifest).expect("write manifest");
        fs::write(dir.join("install.sh"), script).expect("write script");
        Self { _tmp: tmp, dir }
    }

    /// The manifest serialized as YAML.
    pub(crate) fn from_value(manifest: &Value) -> Self {
        Self::raw(yaml(manifest).as_bytes(), CLEAN_SCRIPT)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

/// YAML text of a JSON value.
pub(crate) fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).expect("serialize yaml")
}

/// Loads a bundle that must be valid.
pub(crate) fn load_ok(manifest: &Value) -> Bundle {
    let bundle = TestBundle::from_value(manifest);
    match load_bundle(bundle.path()) {
        Ok(loaded) => loaded,
        Err(diagnostics) => panic!("expected a valid bundle, got {diagnostics:#?}"),
    }
}

/// Loads a bundle that must be invalid and returns its findings.
pub(crate) fn load_err(manifest: &Value) -> Vec<Diagnostic> {
    let bundle = TestBundle::from_value(manifest);
    match load_bundle(bundle.path()) {
        Ok(_) => panic!("expected an invalid bundle:\n{}", yaml(manifest)),
        Err(diagnostics) => {
            assert!(
                diagnostics.iter().any(Diagnostic::is_error),
                "Err without an error"
            );
            diagnostics
        }
    }
}

/// Asserts that the findings include `rule` at `path`, and returns that finding.
pub(crate) fn expect_rule<'a>(
    diagnostics: &'a [Diagnostic],
    rule: &str,
    path: &str,
) -> &'a Diagnostic {
    diagnostics
        .iter()
        .find(|d| d.rule == rule && d.path == path)
        .unwrap_or_else(|| panic!("expected {rule} at '{path}', got {diagnostics:#?}"))
}

/// The manifest with one input replaced by `input`.
pub(crate) fn with_input(input: Value) -> Value {
    with_inputs(vec![input])
}

/// The manifest with these inputs.
pub(crate) fn with_inputs(inputs: Vec<Value>) -> Value {
    let mut manifest = base();
    manifest["inputs"] = Value::Array(inputs);
    manifest
}

/// The warnings of a valid bundle.
pub(crate) fn warnings_of(manifest: &Value) -> Vec<Diagnostic> {
    load_ok(manifest).warnings
}
