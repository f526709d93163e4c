//! One test per manifest rule (M001–M047), named after the behaviour it checks.

mod common;

use std::fs;

use common::{
    CLEAN_SCRIPT, TestBundle, base, expect_rule, load_err, load_ok, warnings_of, with_input,
    with_inputs, yaml,
};
use outfitter_contract::limits;
use outfitter_contract::manifest::{Severity, bundle_digest, load_bundle};
use serde_json::{Value, json};

fn rules_of_raw(manifest: &[u8]) -> Vec<&'static str> {
    let bundle = TestBundle::raw(manifest, CLEAN_SCRIPT);
    match load_bundle(bundle.path()) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics.iter().map(|d| d.rule).collect(),
    }
}

#[test]
fn seed_nginx_example_loads_without_findings() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nginx");
    let bundle = load_bundle(&dir).expect("the nginx fixture is valid");
    assert_eq!(bundle.manifest.id, "nginx");
    assert_eq!(bundle.manifest.timeout_seconds, 600);
    assert!(bundle.manifest.idempotent);
    assert!(bundle.warnings.is_empty(), "{:?}", bundle.warnings);
    assert_eq!(bundle.digest.len(), 64);
}

#[test]
fn bundle_digest_is_the_documented_length_prefixed_sha256() {
    use sha2::{Digest, Sha256};
    let (m, s) = (b"id: app\n".as_slice(), b"#!/bin/sh\n".as_slice());
    let mut hasher = Sha256::new();
    hasher.update(b"outfitter-bundle-v1\0");
    hasher.update((m.len() as u64).to_be_bytes());
    hasher.update(m);
    hasher.update((s.len() as u64).to_be_bytes());
    hasher.update(s);
    assert_eq!(bundle_digest(m, s), hex::encode(hasher.finalize()));
    // Moving a byte from the manifest to the script changes the digest.
    assert_ne!(bundle_digest(b"ab", b"c"), bundle_digest(b"a", b"bc"));
}

#[test]
fn loaded_bundle_digest_covers_manifest_and_script_bytes() {
    let bundle = TestBundle::from_value(&base());
    let loaded = load_bundle(bundle.path()).expect("valid");
    let m = fs::read(bundle.path().join("manifest.yml")).expect("manifest");
    let s = fs::read(bundle.path().join("install.sh")).expect("script");
    assert_eq!(loaded.digest, bundle_digest(&m, &s));
}

#[test]
fn missing_manifest_is_reported_as_unreadable() {
    let bundle = TestBundle::from_value(&base());
    fs::remove_file(bundle.path().join("manifest.yml")).expect("remove");
    let diagnostics = load_bundle(bundle.path()).expect_err("no manifest");
    expect_rule(&diagnostics, "M001", "");
}

#[test]
fn manifest_over_64_kib_is_rejected_before_parsing() {
    let mut text = yaml(&base());
    text.push_str(&format!(
        "# {}\n",
        "x".repeat(limits::MAX_MANIFEST_BYTES as usize)
    ));
    assert_eq!(rules_of_raw(text.as_bytes()), vec!["M002"]);
}

#[test]
fn manifest_with_nul_byte_or_invalid_utf8_is_not_text() {
    assert_eq!(rules_of_raw(b"id: app\0\n"), vec!["M003"]);
    assert_eq!(rules_of_raw(b"id: \xff\xfe app\n"), vec!["M003"]);
}

#[test]
fn malformed_yaml_is_a_syntax_error() {
    assert_eq!(rules_of_raw(b"id: [unclosed\nname: x\n"), vec!["M004"]);
    assert_eq!(rules_of_raw(b"- a list\n- not a mapping\n"), vec!["M004"]);
    assert_eq!(rules_of_raw(b"   \n"), vec!["M004"]);
}

#[test]
fn duplicate_yaml_keys_are_a_syntax_error() {
    let mut text = yaml(&base());
    text.push_str("id: other\n");
    assert_eq!(rules_of_raw(text.as_bytes()), vec!["M004"]);
}

