//! Property tests: generated valid manifests round-trip and load; a generated submission is
//! accepted only when every value keeps its input's rules, and rejected with one error per
//! field that names the field and a rule the value really breaks.

mod common;

use std::collections::BTreeMap;

use common::TestBundle;
use outfitter_contract::inputs::{
    FieldError, InputValues, coerce_form, script_env, validate_inputs,
};
use outfitter_contract::limits;
use outfitter_contract::manifest::{
    InputSpec, InputType, Manifest, OsRequirements, ResourceRequirements, RetryPolicy, Validation,
    VisibleValue, load_bundle, parse_manifest,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9 ,.()'-]{0,40}".prop_map(|s| s.trim_end().to_owned())
}

/// One input of a random type with validation and a default that fits it.
fn input(index: usize, earlier_booleans: Vec<String>) -> impl Strategy<Value = InputSpec> {
    let name = format!("field_{index}");
    (
        prop_oneof![
            Just(InputType::String),
            Just(InputType::Integer),
            Just(InputType::Boolean),
            Just(InputType::Password),
            Just(InputType::Select),
            Just(InputType::Email),
            Just(InputType::Port),
        ],
        text(),
        proptest::option::of(text()),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(proptest::sample::select(if earlier_booleans.is_empty() {
            vec![String::new()]
        } else {
            earlier_booleans
        })),
        0i64..1000,
    )
        .prop_map(
            move |(kind, label, description, required, with_default, controller, number)| {
                let mut validation = None;
                let mut default = None;
                match kind {
                    InputType::String => {
                        validation = Some(Validation {
                            pattern: Some("[a-z]+".into()),
                            max_length: Some(32),
                            ..Validation::default()
                        });
                        default = with_default.then(|| json!("abc"));
                    }
                    InputType::Integer => {
                        validation = Some(Validation {
                            min: Some(0),
                            max: Some(1000),
                            ..Validation::default()
                        });
                        default = with_default.then(|| json!(number));
                    }
                    InputType::Port => default = with_default.then(|| json!(number + 1)),
                    InputType::Boolean => default = with_default.then(|| json!(number % 2 == 0)),
                    InputType::Select => {
                        validation = Some(Validation {
                            allowed_values: Some(vec![json!("a"), json!("b"), json!("c")]),
                            ..Validation::default()
                        });
                        default = with_default.then(|| json!("b"));
                    }
                    InputType::Email => default = with_default.then(|| json!("admin@example.com")),
                    InputType::Password => {}
                }
                let mut visible_if = BTreeMap::new();
                if let Some(controller) = controller.filter(|c| !c.is_empty()) {
                    visible_if.insert(controller, VisibleValue::One(json!(true)));
                }
                InputSpec {
                    name: name.clone(),
                    r#type: kind,
                    label,
                    description,
                    required: required && kind != InputType::Boolean,
                    default,
                    validation,
                    visible_if,
                    sensitive: kind == InputType::Password,
                }
            },
        )
}

