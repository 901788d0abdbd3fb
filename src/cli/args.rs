//! The command line of `pagesplit`: every command, flag, help text and example.
//!
//! Kept in the library (not in `main.rs`) so tests can check the help of every command and
//! `pagesplit completions` can generate scripts from the same definition.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Splits raw scraped web pages into typed quote and article events.
///
/// Configuration is layered: defaults, then the TOML file (--config), then PAGESPLIT_<SECTION>__<KEY>
/// environment variables, then --set flags.
#[derive(Parser, Debug)]
#[command(
    name = "pagesplit",
    version,
    about,
    long_about,
    after_help = "\
Examples:
  pagesplit split examples/pages                      offline: events as JSON lines
  pagesplit replay examples/pages --set kafka.bootstrap_servers=127.0.0.1:9092
  pagesplit run --config deploy/pagesplit.example.toml
  pagesplit tail --from-beginning -n 10

Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error."
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, short, global = true, env = "PAGESPLIT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides one configuration key, e.g. --set kafka.bootstrap_servers=broker:9092 (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub overrides: Vec<(String, String)>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs the worker: consumes raw pages and publishes quote and article events.
    #[command(after_help = "\
Example:
  pagesplit run --config deploy/pagesplit.example.toml
  PAGESPLIT_KAFKA__BOOTSTRAP_SERVERS=broker:9092 pagesplit run --set topics.create=true")]
    Run,
    /// Splits pages offline (no Kafka) into events: JSON lines on stdout, or Avro files.
    ///
    /// Inputs are plain-text or HTML pages, JSON envelopes, JSON lines of envelopes, WARC files
    /// (.warc, .warc.gz: their `response` records) and directories, searched recursively for
    /// *.txt, *.html, *.htm, *.json, *.jsonl, *.ndjson, *.warc and *.warc.gz; standard input when
    /// none is given (or `-`). Events go to stdout as one JSON object per line, or with --out to
    /// Avro object container files quotes.avro and articles.avro. A summary (pages, events, errors
    /// by code, time) goes to stderr; pages that fail are counted and reported, and make the exit
    /// code 1 once everything else is done.
    #[command(after_help = "\
Examples:
  pagesplit split examples/pages/brecorder-putin-assad.masked.txt
  pagesplit split crawl-2024-12-08.warc.gz --out events     # events/quotes.avro, events/articles.avro
  cat pages.jsonl | pagesplit split > events.jsonl")]
    Split(SplitArgs),
    /// Publishes pages to the raw topic as JSON envelopes keyed by URL (backfills, demos).
    ///
    /// Takes the same inputs as `split`. Prints how many pages were read, sent and acknowledged
    /// by the brokers; exits 1 unless every page read was acknowledged.
    #[command(after_help = "\
Examples:
  pagesplit replay examples/pages
  pagesplit replay crawl.warc.gz --topic pages.raw --rate 50 --set kafka.bootstrap_servers=broker:9092")]
    Replay(ReplayArgs),
    /// Prints the events of an output topic as JSON lines, decoded as downstream sees them.
    ///
    /// Confluent-framed records are decoded with the writer schema fetched from the registry
    /// (registry.url) by the id in each record; single-object-encoded records with the bundled
    /// schemas. Without -n, follows the topic until Ctrl-C.
    #[command(after_help = "\
Examples:
  pagesplit tail                                   follow new quotes
  pagesplit tail --topic news.articles.v1 --from-beginning -n 1
  pagesplit tail --from-beginning -n 34 --metadata | jq -c '{symbol, price, partition, offset}'")]
    Tail(TailArgs),
    /// Publishes the example pages to a local broker, runs the worker until they are
    /// committed, and prints the events read back from the output topics.
    #[command(after_help = "\
Example:
  pagesplit demo --pages examples/pages --set kafka.bootstrap_servers=127.0.0.1:9092")]
    Demo {
        /// Directory of .txt/.html pages to publish.
        #[arg(long, default_value = "examples/pages")]
        pages: PathBuf,
    },
    /// Configuration tools.
    #[command(after_help = "\
