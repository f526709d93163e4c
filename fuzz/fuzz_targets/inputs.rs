//! A submission validated against the manifests of the catalog in `installers/`. The first
//! byte picks the bundle; the rest is the JSON object submitted. Properties: no panic; an
//! accepted submission holds only declared inputs; a refusal names at least one field and a
//! rule, and never repeats a submitted value.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use outfitter_contract::manifest::{Bundle, load_bundle};
use serde_json::{Map, Value};

fn catalog() -> &'static [(Bundle, String)] {
    static CATALOG: OnceLock<Vec<(Bundle, String)>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers");
        let mut dirs: Vec<_> = std::fs::read_dir(&root)
            .expect("installers/")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.join("manifest.yml").is_file())
            .collect();
        dirs.sort();
        dirs.iter()
            .map(|d| {
                let text = std::fs::read_to_string(d.join("manifest.yml")).expect("manifest");
                (load_bundle(d).expect("the catalog loads"), text)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let Ok(submitted) = serde_json::from_slice::<Map<String, Value>>(json) else {
        return;
    };
    let bundles = catalog();
    let (bundle, manifest_text) = &bundles[pick as usize % bundles.len()];
    let manifest = &bundle.manifest;
    match bundle.validate_inputs(&submitted) {
        Ok(values) => {
            for name in values.0.keys() {
                assert!(manifest.input(name).is_some(), "undeclared {name} accepted");
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in &errors {
                // The field as it was sent: empty only when an empty name was sent.
                assert!(
                    (!e.field.is_empty() || submitted.contains_key("")) && !e.rule.is_empty(),
                    "{e:?}"
                );
                // Only values with a `§` are checked: any other text may be part of a fixed
                // message (" an input of this app" was sent, and found, by the fuzzer).
                if let Some(Value::String(v)) = submitted.get(&e.field)
                    && v.contains('§')
                    && !manifest_text.contains(v.as_str())
                    && !submitted.keys().any(|k| k.contains(v.as_str()))
                {
                    assert!(!e.message.contains(v.as_str()), "{e:?} repeats {v:?}");
                }
            }
        }
    }
});
