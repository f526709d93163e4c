//! Script rules S001–S004 and S006–S009 (S005 is shellcheck, in `shellcheck.rs`).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use outfitter_contract::inputs::is_contract_or_shell_variable;
use outfitter_contract::manifest::{Diagnostic, InputSpec, Manifest, rules};
use regex::Regex;

use super::shell::{Command, Line, LineKind, commands, read_lines};

/// Variables `/etc/os-release` defines (sourcing it is the usual way to detect the OS).
const OS_RELEASE_VARIABLES: &[&str] = &[
    "ID",
    "ID_LIKE",
    "NAME",
    "PRETTY_NAME",
    "VERSION",
    "VERSION_ID",
    "VERSION_CODENAME",
    "UBUNTU_CODENAME",
    "HOME_URL",
    "SUPPORT_URL",
    "BUG_REPORT_URL",
    "PRIVACY_POLICY_URL",
    "BUILD_ID",
    "VARIANT",
    "VARIANT_ID",
];
/// Variables `/etc/lsb-release` defines.
const LSB_RELEASE_VARIABLES: &[&str] = &[
    "DISTRIB_ID",
    "DISTRIB_RELEASE",
    "DISTRIB_CODENAME",
    "DISTRIB_DESCRIPTION",
];

/// Runs every script rule except shellcheck. `file` is the script's name for locations.
pub fn check_script(file: &str, bytes: &[u8], manifest: Option<&Manifest>) -> Vec<Diagnostic> {
    let at = |line: usize| format!("{file}:{line}");
    let Ok(script) = std::str::from_utf8(bytes) else {
        return vec![Diagnostic::new(
            &rules::S006_NOT_TEXT,
            at(1),
            "the script is not UTF-8 text",
        )];
    };
    if script.contains('\0') {
        return vec![Diagnostic::new(
            &rules::S006_NOT_TEXT,
            at(1),
            "the script contains a NUL byte",
        )];
    }
    let mut out = Vec::new();
    if let Some(index) = script.split('\n').position(|l| l.ends_with('\r')) {
        out.push(Diagnostic::new(
            &rules::S009_LINE_ENDINGS,
            at(index + 1),
            "the script has Windows line endings (CR LF); bash reads the CR as part of each \
             command. Convert it with dos2unix",
        ));
    }
    let first = script.lines().next().unwrap_or_default();
    if !first.starts_with("#!") {
        out.push(Diagnostic::new(
            &rules::S001_SHEBANG,
            at(1),
            "the first line must be a #! line, e.g. #!/usr/bin/env bash",
        ));
    }
    let lines = read_lines(script);
    check_strict_mode(first, &lines, &at, &mut out);
    check_stdin(&lines, &at, &mut out);
    check_interactive(&lines, &at, &mut out);
    check_variables(&lines, manifest, &at, &mut out);
    out
}

fn check_strict_mode(
    shebang: &str,
    lines: &[Line],
    at: &dyn Fn(usize) -> String,
    out: &mut Vec<Diagnostic>,
) {
    let mut errexit = false;
    let mut nounset = false;
    let mut pipefail = false;
    let mut note = |words: &[&str]| {
        let mut iter = words.iter().peekable();
        while let Some(word) = iter.next() {
            if *word == "-o" || *word == "+o" {
                match iter.next().copied() {
                    Some("errexit") => errexit |= *word == "-o",
                    Some("nounset") => nounset |= *word == "-o",
                    Some("pipefail") => pipefail |= *word == "-o",
                    _ => {}
                }
            } else if let Some(flags) = word.strip_prefix('-') {
                errexit |= flags.contains('e');
                nounset |= flags.contains('u');
                if flags.ends_with('o') && iter.peek().is_some_and(|w| **w == "pipefail") {
                    pipefail = true;
                }
            }
        }
    };
    // `#!/bin/bash -eu` counts too.
    let shebang_words: Vec<&str> = shebang.split_whitespace().skip(1).collect();
    note(&shebang_words);
    for line in lines.iter().filter(|l| l.kind == LineKind::Code) {
        for command in commands(&line.text) {
            if command.name() == "set" {
                let words: Vec<&str> = command.words[1..].iter().map(String::as_str).collect();
                note(&words);
            }
        }
    }
    let missing: Vec<&str> = [(errexit, "-e"), (nounset, "-u"), (pipefail, "-o pipefail")]
        .into_iter()
        .filter(|(on, _)| !on)
        .map(|(_, flag)| flag)
        .collect();
    if !missing.is_empty() {
        out.push(Diagnostic::new(
            &rules::S002_STRICT_MODE,
            at(1),
            format!(
                "the script does not set {}; add 'set -euo pipefail' after the #! line so a \
                 failing command stops the installation",
                missing.join(", ")
            ),
        ));
    }
}

