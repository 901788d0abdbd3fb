//! Pure: the largest record each output topic takes, and the check that keeps a page whole.
//!
//! A page's records go to the producer together; one refused for good after the others were
//! acknowledged would leave the page half published (its article in its topic, its quotes not)
//! and dead-lettered too. So every record is measured before any is sent: when one is larger
//! than its topic takes (the topic's `max.message.bytes`, and the producer's own
//! `message.max.bytes`), the page is dead-lettered up front and none of its events is sent.

use std::collections::HashMap;

use super::records::Failure;
use crate::metrics::{FailureCode, Stage};
use crate::sink::OutRecord;

/// Bytes a record takes in a batch of its own beyond its key, value and headers: the batch
/// header (61 bytes) and the record's length, attributes, timestamp and offset deltas and the
/// lengths of its key, value and header count (varints, at most 5 bytes each), plus a margin.
pub const RECORD_OVERHEAD: usize = 61 + 6 * 5 + 9;

/// Bytes a header takes beyond its name and value (two varint lengths).
const HEADER_OVERHEAD: usize = 2 * 5;

/// The largest record each output topic takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordLimits {
    /// The producer's `message.max.bytes`: no record larger leaves the worker.
    pub producer: usize,
    /// Each topic's `max.message.bytes`, where known.
    pub topics: HashMap<String, usize>,
}

impl RecordLimits {
    /// Limits of a producer taking records up to `producer` bytes, topics unknown.
    pub fn new(producer: usize) -> Self {
        Self {
            producer,
            topics: HashMap::new(),
        }
    }

    /// The largest record `topic` takes from this worker.
    pub fn of(&self, topic: &str) -> usize {
        self.topics
            .get(topic)
            .map_or(self.producer, |limit| (*limit).min(self.producer))
    }
}

/// Bytes `record` takes in a batch of its own, uncompressed (what the brokers compare with
/// `max.message.bytes` when compression does not shrink it).
pub fn record_size(record: &OutRecord) -> usize {
    let headers = record.headers.as_deref().map_or(0, headers_size);
    body_size(record) + headers
}

/// Bytes of a record's key and value plus the record's own overhead.
fn body_size(record: &OutRecord) -> usize {
    record.key.as_ref().map_or(0, Vec::len) + record.payload.as_ref().map_or(0, Vec::len) + RECORD_OVERHEAD
}

/// Bytes a header list takes in a record.
fn headers_size(headers: &rdkafka::message::OwnedHeaders) -> usize {
    use rdkafka::message::Headers as _;
    headers
        .iter()
        .map(|header| header.key.len() + header.value.map_or(0, <[u8]>::len) + HEADER_OVERHEAD)
        .sum()
}

/// Pure: the failure that dead-letters a page whose records do not all fit their topics (the
/// first that does not), or `None` when every record can be sent. A page's records share their
/// topic names and header lists, so each is measured and looked up once per run of records
/// sharing it.
pub fn oversized_record(records: &[OutRecord], limits: &RecordLimits) -> Option<Failure> {
    first_oversized(records.iter().map(|record| (record, &*record.topic)), limits)
}

/// Pure: as [`oversized_record`], for the copies of a page's `quotes` to the latest-quote
/// topic `topic`: a copy is as large as its quote (see [`super::records::latest_copy`]), so the
/// quotes are measured against that topic's limit before any copy is made.
pub fn oversized_latest_copy(quotes: &[OutRecord], topic: &str, limits: &RecordLimits) -> Option<Failure> {
    first_oversized(quotes.iter().map(|quote| (quote, topic)), limits)
}

