//! Against the real local broker and schema registry (Apicurio's Confluent-compatible API):
//! Confluent-framed events decode with the writer schema fetched from the registry by id,
//! startup fails clearly when schemas are not registered or the registry is unreachable,
//! schema evolution follows the FULL compatibility rules, and `pagesplit schemas` works.
//!
//! Every test uses its own topics, group and subjects, and removes them when it ends. None is
//! skipped when the broker or the registry is down: they fail, naming what they could not reach.
#![cfg(feature = "broker-tests")]

mod common;

use common::pages::EXAMPLE_URL;
use common::{field, strings, text};

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use chrono::{DateTime, TimeZone, Utc};
use pagesplit::config::{Config, EncodingFormat, RegistryConfig};
use pagesplit::demo::ReadRecord;
use pagesplit::encode::{
    article_value, decimal_from_avro, quote_value, read_datum, unframe, Encoder, Framed, Framing, ARTICLE_SCHEMA_JSON,
    QUOTE_SCHEMA_JSON,
};
use pagesplit::model::{event_id, Article, Direction, Quote, QuoteKind};
use pagesplit::registry::{value_subject, RegistryClient, RegistryError};
use serde_json::json;
use tokio_util::sync::CancellationToken;

// --- Helpers ------------------------------------------------------------------------------

fn registry_config() -> RegistryConfig {
    RegistryConfig {
        url: common::registry_url(),
        ..RegistryConfig::default()
    }
}

fn registry_client() -> RegistryClient {
    RegistryClient::new(&registry_config()).expect("registry client")
}

/// GETs a registry path and returns its JSON; fails the test when the registry does not answer
/// 200 (a test that needs the registry never passes without it).
async fn registry_get(path: &str) -> serde_json::Value {
    let url = format!("{}{path}", common::registry_url());
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap_or_else(|error| {
            panic!("schema registry unreachable at {url}: {error} (start it with `deploy/local/stack up`)")
        });
    let status = response.status();
    let body = response.text().await.expect("registry response body");
    assert_eq!(status.as_u16(), 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("GET {url} is not JSON ({error}): {body}"))
}

/// The subject's compatibility level as the registry reports it.
async fn subject_compatibility(subject: &str) -> String {
    let config = registry_get(&format!("/config/{subject}")).await;
    config["compatibilityLevel"]
        .as_str()
        .unwrap_or_else(|| panic!("no compatibilityLevel for {subject}: {config}"))
        .to_owned()
}

/// The schema registered under `id`, fetched from the registry (`GET /schemas/ids/{id}`).
async fn registry_schema(id: u32) -> (String, Schema) {
    let response = registry_get(&format!("/schemas/ids/{id}")).await;
    let text = response["schema"]
        .as_str()
        .unwrap_or_else(|| panic!("no schema in /schemas/ids/{id}: {response}"))
        .to_owned();
    let schema = Schema::parse_str(&text).unwrap_or_else(|error| panic!("schema {id} does not parse: {error}"));
    (text, schema)
}

/// Removes subjects and topics when dropped, also when the test fails half-way.
struct Cleanup {
    subjects: Vec<String>,
    config: Option<Config>,
}

impl Cleanup {
    fn subjects(subjects: &[String]) -> Self {
        Self {
            subjects: subjects.to_vec(),
            config: None,
        }
    }

    fn of_config(config: &Config) -> Self {
        Self {
            subjects: pagesplit::app::value_subjects(config)
                .into_iter()
                .map(|(subject, _)| subject)
                .collect(),
            config: Some(config.clone()),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let subjects = std::mem::take(&mut self.subjects);
        let config = self.config.take();
        // Its own thread and runtime: this may run inside the test's runtime, or while unwinding.
        let cleaning = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let http = reqwest::Client::new();
                let base = common::registry_url();
                for subject in &subjects {
                    for query in ["", "?permanent=true"] {
                        let _ = http
                            .delete(format!("{base}/subjects/{subject}{query}"))
                            .timeout(Duration::from_secs(5))
                            .send()
                            .await;
                    }
                }
                if let Some(config) = config {
                    common::delete_topics(&config).await;
                }
            });
        });
        let _ = cleaning.join();
    }
}

/// A schema's JSON with its field list edited.
fn edit_fields(schema_json: &str, edit: impl FnOnce(&mut Vec<serde_json::Value>)) -> String {
    let mut schema: serde_json::Value = serde_json::from_str(schema_json).expect("schema JSON");
    let fields = schema["fields"].as_array_mut().expect("a record schema");
    edit(fields);
    schema.to_string()
}

