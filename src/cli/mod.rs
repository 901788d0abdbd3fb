//! The command line: its arguments, one module per command, the progress display and the logs.
//! The library core knows nothing of it; `main.rs` parses the arguments and calls the command.

pub mod args;
pub mod completions;
pub mod config;
pub mod demo;
pub mod dlq;
pub mod healthcheck;
pub mod logs;
mod progress;
pub mod replay;
pub mod run;
pub mod schemas;
pub mod split;
pub mod tail;

use std::borrow::Cow;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rdkafka::client::{Client, ClientContext};

use crate::config::Config;
use crate::input::{Input, PageDefaults};

/// Exit code of a runtime failure.
const EXIT_RUNTIME: u8 = 1;
/// Exit code of a usage or configuration error.
const EXIT_USAGE: u8 = 2;

/// A mistake in how the command was called (a missing input file, say): exit code 2, like
/// any other usage or configuration error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A command's result when some of its work failed but it went on with the rest.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PartialFailure(String);

/// The configuration from defaults, `file`, `PAGESPLIT_*` variables and `--set` flags; a
/// configuration error is reported on stderr and becomes exit code 2.
pub fn load_config(file: Option<&Path>, overrides: &[(String, String)]) -> Result<Config, ExitCode> {
    Config::load(file, std::env::vars(), overrides).map_err(|error| {
        eprintln!("error: {}", terminal_safe(&error.to_string()));
        ExitCode::from(EXIT_USAGE)
    })
}

/// Runs an asynchronous command on a multi-threaded runtime.
pub fn block_on(command: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("failed to start the runtime")?;
    let result = runtime.block_on(command);
    // A reader still blocked on standard input (after Ctrl-C) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// 0 for success, 2 for a usage error, 1 for anything else; the error goes to stderr.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
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
            eprintln!("error: {}", terminal_safe(&format!("{error:#}")));
            if error.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_RUNTIME)
            }
        }
    }
}

/// `text` fit for a terminal: control characters (ESC, newlines, C1 codes, …) and bidirectional
/// overrides, which a page's URL or message may carry to rewrite what the terminal shows, are
/// written as Rust escapes (`\u{1b}`, `\n`).
pub(crate) fn terminal_safe(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    Cow::Owned(safe)
}

/// The inputs named on the command line; a path that does not exist is a usage error.
fn collect_inputs(arguments: &[std::path::PathBuf]) -> Result<Vec<Input>, UsageError> {
    crate::input::collect_inputs(arguments).map_err(|error| UsageError(error.to_string()))
}

fn page_defaults(page: &args::PageArgs) -> PageDefaults {
    PageDefaults {
        url: page.url.clone(),
        fetched_at: page.fetched_at,
    }
}

/// Checks that the brokers answer within `timeout` and that `topic` exists; returns its
/// partitions. Lists all topics rather than asking for this one, so that the question cannot
/// create the topic on brokers that auto-create topics.
fn check_topic<C: ClientContext>(
    client: &Client<C>,
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<i32>> {
    let metadata = client.fetch_metadata(None, timeout).map_err(|error| {
        anyhow::anyhow!(
            "cannot reach Kafka at {bootstrap} within {} s ({error}); check kafka.bootstrap_servers \
             (--set kafka.bootstrap_servers=HOST:PORT) or raise --timeout",
            timeout.as_secs_f64()
        )
    })?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        bail!("topic `{topic}` does not exist at {bootstrap}");
    };
    if let Some(error) = found.error() {
        bail!("topic `{topic}` at {bootstrap} is not usable: {error:?}");
    }
    let partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    if partitions.is_empty() {
        bail!("topic `{topic}` at {bootstrap} has no partitions");
    }
    Ok(partitions)
}

/// How long a run took, for summaries: `12 ms`, `3.4 s`.
fn elapsed_text(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.1} s", elapsed.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal_raw() {
        assert!(matches!(terminal_safe("https://example.com/é ok"), Cow::Borrowed(_)));
        assert_eq!(
            terminal_safe("https://x/\u{1b}[2J\u{1b}]0;owned\u{7}\r\nnext\t\u{9b}31m\u{202e}txt"),
            "https://x/\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\r\\nnext\\t\\u{9b}31m\\u{202e}txt"
        );
    }
}
