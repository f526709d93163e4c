//! Which inputs are visible for a given set of values (`visible_if`, evaluated transitively:
//! an input whose controlling input is hidden is hidden too).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::manifest::{InputSpec, Manifest};

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Visiting,
    Visible,
    Hidden,
}

/// Names of the visible inputs. `submitted` holds the raw values (null means absent); a
/// visible input without a value takes its default for the comparison. A cycle (which a
/// loaded manifest cannot have, rule M043) counts as hidden rather than looping.
pub fn visible_inputs(manifest: &Manifest, submitted: &Map<String, Value>) -> BTreeSet<String> {
    let by_name: BTreeMap<&str, &InputSpec> = manifest
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i))
        .collect();
    let mut states: BTreeMap<&str, State> = BTreeMap::new();
    for input in &manifest.inputs {
        resolve(input.name.as_str(), &by_name, submitted, &mut states);
    }
    states
        .into_iter()
        .filter(|(_, state)| *state == State::Visible)
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// The value an input contributes: submitted (not null), else its default.
pub(super) fn effective_value<'a>(
    input: &'a InputSpec,
    submitted: &'a Map<String, Value>,
) -> Option<&'a Value> {
    submitted
        .get(&input.name)
        .filter(|v| !v.is_null())
        .or(input.default.as_ref())
}

fn resolve<'a>(
    name: &'a str,
    by_name: &BTreeMap<&'a str, &'a InputSpec>,
    submitted: &Map<String, Value>,
    states: &mut BTreeMap<&'a str, State>,
) -> State {
    match states.get(name) {
        Some(State::Visiting) => return State::Hidden,
        Some(done) => return *done,
        None => {}
    }
    let Some(input) = by_name.get(name) else {
        return State::Hidden;
    };
    states.insert(name, State::Visiting);
    let mut visible = true;
    for (controller_name, accepted) in &input.visible_if {
        let Some((&key, controller)) = by_name.get_key_value(controller_name.as_str()) else {
            visible = false;
            break;
        };
        if resolve(key, by_name, submitted, states) != State::Visible {
            visible = false;
            break;
        }
        match effective_value(controller, submitted) {
            Some(value) if accepted.matches(value) => {}
            _ => {
                visible = false;
                break;
            }
        }
    }
    let state = if visible {
        State::Visible
    } else {
        State::Hidden
    };
    states.insert(name, state);
    state
}
