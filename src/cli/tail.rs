//! `pagesplit tail`: prints the events of an output topic as JSON lines, decoded the way a
//! downstream consumer decodes them.
//!
//! Confluent-framed records carry a registry schema id: the writer schema is fetched once per id
//! (`GET {registry}/schemas/ids/{id}`) and cached. Single-object-encoded records carry the
//! fingerprint of a bundled schema. Records in neither framing are reported on stderr, counted
//! and skipped.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use apache_avro::Schema;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message as _, Offset, TopicPartitionList};
use serde_json::{Map, Value as Json};
use tokio_util::sync::CancellationToken;

use super::args::TailArgs;
use super::check_topic;
use super::progress::{Measure, Progress};
use crate::config::{Config, RegistryConfig};
use crate::encode::{decode_single_object, read_datum, unframe, value_to_json, EventType, Framed, Schemas};
use crate::registry::RegistryClient;

/// Prints the events of the topic `args` names until `--count` events were printed or Ctrl-C.
pub async fn run(config: &Config, args: TailArgs) -> anyhow::Result<()> {
    let options = TailOptions {
        topic: args.topic.unwrap_or_else(|| config.topics.quotes.clone()),
        from_beginning: args.from_beginning,
        count: args.count,
        metadata: args.metadata,
        timeout: args.kafka.timeout,
    };
    // Following without a count is open-ended: no bar, the events are the progress.
    let progress = match options.count {
        Some(count) => Progress::new(
            "tail",
            "events",
            Measure::Items,
            Some(count),
            args.progress.progress_interval,
        ),
        None => Progress::hidden(),
    };
    let mut stdout = std::io::stdout();
    let shutdown = crate::shutdown::signal_token();
    let summary = tail(config, &options, &mut stdout, &progress, shutdown).await;
    progress.finish();
    let summary = summary?;
    eprintln!(
        "tail `{}`: {} events printed, {} records not decodable",
        options.topic, summary.printed, summary.undecodable
    );
    Ok(())
}

/// What to read.
#[derive(Debug, Clone)]
struct TailOptions {
    /// The topic.
    topic: String,
    /// Start at the beginning (else at the end: only new events).
    from_beginning: bool,
    /// Stop after this many events (else follow until shut down).
    count: Option<u64>,
    /// Add topic, partition, offset and key to every line.
    metadata: bool,
    /// How long to wait for the brokers to answer at the start.
    timeout: Duration,
}

/// What a tail printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TailSummary {
    /// Events printed.
    printed: u64,
    /// Records that could not be decoded (reported on stderr).
    undecodable: u64,
}

/// Reads `options.topic` and writes one JSON line per event to `out` until `options.count`
/// events were printed or `shutdown` is cancelled. Fails when the brokers do not answer within
/// `options.timeout` or the topic does not exist.
async fn tail(
    config: &Config,
    options: &TailOptions,
    out: &mut (dyn Write + Send),
    progress: &Progress,
    shutdown: CancellationToken,
) -> anyhow::Result<TailSummary> {
    let bootstrap = &config.kafka.bootstrap_servers;
    let consumer = assigned_consumer(config, options).await?;
    progress.println(&format!(
        "tail: reading `{}` at {bootstrap} from {}{}",
        options.topic,
        if options.from_beginning {
            "the beginning"
        } else {
            "its end"
        },
        match options.count {
            Some(count) => format!(", until {count} events are printed"),
            None => " (Ctrl-C to stop)".to_owned(),
        }
    ));

    let mut decoder = Decoder::new(&config.registry)?;
    let mut summary = TailSummary::default();
    while options.count.is_none_or(|count| summary.printed < count) {
        let message = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                progress.println(&format!("error reading `{}` at {bootstrap}: {error}", options.topic));
                continue;
            }
        };
        let decoded = match decoder.decode(message.payload().unwrap_or_default()).await {
            Ok(decoded) => decoded,
            Err(error) => {
                summary.undecodable += 1;
                progress.println(&format!(
                    "{}[{}]@{}: {error:#}",
                    message.topic(),
                    message.partition(),
                    message.offset()
                ));
                continue;
            }
        };
        let line = json_line(decoded, options.metadata.then_some(&message));
        progress.around_stdout(|| -> std::io::Result<()> {
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
            out.flush()
        })?;
        summary.printed += 1;
        progress.add_items(1);
    }
    Ok(summary)
}

