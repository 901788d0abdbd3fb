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
    let topics = [
        config.topics.input.as_str(),
        config.topics.quotes.as_str(),
        config.topics.articles.as_str(),
        config.topics.dead_letter.as_str(),
    ];
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
