//! The `pagesplit` command line: parses flags and configuration, starts logging, hands over to
//! the library.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pagesplit::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Exit code of a runtime failure.
const EXIT_RUNTIME: u8 = 1;
/// Exit code of a usage or configuration error.
const EXIT_USAGE: u8 = 2;

/// Splits raw scraped web pages into typed quote and article events.
///
/// Configuration is layered: defaults, then the TOML file (--config), then PAGESPLIT_<SECTION>__<KEY>
/// environment variables, then --set flags.
///
/// Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error.
#[derive(Parser, Debug)]
#[command(name = "pagesplit", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, short, global = true, env = "PAGESPLIT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides one configuration key, e.g. --set kafka.bootstrap_servers=broker:9092 (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    overrides: Vec<(String, String)>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the worker: consumes raw pages and publishes quote and article events.
    ///
    /// Example: pagesplit run --config deploy/pagesplit.example.toml
    Run,
    /// Splits page files offline (no Kafka) and prints one JSON object per event.
    ///
    /// Inputs are plain-text or HTML pages, JSON envelopes, JSON lines of envelopes, or
    /// directories of them; standard input when none is given. A summary goes to stderr.
    ///
    /// Example: pagesplit split tests/fixtures/pages/brecorder-putin-assad.masked.txt
    Split {
        /// Files or directories.
        inputs: Vec<PathBuf>,
        /// URL to stamp on plain pages (default: the file:// URL of the file).
        #[arg(long)]
        url: Option<String>,
        /// Fetch time (RFC 3339) to stamp on plain pages (default: the file's modification time).
        #[arg(long, value_parser = parse_time)]
        fetched_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Publishes the example pages to a local broker, runs the worker until they are
    /// committed, and prints the events read back from the output topics.
    ///
    /// Example: pagesplit demo --pages examples/pages
    Demo {
        /// Directory of .txt/.html pages to publish.
        #[arg(long, default_value = "examples/pages")]
        pages: PathBuf,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Schema tools: print the bundled Avro schemas, register them, or check them against the
    /// registry's compatibility rules.
    Schemas {
        #[command(subcommand)]
        command: SchemasCommand,
    },
    /// Dead-letter tools.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Exits 0 when the running worker's /healthz answers (for container health checks).
    Healthcheck,
}

#[derive(Subcommand, Debug)]
enum DlqCommand {
    /// Re-publishes dead-lettered pages (original key, value and headers) to the raw topic,
    /// for example after a parser fix.
    ///
    /// Example: pagesplit dlq replay --code no_content --code empty_body
    Replay {
        /// Only dead letters with this error code (repeatable; all when absent).
        #[arg(long = "code")]
        codes: Vec<String>,
        /// Only dead letters of this stage (decode, parse, encode).
        #[arg(long)]
        stage: Option<String>,
        /// Topic to publish to (default: topics.input).
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Prints the effective configuration (secrets redacted); exits 2 when it is invalid.
    ///
    /// Example: PAGESPLIT_KAFKA__GROUP_ID=prod pagesplit config check --config pagesplit.toml
    Check,
}

#[derive(Subcommand, Debug)]
enum SchemasCommand {
    /// Prints the bundled schemas.
    Print,
    /// Registers the schemas under their TopicNameStrategy subjects.
    Register,
    /// Checks the schemas against the registered versions; exits 1 when incompatible.
    Check,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 time: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars(), &cli.overrides) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Command::Config {
        command: ConfigCommand::Check,
    } = cli.command
    {
        print!("{}", config.redacted_toml());
        return ExitCode::SUCCESS;
    }
    if let Command::Split {
        inputs,
        url,
        fetched_at,
    } = &cli.command
    {
        return split(&config, inputs, url.clone(), *fetched_at);
    }
    init_tracing(&config);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the runtime: {error}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run => {
                tracing::info!(config = %config.redacted_toml(), "effective configuration");
                pagesplit::app::run(config, pagesplit::shutdown::signal_token()).await
            }
            Command::Demo { pages } => pagesplit::demo::run_demo(config, &pages, &mut std::io::stdout().lock()).await,
            Command::Schemas { command } => schemas(&config, command).await,
            Command::Healthcheck => healthcheck(&config).await,
            Command::Dlq {
                command: DlqCommand::Replay { codes, stage, to },
            } => {
                let to = to.unwrap_or_else(|| config.topics.input.clone());
                let filter = pagesplit::dlq::ReplayFilter { codes, stage };
                let summary = pagesplit::dlq::replay(
                    &config.kafka.bootstrap_servers,
                    &config.topics.dead_letter,
                    &to,
                    &filter,
                )
                .await?;
                println!(
                    "replayed {} of {} dead letters from {} to {to}",
                    summary.replayed, summary.read, config.topics.dead_letter
                );
                Ok(())
            }
            Command::Split { .. } | Command::Config { .. } => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn split(
    config: &Config,
    inputs: &[PathBuf],
    url: Option<String>,
    fetched_at: Option<chrono::DateTime<chrono::Utc>>,
) -> ExitCode {
    use pagesplit::split::{expand_inputs, split_into, PageDefaults, Summary};
    let started = std::time::Instant::now();
    let options = config.parse.options();
    let defaults = PageDefaults { url, fetched_at };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut summary = Summary::default();
    let mut failed = false;
    let result = if inputs.is_empty() {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .and_then(|_| split_into(&bytes, None, &defaults, &options, &mut out, &mut summary))
    } else {
        match expand_inputs(inputs) {
            Ok(files) => files.iter().try_for_each(|file| match std::fs::read(file) {
                Ok(bytes) => split_into(&bytes, Some(file), &defaults, &options, &mut out, &mut summary),
                Err(error) => {
                    eprintln!("{}: {error}", file.display());
                    failed = true;
                    Ok(())
                }
            }),
            Err(error) => Err(error),
        }
    };
    let flushed = out.flush();
    if let Err(error) = result.and(flushed) {
        eprintln!("error: {error}");
        return ExitCode::from(EXIT_RUNTIME);
    }
    eprintln!("{summary} in {} ms", started.elapsed().as_millis());
    if failed || !summary.errors.is_empty() {
        ExitCode::from(EXIT_RUNTIME)
    } else {
        ExitCode::SUCCESS
    }
}

async fn schemas(config: &Config, command: SchemasCommand) -> anyhow::Result<()> {
    use pagesplit::encode::{ARTICLE_SCHEMA_JSON, QUOTE_SCHEMA_JSON};
    use pagesplit::registry::{value_subject, RegistryClient};
    let subjects = [
        (value_subject(&config.topics.quotes), QUOTE_SCHEMA_JSON),
        (value_subject(&config.topics.articles), ARTICLE_SCHEMA_JSON),
    ];
    match command {
        SchemasCommand::Print => {
            for (subject, schema) in subjects {
                println!("# {subject}\n{schema}");
            }
            Ok(())
        }
        SchemasCommand::Register => {
            let client = RegistryClient::new(&config.registry)?;
            let level = Some(config.registry.compatibility.as_str()).filter(|level| !level.is_empty());
            for (subject, schema) in subjects {
                let id = client.register_with_level(&subject, schema, level).await?;
                println!("{subject}: id {id}");
            }
            Ok(())
        }
        SchemasCommand::Check => {
            let client = RegistryClient::new(&config.registry)?;
            let mut incompatible = 0;
            for (subject, schema) in subjects {
                match client.check_compatibility(&subject, schema).await? {
                    Ok(()) => println!("{subject}: compatible"),
                    Err(messages) => {
                        incompatible += 1;
                        let reason = if messages.is_empty() {
                            "(the registry gave no reason)".to_owned()
                        } else {
                            messages.join("; ")
                        };
                        println!("{subject}: INCOMPATIBLE {reason}");
                    }
                }
            }
            if incompatible > 0 {
                anyhow::bail!("{incompatible} schema(s) incompatible with the registry");
            }
            Ok(())
        }
    }
}

async fn healthcheck(config: &Config) -> anyhow::Result<()> {
    let mut address = config.http.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let response = reqwest::Client::new()
        .get(format!("http://{address}/healthz"))
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "/healthz answered {}",
        response.status()
    );
    Ok(())
}
