//! The `pagesplit` command line: parses flags and configuration, starts logging, hands over to
//! the library.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};
use pagesplit::cli::args::{Cli, Command, ConfigCommand, DlqCommand, PageArgs, ProgressArgs, SchemasCommand};
use pagesplit::cli::progress::{Measure, Progress};
use pagesplit::cli::UsageError;
use pagesplit::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Records are allocated on the split threads and freed on the runtime's after delivery; mimalloc
/// frees across threads without the arena locks of the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code of a runtime failure.
const EXIT_RUNTIME: u8 = 1;
/// Exit code of a usage or configuration error.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        use clap_complete::Generator as _;
        let mut command = Cli::command();
        command.set_bin_name("pagesplit");
        command.build();
        return exit_code(shell.try_generate(&command, &mut std::io::stdout()).map_err(Into::into));
    }
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
        out,
        page,
        progress,
    } = &cli.command
    {
        return exit_code(split(&config, inputs, out.as_deref(), page, progress));
    }
    // The client commands report broker trouble in their own words; librdkafka's log lines
    // (one per reconnect attempt) would drown them, unless asked for in log.level.
    let quiet_kafka = matches!(cli.command, Command::Replay { .. } | Command::Tail { .. });
    init_tracing(&config, quiet_kafka);
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
            Command::Replay {
                sources,
                topic,
                rate,
                page,
                kafka,
                progress,
            } => {
                let options = pagesplit::cli::replay::ReplayOptions {
                    topic: topic.unwrap_or_else(|| config.topics.input.clone()),
                    rate,
                    timeout: kafka.timeout,
                };
                replay(&config, &sources, &page, &progress, &options).await
            }
            Command::Tail {
                topic,
                from_beginning,
                count,
                metadata,
                kafka,
                progress,
            } => {
                let options = pagesplit::cli::tail::TailOptions {
                    topic: topic.unwrap_or_else(|| config.topics.quotes.clone()),
                    from_beginning,
                    count,
                    metadata,
                    timeout: kafka.timeout,
                };
                tail(&config, &options, &progress).await
            }
            Command::Demo { pages } => pagesplit::demo::run_demo(config, &pages, &mut std::io::stdout().lock()).await,
            Command::Schemas { command } => schemas(&config, command).await,
            Command::Healthcheck => healthcheck(&config).await,
            Command::Dlq {
                command: DlqCommand::Replay { codes, stage, to },
            } => {
                let to = to.unwrap_or_else(|| config.topics.input.clone());
                let filter = pagesplit::dlq::ReplayFilter { codes, stage };
                let summary = pagesplit::dlq::replay(&config, &to, &filter).await?;
                println!(
                    "replayed {} of {} dead letters from {} to {to}",
                    summary.replayed, summary.read, config.topics.dead_letter
                );
                if summary.omitted > 0 {
                    println!(
                        "{} selected dead letter(s) hold no value (pagesplit.value.omitted): not replayed; \
                         their pages are at the source offsets logged above",
                        summary.omitted
                    );
                }
                Ok(())
            }
            Command::Split { .. } | Command::Config { .. } | Command::Completions { .. } => {
                unreachable!("handled above")
            }
        }
    });
    // A reader still blocked on standard input (after Ctrl-C) must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    exit_code(result)
}

/// 0 for success, 2 for a usage error, 1 for anything else; the error goes to stderr.
fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`pagesplit split … | head`): it has what it wanted.
        Err(error)
            if error.chain().any(|cause| {
                cause.downcast_ref::<std::io::Error>().map(std::io::Error::kind) == Some(std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_RUNTIME)
            }
        }
    }
}

/// A command's result when some of its work failed but it went on with the rest.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PartialFailure(String);