fn inputs() -> impl Strategy<Value = Vec<InputSpec>> {
    (0usize..6).prop_flat_map(|count| {
        // Input i may depend on a boolean among 0..i; name the candidates up front.
        let strategies: Vec<_> = (0..count)
            .map(|i| input(i, (0..i).map(|j| format!("field_{j}")).collect()))
            .collect();
        strategies.prop_map(|mut inputs| {
            // Keep only visible_if entries that point at earlier boolean inputs.
            let booleans: Vec<String> = inputs
                .iter()
                .filter(|i| i.r#type == InputType::Boolean)
                .map(|i| i.name.clone())
                .collect();
            for input in &mut inputs {
                input.visible_if.retain(|name, _| booleans.contains(name));
            }
            inputs
        })
    })
}

prop_compose! {
    fn manifest()(
        id in "[a-z][a-z0-9-]{0,20}",
        name in text(),
        version in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        description in text(),
        category in "[a-z][a-z0-9-]{0,10}",
        author in text(),
        family in proptest::collection::vec("[a-z]{2,8}", 1..3),
        min_version in proptest::option::of("[0-9]{1,2}(\\.[0-9]{1,2})?"),
        resources in proptest::option::of((proptest::option::of(1u64..100_000), proptest::option::of(1u64..100_000))),
        timeout_seconds in 1u64..=86_400,
        idempotent in any::<bool>(),
        retry in proptest::option::of((1u32..=10, 0u64..=3600)),
        inputs in inputs(),
        tags in proptest::collection::vec("[a-z][a-z0-9-]{0,10}", 0..3),
        requires in proptest::collection::btree_set("req-[a-z0-9]{1,10}", 0..3),
        homepage in proptest::option::of("https://[a-z]{1,10}\\.example/[a-z]{0,5}"),
        post_install_message in proptest::option::of(text()),
    ) -> Manifest {
        Manifest {
            id, name, version, description, category, author,
            os_requirements: OsRequirements { family, min_version },
            resource_requirements: resources.map(|(min_ram_mb, min_disk_mb)| ResourceRequirements { min_ram_mb, min_disk_mb }),
            install_script: "install.sh".into(),
            upgrade_script: None, uninstall_script: None, backup_script: None, restore_script: None,
            health_check: None, multiple_instances: false,
            timeout_seconds, idempotent,
            retry: retry.map(|(max_attempts, backoff_seconds)| RetryPolicy { max_attempts, backoff_seconds }),
            inputs, requires: requires.into_iter().collect(), tags, homepage, post_install_message,
        }
    }
}

/// Any JSON value a hostile API client might send.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[a-z@.]{0,20}".prop_map(Value::String),
        Just(json!("a")),
        Just(json!("abc")),
        (0i64..70_000).prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What the input rules of docs/installer-contract.md say about one submitted value, written
/// out independently of the validator: the first rule it breaks, `Unsure` for an e-mail
/// address whose finer syntax this oracle does not model.
#[derive(Debug, PartialEq)]
enum Verdict {
    Keeps,
    Breaks(&'static str),
    Unsure,
}

fn verdict(input: &InputSpec, value: &Value) -> Verdict {
    let validation = input.validation.clone().unwrap_or_default();
    let text_rules = |text: &str| {
        if text
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
        {
            Some("I004")
        } else if text.len() > limits::MAX_INPUT_VALUE_BYTES {
            Some("I005")
        } else {
            None
        }
    };
    let broken = match input.r#type {
        InputType::String | InputType::Password | InputType::Email => {
            let Value::String(text) = value else {
                return Verdict::Breaks("I003");
            };
            let chars = text.chars().count() as u64;
            let pattern = validation
                .pattern
                .as_deref()
                .map(|p| regex::Regex::new(&format!("^(?:{p})$")).expect("pattern"));
            if let Some(rule) = text_rules(text) {
                Some(rule)
            } else if validation.min_length.is_some_and(|m| chars < m)
                || validation.max_length.is_some_and(|m| chars > m)
            {
                Some("I006")
            } else if pattern.is_some_and(|p| !p.is_match(text)) {
                Some("I008")
            } else if input.r#type == InputType::Email {
                if !text.contains('@') {
                    Some("I010")
                } else {
                    return Verdict::Unsure;
                }
            } else {
                None
            }
        }
        InputType::Integer | InputType::Port => {
            let Some(number) = value.as_i64() else {
                return Verdict::Breaks("I003");
            };
            let port_range = input.r#type == InputType::Port && !(1..=65_535).contains(&number);
            (port_range
                || validation.min.is_some_and(|m| number < m)
                || validation.max.is_some_and(|m| number > m))
            .then_some("I007")
        }
        InputType::Boolean => (!value.is_boolean()).then_some("I003"),
        InputType::Select => match value {
            Value::String(text) => text_rules(text),
            Value::Number(_) | Value::Bool(_) => None,
            _ => Some("I003"),
        },
    };
    let not_allowed = || {
        validation
            .allowed_values
            .as_deref()
            .is_some_and(|allowed| !allowed.contains(value))
    };
    match broken {
        Some(rule) => Verdict::Breaks(rule),
        None if not_allowed() => Verdict::Breaks("I009"),
        None => Verdict::Keeps,
    }
}

/// The value the validator sees for an input: the submitted one unless absent or null, else
/// the default.
fn given<'a>(input: &'a InputSpec, submission: &'a Map<String, Value>) -> Option<&'a Value> {
    submission
        .get(&input.name)
        .filter(|v| !v.is_null())
        .or(input.default.as_ref())
}

/// An accepted submission: only declared inputs, each value as given and keeping every rule,
/// every always-visible required input present.
fn check_accepted(
    manifest: &Manifest,
    submission: &Map<String, Value>,
    accepted: &InputValues,
) -> Result<(), TestCaseError> {
    for name in submission.keys() {
        prop_assert!(manifest.input(name).is_some(), "undeclared {name} accepted");
    }
    for (name, value) in &accepted.0 {
        let input = manifest.input(name).expect("declared");
        prop_assert_eq!(Some(value), given(input, submission), "{} changed", name);
        let v = verdict(input, value);
        prop_assert!(
            !matches!(v, Verdict::Breaks(_)),
            "{name} = {value} accepted though it {v:?}"
        );
    }
    for input in &manifest.inputs {
        if input.required && input.visible_if.is_empty() && input.r#type != InputType::Boolean {
            prop_assert!(
                accepted.0.contains_key(&input.name),
                "required {} missing",
                input.name
            );
        }
    }
    for (name, value) in script_env(manifest, accepted) {
        prop_assert!(
            !value.contains(['\n', '\r', '\0']),
            "{name} carries a control char"
        );
    }
    Ok(())
}

