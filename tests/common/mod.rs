//! Shared helpers of the integration tests, included by each test file with `mod common;`.
//!
//! - this module: the stack's addresses, unique names, test configurations, fixtures, polling
//!   with a deadline ([`wait_until`]), fields of decoded Avro records, publishing and reading
//!   topics;
//! - [`pages`]: pages to publish, built from our own words or from the example fixture;
//! - [`broker`]: brokers of their own (started with `deploy/local/stack` on free ports);
//! - [`cluster`]: a 3-node cluster of its own (`deploy/local/stack up --brokers 3`), its
//!   partition leaders and in-sync replicas, and a follower that times an output topic;
//! - [`worker`]: the worker binary as a child process;
//! - [`committed`]: `read_committed` read-backs, exactly-once accounting and a background
//!   publisher.
//!
//! Test files that need the local stack start with `#![cfg(feature = "broker-tests")]`.
#![allow(dead_code)]

pub mod broker;
pub mod cluster;
pub mod committed;
pub mod pages;
pub mod worker;

use std::time::{Duration, Instant};

use pagesplit::config::{Config, EncodingFormat};
use pagesplit::demo::Positions;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

// ---------------------------------------------------------------------------------------------
// The stack, names, configurations

/// The broker the tests use: `PAGESPLIT_TEST_BOOTSTRAP`, else the local stack's default.
pub fn bootstrap() -> String {
    std::env::var("PAGESPLIT_TEST_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// The registry the tests use: `PAGESPLIT_TEST_REGISTRY`, else the local stack's default.
pub fn registry_url() -> String {
    std::env::var("PAGESPLIT_TEST_REGISTRY").unwrap_or_else(|_| "http://127.0.0.1:8081/apis/ccompat/v7".to_owned())
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{prefix}.{}.{nanos}", std::process::id())
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A worker configuration on unique topics and group, creating its topics, serving HTTP on a
/// free port.
pub fn test_config(name: &str, format: EncodingFormat) -> Config {
    let id = unique(name);
    let mut config = Config::default();
    config.kafka.bootstrap_servers = bootstrap();
    config.kafka.group_id = format!("group.{id}");
    config.topics.input = format!("pages.raw.{id}");
    config.topics.quotes = format!("market.quotes.v1.{id}");
    config.topics.articles = format!("news.articles.v1.{id}");
    config.topics.dead_letter = format!("pagesplit.dlq.v1.{id}");
    config.topics.quotes_latest = format!("market.quotes.latest.v1.{id}");
    config.topics.create = true;
    config.topics.partitions = 2;
    config.encoding.format = format;
    config.registry.url = registry_url();
    config.http.listen = "127.0.0.1:0".parse().expect("valid address");
    config.pipeline.statistics_interval_ms = 1_000;
    // Several workers of one test share the host name: each joins as a dynamic member unless
    // the test gives it a name of its own.
    config.kafka.static_membership = false;
    config.validate().expect("test config is valid");
    config
}

/// Deletes the topics of a test configuration.
pub async fn delete_topics(config: &Config) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .create()
        .expect("admin client");
    let mut topics = vec![
        config.topics.input.as_str(),
        config.topics.quotes.as_str(),
        config.topics.articles.as_str(),
        config.topics.dead_letter.as_str(),
    ];
    topics.extend(config.topics.quotes_latest());
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let _ = admin.delete_topics(&topics, &options).await;
}

/// A fixture file's text.
pub fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("fixture {full}: {error}"))
}

// ---------------------------------------------------------------------------------------------
// Polling with a deadline

/// What a [`wait_until`] check returns: `true`, or `Some(value)`, once its condition holds.
pub trait Reached {
    /// What the wait returns.
    type Value;
    /// `Some` once the condition holds.
    fn reached(self) -> Option<Self::Value>;
}

