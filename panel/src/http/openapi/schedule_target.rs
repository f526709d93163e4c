//! The schema of a schedule's `target`, rewritten so that it says what the API accepts.
//!
//! utoipa derives `Target` (a serde enum tagged by `kind`) as a `oneOf` whose variants allow
//! any other property, and the rollout variant as `allOf` of `NewRolloutBody` (which allows
//! no other property, so not `kind` either: no document could satisfy it). Here each variant
//! lists its own properties and no others, the installation variant is one per action family
//! (inputs only with reconfigure and upgrade, purge only with uninstall, as
//! `schedules::target::check` rules), and the rollout variant is the rollout body's
//! properties without `dry_run` (which a schedule refuses), plus `kind`.

use serde_json::{Map, Value, json};
use utoipa::Modify;
use utoipa::openapi::{OpenApi, RefOr, Schema};

pub(super) struct ScheduleTarget;

impl Modify for ScheduleTarget {
    fn modify(&self, openapi: &mut OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let as_json = |s: Option<&RefOr<Schema>>| s.and_then(|s| serde_json::to_value(s).ok());
        let (Some(target), Some(rollout)) = (
            as_json(components.schemas.get("Target")),
            as_json(components.schemas.get("NewRolloutBody")),
        ) else {
            return;
        };
        let fixed = rewrite(&target, &rollout);
        if let Ok(schema) = serde_json::from_value::<RefOr<Schema>>(fixed) {
            components.schemas.insert("Target".to_owned(), schema);
        }
    }
}

fn rewrite(target: &Value, rollout: &Value) -> Value {
    let variants = target["oneOf"].as_array().cloned().unwrap_or_default();
    let kind_of = |v: &Value| -> Option<String> {
        let props = v
            .get("properties")
            .or_else(|| v["allOf"].get(1)?.get("properties"))?;
        Some(props["kind"]["enum"][0].as_str()?.to_owned())
    };
    let mut out = Vec::new();
    for v in &variants {
        match kind_of(v).as_deref() {
            Some("job") => out.push(closed(v.clone())),
            Some("installation") => out.extend(installation_variants(v)),
            Some("rollout") => out.extend(rollout_variants(v, rollout)),
            _ => out.push(v.clone()),
        }
    }
    let mut t = target.clone();
    t["oneOf"] = Value::Array(out);
    t
}

fn closed(mut v: Value) -> Value {
    v["additionalProperties"] = Value::Bool(false);
    v
}

fn without(props: &Value, drop: &[&str]) -> Map<String, Value> {
    let mut p = props.as_object().cloned().unwrap_or_default();
    for d in drop {
        p.remove(*d);
    }
    p
}

fn installation_variants(v: &Value) -> Vec<Value> {
    let props = &v["properties"];
    let family = |actions: &[&str], drop: &[&str], what: &str| {
        let mut p = without(props, drop);
        p.insert("action".into(), json!({"type": "string", "enum": actions}));
        json!({
            "type": "object",
            "description": format!("{} {what}", v["description"].as_str().unwrap_or_default()),
            "properties": p,
            "required": v["required"],
            "additionalProperties": false,
        })
    };
    vec![
        family(&["backup"], &["inputs", "purge"], "(backup)."),
        family(
            &["reconfigure", "upgrade"],
            &["purge"],
            "(reconfigure, upgrade: with new inputs).",
        ),
        family(&["uninstall"], &["inputs"], "(uninstall: with purge)."),
    ]
}

/// One variant with `agents`, one with `selector`: a rollout takes exactly one of them.
fn rollout_variants(v: &Value, rollout: &Value) -> Vec<Value> {
    let by = |pick: &str, other: &str| {
        let mut p = without(&rollout["properties"], &["dry_run", other]);
        p.insert(
            "kind".into(),
            json!({"type": "string", "enum": ["rollout"]}),
        );
        // `agents` is optional (nullable) in the body; here it is the way servers are named.
        let non_null = p.get(pick).and_then(|schema| {
            schema["oneOf"]
                .as_array()?
                .iter()
                .find(|s| s.get("type") != Some(&json!("null")))
                .cloned()
        });
        if let Some(one) = non_null {
            p.insert(pick.to_owned(), one);
        }
        let mut required: Vec<Value> = rollout["required"].as_array().cloned().unwrap_or_default();
        required.push(json!("kind"));
        required.push(json!(pick));
        json!({
            "type": "object",
            "description": format!("{} (servers by `{pick}`)", v["description"].as_str().unwrap_or_default()),
            "properties": p,
            "required": required,
            "additionalProperties": false,
        })
    };
    vec![by("agents", "selector"), by("selector", "agents")]
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use super::super::ApiDoc;

    #[test]
    fn every_target_variant_is_closed_and_the_rollout_one_can_be_satisfied() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let variants = doc["components"]["schemas"]["Target"]["oneOf"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            variants.len(),
            6,
            "job, three installation families, rollout by agents and by selector"
        );
        for v in &variants {
            assert_eq!(v["additionalProperties"], false, "{v}");
            assert!(v["properties"]["kind"].is_object(), "{v}");
        }
        let rollouts: Vec<&serde_json::Value> = variants
            .iter()
            .filter(|v| v["properties"]["kind"]["enum"][0] == "rollout")
            .collect();
        assert_eq!(rollouts.len(), 2);
        for r in rollouts {
            assert!(r["properties"]["dry_run"].is_null());
            assert!(r["properties"]["batch_size"].is_object());
            let by_agents = r["properties"]["agents"].is_object();
            let by_selector = r["properties"]["selector"].is_object();
            assert!(by_agents != by_selector, "{r}");
        }
    }
}
