//! Checks on the top-level fields that the JSON Schema cannot express.

use std::path::Path;

use super::diagnostic::Diagnostic;
use super::model::Manifest;
use super::rules;

/// Identity, texts and runtime checks.
pub(super) fn check_top_level(manifest: &Manifest, dir: &Path) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(dir_name) = dir.file_name().and_then(|n| n.to_str())
        && dir_name != manifest.id
    {
        out.push(Diagnostic::new(
            &rules::M011_ID_NOT_DIR,
            "id",
            format!(
                "id '{}' differs from the bundle directory '{dir_name}'; rename one to match",
                manifest.id
            ),
        ));
    }
    for (path, text) in [
        ("name", manifest.name.as_str()),
        ("author", manifest.author.as_str()),
        ("version", manifest.version.as_str()),
    ] {
        check_text(&mut out, path, text, false);
    }
    check_text(&mut out, "description", &manifest.description, true);
    if let Some(message) = &manifest.post_install_message {
        check_text(&mut out, "post_install_message", message, true);
    }
    for (index, input) in manifest.inputs.iter().enumerate() {
        check_text(
            &mut out,
            &format!("inputs[{index}].label"),
            &input.label,
            false,
        );
        if let Some(description) = &input.description {
            check_text(
                &mut out,
                &format!("inputs[{index}].description"),
                description,
                true,
            );
        }
    }
    if manifest.requires.contains(&manifest.id) {
        out.push(Diagnostic::new(
            &rules::M048_REQUIRES,
            "requires",
            format!(
                "'{}' requires itself; list only the other bundles it needs",
                manifest.id
            ),
        ));
    }
    if !manifest.idempotent {
        out.push(Diagnostic::new(
            &rules::M025_NOT_IDEMPOTENT,
            "idempotent",
            "the installer is not idempotent: a job interrupted by a crash will need a person \
             instead of a re-run; make the script safe to run twice if you can",
        ));
    }
    out
}

/// Rule M013: not blank, no control characters (newlines and tabs allowed in multi-line texts).
pub(super) fn check_text(out: &mut Vec<Diagnostic>, path: &str, text: &str, multi_line: bool) {
    if text.trim().is_empty() {
        out.push(Diagnostic::new(
            &rules::M013_TEXT,
            path,
            "must not be blank",
        ));
        return;
    }
    let bad = text
        .chars()
        .find(|&c| c.is_control() && !(multi_line && (c == '\n' || c == '\t')));
    if let Some(c) = bad {
        let allowed = if multi_line {
            " other than newline and tab"
        } else {
            ""
        };
        out.push(Diagnostic::new(
            &rules::M013_TEXT,
            path,
            format!(
                "contains the control character U+{:04X}; none{allowed} are allowed",
                u32::from(c)
            ),
        ));
    }
}
