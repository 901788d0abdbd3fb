//! The AsyncAPI document (`schemas/asyncapi.yaml`) says what the code does: its channels are the
//! configured topics with their defaults, its Avro payloads are the `.avsc` files, its dead-letter
//! headers are the ones pagesplit writes, its input envelope is the one pagesplit decodes.
//! Offline: no broker, no registry. `deploy/local/asyncapi-validate` checks the document against
//! the AsyncAPI specification itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pagesplit::config::{Config, DeliveryMode};
use pagesplit::encode::{Encoder, Framing};
use pagesplit::envelope::{decode_message, encode_envelope};
use pagesplit::metrics::Stage;
use pagesplit::parse::ParseOptions;
use pagesplit::pipeline::{
    dead_letter, dead_letter_without_value, latest_copy, split_message, Failure, InMessage, LatestQuotes, Topics,
};
use pagesplit::sink::OutRecord;
use pagesplit::trace_context::SpanId;
use rdkafka::message::Headers;
use serde_json::{json, Value};

const AVRO_SCHEMA_FORMAT: &str = "application/vnd.apache.avro;version=1.9.0";

/// Headers on every record pagesplit writes: where it came from and who wrote it.
const PROVENANCE_HEADERS: [&str; 4] = [
    "pagesplit.source.topic",
    "pagesplit.source.partition",
    "pagesplit.source.offset",
    "pagesplit.version",
];
/// The page URL, on records whose key is not the URL.
const SOURCE_URL_HEADER: &str = "pagesplit.source.url";
/// W3C Trace Context, carried from the raw page to every record split from it.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

fn document() -> Value {
    let path = schemas_dir().join("asyncapi.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn defaults() -> Value {
    serde_json::to_value(Config::default()).expect("the configuration serializes")
}

/// `value`, or what its local `$ref` (`#/…`) points at, followed to the end.
fn resolve<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
        let Some(pointer) = reference.strip_prefix('#') else {
            return value;
        };
        value = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {reference}"));
    }
    value
}

/// `value` with every local `$ref` replaced by its target, for JSON Schema validation.
fn inline(doc: &Value, value: &Value) -> Value {
    match resolve(doc, value) {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), inline(doc, value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|item| inline(doc, item)).collect()),
        other => other.clone(),
    }
}

fn object<'a>(value: &'a Value, what: &str) -> &'a serde_json::Map<String, Value> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not a mapping: {value}"))
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// (channel id, channel) of every channel.
fn channels(doc: &Value) -> Vec<(&str, &Value)> {
    object(&doc["channels"], "channels")
        .iter()
        .map(|(id, channel)| (id.as_str(), resolve(doc, channel)))
        .collect()
}

/// The messages of a channel, resolved.
fn channel_messages<'a>(doc: &'a Value, channel: &'a Value) -> Vec<&'a Value> {
    object(&channel["messages"], "channel messages")
        .values()
        .map(|message| resolve(doc, message))
        .collect()
}

/// The configuration key a channel's address is the default of (`x-pagesplit-config`).
fn config_key(id: &str, channel: &Value) -> String {
    channel["x-pagesplit-config"]
        .as_str()
        .unwrap_or_else(|| panic!("channel {id} has no x-pagesplit-config"))
        .to_owned()
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|error| panic!("not a JSON Schema: {error}\n{schema}"))
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator.iter_errors(instance).map(|error| error.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the document: {errors:?}\n{instance:#}"
    );
}

/// A record's headers as a JSON object of UTF-8 strings.
fn header_object(record: &OutRecord) -> serde_json::Map<String, Value> {
    let headers = record.headers.as_ref().expect("the record has headers");
    headers
        .iter()
        .map(|header| {
            let value = std::str::from_utf8(header.value.unwrap_or_default())
                .unwrap_or_else(|_| panic!("header {} is not UTF-8", header.key));
            (header.key.to_owned(), Value::from(value))
        })
        .collect()
}