Example:
  pagesplit config check --config deploy/pagesplit.example.toml")]
    Config {
        /// The configuration command.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Schema tools: print the bundled Avro schemas, register them, or check them against the
    /// registry's compatibility rules.
    #[command(after_help = "\
Examples:
  pagesplit schemas print
  pagesplit schemas check --set registry.url=http://registry:8081")]
    Schemas {
        /// The schema command.
        #[command(subcommand)]
        command: SchemasCommand,
    },
    /// Dead-letter tools.
    #[command(after_help = "\
Example:
  pagesplit dlq replay --code no_content")]
    Dlq {
        /// The dead-letter command.
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Exits 0 when the running worker's /healthz answers (for container health checks).
    #[command(after_help = "\
Example:
  pagesplit healthcheck --set http.listen=127.0.0.1:9808")]
    Healthcheck,
    /// Prints a shell completion script.
    #[command(after_help = "\
Examples:
  pagesplit completions bash > ~/.local/share/bash-completion/completions/pagesplit
  pagesplit completions zsh > \"${fpath[1]}/_pagesplit\"
  pagesplit completions fish > ~/.config/fish/completions/pagesplit.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

// The arguments of `split` (described by its variant of [`Command`]).
#[derive(Args, Debug, Clone)]
pub struct SplitArgs {
    /// Files or directories (standard input when none, or `-`).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Directory to write quotes.avro and articles.avro to, instead of JSON lines on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Block compression of the Avro files written with --out (deflate is read by every Avro
    /// implementation; snappy and zstandard are faster).
    #[arg(long, value_enum, default_value_t = Codec::Deflate, requires = "out")]
    pub codec: Codec,
    /// Threads that split pages (default: one per core). Events are written in input order.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// With --out: replace quotes.avro and articles.avro when they exist (a symbolic link is
    /// removed, never followed) and accept a DIR that is a symbolic link.
    #[arg(long, requires = "out")]
    pub force: bool,
    #[command(flatten)]
    pub page: PageArgs,
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// Block codec of `split --out`'s Avro container files.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// No compression.
    Null,
    /// Deflate.
    Deflate,
    /// Snappy.
    Snappy,
    /// Zstandard.
    Zstandard,
}

// The arguments of `replay` (described by its variant of [`Command`]).
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Files or directories (standard input when none, or `-`).
    #[arg(value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// Topic to publish to (default: topics.input, `pages.raw`).
    #[arg(long)]
    pub topic: Option<String>,
    /// Publish at most this many pages per second.
    #[arg(long, value_name = "PAGES_PER_SEC", value_parser = parse_rate)]
    pub rate: Option<f64>,
    #[command(flatten)]
    pub page: PageArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub progress: ProgressArgs,
}

// The arguments of `tail` (described by its variant of [`Command`]).
#[derive(Args, Debug, Clone)]
pub struct TailArgs {
    /// Topic to read (default: topics.quotes, `market.quotes.v1`).
    #[arg(long)]
    pub topic: Option<String>,
    /// Start at the beginning of the topic instead of its end.
    #[arg(long)]
    pub from_beginning: bool,
    /// Stop after printing N events.
    #[arg(short = 'n', long = "count", value_name = "N")]
    pub count: Option<u64>,
    /// Add topic, partition, offset, key and headers (the `pagesplit.source.*` headers name the
    /// raw page each event came from) to every line.
    #[arg(long)]
    pub metadata: bool,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub progress: ProgressArgs,
}

impl Command {
    /// Whether the command is a Kafka client that reports broker trouble in its own words:
    /// librdkafka's log lines (one per reconnect attempt) would drown them.
    pub fn quiets_kafka_logs(&self) -> bool {
        matches!(self, Command::Replay(_) | Command::Tail(_))
    }
}

/// Where pages read from plain files claim to come from.
#[derive(Args, Debug, Clone)]
pub struct PageArgs {
    /// URL to stamp on plain pages (default: the file:// URL of the file).
    #[arg(long)]
    pub url: Option<String>,
    /// Fetch time (RFC 3339) to stamp on plain pages (default: the file's modification time).
    #[arg(long, value_parser = parse_time)]
    pub fetched_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How long to wait for the brokers.
#[derive(Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Seconds to wait for the brokers (kafka.bootstrap_servers) to answer before giving up.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub timeout: Duration,
}

/// How progress is shown.
#[derive(Args, Debug, Clone)]
pub struct ProgressArgs {
    /// When stderr is not a terminal, log progress every this many seconds (0: never). On a
    /// terminal a progress bar is drawn instead.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    pub progress_interval: Duration,
}

/// Configuration tools.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Prints the effective configuration (secrets redacted); exits 2 when it is invalid.
    #[command(after_help = "\
Example:
  PAGESPLIT_KAFKA__GROUP_ID=prod pagesplit config check --config pagesplit.toml")]
    Check,
}

/// Schema tools.
#[derive(Subcommand, Debug)]
pub enum SchemasCommand {
    /// Prints the bundled schemas.
    #[command(after_help = "\
Example:
  pagesplit schemas print")]
    Print,
    /// Registers the schemas under their TopicNameStrategy subjects.
    #[command(after_help = "\
Example:
  pagesplit schemas register --set registry.url=http://127.0.0.1:8081/apis/ccompat/v7")]
    Register,
    /// Checks the schemas against the registered versions; exits 1 when incompatible.
    #[command(after_help = "\
Example:
  pagesplit schemas check --config pagesplit.toml")]
    Check,
}

/// Dead-letter tools.
#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Re-publishes dead-lettered pages (original key, value and headers) to the raw topic,
    /// for example after a parser fix.
    #[command(after_help = "\
Example:
  pagesplit dlq replay --code no_content --code empty_body")]
    Replay(DlqReplayArgs),
}

// The arguments of `dlq replay` (described by its variant of [`DlqCommand`]).
#[derive(Args, Debug, Clone)]
pub struct DlqReplayArgs {
    /// Only dead letters with this error code (repeatable; all when absent).
    #[arg(long = "code")]
    pub codes: Vec<String>,
    /// Only dead letters of this stage (decode, parse, encode).
    #[arg(long)]
    pub stage: Option<String>,
    /// Topic to publish to (default: topics.input).
    #[arg(long)]
    pub to: Option<String>,
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

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is not a number of seconds"))
}

/// The slowest `--rate`: one page every 1,000 seconds.
const MIN_RATE: f64 = 0.001;

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= MIN_RATE => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a number of pages per second of at least {MIN_RATE}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_help_with_an_example() {
        fn check(command: &clap::Command, path: &str) {
            let help = command
                .get_after_help()
                .map(|text| text.to_string())
                .unwrap_or_default();
            assert!(help.contains("Example"), "`{path}` has no example in its help");
            assert!(command.get_about().is_some(), "`{path}` has no description");
            for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        check(&Cli::command(), "pagesplit");
    }

    #[test]
    fn seconds_and_rates_parse() {
        assert_eq!(parse_seconds("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_seconds("10s").unwrap(), Duration::from_secs(10));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("1e-20").is_err(), "would overflow the pacing clock");
        assert_eq!(parse_rate("0.001").unwrap(), 0.001);
        assert_eq!(parse_rate("12.5").unwrap(), 12.5);
    }
}
