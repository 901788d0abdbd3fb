//! Client-side tools around the worker: publish pages, wait for the group to commit them, read
//! a topic back, decode its events. Used by `pagesplit demo`, the dead-letter replay and the
//! integration tests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use apache_avro::types::Value;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::encode::{unframe, Framed};
use crate::envelope::encode_envelope;

/// Per partition, the offsets a set of records occupies: partition → highest offset.
pub type Positions = BTreeMap<i32, i64>;

/// A page to publish as a JSON envelope.
#[derive(Debug, Clone)]
pub struct PageToPublish {
    /// The page URL (also the record key).
    pub url: String,
    /// When it was fetched.
    pub fetched_at: chrono::DateTime<chrono::Utc>,
    /// `text/plain` or `text/html`.
    pub content_type: String,
    /// The body.
    pub body: String,
}

/// Publishes pages as envelopes keyed by URL; returns the highest offset written per partition.
pub async fn publish_pages(bootstrap: &str, topic: &str, pages: &[PageToPublish]) -> anyhow::Result<Positions> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .context("failed to create a producer")?;
    // Enqueue everything first, then wait for the acknowledgements: one round trip per batch,
    // not per page.
    let mut deliveries = Vec::with_capacity(pages.len());
    for page in pages {
        let value = encode_envelope(&page.url, page.fetched_at, &page.content_type, &page.body);
        let mut record = FutureRecord::to(topic).key(page.url.as_bytes()).payload(&value);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push((page.url.clone(), delivery));
                    break;
                }
                Err((
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    back,
                )) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((error, _)) => bail!("failed to publish {} to `{topic}` at {bootstrap}: {error}", page.url),
            }
        }
    }
    let mut positions = Positions::new();
    for (url, delivery) in deliveries {
        let delivered = delivery
            .await
            .context("producer dropped")?
            .map_err(|(error, _)| anyhow::anyhow!("failed to publish {url} to `{topic}` at {bootstrap}: {error}"))?;
        let highest = positions.entry(delivered.partition).or_insert(delivered.offset);
        *highest = (*highest).max(delivered.offset);
    }
    Ok(positions)
}

