//! Submissions: one test per input rule (I001–I011), coercion, visibility, the served schema
//! and the script environment.

mod common;

use common::{base, load_ok, with_inputs};
use outfitter_contract::inputs::{
    CONTRACT_VARIABLES, FieldError, coerce_form, input_schema, script_env, validate_inputs,
};
use outfitter_contract::limits;
use outfitter_contract::manifest::{Bundle, Manifest};
use serde_json::{Map, Value, json};

/// A manifest exercising every input type and a visible_if chain.
fn app() -> Bundle {
    load_ok(&with_inputs(vec![
        json!({ "name": "server_name", "type": "string", "label": "Server", "required": true,
                "description": "a lowercase host name",
                "validation": { "pattern": "[a-z0-9.-]+", "min_length": 3, "max_length": 64 } }),
        json!({ "name": "workers", "type": "integer", "label": "Workers", "default": 2,
                "validation": { "min": 1, "max": 16 } }),
        json!({ "name": "http_port", "type": "port", "label": "Port", "default": 80 }),
        json!({ "name": "admin_email", "type": "email", "label": "E-mail" }),
        json!({ "name": "tls", "type": "boolean", "label": "TLS" }),
        json!({ "name": "tls_mode", "type": "select", "label": "Mode", "default": "auto",
                "validation": { "allowed_values": ["auto", "manual"] }, "visible_if": { "tls": true } }),
        json!({ "name": "cert_path", "type": "string", "label": "Certificate", "required": true,
                "visible_if": { "tls_mode": "manual" } }),
        json!({ "name": "db_password", "type": "password", "label": "DB password" }),
    ]))
}

fn submit(pairs: Value) -> Map<String, Value> {
    match pairs {
        Value::Object(map) => map,
        other => panic!("a submission is an object, not {other}"),
    }
}

fn errors(bundle: &Bundle, submission: Value) -> Vec<FieldError> {
    bundle
        .validate_inputs(&submit(submission))
        .expect_err("should be rejected")
}

fn error_for<'a>(errors: &'a [FieldError], field: &str) -> &'a FieldError {
    errors
        .iter()
        .find(|e| e.field == field)
        .unwrap_or_else(|| panic!("no error for {field}: {errors:#?}"))
}

#[test]
fn valid_submission_is_accepted_with_defaults_applied() {
    let values = app()
        .validate_inputs(&submit(json!({ "server_name": "example.com" })))
        .expect("valid");
    assert_eq!(values.0["workers"], json!(2));
    assert_eq!(values.0["http_port"], json!(80));
    assert!(
        !values.0.contains_key("admin_email"),
        "optional without default stays absent"
    );
}

#[test]
fn unknown_field_is_rejected() {
    let found = errors(
        &app(),
        json!({ "server_name": "example.com", "shell": "rm -rf /" }),
    );
    assert_eq!(error_for(&found, "shell").rule, "I001");
}

#[test]
fn missing_required_input_is_rejected() {
    assert_eq!(
        error_for(&errors(&app(), json!({})), "server_name").rule,
        "I002"
    );
}

#[test]
fn null_counts_as_not_given() {
    assert_eq!(
        error_for(
            &errors(&app(), json!({ "server_name": null })),
            "server_name"
        )
        .rule,
        "I002"
    );
}

#[test]
fn required_input_hidden_by_visible_if_is_not_required() {
    let values = app()
        .validate_inputs(&submit(
            json!({ "server_name": "example.com", "tls": true }),
        ))
        .expect("cert_path hidden: tls_mode defaults to auto");
    assert_eq!(values.0["tls_mode"], json!("auto"));
    let found = errors(
        &app(),
        json!({ "server_name": "example.com", "tls": true, "tls_mode": "manual" }),
    );
    assert_eq!(error_for(&found, "cert_path").rule, "I002");
}

#[test]
fn hidden_input_never_reaches_the_script() {
    let bundle = app();
    let values = bundle
        .validate_inputs(&submit(json!({
            "server_name": "example.com", "tls": false, "tls_mode": "manual", "cert_path": "/x"
        })))
        .expect("hidden values are dropped, not rejected");
    assert!(!values.0.contains_key("tls_mode"));
    assert!(
        !values.0.contains_key("cert_path"),
        "hidden through a hidden controller"
    );
    let env = script_env(&bundle.manifest, &values);
    assert!(!env.iter().any(|(k, _)| k == "TLS_MODE" || k == "CERT_PATH"));
}