/// A rejected submission: one error per field; each names a submitted or declared field with
/// a rule the submission really breaks there; every undeclared name and every bad value of an
/// always-visible input is reported.
fn check_rejected(
    manifest: &Manifest,
    submission: &Map<String, Value>,
    errors: &[FieldError],
) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty());
    let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    fields.sort_unstable();
    fields.dedup();
    prop_assert_eq!(
        fields.len(),
        errors.len(),
        "one error per field: {:?}",
        errors
    );
    for error in errors {
        prop_assert!(!error.message.is_empty(), "{error:?}");
        match (error.rule, manifest.input(&error.field)) {
            ("I001", None) => prop_assert!(submission.contains_key(&error.field), "{error:?}"),
            ("I002", Some(input)) => {
                prop_assert!(input.required, "{error:?}");
                prop_assert!(given(input, submission).is_none(), "{error:?}");
            }
            (rule, Some(input)) => {
                let value = given(input, submission);
                prop_assert!(value.is_some(), "{error:?} without a value");
                let v = verdict(input, value.expect("checked"));
                prop_assert!(
                    v == Verdict::Breaks(rule) || (v == Verdict::Unsure && rule == "I010"),
                    "{error:?}: the oracle says {v:?} for {:?}",
                    value
                );
            }
            (_, None) => prop_assert!(false, "{error:?} names no input"),
        }
    }
    let reported = |name: &str| errors.iter().any(|e| e.field == name);
    for name in submission.keys() {
        if manifest.input(name).is_none() {
            prop_assert!(reported(name), "undeclared {name} not reported");
        }
    }
    for input in manifest.inputs.iter().filter(|i| i.visible_if.is_empty()) {
        if let Some(value) = given(input, submission)
            && let Verdict::Breaks(rule) = verdict(input, value)
        {
            prop_assert!(
                reported(&input.name),
                "{} breaks {rule}, not reported",
                input.name
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn generated_valid_manifest_round_trips_and_loads(manifest in manifest()) {
        let yaml = serde_saphyr::to_string(&manifest).expect("serialize");
        let parsed = parse_manifest(yaml.as_bytes()).map_err(|d| TestCaseError::fail(format!("{d:#?}\n{yaml}")))?;
        prop_assert_eq!(&parsed, &manifest);
        let bundle = TestBundle::named(&manifest.id, yaml.as_bytes(), common::CLEAN_SCRIPT);
        let loaded = load_bundle(bundle.path()).map_err(|d| TestCaseError::fail(format!("{d:#?}\n{yaml}")))?;
        prop_assert_eq!(loaded.manifest, manifest);
    }

    #[test]
    fn generated_submission_is_accepted_only_when_every_rule_holds(
        manifest in manifest(),
        extra in proptest::collection::btree_map("[a-z_]{1,12}", any_json(), 0..4),
        values in proptest::collection::vec(any_json(), 6),
    ) {
        let mut submission = Map::new();
        for (input, value) in manifest.inputs.iter().zip(values) {
            submission.insert(input.name.clone(), value);
        }
        submission.extend(extra);
        match validate_inputs(&manifest, &submission) {
            Ok(accepted) => check_accepted(&manifest, &submission, &accepted)?,
            Err(errors) => check_rejected(&manifest, &submission, &errors)?,
        }
    }

    #[test]
    fn any_form_is_coerced_then_accepted_or_rejected_by_the_rules(
        manifest in manifest(),
        form in proptest::collection::vec(("[a-z_0-9]{0,12}", ".{0,30}"), 0..10),
        // Form fields named like the inputs, so some forms are valid.
        named in proptest::collection::vec((0usize..6, prop_oneof![
            Just(String::new()), Just("abc".to_owned()), Just("b".to_owned()),
            Just("on".to_owned()), Just("8080".to_owned()), Just("admin@example.com".to_owned()),
            ".{0,30}",
        ]), 0..8),
    ) {
        let mut form: Vec<(String, String)> = form;
        form.extend(named.into_iter().map(|(i, v)| (format!("field_{i}"), v)));
        let coerced = coerce_form(&manifest, &form);
        for name in coerced.keys() {
            prop_assert!(!name.starts_with('_'), "panel field {name} passed to validation");
        }
        match validate_inputs(&manifest, &coerced) {
            Ok(accepted) => check_accepted(&manifest, &coerced, &accepted)?,
            Err(errors) => check_rejected(&manifest, &coerced, &errors)?,
        }
    }
}
