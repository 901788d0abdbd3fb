//! Interoperability with the Confluent Python client: events that pagesplit publishes in the
//! Confluent wire format are read back by `confluent_kafka.Consumer` and decoded by
//! `confluent_kafka.schema_registry.avro.AvroDeserializer` (fastavro), which fetches the writer
//! schema from the registry by the id in each record (tests/python/consume_events.py).
//!
//! Needs the broker and registry of the local stack and a Python interpreter with
//! tests/python/requirements.txt installed, named by `PAGESPLIT_TEST_PYTHON`; `make test` sets
//! both up. Without them the test fails: it never passes silently.
#![cfg(feature = "broker-tests")]

mod common;

use common::pages::EXAMPLE_URL;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use pagesplit::config::EncodingFormat;
use pagesplit::demo::{decode_event, end_offsets, Positions};
use pagesplit::encode::{value_to_json, Schemas, ARTICLE_SCHEMA_JSON, QUOTE_SCHEMA_JSON};
use pagesplit::registry::{value_subject, RegistryClient};
use rust_decimal::Decimal;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

/// The interpreter of the Python side.
fn python() -> String {
    match std::env::var("PAGESPLIT_TEST_PYTHON") {
        Ok(python) if !python.trim().is_empty() => python,
        _ => panic!(
            "PAGESPLIT_TEST_PYTHON is not set: run `make test`, which creates the Python venv \
             (.local/venv, from tests/python/requirements.txt) and points PAGESPLIT_TEST_PYTHON at it"
        ),
    }
}

