//! Identifier rules for agents and apps, and job id generation.
//!
//! Agent ids end up inside Redis key patterns and ACL rules, so they are restricted to
//! `[a-z0-9-]`: a `*` or `{` would widen an ACL pattern or break the hash tag.

use std::sync::LazyLock;

use regex::Regex;

/// The pattern agent ids and app ids follow.
pub const ID_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,62}$";

/// The longest agent or app id [`ID_PATTERN`] admits (for schemas and forms).
pub const ID_MAX_LEN: usize = 63;

/// What [`validate_job_id`] accepts, as a pattern: a UUID in lowercase hyphenated form.
pub const JOB_ID_PATTERN: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

static ID_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(ID_PATTERN).expect("static pattern"));

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{kind} id {value:?} must match {ID_PATTERN} (lowercase letters, digits and '-', at most 63 characters)"
)]
pub struct InvalidId {
    /// What the id names: `agent`, `app` or `job`.
    pub kind: &'static str,
    /// The refused id, cut to 80 characters so a huge value cannot flood the message.
    pub value: String,
}

fn check(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    if ID_RE.is_match(value) {
        Ok(())
    } else {
        Err(InvalidId {
            kind,
            value: value.chars().take(80).collect(),
        })
    }
}

/// Checks an agent id.
pub fn validate_agent_id(id: &str) -> Result<(), InvalidId> {
    check("agent", id)
}

/// Checks an app (bundle) id.
pub fn validate_app_id(id: &str) -> Result<(), InvalidId> {
    check("app", id)
}

/// Checks a job id: the canonical hyphenated form of a UUID.
pub fn validate_job_id(id: &str) -> Result<(), InvalidId> {
    match uuid::Uuid::try_parse(id) {
        Ok(u) if u.hyphenated().to_string() == id => Ok(()),
        _ => Err(InvalidId {
            kind: "job",
            value: id.chars().take(80).collect(),
        }),
    }
}

/// A new job id: a UUIDv7, so ids sort by creation time.
pub fn new_job_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_with_glob_or_brace_are_refused() {
        for bad in [
            "",
            "A",
            "-a",
            "a*",
            "a{b",
            "a}b",
            "a:b",
            "a b",
            &"a".repeat(ID_MAX_LEN + 1),
        ] {
            assert!(validate_agent_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["local", "web-1", "0", &"a".repeat(ID_MAX_LEN)] {
            assert!(validate_agent_id(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn job_ids_are_canonical_uuids() {
        let id = new_job_id();
        assert!(validate_job_id(&id).is_ok());
        assert!(validate_job_id(&id.to_uppercase()).is_err());
        assert!(validate_job_id("../etc").is_err());
    }

    #[test]
    fn job_id_pattern_says_what_the_check_accepts() {
        let re = Regex::new(JOB_ID_PATTERN).unwrap();
        let id = new_job_id();
        for (value, ok) in [
            (id.as_str(), true),
            ("00000000-0000-0000-0000-000000000000", true),
            (&id.to_uppercase(), false),
            (&id.replace('-', ""), false),
            ("../etc", false),
            (&format!("{id}\n"), false),
        ] {
            assert_eq!(re.is_match(value), ok, "{value:?}");
            assert_eq!(validate_job_id(value).is_ok(), ok, "{value:?}");
        }
    }
}