/// Waits until `group` has committed past every offset in `positions` of `topic`.
pub fn wait_committed(
    bootstrap: &str,
    group: &str,
    topic: &str,
    positions: &Positions,
    deadline: Duration,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .context("failed to create a consumer")?;
    let mut wanted = TopicPartitionList::new();
    for partition in positions.keys() {
        wanted.add_partition(topic, *partition);
    }
    let started = Instant::now();
    loop {
        // The group's coordinator may move or still be loading (`NotCoordinator`,
        // `CoordinatorLoadInProgress`): asked again until the deadline.
        let committed = match consumer.committed_offsets(wanted.clone(), Duration::from_secs(5)) {
            Ok(committed) => committed,
            Err(error) if started.elapsed() <= deadline => {
                tracing::debug!(%error, "committed offsets not available yet");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            Err(error) => return Err(error).context(format!("committed offsets of group `{group}`")),
        };
        let behind: Vec<String> = positions
            .iter()
            .filter(|(partition, offset)| {
                let got = committed
                    .find_partition(topic, **partition)
                    .and_then(|element| match element.offset() {
                        Offset::Offset(value) => Some(value),
                        _ => None,
                    });
                got.is_none_or(|value| value <= **offset)
            })
            .map(|(partition, offset)| format!("{topic}[{partition}] needs > {offset}"))
            .collect();
        if behind.is_empty() {
            return Ok(());
        }
        if started.elapsed() > deadline {
            bail!("group `{group}` did not commit in time: {}", behind.join(", "));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The current end (high watermark) of every partition of a topic. Retries for a while: a
/// topic created a moment ago may not have a partition leader yet.
pub fn end_offsets(bootstrap: &str, topic: &str) -> anyhow::Result<Positions> {
    end_offsets_with(ClientConfig::new().set("bootstrap.servers", bootstrap), topic)
}

/// [`end_offsets`] with a client's settings (security, raw librdkafka options).
pub fn end_offsets_with(client: &ClientConfig, topic: &str) -> anyhow::Result<Positions> {
    let consumer: BaseConsumer = client.create()?;
    let started = Instant::now();
    loop {
        match try_end_offsets(&consumer, topic) {
            Ok(ends) => return Ok(ends),
            Err(error) if started.elapsed() < Duration::from_secs(20) => {
                tracing::debug!(error = %error, topic, "watermarks not available yet");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(error) => return Err(error).with_context(|| format!("failed to read the end offsets of `{topic}`")),
        }
    }
}

fn try_end_offsets(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Positions> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut ends = Positions::new();
    for topic_metadata in metadata.topics() {
        if let Some(error) = topic_metadata.error() {
            bail!("topic `{topic}`: {error:?}");
        }
        for partition in topic_metadata.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic, partition.id(), Duration::from_secs(10))?;
            ends.insert(partition.id(), high);
        }
    }
    if ends.is_empty() {
        bail!("topic `{topic}` has no partitions yet");
    }
    Ok(ends)
}

/// A record read back from an output topic.
#[derive(Debug, Clone)]
pub struct ReadRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key as text.
    pub key: Option<String>,
    /// Key as written.
    pub raw_key: Option<Vec<u8>>,
    /// Raw value.
    pub value: Vec<u8>,
    /// Headers (name, value as text).
    pub headers: Vec<(String, String)>,
    /// Headers as written (name, value bytes or null).
    pub raw_headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Reads every record of `topic` from `from` (per partition; missing = beginning) up to the
/// partitions' current ends.
pub fn read_records(
    bootstrap: &str,
    topic: &str,
    from: &Positions,
    deadline: Duration,
) -> anyhow::Result<Vec<ReadRecord>> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pagesplit-reader");
    read_records_with(client, topic, from, deadline)
}

/// [`read_records`] with a client's settings (security, raw librdkafka options); the reader
/// commits nothing and sees committed transactions only. Records are sorted by partition and
/// offset.
pub fn read_records_with(
    client: ClientConfig,
    topic: &str,
    from: &Positions,
    deadline: Duration,
) -> anyhow::Result<Vec<ReadRecord>> {
    let started = Instant::now();
    let mut records = Vec::new();
    for_each_record_with(client, topic, from, deadline, &mut |record| {
        if started.elapsed() > deadline {
            bail!("timed out reading `{topic}`: read {} records", records.len());
        }
        records.push(record);
        Ok(())
    })?;
    records.sort_by_key(|record| (record.partition, record.offset));
    Ok(records)
}

/// Hands every record of `topic` from `from` (per partition; missing = beginning) up to the
/// partitions' current ends to `each` as it arrives (partitions interleaved, each in order),
/// holding none of them; with a client's settings, committing nothing, seeing committed
/// transactions only. Fails when nothing arrives for `idle`, or with the first error of `each`.
/// Returns the number of records read.
pub fn for_each_record_with(
    mut client: ClientConfig,
    topic: &str,
    from: &Positions,
    idle: Duration,
    each: &mut dyn FnMut(ReadRecord) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let ends = end_offsets_with(&client, topic)?;
    let consumer: BaseConsumer = client
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        // Transactional topics end in commit markers that are never delivered: the end of a
        // partition is known from the partition-EOF event and the consumer's position.
        .set("enable.partition.eof", "true")
        .create()?;
    let (assignment, remaining) = reader_assignment(topic, &ends, from)?;
    let mut read = 0;
    if remaining == 0 {
        return Ok(read);
    }
    consumer.assign(&assignment)?;
    let mut last_progress = Instant::now();
    let mut done = BTreeMap::new();
    while done.len() < remaining {
        if last_progress.elapsed() > idle {
            bail!("timed out reading `{topic}`: read {read} records");
        }
        let message = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                if position_reached(&consumer, topic, partition, ends[&partition])? {
                    done.insert(partition, ());
                }
                continue;
            }
            Some(message) => message?,
        };
        last_progress = Instant::now();
        let end = ends[&message.partition()];
        if message.offset() >= end {
            continue;
        }
        if message.offset() + 1 >= end {
            done.insert(message.partition(), ());
        }
        read += 1;
        each(ReadRecord::from_message(&message))?;
    }
    Ok(read)
}

/// The partitions of `topic` that hold records at or after `from`, each from its start, and
/// how many there are.
fn reader_assignment(
    topic: &str,
    ends: &BTreeMap<i32, i64>,
    from: &Positions,
) -> anyhow::Result<(TopicPartitionList, usize)> {
    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0;
    for (partition, end) in ends {
        let start = from.get(partition).copied().unwrap_or(0);
        if start < *end {
            assignment.add_partition_offset(topic, *partition, Offset::Offset(start))?;
            remaining += 1;
        }
    }
    Ok((assignment, remaining))
}

/// Whether the consumer's position in `partition` has reached `end`.
fn position_reached(consumer: &BaseConsumer, topic: &str, partition: i32, end: i64) -> anyhow::Result<bool> {
    let position = consumer.position()?;
    let at = position
        .find_partition(topic, partition)
        .and_then(|element| match element.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        });
    Ok(at.is_some_and(|at| at >= end))
}

impl ReadRecord {
    fn from_message(message: &rdkafka::message::BorrowedMessage<'_>) -> Self {
        use rdkafka::message::Headers as _;
        let raw_headers: Vec<(String, Option<Vec<u8>>)> = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        ReadRecord {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            raw_key: message.key().map(<[u8]>::to_vec),
            value: message.payload().unwrap_or_default().to_vec(),
            headers: raw_headers
                .iter()
                .map(|(key, value)| {
                    let value = value.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                    (key.clone(), value.into_owned())
                })
                .collect(),
            raw_headers,
        }
    }
}

/// Decodes a framed event value with the bundled schema of its kind (`quote` or `article`).
pub fn decode_event(value: &[u8], schema: &apache_avro::Schema) -> anyhow::Result<Value> {
    let datum = match unframe(value) {
        Some(Framed::Confluent { datum, .. }) | Some(Framed::SingleObject { datum, .. }) => datum,
        None => bail!("record is neither Confluent- nor single-object-framed"),
    };
    let mut reader = datum;
    Ok(crate::encode::read_datum(schema, &mut reader)?)
}
