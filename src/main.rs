//! The `pagesplit` command line: parses the arguments and calls the command; the commands live in
//! `pagesplit::cli`.

use std::process::ExitCode;

use clap::Parser as _;
use pagesplit::cli::args::{Cli, Command, ConfigCommand, DlqCommand};
use pagesplit::cli::{self, block_on, exit_code};
use pagesplit::config::Config;

/// Records are allocated on the split threads and freed on the runtime's after delivery; mimalloc
/// frees across threads without the arena locks of the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let Cli {
        config,
        overrides,
        command,
    } = Cli::parse();
    if let Command::Completions { shell } = command {
        return exit_code(cli::completions::print(shell));
    }
    let config = match cli::load_config(config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let result = match command {
        Command::Config {
            command: ConfigCommand::Check,
        } => cli::config::check(&config),
        Command::Split(args) => cli::split::run(&config, &args),
        command => {
            cli::logs::init(&config, command.quiets_kafka_logs());
            config.warn_insecure_credentials();
            block_on(run_async(config, command))
        }
    };
    exit_code(result)
}

/// The commands that run on the async runtime.
async fn run_async(config: Config, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run => cli::run::run(config).await,
        Command::Replay(args) => cli::replay::run(&config, args).await,
        Command::Tail(args) => cli::tail::run(&config, args).await,
        Command::Demo { pages } => cli::demo::run(config, &pages, &mut std::io::stdout().lock()).await,
        Command::Schemas { command } => cli::schemas::run(&config, command).await,
        Command::Healthcheck => cli::healthcheck::check(&config).await,
        Command::Dlq {
            command: DlqCommand::Replay(args),
        } => cli::dlq::replay(&config, args).await,
        Command::Split(_) | Command::Config { .. } | Command::Completions { .. } => {
            unreachable!("run without the runtime")
        }
    }
}
