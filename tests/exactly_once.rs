//! Exactly-once mode against the real broker: the worker binary in `delivery.mode =
//! "exactly-once"` is killed, joined by a second worker, or fenced by one with the same
//! transactional.id; a `read_committed` consumer must then see every page's events exactly once.
//! Each prints sent / delivered / duplicates / dead-lettered.
#![cfg(feature = "broker-tests")]

mod common;

use std::time::Duration;

use common::committed::{account_exactly_once, Publisher};
use common::pages::small_pages;
use common::worker::{Worker, WorkerOptions};
use common::{wait_until, written};
use pagesplit::config::{Config, DeliveryMode, EncodingFormat};
use pagesplit::demo::{publish_pages, PageToPublish, Positions};
use tokio_util::sync::CancellationToken;

/// A test configuration in exactly-once mode. A short session timeout lets the group notice a
/// killed worker in seconds.
fn eos_config(name: &str) -> Config {
    let mut config = common::test_config(name, EncodingFormat::SingleObject);
    config.delivery.mode = DeliveryMode::ExactlyOnce;
    config.delivery.instance_id = "test".to_owned();
    config.kafka.session_timeout_ms = 6_000;
    config.pipeline.drain_timeout_ms = 4_000;
    config.pipeline.revoke_timeout_ms = 3_000;
    config.validate().expect("valid exactly-once config");
    config
}