/// A record value with one more field at the end.
fn with_field(record: &Value, name: &str, value: Value) -> Value {
    let Value::Record(fields) = record else {
        panic!("not a record: {record:?}")
    };
    let mut fields = fields.clone();
    fields.push((name.to_owned(), value));
    Value::Record(fields)
}

fn fetched_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 12, 8, 10, 15, 0).unwrap()
}

fn sample_quote() -> Quote {
    Quote {
        event_id: event_id(EXAMPLE_URL, fetched_at(), "KSE100"),
        symbol: "KSE100".into(),
        kind: QuoteKind::Index,
        price: "106275".parse().unwrap(),
        change: "-4795.3".parse().unwrap(),
        change_pct: "-4.32".parse().unwrap(),
        direction: Direction::Down,
        url: EXAMPLE_URL.into(),
        fetched_at: fetched_at(),
    }
}

fn sample_article() -> Article {
    Article {
        event_id: event_id(EXAMPLE_URL, fetched_at(), "article"),
        url: EXAMPLE_URL.to_owned(),
        fetched_at: fetched_at(),
        title: None,
        section: Some("World".to_owned()),
        byline: Some("Reuters".to_owned()),
        published_at: Some(Utc.with_ymd_and_hms(2024, 12, 8, 9, 30, 0).unwrap()),
        dateline: Some("MOSCOW".to_owned()),
        paragraphs: vec!["MOSCOW: Russia\u{2019}s president met Assad.".to_owned()],
        related_headlines: vec!["Iran, Saudi Arabia to restore ties in China-brokered deal".to_owned()],
        comments_closed: true,
        authors: Vec::new(),
        modified_at: None,
        language: None,
        canonical_url: None,
        description: None,
        image_url: None,
    }
}

