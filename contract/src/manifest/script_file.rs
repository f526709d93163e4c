//! The script fields (`install_script` and the lifecycle scripts): a plain file inside the
//! bundle, not escaping it, not too large.

use std::fs;
use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostic;
use super::rules;
use crate::limits;

/// Checks the script that manifest field `field` names; returns its path when it is usable.
pub(super) fn check_script(dir: &Path, field: &str, name: &str) -> Result<PathBuf, Diagnostic> {
    check_name(field, name)?;
    let path = dir.join(name);
    let link = fs::symlink_metadata(&path).map_err(|_| {
        Diagnostic::new(
            &rules::M016_SCRIPT_MISSING,
            field,
            format!("the script '{name}' does not exist in the bundle"),
        )
    })?;
    if link.file_type().is_symlink() {
        let escapes = match (fs::canonicalize(dir), fs::canonicalize(&path)) {
            (Ok(root), Ok(target)) => !target.starts_with(&root),
            // A dangling link: M016 below reports it.
            (_, Err(_)) => false,
            (Err(_), Ok(_)) => true,
        };
        if escapes {
            return Err(Diagnostic::new(
                &rules::M017_SCRIPT_ESCAPES,
                field,
                format!("'{name}' is a symlink leading out of the bundle; copy the script into it"),
            ));
        }
    }
    // Only a symlink needs a second look: otherwise `lstat` already described the file.
    let target = if link.file_type().is_symlink() {
        fs::metadata(&path).ok()
    } else {
        Some(link)
    };
    let metadata = target.filter(fs::Metadata::is_file).ok_or_else(|| {
        Diagnostic::new(
            &rules::M016_SCRIPT_MISSING,
            field,
            format!("'{name}' is not a regular file in the bundle"),
        )
    })?;
    if metadata.len() > limits::MAX_SCRIPT_BYTES {
        return Err(Diagnostic::new(
            &rules::M018_SCRIPT_TOO_LARGE,
            field,
            format!(
                "the script is {} bytes; at most {} are allowed",
                metadata.len(),
                limits::MAX_SCRIPT_BYTES
            ),
        ));
    }
    Ok(path)
}

fn check_name(field: &str, name: &str) -> Result<(), Diagnostic> {
    let problem = if name.contains('/') || name.contains('\\') {
        Some("contains a path separator")
    } else if name == ".." || name.contains("..") {
        Some("contains '..'")
    } else if name.starts_with('.') {
        Some("starts with '.'")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else if name.is_empty() {
        Some("is empty")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Diagnostic::new(
            &rules::M015_SCRIPT_NAME,
            field,
            format!("{field} {problem}; it must be a plain file name such as install.sh"),
        )),
        None => Ok(()),
    }
}