#[test]
fn hidden_input_with_an_invalid_value_is_dropped_not_reported() {
    let bundle = app();
    let values = bundle
        .validate_inputs(&submit(
            json!({ "server_name": "example.com", "tls_mode": 42 }),
        ))
        .expect("tls is false, so tls_mode is hidden");
    assert!(
        !values.0.contains_key("tls_mode"),
        "the hidden value is dropped: {:?}",
        values.0
    );
    // Visible, the same value is reported.
    let found = errors(
        &bundle,
        json!({ "server_name": "example.com", "tls": true, "tls_mode": 42 }),
    );
    assert_eq!(error_for(&found, "tls_mode").rule, "I009");
}

#[test]
fn wrong_json_type_is_rejected() {
    let found = errors(
        &app(),
        json!({ "server_name": 7, "workers": "4", "tls": "yes" }),
    );
    for field in ["server_name", "workers", "tls"] {
        assert_eq!(error_for(&found, field).rule, "I003", "{field}");
    }
}

#[test]
fn control_characters_in_values_are_rejected() {
    for bad in [
        "exa\nmple.com",
        "exa\rmple",
        "a\0b",
        "tab\there",
        "del\u{7f}",
        "c1\u{85}",
        "ls\u{2028}",
    ] {
        let found = errors(&app(), json!({ "server_name": bad }));
        assert_eq!(error_for(&found, "server_name").rule, "I004", "{bad:?}");
    }
}

#[test]
fn value_longer_than_the_cap_is_rejected() {
    let bundle = load_ok(&with_inputs(vec![
        json!({ "name": "note", "type": "string", "label": "N" }),
    ]));
    let long = "a".repeat(limits::MAX_INPUT_VALUE_BYTES + 1);
    let found = errors(&bundle, json!({ "note": long }));
    assert_eq!(error_for(&found, "note").rule, "I005");
    bundle
        .validate_inputs(&submit(
            json!({ "note": "a".repeat(limits::MAX_INPUT_VALUE_BYTES) }),
        ))
        .expect("exactly at the cap is fine");
}

#[test]
fn length_outside_min_and_max_length_is_rejected() {
    // server_name: min_length 3, max_length 64.
    for (value, ok) in [
        ("ab".to_owned(), false),
        ("abc".to_owned(), true),
        ("a".repeat(64), true),
        ("a".repeat(65), false),
    ] {
        let result = app().validate_inputs(&submit(json!({ "server_name": value })));
        match (ok, result) {
            (true, result) => {
                result.unwrap_or_else(|e| panic!("{} chars: {e:?}", value.len()));
            }
            (false, Ok(_)) => panic!("{} chars accepted", value.len()),
            (false, Err(found)) => {
                let error = error_for(&found, "server_name");
                assert_eq!(error.rule, "I006", "{} chars", value.len());
                assert!(error.message.contains("characters"), "{}", error.message);
            }
        }
    }
}

#[test]
fn lengths_count_characters_not_bytes() {
    let bundle = load_ok(&with_inputs(vec![json!({
        "name": "word", "type": "string", "label": "W",
        "validation": { "min_length": 3, "max_length": 3 }
    })]));
    bundle
        .validate_inputs(&submit(json!({ "word": "ééé" })))
        .expect("three characters (six bytes)");
    // Four bytes but two characters: too short.
    let found = errors(&bundle, json!({ "word": "éé" }));
    assert_eq!(error_for(&found, "word").rule, "I006");
    // Four characters: too long.
    let found = errors(&bundle, json!({ "word": "abcd" }));
    assert_eq!(error_for(&found, "word").rule, "I006");
}

#[test]
fn numbers_outside_min_and_max_or_port_range_are_rejected() {
    let found = errors(
        &app(),
        json!({ "server_name": "example.com", "workers": 17, "http_port": 0 }),
    );
    assert_eq!(error_for(&found, "workers").rule, "I007");
    assert_eq!(error_for(&found, "http_port").rule, "I007");
}

