//! Shared helpers of the integration tests that run against the real local broker.
#![allow(dead_code)]

use std::time::Duration;

use pagesplit::config::{Config, EncodingFormat};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

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

/// Polls `check` until it returns `Some` or `deadline` passes.
pub async fn poll_until<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < deadline, "condition not met within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

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

/// Waits until the test worker's group has committed past `positions` of its input topic.
pub async fn wait_for_commit(config: &Config, positions: &pagesplit::demo::Positions, deadline: Duration) {
    let (bootstrap, group, input) = (
        config.kafka.bootstrap_servers.clone(),
        config.kafka.group_id.clone(),
        config.topics.input.clone(),
    );
    let positions = positions.clone();
    tokio::task::spawn_blocking(move || {
        pagesplit::demo::wait_committed(&bootstrap, &group, &input, &positions, deadline)
    })
    .await
    .expect("wait task")
    .expect("offsets committed past the published pages");
}

/// Publishes the masked example page to the test worker's input topic and waits until the
/// group has committed past it.
pub async fn publish_example_and_wait(config: &Config, url: &str, fetched_at: chrono::DateTime<chrono::Utc>) {
    let page = pagesplit::demo::PageToPublish {
        url: url.to_owned(),
        fetched_at,
        content_type: "text/plain".to_owned(),
        body: fixture("pages/brecorder-putin-assad.masked.txt"),
    };
    let positions = pagesplit::demo::publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &[page])
        .await
        .expect("page published");
    wait_for_commit(config, &positions, Duration::from_secs(60)).await;
}

/// Every record of `topic` from its start, waiting up to 30 s for the first.
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<pagesplit::demo::ReadRecord> {
    pagesplit::demo::read_records(
        bootstrap,
        topic,
        &pagesplit::demo::Positions::new(),
        Duration::from_secs(30),
    )
    .expect("records read back")
}