#[test]
fn alias_bomb_exceeds_the_yaml_budget() {
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    assert_eq!(rules_of_raw(bomb.as_bytes()), vec!["M005"]);
}

#[test]
fn deep_nesting_exceeds_the_yaml_budget() {
    let deep = format!("id: {}{}\n", "[".repeat(1000), "]".repeat(1000));
    assert_eq!(rules_of_raw(deep.as_bytes()), vec!["M005"]);
}

#[test]
fn unknown_field_is_rejected_with_its_path() {
    let mut manifest = base();
    manifest["timout_seconds"] = json!(10);
    manifest["inputs"][0]["lable"] = json!("x");
    let diagnostics = load_err(&manifest);
    expect_rule(&diagnostics, "M006", "timout_seconds");
    expect_rule(&diagnostics, "M006", "inputs[0].lable");
}

#[test]
fn missing_required_field_is_reported_by_name() {
    let mut manifest = base();
    manifest
        .as_object_mut()
        .expect("object")
        .remove("timeout_seconds");
    let diagnostics = load_err(&manifest);
    let finding = expect_rule(&diagnostics, "M007", "timeout_seconds");
    assert!(finding.message.contains("timeout_seconds"));
}

#[test]
fn unquoted_version_number_is_wrong_type_with_a_quoting_hint() {
    let text = yaml(&base())
        .replace("version: \"1.0.0\"", "version: 1.0")
        .replace("version: 1.0.0", "version: 1.0");
    assert!(text.contains("version: 1.0\n"), "{text}");
    let bundle = TestBundle::raw(text.as_bytes(), CLEAN_SCRIPT);
    let diagnostics = load_bundle(bundle.path()).expect_err("number version");
    let finding = expect_rule(&diagnostics, "M008", "version");
    assert!(finding.message.contains("quotes"), "{}", finding.message);
}

#[test]
fn unknown_input_type_violates_the_schema() {
    let mut manifest = base();
    manifest["inputs"][0]["type"] = json!("text");
    expect_rule(&load_err(&manifest), "M009", "inputs[0].type");
}

#[test]
fn id_with_uppercase_letters_is_rejected() {
    let mut manifest = base();
    manifest["id"] = json!("App");
    expect_rule(&load_err(&manifest), "M010", "id");
}

#[test]
fn id_differing_from_directory_name_is_rejected() {
    let bundle = TestBundle::named("nginx-old", yaml(&base()).as_bytes(), CLEAN_SCRIPT);
    let diagnostics = load_bundle(bundle.path()).expect_err("id app in dir nginx-old");
    expect_rule(&diagnostics, "M011", "id");
}

#[test]
fn version_with_spaces_is_rejected() {
    let mut manifest = base();
    manifest["version"] = json!("1.0 beta");
    expect_rule(&load_err(&manifest), "M012", "version");
}

#[test]
fn blank_name_and_control_characters_in_labels_are_rejected() {
    let mut manifest = base();
    manifest["name"] = json!("   ");
    manifest["inputs"][0]["label"] = json!("Server\u{7}name");
    let diagnostics = load_err(&manifest);
    expect_rule(&diagnostics, "M013", "name");
    expect_rule(&diagnostics, "M013", "inputs[0].label");
}

#[test]
fn newlines_are_allowed_in_descriptions() {
    let mut manifest = base();
    manifest["description"] = json!("First line.\nSecond line.\n");
    load_ok(&manifest);
}

#[test]
fn category_with_capitals_is_rejected() {
    let mut manifest = base();
    manifest["category"] = json!("Web Servers");
    expect_rule(&load_err(&manifest), "M014", "category");
}

#[test]
fn install_script_with_a_path_is_rejected() {
    for name in [
        "../install.sh",
        "sub/install.sh",
        "..",
        ".install.sh",
        "/bin/sh",
    ] {
        let mut manifest = base();
        manifest["install_script"] = json!(name);
        expect_rule(&load_err(&manifest), "M015", "install_script");
    }
}

