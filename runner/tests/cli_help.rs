//! The runner's `--help` shows each setting's default (the settings are optional so that the
//! layers can be merged, so clap would not show them by itself).

use outfitter_runner::cli::command;
use outfitter_runner::config::default;

fn help(sub: &str) -> String {
    let mut cmd = command();
    cmd.build();
    cmd.find_subcommand_mut(sub)
        .expect("subcommand exists")
        .render_long_help()
        .to_string()
}

#[test]
fn run_help_shows_the_defaults() {
    let h = help("run");
    for shown in [
        format!("[default: {}]", default::REDIS_URL),
        format!("[default: {}]", default::STATE_DIR),
        format!("[default: {}]", default::PIDS_MAX),
        "[default: text]".to_owned(),
    ] {
        assert!(h.contains(&shown), "{shown} missing in:\n{h}");
    }
}

#[test]
fn man_pages_are_written_for_each_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    outfitter_runner::cli::man_pages(dir.path()).unwrap();
    for page in [
        "outfitter-runner.1",
        "outfitter-runner-run.1",
        "outfitter-runner-exec.1",
    ] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
}