/// A consumer outside any group, assigned every partition of the topic at its start or end.
async fn assigned_consumer(config: &Config, options: &TailOptions) -> anyhow::Result<Arc<StreamConsumer>> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let consumer: StreamConsumer = config
        .consumer_config()
        // Partitions are assigned, not subscribed: no group membership, nothing committed.
        .set("group.id", format!("pagesplit-tail-{}-{nanos}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("statistics.interval.ms", "0")
        .create()
        .context("failed to create the Kafka consumer")?;
    let consumer = Arc::new(consumer);
    let (bootstrap, topic, timeout) = (
        config.kafka.bootstrap_servers.clone(),
        options.topic.clone(),
        options.timeout,
    );
    let from_beginning = options.from_beginning;
    let starts = {
        let consumer = consumer.clone();
        tokio::task::spawn_blocking(move || {
            let partitions = check_topic(consumer.client(), &bootstrap, &topic, timeout)?;
            start_offsets(&consumer, &topic, partitions, from_beginning, timeout)
        })
        .await
        .context("metadata task panicked")??
    };
    let mut assignment = TopicPartitionList::new();
    for (partition, start) in starts {
        assignment.add_partition_offset(&options.topic, partition, start)?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("failed to read topic `{}`", options.topic))?;
    Ok(consumer)
}

/// Where to start reading each partition. "The end" is the partitions' ends now, looked up
/// before reading starts: an event published once this returns is printed (`Offset::End` would
/// be resolved later, at the first fetch).
fn start_offsets(
    consumer: &StreamConsumer,
    topic: &str,
    partitions: Vec<i32>,
    from_beginning: bool,
    timeout: Duration,
) -> anyhow::Result<Vec<(i32, Offset)>> {
    if from_beginning {
        return Ok(partitions
            .into_iter()
            .map(|partition| (partition, Offset::Beginning))
            .collect());
    }
    partitions
        .into_iter()
        .map(|partition| {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, timeout)
                .with_context(|| format!("failed to find the end of `{topic}` [{partition}]"))?;
            Ok((partition, Offset::Offset(high)))
        })
        .collect()
}

/// The JSON line of an event: its type, the record's topic, partition, offset, key and headers
/// (name → value as text, e.g. the `pagesplit.source.*` headers that name the raw page) when
/// `metadata` is given, then the event's fields.
fn json_line(decoded: Decoded, metadata: Option<&BorrowedMessage<'_>>) -> Map<String, Json> {
    let mut line = Map::new();
    line.insert("type".to_owned(), Json::String(decoded.event_type));
    if let Some(message) = metadata {
        line.insert("topic".to_owned(), message.topic().into());
        line.insert("partition".to_owned(), message.partition().into());
        line.insert("offset".to_owned(), message.offset().into());
        line.insert(
            "key".to_owned(),
            message
                .key()
                .map_or(Json::Null, |key| String::from_utf8_lossy(key).into_owned().into()),
        );
        line.insert("headers".to_owned(), Json::Object(header_object(message)));
    }
    match decoded.value {
        Json::Object(fields) => line.extend(fields),
        other => {
            line.insert("value".to_owned(), other);
        }
    }
    line
}