#[test]
fn missing_install_script_is_rejected() {
    let mut manifest = base();
    manifest["install_script"] = json!("setup.sh");
    expect_rule(&load_err(&manifest), "M016", "install_script");
}

#[test]
fn directory_named_as_install_script_is_rejected() {
    let bundle = TestBundle::from_value(&base());
    fs::remove_file(bundle.path().join("install.sh")).expect("remove");
    fs::create_dir(bundle.path().join("install.sh")).expect("dir");
    let diagnostics = load_bundle(bundle.path()).expect_err("a directory is no script");
    expect_rule(&diagnostics, "M016", "install_script");
}

#[test]
fn symlinked_script_leading_out_of_the_bundle_is_rejected() {
    let bundle = TestBundle::from_value(&base());
    let outside = bundle.path().parent().expect("tmp").join("outside.sh");
    fs::write(&outside, CLEAN_SCRIPT).expect("outside script");
    fs::remove_file(bundle.path().join("install.sh")).expect("remove");
    std::os::unix::fs::symlink(&outside, bundle.path().join("install.sh")).expect("symlink");
    let diagnostics = load_bundle(bundle.path()).expect_err("escaping symlink");
    expect_rule(&diagnostics, "M017", "install_script");
}

#[test]
fn symlinked_script_inside_the_bundle_is_accepted() {
    let bundle = TestBundle::from_value(&base());
    fs::rename(
        bundle.path().join("install.sh"),
        bundle.path().join("real.sh"),
    )
    .expect("rename");
    std::os::unix::fs::symlink("real.sh", bundle.path().join("install.sh")).expect("symlink");
    load_bundle(bundle.path()).expect("a link inside the bundle is fine");
}

#[test]
fn script_over_one_mib_is_rejected() {
    let big = format!(
        "{CLEAN_SCRIPT}# {}\n",
        "x".repeat(limits::MAX_SCRIPT_BYTES as usize)
    );
    let bundle = TestBundle::raw(yaml(&base()).as_bytes(), &big);
    let diagnostics = load_bundle(bundle.path()).expect_err("huge script");
    expect_rule(&diagnostics, "M018", "install_script");
}

#[test]
fn timeout_outside_one_second_to_one_day_is_rejected() {
    for bad in [0, 86_401] {
        let mut manifest = base();
        manifest["timeout_seconds"] = json!(bad);
        expect_rule(&load_err(&manifest), "M020", "timeout_seconds");
    }
    for good in [1, 86_400] {
        let mut manifest = base();
        manifest["timeout_seconds"] = json!(good);
        load_ok(&manifest);
    }
}

#[test]
fn retry_with_zero_attempts_or_long_backoff_is_rejected() {
    let mut manifest = base();
    manifest["retry"] = json!({ "max_attempts": 0, "backoff_seconds": 7200 });
    let diagnostics = load_err(&manifest);
    expect_rule(&diagnostics, "M021", "retry.max_attempts");
    expect_rule(&diagnostics, "M021", "retry.backoff_seconds");
}

#[test]
fn retry_defaults_to_three_attempts_when_absent_or_partial() {
    let bundle = load_ok(&base());
    assert_eq!(
        bundle.manifest.effective_retry().max_attempts,
        limits::DEFAULT_RETRY_MAX_ATTEMPTS
    );
    let mut manifest = base();
    manifest["retry"] = json!({ "max_attempts": 5 });
    let retry = load_ok(&manifest).manifest.effective_retry();
    assert_eq!(
        (retry.max_attempts, retry.backoff_seconds),
        (5, limits::DEFAULT_RETRY_BACKOFF_SECONDS)
    );
}