#[test]
fn channels_are_the_configured_topics_with_their_defaults() {
    let doc = document();
    let defaults = defaults();
    let documented: BTreeSet<String> = channels(&doc)
        .into_iter()
        .map(|(id, channel)| {
            let key = config_key(id, channel);
            let pointer = format!("/{}", key.replace('.', "/"));
            let default = defaults
                .pointer(&pointer)
                .unwrap_or_else(|| panic!("channel {id}: {key} is not a configuration key"));
            assert_eq!(
                channel["address"], *default,
                "channel {id}: address is not the default of {key}"
            );
            key
        })
        .collect();
    // Every topic name in the configuration is a channel (the rest of [topics] is not a name).
    let configured: BTreeSet<String> = object(&defaults["topics"], "[topics]")
        .iter()
        .filter(|(_, value)| value.is_string())
        .map(|(key, _)| format!("topics.{key}"))
        .collect();
    assert_eq!(documented, configured);
}

#[test]
fn each_channel_has_one_operation_pagesplit_receives_only_pages() {
    let doc = document();
    let mut seen = BTreeSet::new();
    for (id, operation) in object(&doc["operations"], "operations") {
        let channel = resolve(&doc, &operation["channel"]);
        let (channel_id, _) = channels(&doc)
            .into_iter()
            .find(|(_, candidate)| std::ptr::eq(*candidate, channel))
            .unwrap_or_else(|| panic!("operation {id}: its channel is not under channels"));
        assert!(seen.insert(channel_id), "two operations on channel {channel_id}");
        let expected = if config_key(channel_id, channel) == "topics.input" {
            "receive"
        } else {
            "send"
        };
        assert_eq!(operation["action"], expected, "operation {id}");
        let traits: Vec<&Value> = operation["traits"]
            .as_array()
            .map(|traits| traits.iter().map(|t| resolve(&doc, t)).collect())
            .unwrap_or_default();
        assert!(
            traits.iter().any(|t| t.get("x-pagesplit-delivery").is_some()),
            "operation {id} does not say its delivery semantics"
        );
    }
    assert_eq!(seen.len(), channels(&doc).len(), "a channel without an operation");
}

#[test]
fn server_group_and_delivery_are_the_defaults() {
    let doc = document();
    let config = Config::default();
    let server = &doc["servers"]["local"];
    assert_eq!(server["protocol"], "kafka");
    assert_eq!(server["host"], config.kafka.bootstrap_servers.as_str());
    assert_eq!(
        server["bindings"]["kafka"]["schemaRegistryUrl"],
        config.registry.url.as_str()
    );

    let receive = object(&doc["operations"], "operations")
        .values()
        .find(|operation| operation["action"] == "receive")
        .expect("an operation that receives pages");
    assert_eq!(
        receive["bindings"]["kafka"]["groupId"]["enum"],
        json!([config.kafka.group_id])
    );

    let delivery = &resolve(&doc, &doc["components"]["operationTraits"]["delivery"])["x-pagesplit-delivery"];
    assert_eq!(delivery["setting"], "delivery.mode");
    assert_eq!(delivery["default"], serde_json::to_value(config.delivery.mode).unwrap());
    let modes: Vec<DeliveryMode> = serde_json::from_value(delivery["modes"].clone()).expect("known delivery modes");
    for mode in [DeliveryMode::AtLeastOnce, DeliveryMode::ExactlyOnce] {
        assert!(modes.contains(&mode), "{mode:?} is not documented");
    }
}

#[test]
fn avro_payloads_are_the_schema_files() {
    let doc = document();
    let defaults = defaults();
    let mut referenced = BTreeSet::new();
    for (id, channel) in channels(&doc) {
        for message in channel_messages(&doc, channel) {
            let payload = &message["payload"];
            if payload.get("schemaFormat").is_none() {
                continue;
            }
            assert_eq!(payload["schemaFormat"], AVRO_SCHEMA_FORMAT, "channel {id}");
            let file = payload["schema"]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("channel {id}: an Avro payload refers to no .avsc file"));
            let path = schemas_dir().join(file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("channel {id}: {file} ({}): {error}", path.display()));
            let avro: Value = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{file}: {error}"));
            apache_avro::Schema::parse_str(&text).unwrap_or_else(|error| panic!("{file} is not Avro: {error}"));
            let full_name = format!(
                "{}.{}",
                avro["namespace"].as_str().unwrap(),
                avro["name"].as_str().unwrap()
            );
            assert_eq!(
                message["name"],
                full_name.as_str(),
                "channel {id}: message name vs {file}"
            );
            referenced.insert(path.canonicalize().unwrap());

            // Framing and subject: the default encoding, TopicNameStrategy.
            let binding = &message["bindings"]["kafka"];
            assert_eq!(binding["schemaIdLocation"], "payload");
            assert_eq!(binding["schemaIdPayloadEncoding"], defaults["encoding"]["format"]);
            assert_eq!(binding["schemaLookupStrategy"], "TopicNameStrategy");
            let address = channel["address"].as_str().unwrap();
            assert_eq!(
                channel["x-schema-subject"],
                pagesplit::registry::value_subject(address).as_str(),
                "channel {id}"
            );
        }
    }
    let on_disk: BTreeSet<PathBuf> = std::fs::read_dir(schemas_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "avsc"))
        .map(|path| path.canonicalize().unwrap())
        .collect();
    assert!(!on_disk.is_empty());
    assert_eq!(
        referenced, on_disk,
        "every .avsc in schemas/ is a payload, and only those"
    );
}

