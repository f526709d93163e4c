//! An install script through the linter's script checks (the shell scanner: quotes, heredocs,
//! substitutions, commands), with and without a manifest. Properties: no panic; every finding
//! names a rule of the table and a location in the script.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outfitter_contract::manifest::{parse_manifest, rules};
use outfitter_panel::lint::check_script;

const MANIFEST: &[u8] = include_bytes!("../../installers/nginx/manifest.yml");

fuzz_target!(|data: &[u8]| {
    let manifest = parse_manifest(MANIFEST).expect("the nginx manifest parses");
    for m in [None, Some(&manifest)] {
        for d in check_script("install.sh", data, m) {
            assert!(rules::by_id(d.rule).is_some(), "unknown rule {}", d.rule);
            assert!(d.path.starts_with("install.sh"), "{d:?}");
        }
    }
});