#[test]
fn empty_os_family_or_bad_min_version_is_rejected() {
    let mut manifest = base();
    manifest["os_requirements"] = json!({ "family": [], "min_version": "bookworm" });
    let diagnostics = load_err(&manifest);
    expect_rule(&diagnostics, "M022", "os_requirements.family");
    expect_rule(&diagnostics, "M022", "os_requirements.min_version");
}

#[test]
fn zero_ram_requirement_is_rejected() {
    let mut manifest = base();
    manifest["resource_requirements"] = json!({ "min_ram_mb": 0 });
    expect_rule(
        &load_err(&manifest),
        "M023",
        "resource_requirements.min_ram_mb",
    );
}

#[test]
fn non_http_homepage_is_rejected() {
    let mut manifest = base();
    manifest["homepage"] = json!("javascript:alert(1)");
    expect_rule(&load_err(&manifest), "M024", "homepage");
}

#[test]
fn non_idempotent_installer_loads_with_a_warning() {
    let mut manifest = base();
    manifest["idempotent"] = json!(false);
    let warnings = warnings_of(&manifest);
    assert_eq!(
        expect_rule(&warnings, "M025", "idempotent").severity,
        Severity::Warning
    );
}

#[test]
fn input_name_in_camel_case_is_rejected() {
    let mut manifest = base();
    manifest["inputs"][0]["name"] = json!("serverName");
    expect_rule(&load_err(&manifest), "M030", "inputs[0].name");
}

#[test]
fn duplicate_input_names_are_rejected() {
    let input = base()["inputs"][0].clone();
    let diagnostics = load_err(&with_inputs(vec![input.clone(), input]));
    expect_rule(&diagnostics, "M031", "inputs[1].name");
}

#[test]
fn input_named_path_is_rejected() {
    let diagnostics = load_err(&with_input(
        json!({ "name": "path", "type": "string", "label": "Path" }),
    ));
    let finding = expect_rule(&diagnostics, "M032", "inputs[0].name");
    assert!(finding.message.contains("PATH"));
}

#[test]
fn input_names_that_become_loader_shell_or_runner_variables_are_rejected() {
    for name in [
        "ld_preload",
        "ifs",
        "bash_env",
        "env",
        "shellopts",
        "ps4",
        "prompt_command",
        "home",
        "debian_frontend",
        "provisioning_job",
        "job_id",
        "lc_all",
        "bash_func_x",
        "pythonpath",
        "node_options",
        "agent_id",
        "outfitter_secret",
    ] {
        let diagnostics = load_err(&with_input(
            json!({ "name": name, "type": "string", "label": "X" }),
        ));
        expect_rule(&diagnostics, "M032", "inputs[0].name");
    }
}

#[test]
fn more_than_64_inputs_are_rejected() {
    let inputs = (0..=limits::MAX_INPUTS)
        .map(|i| json!({ "name": format!("field_{i}"), "type": "string", "label": "X" }))
        .collect();
    expect_rule(&load_err(&with_inputs(inputs)), "M033", "inputs");
}

#[test]
fn select_without_allowed_values_is_rejected() {
    let diagnostics = load_err(&with_input(
        json!({ "name": "mode", "type": "select", "label": "Mode" }),
    ));
    expect_rule(&diagnostics, "M034", "inputs[0].validation.allowed_values");
}

#[test]
fn allowed_values_of_the_wrong_type_or_repeated_are_rejected() {
    let diagnostics = load_err(&with_input(json!({
        "name": "workers", "type": "integer", "label": "Workers",
        "validation": { "allowed_values": [1, "two", 1] }
    })));
    expect_rule(
        &diagnostics,
        "M035",
        "inputs[0].validation.allowed_values[1]",
    );
    expect_rule(
        &diagnostics,
        "M035",
        "inputs[0].validation.allowed_values[2]",
    );
}

#[test]
fn pattern_on_an_integer_input_is_rejected() {
    let diagnostics = load_err(&with_input(json!({
        "name": "workers", "type": "integer", "label": "Workers",
        "validation": { "pattern": "[0-9]+" }
    })));
    expect_rule(&diagnostics, "M036", "inputs[0].validation.pattern");
}

