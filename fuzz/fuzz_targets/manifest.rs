//! Manifest bytes through the full reader and validator (YAML budget, schema, model, every
//! rule), as `check_bundle` runs them on a bundle directory. Properties: no panic; a bundle
//! exists exactly when no error was reported; every finding names a rule of the table; a
//! manifest that passes can validate a submission.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use outfitter_contract::inputs;
use outfitter_contract::manifest::{self, MANIFEST_FILE, check_bundle, has_errors, rules};

/// One bundle directory with an `install.sh`; each run rewrites its manifest.
fn bundle_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("outfitter-fuzz-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("install.sh"), "#!/bin/bash\necho ok\n").expect("script");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = bundle_dir();
    std::fs::write(dir.join(MANIFEST_FILE), data).expect("write manifest");
    let report = check_bundle(dir);
    assert_eq!(
        report.bundle.is_some(),
        !has_errors(&report.diagnostics),
        "{:?}",
        report.diagnostics
    );
    for d in &report.diagnostics {
        assert!(rules::by_id(d.rule).is_some(), "unknown rule {}", d.rule);
        assert!(!d.message.is_empty(), "{d:?}");
    }
    if let Some(bundle) = &report.bundle {
        let m = &bundle.manifest;
        let _ = inputs::validate_inputs(m, &serde_json::Map::new());
    }
    // The tool entry point agrees on what does not even parse.
    if let Err(findings) = manifest::parse_manifest(data) {
        assert!(!findings.is_empty());
    }
});
