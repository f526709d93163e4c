//! The tutorial bundle of docs/authoring.md (conformance/tutorial/hello-page): the guide
//! shows its files verbatim, and they must stay a valid bundle with a valid test.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::spec::TestSpec;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn authoring_guide_shows_the_tutorial_files_verbatim() {
        let guide = std::fs::read_to_string(repo().join("docs/authoring.md")).unwrap();
        for file in ["manifest.yml", "install.sh", "tests.yml"] {
            let text =
                std::fs::read_to_string(repo().join("conformance/tutorial/hello-page").join(file))
                    .unwrap();
            assert!(
                guide.contains(&text),
                "docs/authoring.md does not show conformance/tutorial/hello-page/{file} as it is"
            );
        }
    }

    #[test]
    fn tutorial_bundle_loads_and_its_test_parses() {
        let dir = repo().join("conformance/tutorial/hello-page");
        let facts = crate::bundle::BundleFacts::load(&dir).unwrap();
        assert_eq!(facts.id, "hello-page");
        let spec = TestSpec::load(&dir).unwrap();
        assert_eq!(spec.checks.len(), 3);
    }
}