#[test]
fn pattern_must_match_the_whole_value() {
    let found = errors(&app(), json!({ "server_name": "example.com; reboot" }));
    let error = error_for(&found, "server_name");
    assert_eq!(error.rule, "I008");
    assert!(
        error.message.contains("lowercase host name"),
        "uses the description: {}",
        error.message
    );
}

#[test]
fn select_value_outside_allowed_values_is_rejected() {
    let found = errors(
        &app(),
        json!({ "server_name": "example.com", "tls": true, "tls_mode": "fast" }),
    );
    assert_eq!(error_for(&found, "tls_mode").rule, "I009");
}

#[test]
fn invalid_email_is_rejected() {
    let found = errors(
        &app(),
        json!({ "server_name": "example.com", "admin_email": "root@" }),
    );
    assert_eq!(error_for(&found, "admin_email").rule, "I010");
}

#[test]
fn errors_never_echo_a_secret_value() {
    let secret = "hunter2\nsecret";
    let found = errors(
        &app(),
        json!({ "server_name": "example.com", "db_password": secret }),
    );
    let error = error_for(&found, "db_password");
    assert_eq!(error.rule, "I004");
    assert!(!error.message.contains("hunter2"));
}

#[test]
fn one_error_per_field_in_manifest_order() {
    let found = errors(
        &app(),
        json!({ "workers": "x", "server_name": 1, "zzz": 1 }),
    );
    let fields: Vec<&str> = found.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, vec!["server_name", "workers", "zzz"]);
}

#[test]
fn free_function_and_cached_bundle_validation_agree() {
    let bundle = app();
    let submission = submit(json!({ "server_name": "Example", "workers": 99 }));
    assert_eq!(
        validate_inputs(&bundle.manifest, &submission),
        bundle.validate_inputs(&submission)
    );
}

#[test]
fn unchecked_checkbox_is_coerced_to_false() {
    let bundle = app();
    let form = coerce_form(
        &bundle.manifest,
        &[("server_name".into(), "example.com".into())],
    );
    assert_eq!(form["tls"], json!(false));
}