#[test]
fn compaction_and_record_limits_are_what_pagesplit_creates() {
    let doc = document();
    let config = Config::default();
    let latest = "topics.quotes_latest";
    let large = ["topics.articles", "topics.dead_letter"];
    for (id, channel) in channels(&doc) {
        let key = config_key(id, channel);
        let topic_config = &channel["bindings"]["kafka"]["topicConfiguration"];
        let expected_policy = if key == latest {
            json!(["compact"])
        } else {
            json!(["delete"])
        };
        assert_eq!(topic_config["cleanup.policy"], expected_policy, "channel {id}");
        let expected_limit = large.contains(&key.as_str()).then(|| json!(config.max_record_bytes()));
        assert_eq!(
            topic_config.get("max.message.bytes").cloned(),
            expected_limit,
            "channel {id}: max.message.bytes"
        );
    }
}

#[test]
fn every_record_pagesplit_writes_documents_its_provenance() {
    let doc = document();
    for (id, channel) in channels(&doc) {
        if channel["x-pagesplit-config"] == "topics.input" {
            continue;
        }
        for message in channel_messages(&doc, channel) {
            let headers = resolve(&doc, &message["headers"]);
            let names: BTreeSet<&str> = object(&headers["properties"], "headers")
                .keys()
                .map(String::as_str)
                .collect();
            let required = strings(&headers["required"]);
            for name in PROVENANCE_HEADERS {
                assert!(required.contains(name), "channel {id}: {name} is not required");
            }
            for name in TRACE_HEADERS {
                assert!(names.contains(name), "channel {id}: {name} is not documented");
                assert!(
                    !required.contains(name),
                    "channel {id}: {name} is only there when the page had one"
                );
            }
            for name in &names {
                assert!(
                    name.starts_with("pagesplit.") || TRACE_HEADERS.contains(name),
                    "channel {id}: header {name} is outside the pagesplit.* naming scheme"
                );
            }
            // Quotes are keyed by symbol, so they name their page; articles are keyed by URL.
            match message["name"].as_str() {
                Some("io.pagesplit.market.v1.Quote") => {
                    assert!(
                        required.contains(SOURCE_URL_HEADER),
                        "channel {id}: quotes need {SOURCE_URL_HEADER}"
                    );
                }
                Some("io.pagesplit.news.v1.Article") => {
                    assert!(
                        !names.contains(SOURCE_URL_HEADER),
                        "channel {id}: an article's key is its URL"
                    );
                }
                _ => assert!(names.contains(SOURCE_URL_HEADER), "channel {id}: {SOURCE_URL_HEADER}"),
            }
        }
    }
}

/// The example page as pagesplit consumes it, with a trace context.
fn traced_page() -> InMessage {
    let body = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pages/brecorder-putin-assad.masked.txt"),
    )
    .expect("the example page");
    InMessage {
        topic: "pages.raw".to_owned(),
        partition: 4,
        offset: 77,
        timestamp_ms: Some(1_733_652_900_000),
        key: None,
        payload: Some(encode_envelope(
            "https://www.brecorder.com/news/40334455/",
            "2024-12-08T10:15:00Z".parse().unwrap(),
            "text/plain",
            &body,
        )),
        headers: vec![
            (
                "traceparent".to_owned(),
                Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec()),
            ),
            ("tracestate".to_owned(), Some(b"congo=t61rcWkgMzE".to_vec())),
        ],
    }
}