fn check_stdin(lines: &[Line], at: &dyn Fn(usize) -> String, out: &mut Vec<Diagnostic>) {
    for (index, line) in lines.iter().enumerate() {
        if line.kind != LineKind::Code {
            continue;
        }
        let continued = index > 0 && {
            let previous = lines[index - 1].text.trim_end();
            previous.ends_with('|') || previous.ends_with('\\')
        };
        for command in commands(&line.text) {
            if command.piped || command.redirects_stdin() || continued {
                continue;
            }
            let reads = match command.name() {
                "read" => {
                    !command.words.iter().any(|w| w.starts_with("-u"))
                        && !loop_input_redirected(lines, index)
                }
                "cat" => cat_reads_stdin(&command),
                "tee" => true,
                _ => false,
            };
            if reads {
                out.push(Diagnostic::new(
                    &rules::S003_READS_STDIN,
                    at(line.number),
                    format!(
                        "'{}' reads stdin, which is /dev/null for installers; read from a file \
                         or a variable instead",
                        command.name()
                    ),
                ));
            }
        }
    }
}

/// `while read …; do … done < file`: the `done` at the loop's indentation redirects stdin.
fn loop_input_redirected(lines: &[Line], start: usize) -> bool {
    let text = &lines[start].text;
    if !(text.contains("while") || text.contains("until")) {
        return false;
    }
    let indent = text.len() - text.trim_start().len();
    lines[start..]
        .iter()
        .filter(|l| l.kind == LineKind::Code)
        .find(|l| {
            let trimmed = l.text.trim_start();
            let here = l.text.len() - trimmed.len();
            (here == indent && trimmed.starts_with("done")) || trimmed.contains("; done")
        })
        .is_some_and(|done| done.text.contains('<'))
}

fn cat_reads_stdin(command: &Command) -> bool {
    let mut operands = 0;
    let mut words = command.words[1..].iter();
    while let Some(word) = words.next() {
        if word == "-" {
            return true;
        }
        if matches!(word.as_str(), ">" | ">>" | "1>" | "2>" | "&>" | "2>>") {
            words.next();
        } else if word.starts_with('>') || word.starts_with("2>") || word.starts_with("&>") {
            // `>file`, `2>&1`.
        } else if !word.starts_with('-') {
            operands += 1;
        }
    }
    operands == 0
}

fn check_interactive(lines: &[Line], at: &dyn Fn(usize) -> String, out: &mut Vec<Diagnostic>) {
    const MANAGERS: &[&str] = &["apt-get", "apt", "aptitude", "dnf", "yum"];
    const CHANGING: &[&str] = &[
        "install",
        "upgrade",
        "dist-upgrade",
        "full-upgrade",
        "remove",
        "purge",
        "autoremove",
        "reinstall",
    ];
    for line in lines.iter().filter(|l| l.kind == LineKind::Code) {
        for command in commands(&line.text) {
            if !MANAGERS.contains(&command.name()) {
                continue;
            }
            let args = &command.words[1..];
            let Some(action) = args.iter().find(|w| !w.starts_with('-')) else {
                continue;
            };
            if !CHANGING.contains(&action.as_str()) {
                continue;
            }
            let assumes_yes = args.iter().any(|w| {
                matches!(w.as_str(), "--yes" | "--assume-yes" | "-qq" | "-q=2")
                    || (w.starts_with('-') && !w.starts_with("--") && w.contains('y'))
            });
            if !assumes_yes {
                out.push(Diagnostic::new(
                    &rules::S007_INTERACTIVE_COMMAND,
                    at(line.number),
                    format!(
                        "'{} {action}' asks for confirmation and aborts without a terminal; add -y",
                        command.name()
                    ),
                ));
            }
        }
    }
}

