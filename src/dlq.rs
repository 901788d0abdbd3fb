//! `pagesplit dlq replay`: re-publishes dead-lettered pages to the raw topic (after a fix),
//! optionally only those with given error codes or stage.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::client::{for_each_record_with, Positions, ReadRecord};
use crate::config::Config;
use crate::pipeline::headers as dead_letter_headers;

/// Which dead letters to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Only these error codes (all when empty).
    pub codes: Vec<String>,
    /// Only this stage (`decode`, `parse`, `encode`).
    pub stage: Option<String>,
}

impl ReplayFilter {
    /// Whether a dead letter passes the filter.
    pub fn accepts(&self, record: &ReadRecord) -> bool {
        // pagesplit's own headers come after any copied from the page: the last one is its.
        let header = |name: &str| record.headers.iter().rfind(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let code_ok = self.codes.is_empty()
            || header(dead_letter_headers::ERROR_CODE).is_some_and(|code| self.codes.iter().any(|c| c == code));
        let stage_ok = self
            .stage
            .as_deref()
            .is_none_or(|stage| header(dead_letter_headers::STAGE) == Some(stage));
        code_ok && stage_ok
    }
}

/// Counts of a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Dead letters read.
    pub read: usize,
    /// Dead letters that passed the filter and were published and acknowledged.
    pub replayed: usize,
    /// Dead letters that passed the filter but hold no value (header `pagesplit.value.omitted`):
    /// not published; their pages are at the source offsets their headers name.
    pub omitted: usize,
}

/// Dead letters read ahead of the one being published: what a replay holds in memory at most.
const READ_AHEAD: usize = 64;

/// Reads `config`'s dead-letter topic from the beginning to its current end and publishes the
/// original key, value and headers (without pagesplit's own headers) of the selected records to
/// `to_topic`, with the worker's client settings (brokers, security, raw options). Dead letters
/// stream through: at most [`READ_AHEAD`] of them are held at once, whatever the topic's size.
pub async fn replay(config: &Config, to_topic: &str, filter: &ReplayFilter) -> anyhow::Result<ReplaySummary> {
    let mut reader = config.consumer_config();
    reader.set("group.id", format!("{}-dlq-replay", config.kafka.group_id));
    let topic = config.topics.dead_letter.clone();
    let (reading, mut records) =
        stream_from_blocking(READ_AHEAD, move |each| read_records_with_idle(reader, &topic, each));
    // The producer's settings without a transactional id: idempotent, acks from all replicas.
    let producer: FutureProducer = config
        .plain_producer_config()
        .create()
        .context("failed to create a producer")?;
    let mut summary = ReplaySummary {
        read: 0,
        replayed: 0,
        omitted: 0,
    };
    while let Some(record) = records.recv().await {
        summary.read += 1;
        if !filter.accepts(&record) {
            continue;
        }
        if record
            .headers
            .iter()
            .any(|(name, _)| name == dead_letter_headers::VALUE_OMITTED)
        {
            warn_omitted(&record);
            summary.omitted += 1;
            continue;
        }
        // On failure the receiver is dropped, which stops the reader.
        publish(&producer, to_topic, &record).await?;
        summary.replayed += 1;
    }
    reading.await.context("reader task panicked")??;
    Ok(summary)
}

fn read_records_with_idle(
    reader: rdkafka::ClientConfig,
    topic: &str,
    each: &mut dyn FnMut(ReadRecord) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    for_each_record_with(reader, topic, &Positions::new(), Duration::from_secs(120), each)
}

/// Runs `read` on a blocking thread; what it hands to its callback arrives on the receiver, at
/// most `ahead` items before the receiver takes them. Once the receiver is dropped the callback
/// fails, which ends `read`.
fn stream_from_blocking<T: Send + 'static>(
    ahead: usize,
    read: impl FnOnce(&mut dyn FnMut(T) -> anyhow::Result<()>) -> anyhow::Result<usize> + Send + 'static,
) -> (
    tokio::task::JoinHandle<anyhow::Result<usize>>,
    tokio::sync::mpsc::Receiver<T>,
) {
    let (sender, receiver) = tokio::sync::mpsc::channel(ahead);
    let task = tokio::task::spawn_blocking(move || {
        read(&mut |item| {
            sender
                .blocking_send(item)
                .map_err(|_| anyhow::anyhow!("the replay stopped"))
        })
    });
    (task, receiver)
}

fn warn_omitted(record: &ReadRecord) {
    let header = |name: &str| {
        record
            .headers
            .iter()
            .rfind(|(n, _)| n == name)
            .map_or("?", |(_, v)| v.as_str())
    };
    tracing::warn!(
        source_topic = header(dead_letter_headers::SOURCE_TOPIC),
        source_partition = header(dead_letter_headers::SOURCE_PARTITION),
        source_offset = header(dead_letter_headers::SOURCE_OFFSET),
        omitted = header(dead_letter_headers::VALUE_OMITTED),
        "dead letter without its value not replayed; the page is at its source offset"
    );
}

/// Publishes a dead letter's original key, value and headers (not pagesplit's) to `to_topic`.
async fn publish(producer: &FutureProducer, to_topic: &str, record: &ReadRecord) -> anyhow::Result<()> {
    let mut headers = OwnedHeaders::new();
    for (name, value) in record
        .raw_headers
        .iter()
        .filter(|(name, _)| !name.starts_with("pagesplit."))
    {
        headers = headers.insert(Header {
            key: name,
            value: value.as_deref(),
        });
    }
    let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(to_topic).headers(headers);
    if let Some(key) = &record.raw_key {
        out = out.key(key.as_slice());
    }
    if !record.value.is_empty() {
        out = out.payload(record.value.as_slice());
    }
    producer
        .send(out, Duration::from_secs(30))
        .await
        .map_err(|(error, _)| anyhow::anyhow!("failed to publish to `{to_topic}`: {error}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn records_stream_through_a_bounded_buffer() {
        let handed = Arc::new(AtomicUsize::new(0));
        let counted = handed.clone();
        let (reading, mut records) = stream_from_blocking(8, move |each| {
            for n in 0..100_000usize {
                each(n)?;
                counted.fetch_add(1, Ordering::SeqCst);
            }
            Ok(100_000)
        });
        assert_eq!(records.recv().await, Some(0));
        assert_eq!(records.recv().await, Some(1));
        drop(records);
        let error = reading.await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "the replay stopped");
        // Two taken, at most eight waiting, one refused: the reader never ran ahead.
        let handed = handed.load(Ordering::SeqCst);
        assert!((2..=10).contains(&handed), "{handed} handed over");
    }

    #[test]
    fn the_filter_reads_the_headers_pagesplit_wrote_last() {
        let record = |headers: &[(&str, &str)]| ReadRecord {
            partition: 0,
            offset: 0,
            key: None,
            raw_key: None,
            value: Vec::new(),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            raw_headers: Vec::new(),
        };
        let filter = ReplayFilter {
            codes: vec!["invalid_envelope".to_owned()],
            stage: None,
        };
        let code = dead_letter_headers::ERROR_CODE;
        assert!(filter.accepts(&record(&[(code, "page_too_large"), (code, "invalid_envelope")])));
        assert!(!filter.accepts(&record(&[(code, "invalid_envelope"), (code, "page_too_large")])));
    }
}