// --- a. Confluent end to end, decoded through the registry ---------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_events_decode_with_the_writer_schema_fetched_from_the_registry() {
    let config = common::test_config("registry", EncodingFormat::Confluent);
    assert!(config.registry.auto_register, "auto_register is the default");
    assert_eq!(config.registry.compatibility, "FULL", "FULL is the default level");
    let _cleanup = Cleanup::of_config(&config);
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

    common::publish_example_and_wait(&config, EXAMPLE_URL, fetched_at()).await;

    // The ids the worker registered are those the registry reports for the bundled schemas.
    let client = RegistryClient::new(&config.registry).unwrap();
    let quote_subject = value_subject(&config.topics.quotes);
    let article_subject = value_subject(&config.topics.articles);
    let quote_id = client
        .lookup(&quote_subject, QUOTE_SCHEMA_JSON)
        .await
        .expect("quote schema registered");
    let article_id = client
        .lookup(&article_subject, ARTICLE_SCHEMA_JSON)
        .await
        .expect("article schema registered");
    assert_ne!(quote_id, article_id);
    assert_eq!(subject_compatibility(&quote_subject).await, "FULL");
    assert_eq!(subject_compatibility(&article_subject).await, "FULL");

    // Each writer schema, fetched by the id in the records, is the bundled one.
    let (quote_schema_text, quote_schema) = registry_schema(quote_id).await;
    let (article_schema_text, article_schema) = registry_schema(article_id).await;
    let as_json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    assert_eq!(as_json(&quote_schema_text), as_json(QUOTE_SCHEMA_JSON));
    assert_eq!(as_json(&article_schema_text), as_json(ARTICLE_SCHEMA_JSON));
    let mut writer_schemas = BTreeMap::from([(quote_id, quote_schema), (article_id, article_schema)]);

    let mut decode = async |record: &ReadRecord| -> Value {
        let Some(Framed::Confluent { schema_id, datum }) = unframe(&record.value) else {
            panic!(
                "not Confluent-framed: {:02x?}",
                &record.value[..record.value.len().min(16)]
            )
        };
        if let Entry::Vacant(entry) = writer_schemas.entry(schema_id) {
            entry.insert(registry_schema(schema_id).await.1);
        }
        let mut rest = datum;
        let value = read_datum(&writer_schemas[&schema_id], &mut rest)
            .unwrap_or_else(|error| panic!("datum does not decode with registry schema {schema_id}: {error}"));
        assert!(rest.is_empty(), "{} bytes after the datum", rest.len());
        value
    };

    // Quotes: exactly the expected 34, keyed by symbol, exact decimals.
    let expected: serde_json::Value =
        serde_json::from_str(&common::fixture("pages/brecorder-putin-assad.masked.expected.json")).unwrap();
    let expected_quotes = expected["quotes"].as_array().unwrap();
    assert_eq!(expected_quotes.len(), 34);
    let records = common::read_all(&bootstrap, &config.topics.quotes);
    assert_eq!(records.len(), 34, "one record per ticker line");
    let mut by_symbol = BTreeMap::new();
    for record in &records {
        assert_eq!(
            unframe(&record.value),
            Some(Framed::Confluent {
                schema_id: quote_id,
                datum: &record.value[5..]
            }),
            "quotes carry the quote schema's id"
        );
        let quote = decode(record).await;
        let symbol = text(field(&quote, "symbol"));
        assert_eq!(record.key.as_deref(), Some(symbol.as_str()), "keyed by symbol");
        assert!(by_symbol.insert(symbol.clone(), quote).is_none(), "{symbol} twice");
    }
    assert_eq!(by_symbol.len(), 34);
    for want in expected_quotes {
        let symbol = want["symbol"].as_str().unwrap();
        let quote = by_symbol.get(symbol).unwrap_or_else(|| panic!("no quote for {symbol}"));
        assert_eq!(
            text(field(quote, "kind")),
            want["kind"].as_str().unwrap(),
            "{symbol} kind"
        );
        assert_eq!(
            text(field(quote, "direction")),
            want["direction"].as_str().unwrap(),
            "{symbol} direction"
        );
        for name in ["price", "change", "change_pct"] {
            let got = decimal_from_avro(field(quote, name)).unwrap_or_else(|| panic!("{symbol} {name} not a decimal"));
            let want: rust_decimal::Decimal = want[name].as_str().unwrap().parse().unwrap();
            assert_eq!(got, want, "{symbol} {name}");
        }
        assert_eq!(text(field(quote, "url")), EXAMPLE_URL);
        assert_eq!(
            field(quote, "fetched_at"),
            &Value::TimestampMillis(fetched_at().timestamp_millis())
        );
        assert_eq!(
            text(field(quote, "event_id")),
            event_id(EXAMPLE_URL, fetched_at(), symbol).to_string()
        );
    }
    let kse100 = &by_symbol["KSE100"];
    assert_eq!(text(field(kse100, "kind")), "INDEX");
    assert_eq!(decimal_from_avro(field(kse100, "price")).unwrap().to_string(), "106275");
    assert_eq!(
        decimal_from_avro(field(kse100, "change")).unwrap().to_string(),
        "-4795.3"
    );
    assert_eq!(
        decimal_from_avro(field(kse100, "change_pct")).unwrap().to_string(),
        "-4.32"
    );

    // The article, keyed by URL.
    let articles = common::read_all(&bootstrap, &config.topics.articles);
    assert_eq!(articles.len(), 1);
    assert_eq!(articles[0].key.as_deref(), Some(EXAMPLE_URL));
    let Some(Framed::Confluent { schema_id, .. }) = unframe(&articles[0].value) else {
        panic!("article not Confluent-framed")
    };
    assert_eq!(schema_id, article_id);
    let article = decode(&articles[0]).await;
    let want = &expected["article"];
    assert_eq!(
        text(field(&article, "event_id")),
        event_id(EXAMPLE_URL, fetched_at(), "article").to_string()
    );
    assert_eq!(text(field(&article, "url")), EXAMPLE_URL);
    assert_eq!(field(&article, "title"), &Value::Union(0, Box::new(Value::Null)));
    assert_eq!(text(field(&article, "dateline")), want["dateline"].as_str().unwrap());
    let paragraphs = strings(field(&article, "paragraphs"));
    assert_eq!(paragraphs.len() as u64, want["body_paragraph_count"].as_u64().unwrap());
    assert_eq!(paragraphs.len(), 13);
    assert!(paragraphs[0].starts_with(want["first_paragraph_starts_with"].as_str().unwrap()));
    assert_eq!(paragraphs[12], want["last_paragraph"].as_str().unwrap());
    let related: Vec<String> = want["related_headlines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(strings(field(&article, "related_headlines")), related);
    assert_eq!(field(&article, "comments_closed"), &Value::Boolean(true));

    shutdown.cancel();
    running.wait().await.expect("clean shutdown");
}