#[test]
fn events_carry_exactly_the_documented_headers() {
    let doc = document();
    let config = Config::default();
    let topics = Topics {
        quotes: config.topics.quotes.as_str().into(),
        articles: config.topics.articles.as_str().into(),
        dead_letter: config.topics.dead_letter.as_str().into(),
        lineage_headers: config.topics.lineage_headers,
    };
    let latest = LatestQuotes {
        topic: config.topics.quotes_latest.as_str().into(),
        header: None,
    };
    let page = traced_page();
    let mut split = split_message(
        &page,
        &ParseOptions::default(),
        &Encoder::new(Framing::SingleObject),
        &topics,
        SpanId::random(),
    )
    .expect("the example page splits");
    let copies: Vec<OutRecord> = split.records[..split.quotes]
        .iter()
        .map(|quote| latest_copy(quote, &latest))
        .collect();
    split.records.extend(copies);
    let mut checked = BTreeSet::new();
    for (id, channel) in channels(&doc) {
        let address = channel["address"].as_str().unwrap();
        let records: Vec<&OutRecord> = split
            .records
            .iter()
            .filter(|record| &*record.topic == address)
            .collect();
        if records.is_empty() {
            continue;
        }
        let message = channel_messages(&doc, channel)[0];
        let schema = inline(&doc, &message["headers"]);
        let documented: BTreeSet<&str> = object(&schema["properties"], "headers")
            .keys()
            .map(String::as_str)
            .collect();
        let validator = validator(&schema);
        for record in records {
            let headers = Value::Object(header_object(record));
            assert_valid(&validator, &headers, id);
            let names: BTreeSet<&str> = headers.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                names, documented,
                "channel {id}: every documented header, and only those"
            );
            assert_eq!(headers["pagesplit.source.offset"], "77");
            let traceparent = headers["traceparent"].as_str().unwrap();
            assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
            assert!(
                !traceparent.contains("00f067aa0ba902b7"),
                "pagesplit's span is the parent"
            );
        }
        checked.insert(id);
    }
    assert_eq!(
        checked,
        BTreeSet::from(["articles", "latestQuotes", "quotes"]),
        "every event channel is checked"
    );
}

fn failed_page() -> (InMessage, Failure) {
    let message = InMessage {
        topic: "pages.raw".to_owned(),
        partition: 2,
        offset: 1234,
        timestamp_ms: Some(1_733_652_900_000),
        key: Some(b"https://example.com/a".to_vec()),
        payload: Some(b"not a page".to_vec()),
        headers: vec![
            (
                "traceparent".to_owned(),
                Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec()),
            ),
            ("tracestate".to_owned(), Some(b"congo=t61rcWkgMzE".to_vec())),
        ],
    };
    let failure = Failure {
        stage: Stage::Decode,
        code: pagesplit::metrics::FailureCode::NotAnEnvelope,
        message: "not a page: value is not a JSON envelope and the `url` header is missing".to_owned(),
        url: None,
    };
    (message, failure)
}

