//! Inputs: the JSON Schema served for each app, form coercion, validation of every submission
//! and the mapping of validated values to the script's environment.

mod coerce;
mod env;
mod pattern;
pub mod rules;
mod schema;
mod validate;
mod value_check;
mod visibility;

pub use coerce::{coerce_form, form_spelling};
pub use env::{
    CONTRACT_VARIABLES, FIXED_CONTRACT_VALUES, JobFacts, contract_env,
    is_contract_or_shell_variable, reserved_reason, script_env,
};
pub use pattern::{anchored as anchored_pattern, compile as compile_pattern};
pub use schema::{DRAFT_2020_12, input_schema};
pub use validate::{CompiledInputs, FieldError, InputValues, validate_inputs, validate_with};
pub use value_check::{PORT_RANGE, check_value, find_control_character};
pub use visibility::visible_inputs;
