//! The client-side commands around the worker: what `split`, `replay` and `tail` do, their
//! inputs and their progress display. `main.rs` only parses the command line and calls these.

pub mod args;
pub mod inputs;
pub mod progress;
pub mod replay;
pub mod tail;

use std::time::Duration;

use anyhow::bail;
use rdkafka::client::{Client, ClientContext};

/// A mistake in how the command was called (a missing input file, say): exit code 2, like
/// any other usage or configuration error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Checks that the brokers answer within `timeout` and that `topic` exists; returns its
/// partitions. Lists all topics rather than asking for this one, so that the question cannot
/// create the topic on brokers that auto-create topics.
pub fn check_topic<C: ClientContext>(
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
pub fn elapsed_text(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.1} s", elapsed.as_secs_f64())
    }
}