impl Reached for bool {
    type Value = ();
    fn reached(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Reached for Option<T> {
    type Value = T;
    fn reached(self) -> Option<T> {
        self
    }
}

/// Runs `check` every 100 ms until its condition holds (`true` or `Some(value)`) and returns
/// the value; fails the test, naming `what`, once `deadline` has passed.
pub async fn wait_until<R: Reached>(what: &str, deadline: Duration, mut check: impl AsyncFnMut() -> R) -> R::Value {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await.reached() {
            return value;
        }
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Decoded Avro records

/// A field of a decoded Avro record.
pub fn field<'a>(record: &'a apache_avro::types::Value, name: &str) -> &'a apache_avro::types::Value {
    let apache_avro::types::Value::Record(fields) = record else {
        panic!("not a record: {record:?}")
    };
    &fields
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .1
}

/// A string, enum symbol or non-null optional string of a decoded Avro record.
pub fn text(value: &apache_avro::types::Value) -> String {
    use apache_avro::types::Value;
    match value {
        Value::String(s) | Value::Enum(_, s) => s.clone(),
        Value::Union(_, inner) => text(inner),
        other => panic!("not text: {other:?}"),
    }
}

/// An array of strings of a decoded Avro record.
pub fn strings(value: &apache_avro::types::Value) -> Vec<String> {
    let apache_avro::types::Value::Array(items) = value else {
        panic!("not an array: {value:?}")
    };
    items.iter().map(text).collect()
}

// ---------------------------------------------------------------------------------------------
// Publishing and reading topics

/// Adds `from` to `into`, keeping the highest offset per partition.
pub fn merge_positions(into: &mut Positions, from: Positions) {
    for (partition, offset) in from {
        let highest = into.entry(partition).or_insert(offset);
        *highest = (*highest).max(offset);
    }
}

/// Publishes one raw record (`None`: without value) to `topic` and adds its position.
pub async fn send_raw(bootstrap: &str, topic: &str, key: &str, value: Option<&[u8]>, positions: &mut Positions) {
    let producer: rdkafka::producer::FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let mut record = rdkafka::producer::FutureRecord::<str, [u8]>::to(topic).key(key);
    if let Some(value) = value {
        record = record.payload(value);
    }
    let delivered = producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    merge_positions(positions, Positions::from([(delivered.partition, delivered.offset)]));
}

/// Waits until the test worker's group has committed past `positions` of its input topic.
pub async fn wait_for_commit(config: &Config, positions: &Positions, deadline: Duration) {
    committed_within(config, positions, deadline)
        .await
        .expect("offsets committed past the published pages");
}

/// Whether the group commits past `positions` within `wait` (`Err` says why not).
pub async fn committed_within(config: &Config, positions: &Positions, wait: Duration) -> anyhow::Result<()> {
    let (bootstrap, group, input) = (
        config.kafka.bootstrap_servers.clone(),
        config.kafka.group_id.clone(),
        config.topics.input.clone(),
    );
    let positions = positions.clone();
    tokio::task::spawn_blocking(move || pagesplit::demo::wait_committed(&bootstrap, &group, &input, &positions, wait))
        .await
        .expect("wait task")
}

/// Publishes the masked example page to the test worker's input topic and waits until the
/// group has committed past it.
pub async fn publish_example_and_wait(config: &Config, url: &str, fetched_at: chrono::DateTime<chrono::Utc>) {
    let page = pagesplit::demo::PageToPublish {
        url: url.to_owned(),
        fetched_at,
        content_type: "text/plain".to_owned(),
        body: fixture(pages::EXAMPLE_FIXTURE),
    };
    let positions = pagesplit::demo::publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &[page])
        .await
        .expect("page published");
    wait_for_commit(config, &positions, Duration::from_secs(60)).await;
}

/// Every record of `topic` from its start, waiting up to 30 s for the first.
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<pagesplit::demo::ReadRecord> {
    pagesplit::demo::read_records(bootstrap, topic, &Positions::new(), Duration::from_secs(30))
        .expect("records read back")
}

