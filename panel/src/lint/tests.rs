//! One test per script rule (S001–S009), plus the whole linter on the seed nginx fixture.

use std::path::Path;

use outfitter_contract::manifest::{Diagnostic, Manifest, parse_manifest};

use super::{check_script, lint_bundle, shellcheck};

const STRICT: &str = "#!/usr/bin/env bash\nset -euo pipefail\n";

fn manifest() -> Manifest {
    let yaml = r#"
id: app
name: App
version: "1"
description: d
category: web
author: a
os_requirements: { family: [debian] }
timeout_seconds: 60
idempotent: true
inputs:
  - { name: server_name, type: string, label: S, required: true }
  - { name: admin_email, type: email, label: E }
  - { name: tls, type: boolean, label: T }
  - { name: cert_path, type: string, label: C, required: true, visible_if: { tls: true } }
"#;
    parse_manifest(yaml.as_bytes()).expect("test manifest parses")
}

fn check(body: &str) -> Vec<Diagnostic> {
    check_script(
        "install.sh",
        format!("{STRICT}{body}").as_bytes(),
        Some(&manifest()),
    )
}

fn rules(diagnostics: &[Diagnostic]) -> Vec<&'static str> {
    diagnostics.iter().map(|d| d.rule).collect()
}

fn has(body: &str, rule: &str) -> bool {
    rules(&check(body)).contains(&rule)
}