// --- b. Startup fails clearly ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_register_startup_names_the_subject_that_is_not_registered() {
    let mut config = common::test_config("registry-manual", EncodingFormat::Confluent);
    config.registry.auto_register = false;
    let _cleanup = Cleanup::of_config(&config);
    let client = RegistryClient::new(&config.registry).unwrap();
    let quote_subject = value_subject(&config.topics.quotes);
    let article_subject = value_subject(&config.topics.articles);

    let start_error =
        async |config: &Config| match pagesplit::app::start(config.clone(), CancellationToken::new()).await {
            Ok(_) => panic!("startup should fail while a subject is not registered"),
            Err(error) => format!("{error:#}"),
        };

    // Neither subject registered: the first is named, with the way out.
    let error = start_error(&config).await;
    assert!(error.contains(&quote_subject), "{error}");
    assert!(error.contains("auto_register"), "{error}");
    assert!(error.contains("pagesplit schemas register"), "{error}");
    // Startup did not register anything behind the operator's back.
    assert!(matches!(
        client.lookup(&quote_subject, QUOTE_SCHEMA_JSON).await,
        Err(RegistryError::NotRegistered { .. })
    ));

    // Only the quote subject registered: the article subject is named.
    let quote_id = client.register(&quote_subject, QUOTE_SCHEMA_JSON).await.unwrap();
    let error = start_error(&config).await;
    assert!(error.contains(&article_subject), "{error}");
    assert!(!error.contains(&quote_subject), "{error}");

    // Quote and article registered: the latest-quote topic's subject is named.
    let article_id = client.register(&article_subject, ARTICLE_SCHEMA_JSON).await.unwrap();
    let latest_subject = value_subject(config.topics.quotes_latest().expect("latest topic configured"));
    let error = start_error(&config).await;
    assert!(error.contains(&latest_subject), "{error}");
    assert!(!error.contains(&article_subject), "{error}");

    // All registered: the worker starts and uses the registered ids.
    let latest_id = client.register(&latest_subject, QUOTE_SCHEMA_JSON).await.unwrap();
    let latest = pagesplit::app::resolve_latest_quotes(&config)
        .await
        .expect("latest id resolved")
        .expect("latest topic configured");
    assert_eq!(
        latest.header.as_deref(),
        Some(&[&[0u8][..], &latest_id.to_be_bytes()].concat()[..])
    );
    let encoder = pagesplit::app::resolve_encoder(&config).await.expect("ids resolved");
    let quote = encoder.encode_quote(&sample_quote()).unwrap();
    assert_eq!(quote[..5], [&[0u8][..], &quote_id.to_be_bytes()].concat());
    let article = encoder.encode_article(&sample_article()).unwrap();
    assert_eq!(article[..5], [&[0u8][..], &article_id.to_be_bytes()].concat());
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone())
        .await
        .unwrap_or_else(|error| panic!("startup with registered subjects failed: {error:#}"));
    shutdown.cancel();
    running.wait().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_stops_startup_with_its_url_after_the_startup_timeout() {
    let mut config = common::test_config("registry-down", EncodingFormat::Confluent);
    let url = "http://127.0.0.1:1/apis/ccompat/v7";
    config.registry.url = url.to_owned();
    config.registry.startup_timeout_ms = 1_500;
    config.validate().unwrap();
    let _cleanup = Cleanup {
        subjects: Vec::new(),
        config: Some(config.clone()),
    };
    let started = Instant::now();
    let error = match pagesplit::app::start(config.clone(), CancellationToken::new()).await {
        Ok(_) => panic!("startup should fail without a registry"),
        Err(error) => format!("{error:#}"),
    };
    let took = started.elapsed();
    assert!(error.contains(url), "{error}");
    assert!(error.contains("unreachable"), "{error}");
    assert!(
        took < Duration::from_secs(15),
        "gave up after {took:?}, not soon after startup_timeout_ms"
    );
}

// --- c. Schema evolution under FULL ---------------------------------------------------------