/// Sum of the end offsets of a topic (records written, including aborted ones and markers).
pub fn written(bootstrap: &str, topic: &str) -> i64 {
    pagesplit::demo::end_offsets(bootstrap, topic)
        .map(|ends| ends.values().sum())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Lineage: provenance and trace context headers

/// A W3C `traceparent` a crawler puts on a page (the specification's example).
pub const CRAWLER_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// Its trace id.
pub const CRAWLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// A `tracestate` that goes with it.
pub const CRAWLER_TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

/// Publishes one page as an envelope keyed by its URL, with `headers`; returns where it went
/// (partition, offset).
pub async fn publish_with_headers(
    bootstrap: &str,
    topic: &str,
    page: &pagesplit::demo::PageToPublish,
    headers: &[(&str, &str)],
) -> (i32, i64) {
    use rdkafka::message::{Header, OwnedHeaders};
    let producer: rdkafka::producer::FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let value = pagesplit::envelope::encode_envelope(&page.url, page.fetched_at, &page.content_type, &page.body);
    let headers = headers.iter().fold(OwnedHeaders::new(), |all, (key, value)| {
        all.insert(Header {
            key,
            value: Some(*value),
        })
    });
    let record = rdkafka::producer::FutureRecord::to(topic)
        .key(page.url.as_bytes())
        .payload(&value)
        .headers(headers);
    let delivered = producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(error, _)| error)
        .expect("page published");
    (delivered.partition, delivered.offset)
}

/// A record's headers, name → value as text; every name once.
pub fn header_map(record: &pagesplit::demo::ReadRecord) -> std::collections::BTreeMap<String, String> {
    let map: std::collections::BTreeMap<String, String> = record.headers.iter().cloned().collect();
    assert_eq!(
        map.len(),
        record.headers.len(),
        "a header name twice: {:?}",
        record.headers
    );
    map
}

/// The headers every event of a page carries: the page's topic, partition and offset, the
/// page URL when given (events keyed by something else), pagesplit's version, and the trace
/// context when given (`traceparent` as written by pagesplit, `tracestate`).
pub fn event_headers(
    source: (&str, i32, i64),
    url: Option<&str>,
    trace: Option<(&str, &str)>,
) -> std::collections::BTreeMap<String, String> {
    let (topic, partition, offset) = source;
    let mut headers: std::collections::BTreeMap<String, String> = [
        ("pagesplit.source.topic", topic.to_owned()),
        ("pagesplit.source.partition", partition.to_string()),
        ("pagesplit.source.offset", offset.to_string()),
        ("pagesplit.version", env!("CARGO_PKG_VERSION").to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    if let Some(url) = url {
        headers.insert("pagesplit.source.url".to_owned(), url.to_owned());
    }
    if let Some((traceparent, tracestate)) = trace {
        headers.insert("traceparent".to_owned(), traceparent.to_owned());
        headers.insert("tracestate".to_owned(), tracestate.to_owned());
    }
    headers
}

/// The `traceparent` pagesplit wrote on the events of a page the crawler traced: the crawler's
/// trace id and flags, pagesplit's span (a new, non-zero id) as the parent.
pub fn pagesplit_traceparent(records: &[pagesplit::demo::ReadRecord]) -> String {
    let first = header_map(&records[0]);
    let traceparent = first.get("traceparent").expect("a traceparent").clone();
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    assert_eq!(
        (fields[0], fields[1], fields[3]),
        ("00", CRAWLER_TRACE_ID, "01"),
        "{traceparent}"
    );
    let span = fields[2];
    assert!(
        span.len() == 16 && span.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{traceparent}"
    );
    assert_ne!(span, "0000000000000000");
    assert_ne!(
        span,
        &CRAWLER_TRACEPARENT[36..52],
        "pagesplit's span, not the crawler's"
    );
    traceparent
}
