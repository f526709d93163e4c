//! `completions <shell>` and `man <dir>`: generated from the command line's definition, so
//! they list exactly the flags the binary takes.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

/// Writes the completion script of `shell` for the whole command line.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut cmd = super::args::command();
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

/// Writes `outfitter-panel.1` and one page per subcommand (`outfitter-panel-agent-add.1`, ...)
/// into `dir`.
pub fn man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(super::args::command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))
}