fn script() -> String {
    format!("{}/tests/python/consume_events.py", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the Python consumer for `count` records of `topic` and returns its JSON lines.
async fn consume_with_python(python: &str, bootstrap: &str, topic: &str, count: usize) -> Vec<Json> {
    let args = vec![
        script(),
        "--bootstrap".to_owned(),
        bootstrap.to_owned(),
        "--registry".to_owned(),
        common::registry_url(),
        "--topic".to_owned(),
        topic.to_owned(),
        "--count".to_owned(),
        count.to_string(),
        "--timeout".to_owned(),
        "60".to_owned(),
    ];
    let python = python.to_owned();
    let output = tokio::task::spawn_blocking(move || std::process::Command::new(&python).args(&args).output())
        .await
        .unwrap()
        .unwrap_or_else(|error| panic!("cannot run the Python interpreter: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "consume_events.py failed on {topic} (exit {:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status.code()
    );
    let records: Vec<Json> = stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}")))
        .collect();
    assert_eq!(records.len(), count, "{stdout}\n{stderr}");
    records
}

fn decimal(value: &Json) -> Decimal {
    value
        .as_str()
        .unwrap_or_else(|| panic!("decimal not a string: {value}"))
        .parse()
        .unwrap_or_else(|error| panic!("{value} is not a decimal: {error}"))
}

fn total(positions: &Positions) -> i64 {
    positions.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confluent_python_client_decodes_pagesplit_events_through_the_registry() {
    let python = python();
    // The interpreter has the pinned packages (a clear message instead of a traceback later).
    let probe = std::process::Command::new(&python)
        .args([
            "-c",
            "import confluent_kafka, fastavro; \
             from confluent_kafka.schema_registry.avro import AvroDeserializer; \
             print(confluent_kafka.version()[0], fastavro.__version__)",
        ])
        .output()
        .unwrap_or_else(|error| panic!("PAGESPLIT_TEST_PYTHON={python} does not run: {error}"));
    assert!(
        probe.status.success(),
        "PAGESPLIT_TEST_PYTHON={python} lacks the packages of tests/python/requirements.txt \
         (run `make test`, or `{python} -m pip install -r tests/python/requirements.txt`): {}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let config = common::test_config("python", EncodingFormat::Confluent);
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "worker failed to start against the broker at {bootstrap} and the registry at {}: {error:#}",
                config.registry.url
            )
        });
    let fetched_at = Utc.with_ymd_and_hms(2024, 12, 8, 10, 15, 0).unwrap();
    let page = pagesplit::demo::PageToPublish {
        url: EXAMPLE_URL.to_owned(),
        fetched_at,
        content_type: "text/plain".to_owned(),
        body: common::fixture(common::pages::EXAMPLE_FIXTURE),
    };
    let (partition, offset) = common::publish_with_headers(
        &bootstrap,
        &config.topics.input,
        &page,
        &[
            ("traceparent", common::CRAWLER_TRACEPARENT),
            ("tracestate", common::CRAWLER_TRACESTATE),
        ],
    )
    .await;
    common::wait_for_commit(
        &config,
        &Positions::from([(partition, offset)]),
        Duration::from_secs(60),
    )
    .await;
    shutdown.cancel();
    running.wait().await.expect("clean shutdown");

    // Exactly 34 quote records and one article record were written.
    let (b, quotes_topic, articles_topic) = (
        bootstrap.clone(),
        config.topics.quotes.clone(),
        config.topics.articles.clone(),
    );
    let (quote_ends, article_ends) = tokio::task::spawn_blocking(move || {
        (
            end_offsets(&b, &quotes_topic).unwrap(),
            end_offsets(&b, &articles_topic).unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(total(&quote_ends), 34);
    assert_eq!(total(&article_ends), 1);

    let client = RegistryClient::new(&config.registry).unwrap();
    let quote_id = client
        .lookup(&value_subject(&config.topics.quotes), QUOTE_SCHEMA_JSON)
        .await
        .expect("quote schema registered");
    let article_id = client
        .lookup(&value_subject(&config.topics.articles), ARTICLE_SCHEMA_JSON)
        .await
        .expect("article schema registered");

    // Quotes, as Python decoded them.
    let expected: Json =
        serde_json::from_str(&common::fixture("pages/brecorder-putin-assad.masked.expected.json")).unwrap();
    let expected_quotes = expected["quotes"].as_array().unwrap();
    assert_eq!(expected_quotes.len(), 34);
    let records = consume_with_python(&python, &bootstrap, &config.topics.quotes, 34).await;
    // The Python consumer sees the lineage headers: the raw page, pagesplit's version, the
    // crawler's trace with pagesplit's span as parent (one span for the page's records).
    let rust_quotes = common::read_all(&bootstrap, &config.topics.quotes);
    let traceparent = common::pagesplit_traceparent(&rust_quotes);
    let source = (config.topics.input.as_str(), partition, offset);
    let trace = Some((traceparent.as_str(), common::CRAWLER_TRACESTATE));
    let quote_headers = headers_json(&common::event_headers(source, Some(EXAMPLE_URL), trace));
    let mut by_symbol = BTreeMap::new();
    for record in &records {
        assert_eq!(record["headers"], quote_headers, "{record}");
        assert_eq!(record["schema_id"].as_u64(), Some(u64::from(quote_id)), "{record}");
        let value = &record["value"];
        let symbol = value["symbol"]
            .as_str()
            .unwrap_or_else(|| panic!("no symbol: {record}"));
        assert_eq!(record["key"].as_str(), Some(symbol), "keyed by symbol: {record}");
        assert!(
            by_symbol.insert(symbol.to_owned(), value.clone()).is_none(),
            "{symbol} twice"
        );
    }
    assert_eq!(by_symbol.len(), 34);
    let millis = fetched_at.timestamp_millis();
    for want in expected_quotes {
        let symbol = want["symbol"].as_str().unwrap();
        let got = by_symbol
            .get(symbol)
            .unwrap_or_else(|| panic!("Python saw no quote for {symbol}"));
        assert_eq!(got["kind"], want["kind"], "{symbol} kind");
        assert_eq!(got["direction"], want["direction"], "{symbol} direction");
        for name in ["price", "change", "change_pct"] {
            // fastavro gives the schema's scale (82.300000); the values are equal as decimals.
            assert_eq!(decimal(&got[name]), decimal(&want[name]), "{symbol} {name}: {got}");
        }
        assert_eq!(got["url"].as_str(), Some(EXAMPLE_URL), "{symbol}");
        assert_eq!(got["fetched_at"].as_i64(), Some(millis), "{symbol} fetched_at");
        assert_eq!(
            got["event_id"].as_str(),
            Some(
                pagesplit::model::event_id(EXAMPLE_URL, fetched_at, symbol)
                    .to_string()
                    .as_str()
            ),
            "{symbol} event_id"
        );
    }
    assert_eq!(by_symbol["KSE100"]["kind"], "INDEX");
    assert_eq!(decimal(&by_symbol["KSE100"]["price"]), Decimal::from(106_275));
    assert_eq!(decimal(&by_symbol["KSE100"]["change"]), "-4795.3".parse().unwrap());

    // The article, as Python decoded it, against the fixture ...
    let records = consume_with_python(&python, &bootstrap, &config.topics.articles, 1).await;
    let record = &records[0];
    assert_eq!(record["schema_id"].as_u64(), Some(u64::from(article_id)), "{record}");
    assert_eq!(record["key"].as_str(), Some(EXAMPLE_URL), "keyed by URL");
    assert_eq!(
        record["headers"],
        headers_json(&common::event_headers(source, None, trace)),
        "{record}"
    );
    let article = &record["value"];
    let want = &expected["article"];
    assert_eq!(
        article["event_id"].as_str(),
        Some(
            pagesplit::model::event_id(EXAMPLE_URL, fetched_at, "article")
                .to_string()
                .as_str()
        )
    );
    assert_eq!(article["url"].as_str(), Some(EXAMPLE_URL));
    assert_eq!(article["fetched_at"].as_i64(), Some(millis));
    assert_eq!(article["title"], Json::Null);
    assert_eq!(article["dateline"], want["dateline"]);
    let paragraphs = article["paragraphs"].as_array().expect("paragraphs");
    assert_eq!(paragraphs.len() as u64, want["body_paragraph_count"].as_u64().unwrap());
    assert_eq!(paragraphs.len(), 13);
    assert!(paragraphs[0]
        .as_str()
        .unwrap()
        .starts_with(want["first_paragraph_starts_with"].as_str().unwrap()));
    assert_eq!(paragraphs[12], want["last_paragraph"]);
    assert_eq!(article["related_headlines"], want["related_headlines"]);
    assert_eq!(article["comments_closed"], Json::Bool(true));

    // ... and field for field against pagesplit's own decoding of the same record.
    let rust_side = common::read_all(&bootstrap, &config.topics.articles);
    assert_eq!(rust_side.len(), 1);
    let mut rust_article = value_to_json(
        &decode_event(&rust_side[0].value, &Schemas::bundled().article)
            .expect("article decodes with the bundled schema"),
    );
    let object = rust_article.as_object_mut().unwrap();
    for name in ["fetched_at", "published_at"] {
        // pagesplit renders times as RFC 3339, the Python side as epoch milliseconds.
        if let Some(text) = object[name].as_str() {
            let at = chrono::DateTime::parse_from_rfc3339(text).unwrap();
            object.insert(name.to_owned(), Json::from(at.timestamp_millis()));
        }
    }
    assert_eq!(article, &rust_article, "Python and pagesplit decode the article alike");

    common::delete_topics(&config).await;
    delete_subjects(&[
        value_subject(&config.topics.quotes),
        value_subject(&config.topics.articles),
    ])
    .await;
}

/// Headers as the Python consumer prints them: a JSON object of text values.
fn headers_json(headers: &BTreeMap<String, String>) -> Json {
    Json::Object(
        headers
            .iter()
            .map(|(name, value)| (name.clone(), Json::from(value.as_str())))
            .collect(),
    )
}

/// Removes subjects from the registry (soft, then permanently); best effort.
async fn delete_subjects(subjects: &[String]) {
    let http = reqwest::Client::new();
    for subject in subjects {
        for query in ["", "?permanent=true"] {
            let _ = http
                .delete(format!("{}/subjects/{subject}{query}", common::registry_url()))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
        }
    }
}