#[test]
fn dead_letters_carry_exactly_the_documented_headers() {
    let doc = document();
    let channel = channels(&doc)
        .into_iter()
        .find(|(_, channel)| channel["x-pagesplit-config"] == "topics.dead_letter")
        .expect("a dead-letter channel")
        .1;
    let message = channel_messages(&doc, channel)[0];
    let schema = inline(&doc, &message["headers"]);
    let documented: BTreeSet<&str> = object(&schema["properties"], "headers")
        .keys()
        .map(String::as_str)
        .collect();
    let validator = validator(&schema);

    let (page, failure) = failed_page();
    let topic = Config::default().topics.dead_letter;
    for (what, record) in [
        ("dead letter", dead_letter(&page, &failure, &topic)),
        (
            "dead letter without its value",
            dead_letter_without_value(&page, &failure, &topic, "too large for the dead-letter topic"),
        ),
    ] {
        let headers = Value::Object(header_object(&record));
        assert_valid(&validator, &headers, what);
        for name in headers.as_object().unwrap().keys() {
            assert!(
                documented.contains(name.as_str()),
                "{what}: header {name} is not documented"
            );
        }
        assert_eq!(headers["pagesplit.source.partition"], "2");
        assert_eq!(headers["pagesplit.source.offset"], "1234");
        assert_eq!(headers["pagesplit.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            record.payload.is_none(),
            headers.get("pagesplit.value.omitted").is_some(),
            "{what}"
        );
    }

    let stages: BTreeSet<String> = [Stage::Decode, Stage::Parse, Stage::Encode]
        .into_iter()
        .map(|stage| stage.as_str().to_owned())
        .collect();
    assert_eq!(strings(&schema["properties"]["pagesplit.stage"]["enum"]), stages);
}

#[test]
fn the_input_envelope_is_the_one_pagesplit_decodes() {
    let doc = document();
    let input = channels(&doc)
        .into_iter()
        .find(|(_, channel)| channel["x-pagesplit-config"] == "topics.input")
        .expect("an input channel")
        .1;
    let envelope = channel_messages(&doc, input)
        .into_iter()
        .find(|message| message["contentType"] == "application/json")
        .expect("a JSON envelope message");
    let schema = inline(&doc, &envelope["payload"]);
    let validator = validator(&schema);

    // What `replay` and the demo publish matches the document, property for property.
    let published: Value = serde_json::from_slice(&encode_envelope(
        "https://example.com/a",
        "2024-12-08T10:15:00Z".parse().unwrap(),
        "text/html",
        "<p>x</p>",
    ))
    .unwrap();
    assert_valid(&validator, &published, "encode_envelope");
    let properties: BTreeSet<&String> = object(&schema["properties"], "envelope").keys().collect();
    assert_eq!(properties, object(&published, "envelope").keys().collect());

    // The document's examples decode; without a required property the value is not a page, and
    // an unknown property is ignored, as the document says.
    let examples = envelope["examples"].as_array().expect("envelope examples");
    assert!(!examples.is_empty());
    let required = strings(&schema["required"]);
    for example in examples {
        let payload = &example["payload"];
        assert_valid(&validator, payload, "the example");
        let page = decode_message(Some(&serde_json::to_vec(payload).unwrap()), []).expect("the example decodes");
        assert_eq!(page.url, payload["url"].as_str().unwrap());
        for name in &required {
            let mut partial = payload.clone();
            partial.as_object_mut().unwrap().remove(name);
            assert!(!validator.is_valid(&partial));
            assert!(
                decode_message(Some(&serde_json::to_vec(&partial).unwrap()), []).is_err(),
                "without {name}"
            );
        }
        let mut extra = payload.clone();
        extra["crawler"] = json!("x");
        assert!(validator.is_valid(&extra));
        assert_eq!(
            decode_message(Some(&serde_json::to_vec(&extra).unwrap()), [])
                .expect("an unknown property is ignored")
                .url,
            payload["url"].as_str().unwrap()
        );
        let mut bare = payload.clone();
        bare.as_object_mut().unwrap().remove("content_type");
        let page = decode_message(Some(&serde_json::to_vec(&bare).unwrap()), []).unwrap();
        assert_eq!(page.content_type, pagesplit::model::ContentType::Text);
        assert_eq!(schema["properties"]["content_type"]["default"], "text/plain");
    }

    // A bare body decodes with the documented headers, and not without any required one.
    let bare = channel_messages(&doc, input)
        .into_iter()
        .find(|message| message["contentType"] != "application/json")
        .expect("a bare-body message");
    let headers = inline(&doc, &bare["headers"]);
    let value = |name: &str| match name {
        "url" => "https://example.com/a",
        "fetched-at" => "2024-12-08T10:15:00Z",
        "content-type" => "text/html; charset=windows-1252",
        other => panic!("no test value for the bare-body header {other}"),
    };
    let required = strings(&headers["required"]);
    let all: Vec<(&str, Option<&[u8]>)> = required
        .iter()
        .map(|name| (name.as_str(), Some(value(name).as_bytes())))
        .collect();
    let page = decode_message(Some(b"<p>x</p>"), all.iter().copied()).expect("a bare body with the headers decodes");
    assert_eq!(page.charset.as_deref(), Some("windows-1252"));
    for left_out in &required {
        let fewer = all.iter().copied().filter(|(name, _)| name != left_out);
        assert!(decode_message(Some(b"<p>x</p>"), fewer).is_err(), "without {left_out}");
    }
}

#[test]
fn document_version_is_the_crate_version() {
    let doc = document();
    assert_eq!(doc["asyncapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
}