static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$(\{[#!]?)?([A-Z][A-Z0-9_]*)(\S?)").expect("valid regex"));
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s;&|(])([A-Z][A-Z0-9_]*)(?:\[[^\]]*\])?\+?=").expect("valid regex")
});
static DECLARATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:export|local|readonly|declare|typeset|read|unset|mapfile|readarray|getopts|for|printf\s+-v)\b([^;&|]*)")
        .expect("valid regex")
});
static SOURCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s;&|(])(?:\.|source)\s+/etc/(os|lsb)-release\b").expect("valid regex")
});

fn check_variables(
    lines: &[Line],
    manifest: Option<&Manifest>,
    at: &dyn Fn(usize) -> String,
    out: &mut Vec<Diagnostic>,
) {
    let inputs: Vec<&InputSpec> = manifest
        .map(|m| m.inputs.iter().collect())
        .unwrap_or_default();
    let declared: BTreeSet<String> = inputs.iter().map(|i| i.env_name()).collect();
    let assigned = assigned_names(lines);
    let guarded = guarded_names(lines);
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for line in lines.iter().filter(|l| l.expands()) {
        for capture in REFERENCE.captures_iter(&line.text) {
            let name = &capture[2];
            let braced = capture.get(1).is_some();
            let after = capture.get(3).map_or("", |m| m.as_str());
            if let Some(input) = inputs.iter().find(|i| i.env_name() == name) {
                let may_be_unset =
                    (!input.required && input.default.is_none()) || !input.visible_if.is_empty();
                // A script that guards the name anywhere (`${NAME:-}`, `${NAME:+…}`,
                // `[[ -v NAME ]]`) knows it may be unset; its plain uses are left alone.
                let has_fallback = (braced && matches!(after, ":" | "-" | "=" | "+" | "?"))
                    || guarded.contains(name);
                let key = format!("S008 {name}");
                if may_be_unset && !has_fallback && !assigned.contains(name) && reported.insert(key)
                {
                    out.push(Diagnostic::new(
                        &rules::S008_OPTIONAL_WITHOUT_FALLBACK,
                        at(line.number),
                        format!(
                            "${name} may be unset (the input is optional or hidden by visible_if) \
                             and set -u stops the script; write ${{{name}:-}}"
                        ),
                    ));
                }
                continue;
            }
            if declared.contains(name)
                || is_contract_or_shell_variable(name)
                || assigned.contains(name)
                || !reported.insert(name.to_owned())
            {
                continue;
            }
            let hint = closest(name, &declared)
                .map(|close| format!("; did you mean ${close}?"))
                .unwrap_or_default();
            out.push(Diagnostic::new(
                &rules::S004_UNKNOWN_VARIABLE,
                at(line.number),
                format!(
                    "${name} is not a declared input, a contract variable or assigned in the \
                     script; it is unset when the script runs{hint}"
                ),
            ));
        }
    }
}

static GUARD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{([A-Z][A-Z0-9_]*):?[-=+?]|-v\s+([A-Z][A-Z0-9_]*)").expect("valid regex")
});

/// Names the script reads with a guard somewhere: `${NAME:-…}`, `${NAME:+…}`, `-v NAME`.
fn guarded_names(lines: &[Line]) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|l| l.kind == LineKind::Code)
        .flat_map(|l| GUARD.captures_iter(&l.text).collect::<Vec<_>>())
        .filter_map(|c| c.get(1).or(c.get(2)).map(|m| m.as_str().to_owned()))
        .collect()
}

/// Every UPPERCASE name the script assigns or declares somewhere.
fn assigned_names(lines: &[Line]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in lines.iter().filter(|l| l.kind == LineKind::Code) {
        for capture in ASSIGNMENT.captures_iter(&line.text) {
            names.insert(capture[1].to_owned());
        }
        for capture in DECLARATION.captures_iter(&line.text) {
            for word in capture[1].split_whitespace() {
                let word = word.split('=').next().unwrap_or_default();
                if word.starts_with(|c: char| c.is_ascii_uppercase())
                    && word
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    names.insert(word.to_owned());
                }
            }
        }
        for capture in SOURCE.captures_iter(&line.text) {
            let defined = if &capture[1] == "os" {
                OS_RELEASE_VARIABLES
            } else {
                LSB_RELEASE_VARIABLES
            };
            names.extend(defined.iter().map(|n| (*n).to_owned()));
        }
    }
    names
}

/// A declared name within edit distance 2, for a typo hint.
fn closest<'a>(name: &str, declared: &'a BTreeSet<String>) -> Option<&'a str> {
    declared
        .iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, candidate)| candidate.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}
