//! Quote change detection against the real broker and registry: the same page published again
//! and again reaches the quote topic once, plus the one quote that changed, and so does the
//! compacted latest-quote topic, whatever `quotes.emit` says; at-least-once and exactly-once.
#![cfg(feature = "broker-tests")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use pagesplit::config::{Config, DeliveryMode, EncodingFormat, QuoteEmit};
use pagesplit::demo::{decode_event, publish_pages, ReadRecord};
use pagesplit::encode::{decimal_from_avro, unframe, Framed, Schemas, QUOTE_SCHEMA_JSON};
use pagesplit::registry::{value_subject, RegistryClient};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use tokio_util::sync::CancellationToken;

use common::pages::{fetched_at, repeated_pages, REPEATS};
use common::{field, text};

/// The symbols of the example page, in page order.
fn expected_symbols() -> Vec<String> {
    let expected: serde_json::Value =
        serde_json::from_str(&common::fixture("pages/brecorder-putin-assad.masked.expected.json")).unwrap();
    expected["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|quote| quote["symbol"].as_str().unwrap().to_owned())
        .collect()
}

/// A topic's `cleanup.policy`, as the broker describes it.
async fn cleanup_policy(bootstrap: &str, topic: &str) -> String {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let mut results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await
        .expect("configs described");
    let resource = results.pop().expect("one resource").expect("topic described");
    resource
        .get("cleanup.policy")
        .and_then(|entry| entry.value.clone())
        .expect("cleanup.policy set")
}

/// A decoded quote: (symbol, price, fetched_at in ms).
fn quote_of(record: &ReadRecord) -> (String, String, i64) {
    let quote = decode_event(&record.value, &Schemas::bundled().quote).expect("quote decodes");
    let symbol = text(field(&quote, "symbol"));
    assert_eq!(record.key.as_deref(), Some(symbol.as_str()), "keyed by symbol");
    let price = decimal_from_avro(field(&quote, "price"))
        .unwrap()
        .normalize()
        .to_string();
    let apache_avro::types::Value::TimestampMillis(at) = field(&quote, "fetched_at") else {
        panic!("fetched_at is not timestamp-millis")
    };
    (symbol, price, *at)
}

/// Runs a worker on `config` (quotes.emit = changed) over the repeated pages and checks both
/// topics, the committed offsets, the latest topic's compaction and the metrics.
async fn repeated_pages_reach_the_quote_topic_once(config: Config) {
    assert_eq!(config.quotes.emit, QuoteEmit::Changed);
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let latest_topic = config
        .topics
        .quotes_latest()
        .expect("latest topic configured")
        .to_owned();
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone())
        .await
        .unwrap_or_else(|error| panic!("worker failed to start against {bootstrap}: {error:#}"));

    // Offsets are committed past every page: their records were all acknowledged (committed).
    let positions = publish_pages(&bootstrap, &config.topics.input, &repeated_pages())
        .await
        .expect("pages published");
    assert_eq!(positions.len(), 1, "one key, one partition");
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;

    // The quote topic: the first page's 34 quotes, then only AGL's move.
    let symbols = expected_symbols();
    assert_eq!(symbols.len(), 34);
    let quotes: Vec<_> = common::read_all(&bootstrap, &config.topics.quotes)
        .iter()
        .map(quote_of)
        .collect();
    assert_eq!(quotes.len(), 35, "34 quotes of the first page and the one that changed");
    let mut first_page: Vec<String> = quotes
        .iter()
        .filter(|(_, _, at)| *at == fetched_at(0).timestamp_millis())
        .map(|(symbol, _, _)| symbol.clone())
        .collect();
    first_page.sort();
    let mut want = symbols.clone();
    want.sort();
    assert_eq!(first_page, want);
    let moved: Vec<_> = quotes
        .iter()
        .filter(|(_, _, at)| *at != fetched_at(0).timestamp_millis())
        .collect();
    assert_eq!(
        moved,
        [&(
            "AGL".to_owned(),
            "38.1".to_owned(),
            fetched_at(REPEATS).timestamp_millis()
        )]
    );

    // The latest topic: a quote only when it changed, so the first page's 34, then AGL's move;
    // after compaction, the current quote of every symbol.
    let latest = common::read_all(&bootstrap, &latest_topic);
    assert_eq!(latest.len(), 35, "34 quotes of the first page and the one that changed");
    let mut per_symbol: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for record in &latest {
        let (symbol, price, at) = quote_of(record);
        per_symbol.entry(symbol).or_default().push((price, at));
    }
    assert_eq!(per_symbol.len(), 34);
    for (symbol, seen) in per_symbol.iter().filter(|(symbol, _)| *symbol != "AGL") {
        assert_eq!(seen.len(), 1, "{symbol}");
        assert_eq!(seen[0].1, fetched_at(0).timestamp_millis(), "{symbol}");
    }
    let agl_at = fetched_at(REPEATS).timestamp_millis();
    assert_eq!(
        per_symbol["AGL"],
        [
            ("37.94".to_owned(), fetched_at(0).timestamp_millis()),
            ("38.1".to_owned(), agl_at)
        ]
    );
    if config.encoding.format == EncodingFormat::Confluent {
        // Framed with the id of the quote schema under the latest topic's own subject.
        let client = RegistryClient::new(&config.registry).unwrap();
        let latest_id = client
            .lookup(&value_subject(&latest_topic), QUOTE_SCHEMA_JSON)
            .await
            .expect("latest subject registered");
        for record in &latest {
            assert!(matches!(
                unframe(&record.value),
                Some(Framed::Confluent { schema_id, .. }) if schema_id == latest_id
            ));
        }
    }

    // Created compacted; the quote topic keeps the broker's default.
    assert_eq!(cleanup_policy(&bootstrap, &latest_topic).await, "compact");
    assert_eq!(cleanup_policy(&bootstrap, &config.topics.quotes).await, "delete");

    // Metrics count what was left out and what went where.
    let metrics = &running.metrics;
    assert_eq!(metrics.events_produced_count(&config.topics.quotes, "quote"), 35);
    assert_eq!(metrics.events_produced_count(&latest_topic, "quote"), 35);
    assert_eq!(metrics.events_produced_count(&config.topics.articles, "article"), 6);
    assert_eq!(metrics.quotes_unchanged_count(), 34 * REPEATS as u64 - 1);
    let exposition = metrics.render();
    assert!(
        exposition.contains("pagesplit_quote_symbols_tracked 68"),
        "both filters track the 34 symbols: {exposition}"
    );

    shutdown.cancel();
    running.wait().await.expect("clean shutdown");
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_publishes_only_changed_quotes_to_both_topics() {
    let mut config = common::test_config("changes", EncodingFormat::Confluent);
    config.quotes.emit = QuoteEmit::Changed;
    config.validate().unwrap();
    repeated_pages_reach_the_quote_topic_once(config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_publishes_only_changed_quotes_across_transactions() {
    let mut config = common::test_config("changes-eos", EncodingFormat::SingleObject);
    config.quotes.emit = QuoteEmit::Changed;
    config.delivery.mode = DeliveryMode::ExactlyOnce;
    config.delivery.instance_id = common::unique("changes-eos");
    // Pages split over several transactions.
    config.delivery.transaction_max_pages = 2;
    config.validate().unwrap();
    repeated_pages_reach_the_quote_topic_once(config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_quote_on_the_quote_topic_the_latest_topic_still_gets_only_changes() {
    let config = common::test_config("changes-all", EncodingFormat::SingleObject);
    assert_eq!(config.quotes.emit, QuoteEmit::All);
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let latest_topic = config.topics.quotes_latest().unwrap().to_owned();
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone())
        .await
        .expect("worker starts");
    // After the pages, a late one: fetched before the last (AGL still at 37.94 then), consumed
    // after it. Its quotes go to the quote topic, but it is older than what the latest-quote
    // topic holds for AGL.
    let mut pages = repeated_pages();
    let mut late = pages[0].clone();
    late.fetched_at = fetched_at(REPEATS - 1) + chrono::Duration::seconds(30);
    pages.push(late);
    let positions = publish_pages(&bootstrap, &config.topics.input, &pages)
        .await
        .expect("pages published");
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;
    assert_eq!(
        common::read_all(&bootstrap, &config.topics.quotes).len(),
        34 * pages.len()
    );
    let latest: Vec<_> = common::read_all(&bootstrap, &latest_topic)
        .iter()
        .map(quote_of)
        .collect();
    assert_eq!(latest.len(), 35);
    let agl: Vec<_> = latest.iter().filter(|(symbol, _, _)| symbol == "AGL").collect();
    assert_eq!(
        agl,
        [
            &("AGL".to_owned(), "37.94".to_owned(), fetched_at(0).timestamp_millis()),
            &(
                "AGL".to_owned(),
                "38.1".to_owned(),
                fetched_at(REPEATS).timestamp_millis()
            )
        ]
    );
    let metrics = &running.metrics;
    assert_eq!(metrics.events_produced_count(&latest_topic, "quote"), 35);
    assert_eq!(metrics.quotes_unchanged_count(), 0, "the quote topic is not filtered");
    assert!(metrics.render().contains("pagesplit_quote_symbols_tracked 34"));
    shutdown.cancel();
    running.wait().await.expect("clean shutdown");
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_latest_topic_stops_startup_without_topics_create() {
    let mut config = common::test_config("changes-missing", EncodingFormat::SingleObject);
    let latest = config.topics.quotes_latest.clone();
    // The other topics exist; the latest-quote topic does not.
    config.topics.quotes_latest = String::new();
    pagesplit::app::prepare_topics(&config).await.expect("topics created");
    config.topics.quotes_latest = latest.clone();
    config.topics.create = false;
    let error = pagesplit::app::prepare_topics(&config)
        .await
        .expect_err("the latest topic is missing");
    let error = format!("{error:#}");
    assert!(error.contains(&format!("topic `{latest}` does not exist")), "{error}");
    common::delete_topics(&config).await;
}