#[test]
fn form_strings_are_coerced_to_declared_types() {
    let bundle = app();
    let pairs: Vec<(String, String)> = [
        ("server_name", "example.com"),
        ("workers", " 4 "),
        ("http_port", "8080"),
        ("tls", "on"),
        ("tls_mode", "manual"),
        ("cert_path", "/etc/ssl/x.pem"),
        ("admin_email", ""),
        ("_csrf", "token"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let form = coerce_form(&bundle.manifest, &pairs);
    assert_eq!(form["workers"], json!(4));
    assert_eq!(form["http_port"], json!(8080));
    assert_eq!(form["tls"], json!(true));
    assert!(!form.contains_key("admin_email"), "empty means not given");
    assert!(!form.contains_key("_csrf"), "panel fields are skipped");
    bundle
        .validate_inputs(&form)
        .expect("coerced form is valid");
}

#[test]
fn uncoercible_form_value_is_reported_as_wrong_type() {
    let bundle = app();
    let form = coerce_form(
        &bundle.manifest,
        &[
            ("server_name".into(), "example.com".into()),
            ("workers".into(), "four".into()),
        ],
    );
    assert_eq!(
        error_for(&bundle.validate_inputs(&form).expect_err("bad"), "workers").rule,
        "I003"
    );
}

#[test]
fn select_with_numeric_choices_coerces_to_the_number() {
    let bundle = load_ok(&with_inputs(vec![json!({
        "name": "php_version", "type": "select", "label": "PHP", "required": true,
        "validation": { "allowed_values": [7, 8] }
    })]));
    let form = coerce_form(&bundle.manifest, &[("php_version".into(), "8".into())]);
    assert_eq!(form["php_version"], json!(8));
    bundle.validate_inputs(&form).expect("valid");
}

#[test]
fn script_env_uppercases_names_and_spells_booleans_and_numbers() {
    let bundle = app();
    let values = bundle
        .validate_inputs(&submit(
            json!({ "server_name": "example.com", "tls": true, "workers": 8 }),
        ))
        .expect("valid");
    let env = script_env(&bundle.manifest, &values);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("SERVER_NAME"), Some("example.com"));
    assert_eq!(get("WORKERS"), Some("8"));
    assert_eq!(get("TLS"), Some("true"));
    assert_eq!(get("TLS_MODE"), Some("auto"));
    assert_eq!(get("HTTP_PORT"), Some("80"));
    for (name, _) in &env {
        assert!(!CONTRACT_VARIABLES.contains(&name.as_str()));
    }
}

#[test]
fn served_schema_is_draft_2020_12_and_closed() {
    let schema = input_schema(&app().manifest);
    assert_eq!(
        schema["$schema"],
        json!("https://json-schema.org/draft/2020-12/schema")
    );
    assert_eq!(schema["additionalProperties"], json!(false));
    assert_eq!(schema["required"], json!(["server_name"]));
    assert_eq!(
        schema["properties"]["server_name"]["pattern"],
        json!("^(?:[a-z0-9.-]+)$")
    );
    assert_eq!(schema["properties"]["http_port"]["minimum"], json!(1));
    assert_eq!(
        schema["properties"]["db_password"]["writeOnly"],
        json!(true)
    );
}

#[test]
fn served_schema_uses_if_then_for_visible_if() {
    let schema = input_schema(&app().manifest);
    let rule = &schema["allOf"][0];
    assert_eq!(
        rule["if"]["allOf"][0]["properties"]["tls_mode"]["const"],
        json!("manual")
    );
    // cert_path is visible only while tls_mode is: the controller's own condition is included.
    assert_eq!(
        rule["if"]["allOf"][1]["properties"]["tls"]["const"],
        json!(true)
    );
    assert_eq!(rule["then"]["required"], json!(["cert_path"]));
}

#[test]
fn served_schema_never_contains_a_secret_default() {
    let bundle = load_ok(&with_inputs(vec![json!({
        "name": "api_token", "type": "string", "label": "T", "sensitive": true, "default": "s3cret"
    })]));
    assert!(
        !input_schema(&bundle.manifest)
            .to_string()
            .contains("s3cret")
    );
}

#[test]
fn served_schema_agrees_with_the_server_on_submissions() {
    // The served schema compiled by a client (ECMA regex engine) accepts what we accept and
    // rejects what we reject, for the cases a client can check alone.
    let bundle = app();
    let client =
        jsonschema::draft202012::new(&bundle.input_schema).expect("served schema compiles");
    for (submission, ok) in [
        (json!({ "server_name": "example.com" }), true),
        (json!({ "server_name": "Example.com" }), false),
        (json!({ "server_name": "example.com", "extra": 1 }), false),
        (
            json!({ "server_name": "example.com", "http_port": 70000 }),
            false,
        ),
        (
            json!({ "server_name": "example.com", "tls_mode": "manual" }),
            true,
        ),
        (
            json!({ "server_name": "example.com", "tls": true, "tls_mode": "manual" }),
            false,
        ),
        (
            json!({ "server_name": "example.com", "tls": true, "tls_mode": "manual", "cert_path": "/c" }),
            true,
        ),
    ] {
        let server = validate_inputs(&bundle.manifest, &submit(submission.clone())).is_ok();
        assert_eq!(client.is_valid(&submission), ok, "client on {submission}");
        assert_eq!(server, ok, "server on {submission}");
    }
}

#[test]
fn contract_variables_are_reserved_for_inputs() {
    for variable in CONTRACT_VARIABLES {
        assert!(
            outfitter_contract::inputs::reserved_reason(&variable.to_ascii_lowercase()).is_some(),
            "{variable}"
        );
    }
}

#[test]
fn validation_without_inputs_accepts_only_an_empty_submission() {
    let mut manifest = base();
    manifest.as_object_mut().expect("object").remove("inputs");
    let bundle = load_ok(&manifest);
    let m: &Manifest = &bundle.manifest;
    assert!(validate_inputs(m, &Map::new()).is_ok());
    assert_eq!(
        validate_inputs(m, &submit(json!({ "x": 1 }))).expect_err("unknown")[0].rule,
        "I001"
    );
}
