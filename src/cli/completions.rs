//! `pagesplit completions`: a shell completion script from the command line's definition.

use clap::CommandFactory as _;
use clap_complete::Generator as _;

use super::args::Cli;

/// Prints the completion script of `shell` on stdout.
pub fn print(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut command = Cli::command();
    command.set_bin_name("pagesplit");
    command.build();
    shell.try_generate(&command, &mut std::io::stdout())?;
    Ok(())
}