/// Registers the bundled schema `v1_json` under a new subject at level FULL, then checks that a
/// v2 without `required_field` is refused and a v2 with an optional field is accepted, and that
/// v1 and v2 readers decode each other's data (`v1_value` is pagesplit's value of an event,
/// `datum` the datum pagesplit's encoder writes for it).
async fn evolve(name: &str, v1_json: &str, required_field: &str, v1_value: Value, datum: &[u8]) {
    registry_get("/subjects").await;
    let client = registry_client();
    let subject = format!("{}-value", common::unique(&format!("pagesplit.evolution.{name}")));
    let _cleanup = Cleanup::subjects(std::slice::from_ref(&subject));

    let v1_id = client
        .register_with_level(&subject, v1_json, Some("FULL"))
        .await
        .unwrap_or_else(|error| panic!("{name} v1: {error}"));
    assert_eq!(subject_compatibility(&subject).await, "FULL");

    // v2 without a required field: old consumers could not read its events.
    let removed = edit_fields(v1_json, |fields| fields.retain(|f| f["name"] != required_field));
    assert!(
        client.check_compatibility(&subject, &removed).await.unwrap().is_err(),
        "{name}: removing required `{required_field}` reported compatible under FULL"
    );
    let error = client
        .register(&subject, &removed)
        .await
        .expect_err("an incompatible schema is refused");
    assert!(error.to_string().contains("409"), "{name}: {error}");

    // v2 with an optional field (default null): compatible both ways, a new id.
    let added = edit_fields(v1_json, |fields| {
        fields.push(json!({
            "name": "source",
            "type": ["null", "string"],
            "default": null,
            "doc": "Where the page came from."
        }))
    });
    assert_eq!(
        client.check_compatibility(&subject, &added).await.unwrap(),
        Ok(()),
        "{name}: adding an optional field"
    );
    let v2_id = client
        .register(&subject, &added)
        .await
        .expect("compatible v2 registers");
    assert_ne!(v2_id, v1_id, "{name}: v2 has its own id");
    assert_eq!(client.lookup(&subject, v1_json).await.unwrap(), v1_id);
    assert_eq!(client.lookup(&subject, &added).await.unwrap(), v2_id);
    assert_eq!(
        registry_get(&format!("/subjects/{subject}/versions")).await,
        json!([1, 2]),
        "{name}: the refused schema left no version"
    );

    // Both versions as the registry hands them out.
    let (_, v1) = registry_schema(v1_id).await;
    let (_, v2) = registry_schema(v2_id).await;

    // pagesplit's datum is what any v1 writer writes.
    let v1_bytes = GenericDatumWriter::builder(&v1)
        .build()
        .unwrap()
        .write_value_to_vec(v1_value.clone())
        .unwrap();
    assert_eq!(datum, &v1_bytes[..], "{name}: pagesplit writes the v1 datum");

    // Old consumers (reader v1) decode new events (writer v2).
    let source = Value::Union(1, Box::new(Value::String("wire".into())));
    let v2_bytes = GenericDatumWriter::builder(&v2)
        .build()
        .unwrap()
        .write_value_to_vec(with_field(&v1_value, "source", source))
        .unwrap();
    let mut slice = v2_bytes.as_slice();
    let old_view = GenericDatumReader::builder(&v2)
        .reader_schema(&v1)
        .build()
        .unwrap()
        .read_value(&mut slice)
        .unwrap_or_else(|error| panic!("{name}: a v1 reader cannot read v2 data: {error}"));
    assert!(slice.is_empty());
    assert_eq!(
        old_view, v1_value,
        "{name}: a v1 reader sees the v1 fields of a v2 event"
    );

    // New consumers (reader v2) decode old events (writer v1): the new field is null.
    let mut slice = v1_bytes.as_slice();
    let new_view = GenericDatumReader::builder(&v1)
        .reader_schema(&v2)
        .build()
        .unwrap()
        .read_value(&mut slice)
        .unwrap_or_else(|error| panic!("{name}: a v2 reader cannot read v1 data: {error}"));
    assert!(slice.is_empty());
    assert_eq!(
        new_view,
        with_field(&v1_value, "source", Value::Union(0, Box::new(Value::Null))),
        "{name}: a v2 reader fills the new field with its default"
    );
}