#[test]
fn clean_script_has_no_findings() {
    let found = check("apt-get install -y nginx\necho \"$SERVER_NAME\"\n");
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn script_without_shebang_is_an_error() {
    let found = check_script("install.sh", b"set -euo pipefail\necho hi\n", None);
    let first = found.iter().find(|d| d.rule == "S001").expect("S001");
    assert!(first.is_error());
    assert_eq!(first.path, "install.sh:1");
}

#[test]
fn script_without_strict_mode_is_an_error() {
    let found = check_script("install.sh", b"#!/bin/bash\nset -e\necho hi\n", None);
    let finding = found.iter().find(|d| d.rule == "S002").expect("S002");
    assert!(finding.message.contains("-u") && finding.message.contains("pipefail"));
    assert!(
        !finding.message.contains("-e,"),
        "errexit is set: {}",
        finding.message
    );
}

#[test]
fn strict_mode_spelled_out_or_in_the_shebang_is_accepted() {
    for script in [
        "#!/bin/bash\nset -o errexit\nset -o nounset\nset -o pipefail\n",
        "#!/bin/bash -eu\nset -o pipefail\n",
        "#!/bin/bash\nset -Eeuo pipefail\n",
        "#!/bin/bash\nset -e -u -o pipefail\n",
    ] {
        let found = check_script("install.sh", script.as_bytes(), None);
        assert!(!rules(&found).contains(&"S002"), "{script:?}: {found:?}");
    }
}

#[test]
fn reading_stdin_is_a_warning() {
    for body in [
        "read -r answer\n",
        "cat > /etc/app.conf\n",
        "x=$(cat)\n",
        "tee /etc/x\n",
        "cat -\n",
    ] {
        let found = check(body);
        let finding = found
            .iter()
            .find(|d| d.rule == "S003")
            .unwrap_or_else(|| panic!("{body:?}"));
        assert!(!finding.is_error());
        assert_eq!(finding.path, "install.sh:3");
    }
}

#[test]
fn reads_with_a_redirect_pipe_or_heredoc_are_not_stdin_reads() {
    for body in [
        "read -r line < /etc/hostname\n",
        "while read -r line; do\n  echo \"$line\"\ndone < /etc/hosts\n",
        "printf 'a\\n' | while read -r x; do echo \"$x\"; done\n",
        "cat > /etc/app.conf <<EOF\nread this text\nEOF\n",
        "cat /etc/os-release\n",
        "echo hi | tee /tmp/x\n",
        "# read -r answer\n",
        "echo 'cat'\n",
        "read -r x <<< \"abc\"\n",
        "ls |\n  cat\n",
    ] {
        assert!(
            !has(body, "S003"),
            "false positive on {body:?}: {:?}",
            check(body)
        );
    }
}

fn s003_lines(body: &str) -> Vec<String> {
    check(body)
        .into_iter()
        .filter(|d| d.rule == "S003")
        .map(|d| d.path)
        .collect()
}

#[test]
fn the_word_read_in_quoted_text_is_not_a_stdin_read() {
    for body in [
        "echo \"please read the docs\"\n",
        "log() { echo \"$*\"; }\nlog \"read-only mode\"\n",
        "echo \"done; read the docs\"\n",
        "echo \"step (read config) | read more && read on\"\n",
        "echo \"first line\nread the second line\"\n",
        "echo 'it is done; read on'\n",
        "echo \"it's done; read on\"\n",
        "echo \"${SERVER_NAME}: done; read the docs\"\n",
        "msg=\"$(printf '%s' \"x\"); read the docs\"\necho \"$msg\"\n",
    ] {
        assert_eq!(s003_lines(body), Vec::<String>::new(), "{body:?}");
    }
}

#[test]
fn the_word_read_in_a_comment_is_not_a_stdin_read() {
    for body in [
        "# read -r answer\n",
        "echo hi # then read x\n",
        "echo hi; # read x\n",
        "  # read x < file, or read x\n",
    ] {
        assert_eq!(s003_lines(body), Vec::<String>::new(), "{body:?}");
    }
}

#[test]
fn read_without_a_redirect_is_flagged_even_beside_quotes_and_comments() {
    for (body, line) in [
        ("read x\n", "install.sh:3"),
        (
            "echo \"a; b\"; read -r x # \"quoted\" comment\n",
            "install.sh:3",
        ),
        ("echo \"first\nsecond\"\nread -r x\n", "install.sh:5"),
        ("answer=\"$(read -r x; echo \"$x\")\"\n", "install.sh:3"),
        ("if true; then read -r x; fi\n", "install.sh:3"),
    ] {
        assert_eq!(s003_lines(body), vec![line.to_owned()], "{body:?}");
    }
}

#[test]
fn read_from_a_file_redirect_is_not_a_stdin_read() {
    for body in [
        "read x < /etc/hostname\n",
        "read -r x </etc/hostname\n",
        "read -r -u 3 x 3< /etc/hostname\n",
    ] {
        assert_eq!(s003_lines(body), Vec::<String>::new(), "{body:?}");
    }
}

#[test]
fn read_from_a_here_string_is_not_a_stdin_read() {
    for body in [
        "v=abc\nread -r x <<< \"$v\"\n",
        "read -r a b <<< \"one two\"\n",
    ] {
        assert_eq!(s003_lines(body), Vec::<String>::new(), "{body:?}");
    }
}

#[test]
fn read_in_a_loop_fed_by_a_pipe_is_not_a_stdin_read() {
    for body in [
        "printf 'a\\n' | while read -r line; do echo \"$line\"; done\n",
        "ls /etc |\n  while read -r line; do\n    echo \"$line\"\n  done\n",
        "grep -v '^#' /etc/hosts | while IFS= read -r line; do echo \"$line\"; done\n",
    ] {
        assert_eq!(s003_lines(body), Vec::<String>::new(), "{body:?}");
    }
}

#[test]
fn undeclared_uppercase_variable_is_a_warning_with_a_typo_hint() {
    let found = check("echo \"$SERVERNAME\"\n");
    let finding = found.iter().find(|d| d.rule == "S004").expect("S004");
    assert!(!finding.is_error());
    assert!(
        finding.message.contains("$SERVER_NAME"),
        "{}",
        finding.message
    );
}

#[test]
fn inputs_contract_shell_and_assigned_variables_are_known() {
    for body in [
        "echo \"$SERVER_NAME $JOB_ID $DEBIAN_FRONTEND $HOME $BASH_SOURCE\"\n",
        "CONF=/etc/x\necho \"$CONF\"\n",
        "export WORKDIR=/srv\necho \"${WORKDIR}\"\n",
        "local_fn() { local TARGET=$1; echo \"$TARGET\"; }\n",
        ". /etc/os-release\necho \"$VERSION_CODENAME $ID\"\n",
        "for PKG in a b; do echo \"$PKG\"; done\n",
        "echo '$NOT_EXPANDED'\n",
        "echo \"\\$ESCAPED\"\n",
        "cat > /x <<'EOF'\n$QUOTED_HEREDOC\nEOF\n",
        "read -r ANSWER < /etc/hostname\necho \"$ANSWER\"\n",
    ] {
        assert!(
            !has(body, "S004"),
            "false positive on {body:?}: {:?}",
            check(body)
        );
    }
}

#[test]
fn unknown_variable_in_an_expanding_heredoc_is_reported() {
    assert!(has("cat > /x <<EOF\nroot $DOCROOT\nEOF\n", "S004"));
}

#[test]
fn shellcheck_findings_are_warnings_when_it_is_installed() {
    let dir = tempfile::tempdir().expect("tmp");
    let script = dir.path().join("install.sh");
    std::fs::write(&script, format!("{STRICT}x=$1\nrm -rf $x/*\n")).expect("write");
    let found = shellcheck::check(&script, "install.sh");
    if shellcheck::available() {
        let finding = found
            .iter()
            .find(|d| d.message.contains("SC2086"))
            .expect("SC2086");
        assert_eq!(finding.rule, "S005");
        assert!(!finding.is_error());
    } else {
        assert_eq!(
            rules(&found),
            vec!["S005"],
            "a missing shellcheck is reported when asked"
        );
    }
}

#[test]
fn binary_script_is_an_error() {
    let found = check_script("install.sh", b"#!/bin/bash\n\xff\xfe\x00", None);
    assert_eq!(rules(&found), vec!["S006"]);
}

#[test]
fn apt_install_without_yes_is_a_warning() {
    assert!(has("apt-get install nginx\n", "S007"));
    assert!(has("apt-get update && apt-get upgrade\n", "S007"));
    for body in [
        "apt-get install -y nginx\n",
        "apt-get -qq install nginx\n",
        "apt-get install --yes x\n",
        "apt-get update\n",
        "apt-get install -qy x\n",
    ] {
        assert!(!has(body, "S007"), "{body:?}");
    }
}

#[test]
fn input_that_may_be_unset_needs_a_fallback() {
    let found = check("echo \"$ADMIN_EMAIL $CERT_PATH\"\n");
    let unset: Vec<&str> = found
        .iter()
        .filter(|d| d.rule == "S008")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(unset.len(), 2, "{found:?}");
    assert!(!has(
        "echo \"${ADMIN_EMAIL:-} ${CERT_PATH:-none}\"\n",
        "S008"
    ));
    assert!(
        !has("echo \"$SERVER_NAME\"\n", "S008"),
        "required input is always set"
    );
}

#[test]
fn windows_line_endings_are_an_error() {
    let found = check_script("install.sh", b"#!/bin/bash\r\nset -euo pipefail\r\n", None);
    assert!(found.iter().any(|d| d.rule == "S009" && d.is_error()));
}

#[test]
fn seed_nginx_fixture_lints_clean_including_shellcheck() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contract/tests/fixtures/nginx");
    let result = lint_bundle(&dir, shellcheck::available());
    assert!(result.ok);
    assert!(result.findings.is_empty(), "{:#?}", result.findings);
}

#[test]
fn manifest_and_script_findings_are_reported_together() {
    let dir = tempfile::tempdir().expect("tmp");
    let bundle = dir.path().join("app");
    std::fs::create_dir(&bundle).expect("dir");
    // The manifest passes the schema but names another directory (M011, checked after the
    // schema), so the linter still has a manifest to check the script against. A manifest
    // that fails the schema has no model, and its script is not checked.
    std::fs::write(
        bundle.join("manifest.yml"),
        "id: other\nname: A\nversion: \"1\"\ndescription: d\ncategory: web\nauthor: a\n\
         os_requirements: { family: [debian] }\ntimeout_seconds: 60\nidempotent: true\n",
    )
    .expect("manifest");
    std::fs::write(bundle.join("install.sh"), "echo no shebang\n").expect("script");
    let result = lint_bundle(&bundle, false);
    assert!(!result.ok);
    let found: Vec<&str> = result.findings.iter().map(|f| f.diagnostic.rule).collect();
    assert!(found.contains(&"M011"), "the manifest finding: {found:?}");
    assert!(found.contains(&"S001"), "the script finding: {found:?}");
}