/// The failure of the first record larger than its topic (given with it) takes.
fn first_oversized<'a>(
    records: impl Iterator<Item = (&'a OutRecord, &'a str)>,
    limits: &RecordLimits,
) -> Option<Failure> {
    let mut headers: Option<(*const rdkafka::message::OwnedHeaders, usize)> = None;
    let mut topic: Option<(*const str, usize)> = None;
    records.into_iter().find_map(|(record, to)| {
        let headers_bytes = match record.headers.as_deref() {
            None => 0,
            Some(list) => match headers {
                Some((seen, bytes)) if std::ptr::eq(seen, list) => bytes,
                _ => {
                    let bytes = headers_size(list);
                    headers = Some((list, bytes));
                    bytes
                }
            },
        };
        let limit = match topic {
            Some((seen, limit)) if std::ptr::eq(seen, to) => limit,
            _ => {
                let limit = limits.of(to);
                topic = Some((to, limit));
                limit
            }
        };
        let size = body_size(record) + headers_bytes;
        (size > limit).then(|| Failure {
            stage: Stage::Encode,
            code: FailureCode::EventTooLarge,
            message: format!(
                "an event of {size} bytes is larger than topic {to} takes ({limit} bytes); none of the page's \
                 events were sent"
            ),
            url: None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, key: usize, value: usize) -> OutRecord {
        OutRecord {
            topic: topic.into(),
            key: Some(vec![b'k'; key]),
            payload: Some(vec![b'v'; value]),
            headers: None,
        }
    }

    #[test]
    fn a_record_over_its_topics_limit_dead_letters_the_whole_page() {
        let mut limits = RecordLimits::new(5 * 1024 * 1024);
        limits.topics.insert("quotes".to_owned(), 1_048_588);
        limits.topics.insert("articles".to_owned(), 8 * 1024 * 1024);
        // A 2 MiB URL: in every quote's value, and in the article's key and value.
        let url = 2 * 1024 * 1024;
        let page = [
            record("quotes", 3, url + 60),
            record("quotes", 3, url + 60),
            record("articles", url, url + 500),
        ];
        let failure = oversized_record(&page, &limits).unwrap();
        assert_eq!(failure.code, FailureCode::EventTooLarge);
        assert_eq!(failure.stage, Stage::Encode);
        assert_eq!(
            failure.message,
            format!(
                "an event of {} bytes is larger than topic quotes takes (1048588 bytes); none of the page's events \
                 were sent",
                3 + url + 60 + RECORD_OVERHEAD
            )
        );
        // The article alone fits; one over the producer's limit does not, whatever its topic takes.
        assert_eq!(oversized_record(&page[2..], &limits), None);
        let failure = oversized_record(&[record("articles", 10, 6 << 20)], &limits).unwrap();
        assert!(failure.message.contains("takes (5242880 bytes)"), "{}", failure.message);
        // Small records fit; the limit is inclusive.
        let fits = 1_048_588 - RECORD_OVERHEAD - 3;
        assert_eq!(oversized_record(&[record("quotes", 3, fits)], &limits), None);
        assert!(oversized_record(&[record("quotes", 3, fits + 1)], &limits).is_some());
        // A topic whose limit is unknown takes what the producer takes.
        assert_eq!(limits.of("elsewhere"), 5 * 1024 * 1024);
    }

    #[test]
    fn records_sharing_a_topic_are_each_measured_with_their_own_headers() {
        use std::sync::Arc;
        let headers = |bytes: usize| {
            Arc::new(rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                key: "h",
                value: Some(vec![b'x'; bytes].as_slice()),
            }))
        };
        let mut limits = RecordLimits::new(5 * 1024 * 1024);
        limits.topics.insert("quotes".to_owned(), 1_000);
        let topic: Arc<str> = "quotes".into();
        let small = headers(10);
        let page: Vec<OutRecord> = [&small, &small, &headers(900), &small]
            .into_iter()
            .map(|headers| OutRecord {
                topic: topic.clone(),
                key: Some(b"SYM".to_vec()),
                payload: Some(vec![b'v'; 40]),
                headers: Some(headers.clone()),
            })
            .collect();
        let size = 3 + 40 + 1 + 900 + HEADER_OVERHEAD + RECORD_OVERHEAD;
        assert_eq!(record_size(&page[2]), size);
        let failure = oversized_record(&page, &limits).unwrap();
        assert!(
            failure.message.starts_with(&format!("an event of {size} bytes")),
            "{}",
            failure.message
        );
        // The same records with the small headers only fit.
        let fitting: Vec<OutRecord> = page
            .iter()
            .filter(|record| record.headers.as_ref().is_some_and(|h| Arc::ptr_eq(h, &small)))
            .cloned()
            .collect();
        assert_eq!(fitting.len(), 3);
        assert_eq!(oversized_record(&fitting, &limits), None);
    }

    #[test]
    fn quotes_are_measured_against_the_latest_topic_before_their_copies_are_made() {
        let mut limits = RecordLimits::new(5 * 1024 * 1024);
        limits.topics.insert("quotes".to_owned(), 8 * 1024 * 1024);
        limits.topics.insert("latest".to_owned(), 1_048_588);
        let page = [record("quotes", 3, 60), record("quotes", 3, 2 << 20)];
        assert_eq!(oversized_record(&page, &limits), None, "the quote topic takes them");
        let failure = oversized_latest_copy(&page, "latest", &limits).unwrap();
        assert_eq!(failure.code, FailureCode::EventTooLarge);
        assert_eq!(
            failure.message,
            format!(
                "an event of {} bytes is larger than topic latest takes (1048588 bytes); none of the page's events \
                 were sent",
                3 + (2 << 20) + RECORD_OVERHEAD
            )
        );
        assert_eq!(oversized_latest_copy(&page[..1], "latest", &limits), None);
    }

    #[test]
    fn headers_count_towards_the_size() {
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: "pagesplit.error.code",
            value: Some("x".repeat(100).as_bytes()),
        });
        let mut with_headers = record("dlq", 1, 10);
        with_headers.headers = Some(std::sync::Arc::new(headers));
        assert_eq!(
            record_size(&with_headers),
            1 + 10 + "pagesplit.error.code".len() + 100 + HEADER_OVERHEAD + RECORD_OVERHEAD
        );
    }
}