fn confluent_encoder() -> Encoder {
    Encoder::new(Framing::Confluent {
        quote_schema_id: 1,
        article_schema_id: 2,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_schema_evolves_under_full_compatibility() {
    let quote = sample_quote();
    let framed = confluent_encoder().encode_quote(&quote).unwrap();
    evolve(
        "quote",
        QUOTE_SCHEMA_JSON,
        "direction",
        quote_value(&quote).unwrap(),
        &framed[5..],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn article_schema_evolves_under_full_compatibility() {
    let article = sample_article();
    let framed = confluent_encoder().encode_article(&article).unwrap();
    evolve(
        "article",
        ARTICLE_SCHEMA_JSON,
        "comments_closed",
        article_value(&article),
        &framed[5..],
    )
    .await;
}

// --- d. The schema tools of the command line ------------------------------------------------

/// Runs the built binary without any `PAGESPLIT_*` variable of the test environment.
async fn pagesplit_cli(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pagesplit"));
        for (name, _) in std::env::vars() {
            if name.starts_with("PAGESPLIT_") {
                command.env_remove(name);
            }
        }
        command.args(&args).output().expect("pagesplit runs")
    })
    .await
    .unwrap()
}

fn show(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_register_check_and_print_on_the_command_line() {
    registry_get("/subjects").await;
    let id = common::unique("cli");
    let (quotes, articles) = (format!("market.quotes.v1.{id}"), format!("news.articles.v1.{id}"));
    let latest = format!("market.quotes.latest.v1.{id}");
    let (quote_subject, article_subject) = (value_subject(&quotes), value_subject(&articles));
    let latest_subject = value_subject(&latest);
    let _cleanup = Cleanup::subjects(&[quote_subject.clone(), article_subject.clone(), latest_subject.clone()]);
    let run = |command: &str, registry: &str| {
        let mut args: Vec<String> = vec!["schemas".into(), command.into()];
        for set in [
            format!("registry.url={registry}"),
            format!("topics.quotes={quotes}"),
            format!("topics.articles={articles}"),
            format!("topics.quotes_latest={latest}"),
        ] {
            args.extend(["--set".to_owned(), set]);
        }
        pagesplit_cli(args)
    };
    let registry = common::registry_url();
    let client = registry_client();

    // register: exit 0, one line per subject with its id, level FULL.
    let output = run("register", &registry).await;
    assert!(output.status.success(), "{}", show(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let quote_id = client.lookup(&quote_subject, QUOTE_SCHEMA_JSON).await.unwrap();
    let article_id = client.lookup(&article_subject, ARTICLE_SCHEMA_JSON).await.unwrap();
    assert!(
        stdout.contains(&format!("{quote_subject}: id {quote_id}\n")),
        "{}",
        show(&output)
    );
    assert!(
        stdout.contains(&format!("{article_subject}: id {article_id}\n")),
        "{}",
        show(&output)
    );
    // The latest-quote topic's subject holds the quote schema too.
    let latest_id = client.lookup(&latest_subject, QUOTE_SCHEMA_JSON).await.unwrap();
    assert!(
        stdout.contains(&format!("{latest_subject}: id {latest_id}\n")),
        "{}",
        show(&output)
    );
    assert_eq!(subject_compatibility(&latest_subject).await, "FULL");
    assert_eq!(subject_compatibility(&quote_subject).await, "FULL");
    assert_eq!(subject_compatibility(&article_subject).await, "FULL");

    // check: exit 0 while the bundled schemas are the registered ones.
    let output = run("check", &registry).await;
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        stdout.contains(&format!("{quote_subject}: compatible")),
        "{}",
        show(&output)
    );
    assert!(
        stdout.contains(&format!("{article_subject}: compatible")),
        "{}",
        show(&output)
    );

    // A newer quote schema with an extra required field, registered around the rules: events of
    // the bundled schema lack that field, so under FULL the bundled schema is incompatible.
    let extra = edit_fields(QUOTE_SCHEMA_JSON, |fields| {
        fields.push(json!({"name": "exchange", "type": "string", "doc": "Listing exchange."}))
    });
    client.set_compatibility(&quote_subject, "NONE").await.unwrap();
    let extra_id = client.register(&quote_subject, &extra).await.unwrap();
    assert_ne!(extra_id, quote_id);
    client.set_compatibility(&quote_subject, "FULL").await.unwrap();

    let output = run("check", &registry).await;
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        stdout.contains(&format!("{quote_subject}: INCOMPATIBLE")),
        "{}",
        show(&output)
    );
    assert!(
        stdout.contains(&format!("{article_subject}: compatible")),
        "{}",
        show(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("1 schema(s) incompatible"),
        "{}",
        show(&output)
    );

    // print: both bundled schemas under their subjects, no registry needed.
    let output = run("print", "http://127.0.0.1:1/apis/ccompat/v7").await;
    assert!(output.status.success(), "{}", show(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        stdout.contains(&format!("# {quote_subject}\n{QUOTE_SCHEMA_JSON}")),
        "{}",
        show(&output)
    );
    assert!(
        stdout.contains(&format!("# {article_subject}\n{ARTICLE_SCHEMA_JSON}")),
        "{}",
        show(&output)
    );

    // check against a registry that is not there: a runtime error naming it.
    let down = "http://127.0.0.1:1/apis/ccompat/v7";
    let output = run("check", down).await;
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(down),
        "{}",
        show(&output)
    );
}
