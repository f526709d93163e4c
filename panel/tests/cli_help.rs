//! Each subcommand's `--help` lists the settings it reads and none of the others (which
//! `serve` takes); completions and man pages come from the same definition.

use std::collections::BTreeSet;

use outfitter_panel::cli::args::command;

/// The `--long` flags in a subcommand's rendered help.
fn flags_in_help(path: &[&str]) -> BTreeSet<String> {
    let mut cmd = command();
    cmd.build();
    let mut sub = &mut cmd;
    for name in path {
        sub = sub.find_subcommand_mut(name).expect("subcommand exists");
    }
    let help = sub.render_long_help().to_string();
    help.split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| {
            w.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn one_shot_commands_list_only_the_settings_they_read() {
    let serve = flags_in_help(&["serve"]);
    assert!(serve.len() >= 13, "serve lists every setting: {serve:?}");
    // Redis: its URL (a cluster's seed nodes with --redis-cluster) and the TLS files for a
    // rediss:// one.
    let redis = [
        "redis-url",
        "redis-cluster",
        "redis-ca-file",
        "redis-client-cert",
        "redis-client-key",
    ];
    let with = |more: &[&str]| set(&[&redis[..], &["config", "log-format", "help"], more].concat());
    let with_secret = with(&["secret-file"]);
    for path in [["agent", "config"], ["agent", "rotate"]] {
        assert_eq!(flags_in_help(&path), with_secret, "{path:?}");
    }
    // `agent add` also sets the server's first labels and can make its Redis user.
    let mut add = with_secret;
    add.insert("label".to_owned());
    add.insert("redis-user".to_owned());
    assert_eq!(flags_in_help(&["agent", "add"]), add);
    assert_eq!(flags_in_help(&["agent", "remove"]), with(&["force"]));
    assert_eq!(flags_in_help(&["token", "add"]), with(&["name", "role"]));
    let lint = flags_in_help(&["lint"]);
    assert!(
        !lint.contains("redis-url") && !lint.contains("bind"),
        "{lint:?}"
    );
}

#[test]
fn a_one_shot_command_refuses_a_serve_only_flag() {
    let e = command()
        .try_get_matches_from([
            "outfitter-panel",
            "agent",
            "add",
            "web-1",
            "--bind",
            "0.0.0.0:1",
        ])
        .unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{e}");
}

#[test]
fn completions_and_man_pages_cover_the_subcommands() {
    let mut bash = Vec::new();
    outfitter_panel::cli::docs::completions(clap_complete::Shell::Bash, &mut bash).unwrap();
    let bash = String::from_utf8(bash).unwrap();
    assert!(
        bash.contains("--secret-file") && bash.contains("rotate"),
        "{bash}"
    );
    let dir = tempfile::tempdir().unwrap();
    outfitter_panel::cli::docs::man_pages(dir.path()).unwrap();
    let page = std::fs::read_to_string(dir.path().join("outfitter-panel-agent-add.1")).unwrap();
    assert!(
        page.contains("secret\\-file") && !page.contains("max\\-body\\-bytes"),
        "{page}"
    );
    assert!(dir.path().join("outfitter-panel.1").exists());
}