#[test]
fn pattern_with_lookaround_or_backreference_is_rejected() {
    for pattern in ["(?=a)b", "(a)\\1", "[unclosed"] {
        let diagnostics = load_err(&with_input(json!({
            "name": "word", "type": "string", "label": "Word", "validation": { "pattern": pattern }
        })));
        expect_rule(&diagnostics, "M037", "inputs[0].validation.pattern");
    }
}

#[test]
fn min_above_max_is_rejected() {
    let diagnostics = load_err(&with_inputs(vec![
        json!({ "name": "workers", "type": "integer", "label": "W", "validation": { "min": 5, "max": 1 } }),
        json!({ "name": "word", "type": "string", "label": "W", "validation": { "min_length": 9, "max_length": 2 } }),
    ]));
    expect_rule(&diagnostics, "M038", "inputs[0].validation.min");
    expect_rule(&diagnostics, "M038", "inputs[1].validation.min_length");
}

#[test]
fn port_bounds_or_default_outside_1_to_65535_are_rejected() {
    let diagnostics = load_err(&with_inputs(vec![
        json!({ "name": "http_port", "type": "port", "label": "P", "validation": { "max": 70000 } }),
        json!({ "name": "admin_port", "type": "port", "label": "P", "default": 0 }),
    ]));
    expect_rule(&diagnostics, "M039", "inputs[0].validation.max");
    expect_rule(&diagnostics, "M039", "inputs[1].default");
}

#[test]
fn default_failing_its_own_validation_is_rejected() {
    let cases = [
        json!({ "name": "server_name", "type": "string", "label": "S", "default": "Not A Host",
                "validation": { "pattern": "[a-z.]+" } }),
        json!({ "name": "workers", "type": "integer", "label": "W", "default": "four" }),
        json!({ "name": "mode", "type": "select", "label": "M", "default": "fast",
                "validation": { "allowed_values": ["safe", "slow"] } }),
        json!({ "name": "admin_email", "type": "email", "label": "E", "default": "not-an-email" }),
    ];
    for input in cases {
        expect_rule(&load_err(&with_input(input)), "M040", "inputs[0].default");
    }
}

#[test]
fn password_marked_not_sensitive_is_rejected() {
    let diagnostics = load_err(&with_input(json!({
        "name": "db_password", "type": "password", "label": "P", "sensitive": false
    })));
    expect_rule(&diagnostics, "M041", "inputs[0].sensitive");
}

#[test]
fn password_input_is_sensitive_without_saying_so() {
    let bundle = load_ok(&with_input(
        json!({ "name": "db_password", "type": "password", "label": "P" }),
    ));
    assert!(bundle.manifest.inputs[0].is_sensitive());
}

#[test]
fn visible_if_naming_an_unknown_input_or_itself_is_rejected() {
    let diagnostics = load_err(&with_inputs(vec![
        json!({ "name": "a", "type": "string", "label": "A", "visible_if": { "nope": "x" } }),
        json!({ "name": "b", "type": "boolean", "label": "B", "visible_if": { "b": true } }),
    ]));
    expect_rule(&diagnostics, "M042", "inputs[0].visible_if.nope");
    expect_rule(&diagnostics, "M042", "inputs[1].visible_if.b");
}

#[test]
fn visible_if_cycle_is_rejected() {
    let diagnostics = load_err(&with_inputs(vec![
        json!({ "name": "a", "type": "boolean", "label": "A", "visible_if": { "c": true } }),
        json!({ "name": "b", "type": "boolean", "label": "B", "visible_if": { "a": true } }),
        json!({ "name": "c", "type": "boolean", "label": "C", "visible_if": { "b": true } }),
    ]));
    let finding = diagnostics.iter().find(|d| d.rule == "M043").expect("M043");
    assert!(finding.message.contains("->"), "{}", finding.message);
}

