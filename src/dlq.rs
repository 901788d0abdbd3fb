//! `pagesplit dlq replay`: re-publishes dead-lettered pages to the raw topic (after a fix),
//! optionally only those with given error codes or stage.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::client::{read_records_with, Positions, ReadRecord};
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
        let header = |name: &str| record.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
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

/// Reads `config`'s dead-letter topic from the beginning to its current end and publishes the
/// original key, value and headers (without pagesplit's own headers) of the selected records to
/// `to_topic`, with the worker's client settings (brokers, security, raw options).
pub async fn replay(config: &Config, to_topic: &str, filter: &ReplayFilter) -> anyhow::Result<ReplaySummary> {
    let records = {
        let mut reader = config.consumer_config();
        reader.set("group.id", format!("{}-dlq-replay", config.kafka.group_id));
        let topic = config.topics.dead_letter.clone();
        tokio::task::spawn_blocking(move || {
            read_records_with(reader, &topic, &Positions::new(), Duration::from_secs(120))
        })
        .await
        .context("reader task panicked")??
    };
    // The producer's settings without a transactional id: idempotent, acks from all replicas.
    let producer: FutureProducer = config
        .plain_producer_config()
        .create()
        .context("failed to create a producer")?;
    let (selected, omitted): (Vec<&ReadRecord>, Vec<&ReadRecord>) = records
        .iter()
        .filter(|record| filter.accepts(record))
        .partition(|record| {
            !record
                .headers
                .iter()
                .any(|(name, _)| name == dead_letter_headers::VALUE_OMITTED)
        });
    for record in &omitted {
        let header = |name: &str| {
            record
                .headers
                .iter()
                .find(|(n, _)| n == name)
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
    for record in &selected {
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
    }
    Ok(ReplaySummary {
        read: records.len(),
        replayed: selected.len(),
        omitted: omitted.len(),
    })
}
