//! Checks on the lifecycle keys that the JSON Schema cannot express: the backup and restore
//! pair, the health check's command, one file per purpose.

use super::diagnostic::Diagnostic;
use super::model::Manifest;
use super::rules;
use crate::limits;

/// Rules M026, M027 and M028 (the script files themselves are checked like `install_script`).
pub(super) fn check_lifecycle(manifest: &Manifest) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    match (&manifest.backup_script, &manifest.restore_script) {
        (Some(_), None) => out.push(Diagnostic::new(
            &rules::M026_RESTORE_WITHOUT_BACKUP,
            "backup_script",
            "a backup_script needs a restore_script to be of use (and for an upgrade to roll back from it)",
        )),
        (None, Some(_)) => out.push(Diagnostic::new(
            &rules::M026_RESTORE_WITHOUT_BACKUP,
            "restore_script",
            "a restore_script needs a backup_script that writes what it reads",
        )),
        _ => {}
    }
    if let Some(check) = &manifest.health_check {
        let command = check.command.as_str();
        let problem = if command.trim().is_empty() {
            Some("must not be blank".to_owned())
        } else if command.len() > limits::MAX_HEALTH_COMMAND_BYTES {
            Some(format!(
                "is {} bytes; at most {} are allowed",
                command.len(),
                limits::MAX_HEALTH_COMMAND_BYTES
            ))
        } else {
            command.chars().find(|c| c.is_control()).map(|c| {
                format!(
                    "contains the control character U+{:04X}; it is one line",
                    u32::from(c)
                )
            })
        };
        if let Some(problem) = problem {
            out.push(Diagnostic::new(
                &rules::M027_HEALTH_CHECK,
                "health_check.command",
                problem,
            ));
        }
        if !(1..=limits::MAX_HEALTH_TIMEOUT_SECONDS).contains(&check.timeout_seconds) {
            out.push(Diagnostic::new(
                &rules::M027_HEALTH_CHECK,
                "health_check.timeout_seconds",
                format!(
                    "is {}; it must be from 1 to {}",
                    check.timeout_seconds,
                    limits::MAX_HEALTH_TIMEOUT_SECONDS
                ),
            ));
        }
    }
    let mut seen = vec![("install_script", manifest.install_script.as_str())];
    for (field, name) in manifest.lifecycle_scripts() {
        if let Some((other, _)) = seen.iter().find(|(_, n)| *n == name) {
            out.push(Diagnostic::new(
                &rules::M028_SCRIPT_REUSED,
                field,
                format!("'{name}' is already {other}; give each purpose its own script"),
            ));
        }
        seen.push((field, name));
    }
    out
}
