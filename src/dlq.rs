//! `pagesplit dlq replay`: re-publishes dead-lettered pages to the raw topic (after a fix),
//! optionally only those with given error codes or stage.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::demo::{read_records, Positions, ReadRecord};
use crate::pipeline::dead_letter_headers;

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
}

/// Reads the dead-letter topic from the beginning to its current end and publishes the
/// original key, value and headers (without pagesplit's own headers) of the selected records to
/// `to_topic`.
pub async fn replay(
    bootstrap: &str,
    dead_letter_topic: &str,
    to_topic: &str,
    filter: &ReplayFilter,
) -> anyhow::Result<ReplaySummary> {
    let records = {
        let (bootstrap, topic) = (bootstrap.to_owned(), dead_letter_topic.to_owned());
        tokio::task::spawn_blocking(move || {
            read_records(&bootstrap, &topic, &Positions::new(), Duration::from_secs(120))
        })
        .await
        .context("reader task panicked")??
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .context("failed to create a producer")?;
    let selected: Vec<&ReadRecord> = records.iter().filter(|record| filter.accepts(record)).collect();
    for record in &selected {
        let mut headers = OwnedHeaders::new();
        for (name, value) in record
            .headers
            .iter()
            .filter(|(name, _)| !name.starts_with("pagesplit."))
        {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
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
    })
}