#[test]
fn visible_if_with_a_value_the_input_cannot_take_is_rejected() {
    let diagnostics = load_err(&with_inputs(vec![
        json!({ "name": "tls", "type": "boolean", "label": "TLS" }),
        json!({ "name": "mode", "type": "select", "label": "M", "validation": { "allowed_values": ["a", "b"] } }),
        json!({ "name": "secret", "type": "password", "label": "S" }),
        json!({ "name": "x", "type": "string", "label": "X", "visible_if": { "tls": "yes" } }),
        json!({ "name": "y", "type": "string", "label": "Y", "visible_if": { "mode": ["a", "c"] } }),
        json!({ "name": "z", "type": "string", "label": "Z", "visible_if": { "secret": "hunter2" } }),
    ]));
    expect_rule(&diagnostics, "M044", "inputs[3].visible_if.tls");
    expect_rule(&diagnostics, "M044", "inputs[4].visible_if.mode");
    expect_rule(&diagnostics, "M044", "inputs[5].visible_if.secret");
}

#[test]
fn max_length_above_the_input_value_cap_is_rejected() {
    let diagnostics = load_err(&with_input(json!({
        "name": "note", "type": "string", "label": "N", "validation": { "max_length": 100000 }
    })));
    expect_rule(&diagnostics, "M045", "inputs[0].validation.max_length");
}

#[test]
fn sensitive_input_with_a_default_loads_with_a_warning() {
    let warnings = warnings_of(&with_input(json!({
        "name": "api_token", "type": "string", "label": "T", "sensitive": true, "default": "abc"
    })));
    assert_eq!(
        expect_rule(&warnings, "M046", "inputs[0].default").severity,
        Severity::Warning
    );
}

#[test]
fn required_boolean_loads_with_a_warning() {
    let warnings = warnings_of(&with_input(json!({
        "name": "tls", "type": "boolean", "label": "TLS", "required": true
    })));
    expect_rule(&warnings, "M047", "inputs[0].required");
}

#[test]
fn every_failed_load_carries_at_least_one_error_and_a_sentence() {
    let mut manifest = base();
    manifest["id"] = json!("BAD");
    manifest["timeout_seconds"] = json!(-1);
    for diagnostic in load_err(&manifest) {
        assert!(diagnostic.message.len() > 10, "{diagnostic:?}");
        assert!(outfitter_contract::manifest::rules::by_id(diagnostic.rule).is_some());
    }
}

#[test]
fn schema_errors_are_all_reported_at_once() {
    let mut manifest = base();
    manifest["id"] = json!("BAD ID");
    manifest["category"] = json!("Not a slug");
    manifest["timeout_seconds"] = json!(0);
    let rules: Vec<&str> = load_err(&manifest).iter().map(|d| d.rule).collect();
    for rule in ["M010", "M014", "M020"] {
        assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
    }
}

#[test]
fn manifest_value_keeps_unicode_text() {
    let mut manifest = base();
    manifest["name"] = json!("Café serveur — «test»");
    assert_eq!(load_ok(&manifest).manifest.name, "Café serveur — «test»");
    let _: Value = manifest;
}

#[test]
fn yaml_1_1_boolean_spellings_stay_text() {
    // The "Norway problem": `no`, `n`, `on`, `yes` are strings in YAML 1.2 core.
    let text = yaml(&base())
        .replace("category: web", "category: no")
        .replace("name: Test app", "name: n");
    let bundle = TestBundle::raw(text.as_bytes(), CLEAN_SCRIPT);
    let loaded = load_bundle(bundle.path()).expect("valid");
    assert_eq!(
        (
            loaded.manifest.category.as_str(),
            loaded.manifest.name.as_str()
        ),
        ("no", "n")
    );
}

#[test]
fn more_than_one_yaml_document_is_a_syntax_error() {
    let text = format!("{0}---\n{0}", yaml(&base()));
    assert_eq!(rules_of_raw(text.as_bytes()), vec!["M004"]);
}
