//! The documents that repeat contract facts stay in step with the code: the author docs list
//! every rule, and the manifest JSON Schema repeats the limits of `limits.rs`.

use outfitter_contract::inputs::rules as input_rules;
use outfitter_contract::limits;
use outfitter_contract::manifest::{manifest_schema, rules};

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/installer-contract.md");
    std::fs::read_to_string(path).expect("docs/installer-contract.md exists")
}

#[test]
fn every_rule_is_documented_with_a_heading_and_an_example() {
    let doc = doc();
    for rule in rules::ALL.iter().chain(input_rules::ALL) {
        let heading = format!("### {}", rule.id);
        let start = doc
            .find(&heading)
            .unwrap_or_else(|| panic!("{} has no '{heading}' section", rule.id));
        let section = &doc[start + heading.len()..];
        let section = &section[..section.find("\n### ").unwrap_or(section.len())];
        assert!(section.contains("```"), "{} has no example", rule.id);
    }
}

#[test]
fn rule_ids_are_unique() {
    let mut ids: Vec<&str> = rules::ALL
        .iter()
        .chain(input_rules::ALL)
        .map(|r| r.id)
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count);
}

#[test]
fn schema_limits_match_limits_rs() {
    let schema = manifest_schema();
    let props = &schema["properties"];
    assert_eq!(
        props["timeout_seconds"]["minimum"],
        limits::MIN_TIMEOUT_SECONDS
    );
    assert_eq!(
        props["timeout_seconds"]["maximum"],
        limits::MAX_TIMEOUT_SECONDS
    );
    assert_eq!(props["inputs"]["maxItems"], limits::MAX_INPUTS as u64);
    assert_eq!(props["tags"]["maxItems"], limits::MAX_TAGS as u64);
    assert_eq!(
        props["name"]["maxLength"],
        limits::MAX_SHORT_TEXT_CHARS as u64
    );
    assert_eq!(
        props["description"]["maxLength"],
        limits::MAX_LONG_TEXT_CHARS as u64
    );
    assert_eq!(
        props["retry"]["properties"]["max_attempts"]["maximum"],
        limits::MAX_RETRY_ATTEMPTS
    );
    assert_eq!(
        props["retry"]["properties"]["max_attempts"]["default"],
        limits::DEFAULT_RETRY_MAX_ATTEMPTS
    );
    assert_eq!(
        props["retry"]["properties"]["backoff_seconds"]["maximum"],
        limits::MAX_RETRY_BACKOFF_SECONDS
    );
    assert_eq!(
        props["retry"]["properties"]["backoff_seconds"]["default"],
        limits::DEFAULT_RETRY_BACKOFF_SECONDS
    );
    let validation = &schema["$defs"]["input"]["properties"]["validation"]["properties"];
    assert_eq!(
        validation["max_length"]["maximum"],
        limits::MAX_INPUT_VALUE_BYTES as u64
    );
    assert_eq!(
        validation["pattern"]["maxLength"],
        limits::MAX_PATTERN_BYTES as u64
    );
    assert_eq!(
        validation["allowed_values"]["maxItems"],
        limits::MAX_ALLOWED_VALUES as u64
    );
}

#[test]
fn every_schema_property_has_a_description() {
    fn walk(node: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
        if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
            for (name, prop) in props {
                let here = format!("{path}/{name}");
                if prop.get("description").is_none() {
                    missing.push(here.clone());
                }
                walk(prop, &here, missing);
                if let Some(items) = prop.get("items") {
                    walk(items, &format!("{here}[]"), missing);
                }
            }
        }
    }
    let schema = manifest_schema();
    let mut missing = Vec::new();
    walk(&schema, "", &mut missing);
    walk(&schema["$defs"]["input"], "inputs[]", &mut missing);
    assert!(
        missing.is_empty(),
        "fields without description: {missing:?}"
    );
}
