//! End to end against the real local broker: raw pages in, Avro events out, offsets committed
//! only after the events are acknowledged, bad messages dead-lettered with their reason.
#![cfg(feature = "broker-tests")]

mod common;

use common::{field, strings, text};

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::types::Value;
use chrono::{TimeZone, Utc};
use pagesplit::config::EncodingFormat;
use pagesplit::demo::{decode_event, PageToPublish, Positions};
use pagesplit::encode::{decimal_from_avro, unframe, Framed, Schemas};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_page_becomes_34_quotes_and_one_article_and_offsets_are_committed() {
    let config = common::test_config("slice", EncodingFormat::SingleObject);
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone())
        .await
        .unwrap_or_else(|error| panic!("worker failed to start against the broker at {bootstrap}: {error:#}"));
    let http = running.http_addr.expect("http endpoint enabled");

    // A page a crawler traced (W3C Trace Context), then a message that is not a page at all.
    let url = "https://www.brecorder.com/news/40336151/putin-assad".to_owned();
    let fetched_at = Utc.with_ymd_and_hms(2024, 12, 8, 10, 15, 0).unwrap();
    let page = PageToPublish {
        url: url.clone(),
        fetched_at,
        content_type: "text/plain".to_owned(),
        body: common::fixture(common::pages::EXAMPLE_FIXTURE),
    };
    let (page_partition, page_offset) = common::publish_with_headers(
        &bootstrap,
        &config.topics.input,
        &page,
        &[
            ("traceparent", common::CRAWLER_TRACEPARENT),
            ("tracestate", common::CRAWLER_TRACESTATE),
        ],
    )
    .await;
    let mut positions = Positions::from([(page_partition, page_offset)]);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let (partition, offset) = producer
        .send(
            FutureRecord::to(&config.topics.input)
                .key("poison")
                .payload("this is not a page"),
            Duration::from_secs(10),
        )
        .await
        .map(|delivery| (delivery.partition, delivery.offset))
        .expect("poison published");
    let highest = positions.entry(partition).or_insert(offset);
    *highest = (*highest).max(offset);

    // The group commits past both messages: the page's events and the dead letter were acknowledged.
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;

    // Quotes: exactly the expected 34, keyed by symbol, in page order, exact decimals.
    let expected: serde_json::Value =
        serde_json::from_str(&common::fixture("pages/brecorder-putin-assad.masked.expected.json")).unwrap();
    let expected_quotes = expected["quotes"].as_array().unwrap();
    assert_eq!(expected_quotes.len(), 34);
    let records = common::read_all(&bootstrap, &config.topics.quotes);
    assert_eq!(records.len(), 34, "one record per ticker line");
    let schemas = Schemas::bundled();
    let mut by_symbol = BTreeMap::new();
    for record in &records {
        assert!(matches!(unframe(&record.value), Some(Framed::SingleObject { .. })));
        let quote = decode_event(&record.value, &schemas.quote).expect("quote decodes with schemas/quote.avsc");
        assert_eq!(
            record.key.as_deref(),
            Some(text(field(&quote, "symbol")).as_str()),
            "keyed by symbol"
        );
        by_symbol.insert(text(field(&quote, "symbol")), quote);
    }
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
            let got = decimal_from_avro(field(quote, name)).expect("decimal");
            let want: rust_decimal::Decimal = want[name].as_str().unwrap().parse().unwrap();
            assert_eq!(got, want, "{symbol} {name}");
        }
        assert_eq!(text(field(quote, "url")), url);
        assert_eq!(
            field(quote, "fetched_at"),
            &Value::TimestampMillis(fetched_at.timestamp_millis())
        );
        assert_eq!(
            text(field(quote, "event_id")),
            pagesplit::model::event_id(&url, fetched_at, symbol).to_string()
        );
    }
    // Every quote names its page and carries its trace, pagesplit's span of the page as parent.
    let traceparent = common::pagesplit_traceparent(&records);
    let source = (config.topics.input.as_str(), page_partition, page_offset);
    let trace = Some((traceparent.as_str(), common::CRAWLER_TRACESTATE));
    let quote_headers = common::event_headers(source, Some(&url), trace);
    for record in &records {
        assert_eq!(common::header_map(record), quote_headers, "{:?}", record.key);
    }
    // So does every latest-quote copy.
    let latest = common::read_all(&bootstrap, config.topics.quotes_latest().unwrap());
    assert_eq!(latest.len(), 34);
    for record in &latest {
        assert_eq!(common::header_map(record), quote_headers, "{:?}", record.key);
    }
    let kse100 = &by_symbol["KSE100"];
    assert_eq!(decimal_from_avro(field(kse100, "price")).unwrap().to_string(), "106275");
    assert_eq!(
        decimal_from_avro(field(kse100, "change")).unwrap().to_string(),
        "-4795.3"
    );

    // The article, keyed by URL.
    let articles = common::read_all(&bootstrap, &config.topics.articles);
    assert_eq!(articles.len(), 1);
    assert_eq!(articles[0].key.as_deref(), Some(url.as_str()));
    assert_eq!(
        common::header_map(&articles[0]),
        common::event_headers(source, None, trace),
        "keyed by URL: no URL header"
    );
    let article = decode_event(&articles[0].value, &schemas.article).expect("article decodes");
    let want = &expected["article"];
    assert_eq!(field(&article, "title"), &Value::Union(0, Box::new(Value::Null)));
    assert_eq!(text(field(&article, "dateline")), "MOSCOW");
    let paragraphs = strings(field(&article, "paragraphs"));
    assert_eq!(paragraphs.len(), 13);
    assert!(paragraphs[0].starts_with(want["first_paragraph_starts_with"].as_str().unwrap()));
    assert_eq!(paragraphs[12], want["last_paragraph"].as_str().unwrap());
    assert_eq!(
        strings(field(&article, "related_headlines")),
        vec!["Iran, Saudi Arabia to restore ties in China-brokered deal".to_owned()]
    );
    for line in want["not_in_body"].as_array().unwrap() {
        assert!(
            !paragraphs.iter().any(|p| p == line.as_str().unwrap()),
            "{line} is not body text"
        );
    }
    assert_eq!(field(&article, "comments_closed"), &Value::Boolean(true));

    // The poison message is in the dead-letter topic, with its bytes and the reason.
    let dead = common::read_all(&bootstrap, &config.topics.dead_letter);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value, b"this is not a page");
    assert_eq!(dead[0].key.as_deref(), Some("poison"));
    let header = |name: &str| dead[0].headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(header("pagesplit.stage").as_deref(), Some("decode"));
    assert_eq!(header("pagesplit.error.code").as_deref(), Some("not_an_envelope"));
    assert_eq!(header("pagesplit.source.topic"), Some(config.topics.input.clone()));
    assert_eq!(header("pagesplit.source.offset"), Some(offset.to_string()));
    assert_eq!(header("pagesplit.source.partition"), Some(partition.to_string()));
    assert_eq!(header("pagesplit.version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(header("pagesplit.source.url"), None, "not a page: no URL known");

    // Metrics, as served.
    assert_eq!(running.metrics.pages_consumed_count(&config.topics.input), 2);
    let body = reqwest::get(format!("http://{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let quotes_line = format!(
        "pagesplit_events_produced_total{{topic=\"{}\",type=\"quote\"}} 34",
        config.topics.quotes
    );
    assert!(body.contains(&quotes_line), "{body}");
    assert!(body.contains("pagesplit_pages_dead_lettered_total{code=\"not_an_envelope\",stage=\"decode\"} 1"));
    assert!(body.contains("pagesplit_pages_in_flight 0"));
    // Both messages (the page and the poison one) passed every wait once, in at-least-once.
    for wait in [
        "in_flight_bound",
        "split_queue",
        "ordering",
        "producer_queue",
        "acknowledgement",
    ] {
        let count = format!("pagesplit_page_wait_seconds_count{{wait=\"{wait}\"}} 2");
        assert!(body.contains(&count), "{count} in {body}");
    }
    let ready = reqwest::get(format!("http://{http}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    // librdkafka statistics (every second in tests) reach the per-partition gauges of the
    // owned partitions: neither partition is stalled.
    let stalled = common::wait_until("both partitions' stalled gauges", Duration::from_secs(30), async || {
        let body = reqwest::get(format!("http://{http}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let stalled: Vec<String> = body
            .lines()
            .filter(|line| line.starts_with("pagesplit_partition_stalled{") && line.contains(&config.topics.input))
            .map(str::to_owned)
            .collect();
        (stalled.len() >= 2).then_some(stalled)
    })
    .await;
    assert_eq!(stalled.len(), 2, "one series per owned partition: {stalled:?}");
    assert!(stalled.iter().all(|line| line.ends_with(" 0")), "{stalled:?}");

    shutdown.cancel();
    running.wait().await.expect("clean shutdown");
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_topics_stop_startup_with_a_clear_message() {
    let mut config = common::test_config("missing", EncodingFormat::SingleObject);
    config.topics.create = false;
    let error = match pagesplit::app::start(config.clone(), CancellationToken::new()).await {
        Ok(_) => panic!("startup should fail without topics"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains(&config.topics.input) && error.contains("does not exist"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_log_span_carries_the_trace_id() {
    use common::worker::{Worker, WorkerOptions};
    let config = common::test_config("trace-logs", EncodingFormat::SingleObject);
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let mut worker = Worker::spawn(
        &config,
        WorkerOptions {
            log_level: "debug",
            capture: true,
            ..WorkerOptions::default()
        },
    );
    // A traced page with an invalid tracestate (split, the tracestate dropped and logged), and a
    // traced page with an empty body (dead-lettered and logged).
    let page = |url: &str, body: &str| PageToPublish {
        url: url.to_owned(),
        fetched_at: Utc.with_ymd_and_hms(2024, 12, 8, 10, 15, 0).unwrap(),
        content_type: "text/plain".to_owned(),
        body: body.to_owned(),
    };
    let traced = page(
        "https://example.com/traced",
        &common::fixture(common::pages::EXAMPLE_FIXTURE),
    );
    let empty = page("https://example.com/empty", "");
    let traceparent = ("traceparent", common::CRAWLER_TRACEPARENT);
    let mut positions = Positions::new();
    for (page, state) in [(&traced, "Not=Valid"), (&empty, common::CRAWLER_TRACESTATE)] {
        let at = common::publish_with_headers(
            &bootstrap,
            &config.topics.input,
            page,
            &[traceparent, ("tracestate", state)],
        )
        .await;
        common::merge_positions(&mut positions, Positions::from([at]));
    }
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;
    let quotes = common::read_all(&bootstrap, &config.topics.quotes);
    let span_id = common::pagesplit_traceparent(&quotes)[36..52].to_owned();
    let output = common::wait_until("both log lines", Duration::from_secs(30), async || {
        let output = worker.output();
        (output.contains("trace context dropped") && output.contains("message dead-lettered")).then_some(output)
    })
    .await;
    assert_eq!(worker.terminate(Duration::from_secs(30)).code(), Some(0));
    let line = |message: &str| {
        output
            .lines()
            .find(|line| line.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} in\n{output}"))
            .to_owned()
    };
    let dropped = line("trace context dropped");
    assert!(
        dropped.contains(&format!("trace_id={}", common::CRAWLER_TRACE_ID)),
        "{dropped}"
    );
    assert!(dropped.contains(&format!("span_id={span_id}")), "{dropped}");
    assert!(dropped.contains("code=\"invalid_tracestate\""), "{dropped}");
    let dead = line("message dead-lettered");
    assert!(
        dead.contains(&format!("trace_id={}", common::CRAWLER_TRACE_ID)),
        "{dead}"
    );
    assert!(dead.contains("url=\"https://example.com/empty\""), "{dead}");
    common::delete_topics(&config).await;
}