/// Flags of an exactly-once worker named `instance`.
fn eos_worker(config: &Config, instance: &str, capture: bool) -> Worker {
    Worker::spawn(
        config,
        WorkerOptions {
            sets: vec![
                ("delivery.mode", "exactly-once".to_owned()),
                ("delivery.instance_id", instance.to_owned()),
                ("kafka.session_timeout_ms", config.kafka.session_timeout_ms.to_string()),
                (
                    "pipeline.drain_timeout_ms",
                    config.pipeline.drain_timeout_ms.to_string(),
                ),
                (
                    "pipeline.revoke_timeout_ms",
                    config.pipeline.revoke_timeout_ms.to_string(),
                ),
                (
                    "delivery.transaction_max_ms",
                    config.delivery.transaction_max_ms.to_string(),
                ),
            ],
            log_level: if capture { "info" } else { "warn" },
            capture,
            ..WorkerOptions::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_stream_publishes_every_event_exactly_once() {
    let config = eos_config("eos-kill9");
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let sent = small_pages("eos-kill9", 5000);
    // A backlog first, so the kill lands mid-stream (mid-transaction, most likely).
    let positions = publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &sent)
        .await
        .unwrap();
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let mut worker = eos_worker(&config, "a", false);
    wait_until("first articles", Duration::from_secs(60), async || {
        written(&bootstrap, &config.topics.articles) >= 300
    })
    .await;
    worker.kill9();
    let at_kill = written(&bootstrap, &config.topics.articles);
    println!("worker killed after {at_kill} article offsets (records and commit markers)");
    assert!(at_kill < sent.len() as i64, "the kill must land mid-stream");
    // The same instance restarts: it fences its predecessor and aborts its open transaction.
    let mut worker = eos_worker(&config, "a", false);
    common::wait_for_commit(&config, &positions, Duration::from_secs(120)).await;
    assert_eq!(
        worker.terminate(Duration::from_secs(30)).code(),
        Some(0),
        "SIGTERM ends the worker with exit 0"
    );
    let accounting = account_exactly_once(&config, &sent);
    println!(
        "article offsets written (incl. aborted records and markers): {}",
        written(&bootstrap, &config.topics.articles)
    );
    accounting.assert_exactly_once("exactly-once, worker kill -9", sent.len());
    common::delete_topics(&config).await;
}

/// A second worker (its own transactional.id) joins mid-stream, so the first hands partitions
/// over; returns how many transactions the first aborted.
async fn join_mid_stream(name: &str, revoke_timeout_ms: u64, transaction_max_ms: u64) -> usize {
    let mut config = eos_config(name);
    config.topics.partitions = 4;
    config.pipeline.revoke_timeout_ms = revoke_timeout_ms;
    config.delivery.transaction_max_ms = transaction_max_ms;
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let bootstrap = config.kafka.bootstrap_servers.clone();
    // Pages keep arriving while the group changes, so the handover happens mid-stream.
    let publisher = Publisher::start(&bootstrap, &config.topics.input, name, 200, Duration::from_millis(50));
    let mut first = eos_worker(&config, "first", true);
    wait_until("first articles", Duration::from_secs(60), async || {
        written(&bootstrap, &config.topics.articles) >= 300
    })
    .await;
    let mut second = eos_worker(&config, "second", true);
    wait_until("the handover", Duration::from_secs(60), async || {
        first.output().contains("partition revoked") && second.output().contains("partition assigned")
    })
    .await;
    let at_handover = publisher.sent_count();
    // Both share the stream for a while.
    wait_until("more pages", Duration::from_secs(60), async || {
        publisher.sent_count() >= at_handover + 2000
    })
    .await;
    let (sent, positions) = publisher.stop().await;
    common::wait_for_commit(&config, &positions, Duration::from_secs(120)).await;
    assert_eq!(first.terminate(Duration::from_secs(30)).code(), Some(0));
    assert_eq!(second.terminate(Duration::from_secs(30)).code(), Some(0));
    let output = first.output();
    let aborted = output.matches("transaction aborted").count();
    println!(
        "handover after {at_handover} of {} pages sent; first worker aborted {aborted} transaction(s)",
        sent.len()
    );
    for line in output.lines().filter(|line| {
        line.contains("handed over") || line.contains("revoke deadline") || line.contains("transaction aborted")
    }) {
        println!("first worker: {line}");
    }
    account_exactly_once(&config, &sent).assert_exactly_once(&format!("exactly-once, {name}"), sent.len());
    common::delete_topics(&config).await;
    aborted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_joining_mid_stream_takes_partitions_without_duplicates() {
    join_mid_stream("eos-join", 3_000, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_past_its_deadline_aborts_the_revoked_pages_and_duplicates_nothing() {
    // No time to finish anything: pages of the revoked partitions in the open transaction (kept
    // open for a second) are abandoned; that transaction is aborted and its other pages sent again.
    join_mid_stream("eos-join-abandon", 0, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_with_the_same_transactional_id_fences_the_first() {
    let config = eos_config("eos-fenced");
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let bootstrap = config.kafka.bootstrap_servers.clone();
    // Pages keep arriving, so the first worker keeps using its producer until it is fenced.
    let publisher = Publisher::start(
        &bootstrap,
        &config.topics.input,
        "eos-fenced",
        200,
        Duration::from_millis(100),
    );
    let first = eos_worker(&config, "same", true);
    wait_until("first articles", Duration::from_secs(60), async || {
        written(&bootstrap, &config.topics.articles) >= 300
    })
    .await;
    let mut second = eos_worker(&config, "same", false);
    let (first, exit) = tokio::task::spawn_blocking(move || {
        let mut first = first;
        let exit = first.wait_exit(Duration::from_secs(60));
        (first, exit)
    })
    .await
    .unwrap();
    let output = first.output();
    let error_line = output
        .lines()
        .rev()
        .find(|line| line.starts_with("error:"))
        .unwrap_or("(no error line)")
        .to_owned();
    println!("fenced worker: exit {exit:?}, {error_line}");
    assert_eq!(
        exit.map(|status| status.code()),
        Some(Some(1)),
        "the fenced worker exits 1; its output:\n{}",
        tail(&output)
    );
    assert!(
        error_line.contains("fenced") && error_line.contains("transactional.id"),
        "a clear fenced error: {error_line}"
    );
    let (sent, positions) = publisher.stop().await;
    common::wait_for_commit(&config, &positions, Duration::from_secs(120)).await;
    assert_eq!(second.terminate(Duration::from_secs(30)).code(), Some(0));
    account_exactly_once(&config, &sent).assert_exactly_once("exactly-once, first worker fenced", sent.len());
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_carry_every_record_s_provenance_and_trace_context() {
    let config = eos_config("eos-lineage");
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone())
        .await
        .expect("exactly-once worker starts");
    // A traced page, and one whose traceparent is invalid (an all-zero parent id): that one and
    // its tracestate are dropped and counted, the page is split all the same.
    let traced = PageToPublish {
        url: common::pages::EXAMPLE_URL.to_owned(),
        fetched_at: common::pages::fetched_at(0),
        content_type: "text/plain".to_owned(),
        body: common::fixture(common::pages::EXAMPLE_FIXTURE),
    };
    let mut invalid = small_pages("eos-lineage", 1).remove(0);
    // Its three symbols at values of their own: each goes to the latest-quote topic too.
    invalid.body = invalid.body.replacen("KSE100 106,275", "KSE100 106,300", 1);
    let input = config.topics.input.as_str();
    let state = ("tracestate", common::CRAWLER_TRACESTATE);
    let traced_at = common::publish_with_headers(
        &bootstrap,
        input,
        &traced,
        &[("traceparent", common::CRAWLER_TRACEPARENT), state],
    )
    .await;
    // The second page only once the first is committed: it is the newer (fetched now), and the
    // latest-quote topic leaves out a quote older than the one it holds for the symbol, so the
    // order decides what goes there.
    let mut positions = Positions::from([traced_at]);
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;
    let zero_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01";
    let invalid_at =
        common::publish_with_headers(&bootstrap, input, &invalid, &[("traceparent", zero_parent), state]).await;
    common::merge_positions(&mut positions, Positions::from([invalid_at]));
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;
    assert_eq!(
        running
            .metrics
            .trace_context_dropped_count("traceparent", "zero_parent_id"),
        1
    );
    assert!(running.metrics.transactions_count("committed") >= 1);
    shutdown.cancel();
    running.wait().await.expect("clean shutdown");

    // Read back read_committed: 34 + 3 quotes (and their latest copies), two articles.
    let of = |records: &[pagesplit::demo::ReadRecord], url: &str| -> Vec<pagesplit::demo::ReadRecord> {
        records
            .iter()
            .filter(|record| {
                let headers = common::header_map(record);
                headers.get("pagesplit.source.url").map(String::as_str) == Some(url)
                    || record.key.as_deref() == Some(url)
            })
            .cloned()
            .collect()
    };
    let quotes = common::read_all(&bootstrap, &config.topics.quotes);
    let latest = common::read_all(&bootstrap, config.topics.quotes_latest().unwrap());
    let articles = common::read_all(&bootstrap, &config.topics.articles);
    assert_eq!((quotes.len(), latest.len(), articles.len()), (37, 37, 2));

    let traced_quotes = of(&quotes, &traced.url);
    assert_eq!(traced_quotes.len(), 34);
    let traceparent = common::pagesplit_traceparent(&traced_quotes);
    let trace = Some((traceparent.as_str(), common::CRAWLER_TRACESTATE));
    let source = (input, traced_at.0, traced_at.1);
    let want = common::event_headers(source, Some(&traced.url), trace);
    for record in traced_quotes.iter().chain(&of(&latest, &traced.url)) {
        assert_eq!(common::header_map(record), want, "{:?}", record.key);
    }
    let article = of(&articles, &traced.url);
    assert_eq!(article.len(), 1);
    assert_eq!(
        common::header_map(&article[0]),
        common::event_headers(source, None, trace)
    );

    let source = (input, invalid_at.0, invalid_at.1);
    let untraced = of(&quotes, &invalid.url);
    assert_eq!(untraced.len(), 3);
    for record in untraced.iter().chain(&of(&latest, &invalid.url)) {
        assert_eq!(
            common::header_map(record),
            common::event_headers(source, Some(&invalid.url), None),
            "no trace context: the invalid traceparent and its tracestate are dropped"
        );
    }
    let article = of(&articles, &invalid.url);
    assert_eq!(
        common::header_map(&article[0]),
        common::event_headers(source, None, None)
    );
    common::delete_topics(&config).await;
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