/// A record's headers as a JSON object, values as text (a header without value: `null`).
fn header_object(message: &BorrowedMessage<'_>) -> Map<String, Json> {
    use rdkafka::message::Headers as _;
    message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| {
                    let value = header
                        .value
                        .map_or(Json::Null, |value| String::from_utf8_lossy(value).into_owned().into());
                    (header.key.to_owned(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A decoded event.
#[derive(Debug)]
struct Decoded {
    /// `quote`, `article`, or the lower-cased name of another record schema.
    event_type: String,
    value: Json,
}

/// Decodes framed values; fetches and caches writer schemas by registry id.
struct Decoder {
    registry: RegistryClient,
    schemas: HashMap<u32, Schema>,
}

impl Decoder {
    fn new(registry: &RegistryConfig) -> anyhow::Result<Self> {
        Ok(Self {
            registry: RegistryClient::new(registry).context("failed to create the registry client")?,
            schemas: HashMap::new(),
        })
    }

    async fn decode(&mut self, value: &[u8]) -> anyhow::Result<Decoded> {
        match unframe(value) {
            Some(Framed::Confluent { schema_id, datum }) => {
                let schema = self.schema(schema_id).await?;
                let mut reader = datum;
                let decoded = read_datum(schema, &mut reader)
                    .with_context(|| format!("does not decode with registry schema id {schema_id}"))?;
                Ok(Decoded {
                    event_type: event_type_of(schema),
                    value: value_to_json(&decoded),
                })
            }
            Some(Framed::SingleObject { fingerprint, .. }) => match decode_single_object(value) {
                Some((event_type, decoded)) => Ok(Decoded {
                    event_type: event_type.as_str().to_owned(),
                    value: value_to_json(&decoded),
                }),
                None => bail!(
                    "single-object record with fingerprint {} matches no bundled schema (or does not decode)",
                    fingerprint.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ),
            },
            None => bail!(
                "record is neither Confluent- nor single-object-framed ({} bytes)",
                value.len()
            ),
        }
    }

    async fn schema(&mut self, id: u32) -> anyhow::Result<&Schema> {
        if !self.schemas.contains_key(&id) {
            let schema = self.fetch(id).await?;
            self.schemas.insert(id, schema);
        }
        Ok(&self.schemas[&id])
    }

    async fn fetch(&self, id: u32) -> anyhow::Result<Schema> {
        let found = self.registry.schema_by_id(id).await?;
        if let Some(kind) = found.schema_type.filter(|kind| !kind.eq_ignore_ascii_case("AVRO")) {
            bail!("schema id {id} is a {kind} schema, not Avro");
        }
        Schema::parse_str(&found.schema)
            .with_context(|| format!("schema id {id} from {} is not valid Avro", self.registry.url()))
    }
}

/// `quote` and `article` for the bundled schemas (whatever their registry version), else the
/// record's own name in lower case.
fn event_type_of(schema: &Schema) -> String {
    let name = |schema: &Schema| match schema {
        Schema::Record(record) => Some(record.name.fullname(None)),
        _ => None,
    };
    let bundled = Schemas::bundled();
    let fullname = name(schema);
    if fullname.is_some() && fullname == name(&bundled.quote) {
        EventType::Quote.as_str().to_owned()
    } else if fullname.is_some() && fullname == name(&bundled.article) {
        EventType::Article.as_str().to_owned()
    } else {
        match schema {
            Schema::Record(record) => record.name.name().to_ascii_lowercase(),
            _ => "value".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Encoder, Framing};

    #[test]
    fn bundled_schemas_name_their_event_types() {
        let schemas = Schemas::bundled();
        assert_eq!(event_type_of(&schemas.quote), "quote");
        assert_eq!(event_type_of(&schemas.article), "article");
        let other = Schema::parse_str(r#"{"type":"record","name":"Thing","fields":[]}"#).unwrap();
        assert_eq!(event_type_of(&other), "thing");
    }

    #[tokio::test]
    async fn single_object_records_decode_without_a_registry() {
        let page = crate::model::RawPage {
            url: "https://example.com/p".to_owned(),
            fetched_at: "2024-12-08T10:15:00Z".parse().unwrap(),
            content_type: crate::model::ContentType::Text,
            charset: None,
            body: b"AGL 37.94 Decreased By \xe2\x96\xbc -0.54 (-1.4%)\nMOSCOW: Something happened today in the city.\n"
                .to_vec(),
        };
        let parsed = crate::parse::parse_page(&page, &Default::default()).unwrap();
        let encoder = Encoder::new(Framing::SingleObject);
        let mut registry = Config::default().registry;
        registry.url = "http://127.0.0.1:9".to_owned();
        let mut decoder = Decoder::new(&registry).unwrap();
        let quote = decoder
            .decode(&encoder.encode_quote(&parsed.quotes[0]).unwrap())
            .await
            .unwrap();
        assert_eq!(quote.event_type, "quote");
        assert_eq!(quote.value["symbol"], "AGL");
        assert_eq!(quote.value["price"], "37.94");
        let article = decoder
            .decode(&encoder.encode_article(&parsed.article).unwrap())
            .await
            .unwrap();
        assert_eq!(article.event_type, "article");
        let error = decoder.decode(b"plain text").await.unwrap_err();
        assert!(error.to_string().contains("neither"), "{error}");
    }
}