fn init_tracing(config: &Config, quiet_kafka: bool) {
    let mut level = config.log.level.clone();
    if quiet_kafka && !level.contains("rdkafka") {
        level.push_str(",librdkafka=off,rdkafka=off");
    }
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn page_defaults(page: &PageArgs) -> pagesplit::split::PageDefaults {
    pagesplit::split::PageDefaults {
        url: page.url.clone(),
        fetched_at: page.fetched_at,
    }
}

fn split(
    config: &Config,
    inputs: &[std::path::PathBuf],
    out: Option<&std::path::Path>,
    page: &PageArgs,
    progress: &ProgressArgs,
) -> anyhow::Result<()> {
    use pagesplit::split::{split_inputs_filtered, AvroFiles, EventSink, JsonLines};
    let started = std::time::Instant::now();
    let inputs = pagesplit::cli::inputs::collect_inputs(inputs)?;
    let total = pagesplit::cli::inputs::total_size(&inputs);
    let progress = Progress::new("split", "pages", Measure::Bytes, total, progress.progress_interval);
    let stdout = std::io::stdout();
    let mut sink: Box<dyn EventSink> = match out {
        Some(directory) => Box::new(AvroFiles::create(directory)?),
        None => {
            let on_terminal = stdout.is_terminal();
            Box::new(JsonLines::new(
                std::io::BufWriter::new(stdout.lock()),
                progress.clone(),
                on_terminal,
            ))
        }
    };
    // `quotes.emit = "changed"` leaves out what the worker would leave out of the quote topic.
    let mut quote_filter = config
        .quotes
        .changed_only()
        .then(|| pagesplit::quote_filter::QuoteFilter::new(config.quotes.max_symbols));
    let summary = split_inputs_filtered(
        &inputs,
        &page_defaults(page),
        &config.parse.options(),
        quote_filter.as_mut(),
        &mut *sink,
        &progress,
    );
    progress.finish();
    let written = sink.finish()?;
    let summary = summary?;
    if let Some(written) = written {
        eprintln!("{written}");
    }
    eprintln!("{summary} in {}", pagesplit::cli::elapsed_text(started.elapsed()));
    if summary.errors.is_empty() {
        Ok(())
    } else {
        let failed: usize = summary.errors.values().sum();
        Err(PartialFailure(format!("{failed} page(s) could not be split (see above)")).into())
    }
}

async fn replay(
    config: &Config,
    sources: &[std::path::PathBuf],
    page: &PageArgs,
    progress: &ProgressArgs,
    options: &pagesplit::cli::replay::ReplayOptions,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let inputs = pagesplit::cli::inputs::collect_inputs(sources)?;
    let total = pagesplit::cli::inputs::total_size(&inputs);
    let progress = Progress::new("replay", "pages", Measure::Bytes, total, progress.progress_interval);
    let summary = pagesplit::cli::replay::replay(
        config,
        inputs,
        page_defaults(page),
        options,
        &progress,
        pagesplit::shutdown::signal_token(),
    )
    .await;
    progress.finish();
    let summary = summary?;
    eprintln!(
        "replay to `{}` at {}: {summary} in {}",
        options.topic,
        config.kafka.bootstrap_servers,
        pagesplit::cli::elapsed_text(started.elapsed())
    );
    let unreadable: usize = summary.errors.values().sum();
    if summary.interrupted {
        Err(PartialFailure(format!(
            "interrupted after {} pages were acknowledged",
            summary.acknowledged
        ))
        .into())
    } else if summary.failed > 0 {
        Err(PartialFailure(format!(
            "{} of {} pages were not acknowledged",
            summary.failed, summary.pages
        ))
        .into())
    } else if unreadable > 0 {
        Err(PartialFailure(format!(
            "{unreadable} input(s) or record(s) could not be read as pages (see above)"
        ))
        .into())
    } else {
        Ok(())
    }
}

async fn tail(
    config: &Config,
    options: &pagesplit::cli::tail::TailOptions,
    progress: &ProgressArgs,
) -> anyhow::Result<()> {
    // Following without a count is open-ended: no bar, the events are the progress.
    let progress = match options.count {
        Some(count) => Progress::new(
            "tail",
            "events",
            Measure::Items,
            Some(count),
            progress.progress_interval,
        ),
        None => Progress::hidden(),
    };
    let mut stdout = std::io::stdout();
    let summary = pagesplit::cli::tail::tail(
        config,
        options,
        &mut stdout,
        &progress,
        pagesplit::shutdown::signal_token(),
    )
    .await;
    progress.finish();
    let summary = summary?;
    eprintln!(
        "tail `{}`: {} events printed, {} records not decodable",
        options.topic, summary.printed, summary.undecodable
    );
    Ok(())
}

async fn schemas(config: &Config, command: SchemasCommand) -> anyhow::Result<()> {
    use pagesplit::registry::RegistryClient;
    let subjects = pagesplit::app::value_subjects(config);
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
