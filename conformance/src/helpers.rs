//! The shell helpers every bundle of this repository carries (progress lines, exit codes,
//! the apt wrapper that maps failures to 2). Bundles stay self-contained, so each has a
//! copy; `conformance/sync-bundle-helpers.sh` refreshes them and this test catches drift.

/// The canonical helper block.
pub const BUNDLE_HELPERS: &str = include_str!("../bundle-helpers.sh");

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::BUNDLE_HELPERS;

    #[test]
    fn every_bundle_carries_the_canonical_helpers() {
        let installers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers");
        let mut checked = 0;
        for dir in crate::bundle::discover(&installers).unwrap() {
            // install.sh and every lifecycle script beside it.
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "sh") {
                    continue;
                }
                let script = std::fs::read_to_string(&path).unwrap();
                assert!(
                    script.contains(BUNDLE_HELPERS),
                    "{}: helper block differs from conformance/bundle-helpers.sh; run conformance/sync-bundle-helpers.sh",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 4, "only {checked} bundles found");
    }
}
