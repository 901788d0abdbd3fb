//! Fault tests against the real broker: inject a fault mid-stream, then check that every page is
//! accounted for — its article (and quotes) in the output topics, or the page in the dead-letter
//! topic. Each prints sent / delivered / duplicates / dead-lettered.
#![cfg(feature = "broker-tests")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::broker::OwnBroker;
use common::cluster::{busiest_leader, fully_in_sync, partitions, OutputWatch, OwnCluster};
use common::committed::{account_exactly_once, Publisher};
use common::pages::small_pages;
use common::worker::{Worker, WorkerOptions};
use common::{merge_positions, send_raw, wait_until, written};
use pagesplit::config::{Config, DeliveryMode, EncodingFormat};
use pagesplit::demo::{publish_pages, read_records, PageToPublish, Positions};
use tokio_util::sync::CancellationToken;

/// Per output: how many records, how many distinct keys.
struct Accounting {
    articles_by_url: BTreeMap<String, usize>,
    distinct_quote_ids: usize,
    quote_records: usize,
    dead_letters: usize,
}

fn account(config: &Config) -> Accounting {
    let bootstrap = &config.kafka.bootstrap_servers;
    let mut articles_by_url = BTreeMap::new();
    for record in read_records(
        bootstrap,
        &config.topics.articles,
        &Positions::new(),
        Duration::from_secs(60),
    )
    .unwrap()
    {
        *articles_by_url.entry(record.key.unwrap_or_default()).or_default() += 1;
    }
    let quotes = read_records(
        bootstrap,
        &config.topics.quotes,
        &Positions::new(),
        Duration::from_secs(60),
    )
    .unwrap();
    let schema = &pagesplit::encode::Schemas::bundled().quote;
    let ids: BTreeSet<String> = quotes
        .iter()
        .map(|record| {
            let value = pagesplit::demo::decode_event(&record.value, schema).unwrap();
            pagesplit::encode::value_to_json(&value)["event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let dead_letters = read_records(
        bootstrap,
        &config.topics.dead_letter,
        &Positions::new(),
        Duration::from_secs(60),
    )
    .unwrap()
    .len();
    Accounting {
        articles_by_url,
        distinct_quote_ids: ids.len(),
        quote_records: quotes.len(),
        dead_letters,
    }
}

fn assert_nothing_lost(name: &str, sent: &[PageToPublish], accounting: &Accounting) {
    let delivered = accounting.articles_by_url.len();
    let records: usize = accounting.articles_by_url.values().sum();
    println!(
        "{name}: sent={} delivered={delivered} duplicates={} dead-lettered={} quote_records={} distinct_quotes={}",
        sent.len(),
        records - delivered,
        accounting.dead_letters,
        accounting.quote_records,
        accounting.distinct_quote_ids
    );
    let missing: Vec<&str> = sent
        .iter()
        .map(|page| page.url.as_str())
        .filter(|url| !accounting.articles_by_url.contains_key(*url))
        .collect();
    assert!(
        missing.is_empty(),
        "{name}: {} pages lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        accounting.distinct_quote_ids,
        3 * sent.len(),
        "{name}: every page's 3 quotes delivered"
    );
}

fn articles_written(config: &Config) -> i64 {
    written(&config.kafka.bootstrap_servers, &config.topics.articles)
}

/// How long a worker may take to drain, flush, commit and exit after SIGTERM.
const EXIT_DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_stream_and_restarted_loses_nothing() {
    let config = common::test_config("kill9", EncodingFormat::SingleObject);
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let sent = small_pages("kill9", 5000);
    // A backlog first, so the kill lands mid-stream.
    let positions = publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &sent)
        .await
        .unwrap();
    let mut worker = Worker::spawn(&config, WorkerOptions::default());
    // Kill -9 once part of the stream is through.
    wait_until("first articles", Duration::from_secs(60), async || {
        articles_written(&config) >= 300
    })
    .await;
    worker.kill9();
    let at_kill = articles_written(&config);
    println!("worker killed after {at_kill} of {} articles", sent.len());
    assert!(at_kill < sent.len() as i64, "the kill must land mid-stream");
    let mut worker = Worker::spawn(&config, WorkerOptions::default());
    common::wait_for_commit(&config, &positions, Duration::from_secs(120)).await;
    // Graceful stop: SIGTERM → drain, flush, commit, exit 0.
    let exit = worker.terminate(EXIT_DEADLINE);
    assert_eq!(exit.code(), Some(0), "SIGTERM ends the worker with exit 0");
    assert_nothing_lost("worker kill -9", &sent, &account(&config));
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_with_their_codes_and_the_worker_goes_on() {
    let mut config = common::test_config("poison", EncodingFormat::SingleObject);
    config.parse.max_page_bytes = 64 * 1024;
    config.topics.partitions = 1;
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone()).await.unwrap();
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let good = small_pages("poison", 5);
    let mut positions = Positions::new();
    let oversized = pagesplit::envelope::encode_envelope("https://big", Utc::now(), "text/plain", &"x".repeat(100_000));
    let empty_body = pagesplit::envelope::encode_envelope("https://empty", Utc::now(), "text/plain", "  \n ");
    let poison: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("not_an_envelope", Some(b"not json at all".to_vec())),
        (
            "invalid_envelope",
            Some(b"{\"url\": \"x\", \"body\": \"\xff\xfe\"}".to_vec()),
        ),
        ("empty_message", None),
        ("page_too_large", Some(oversized)),
        ("empty_body", Some(empty_body)),
    ];
    for (index, (_, value)) in poison.iter().enumerate() {
        merge_positions(
            &mut positions,
            publish_pages(&bootstrap, &config.topics.input, &good[index..=index])
                .await
                .unwrap(),
        );
        send_raw(
            &bootstrap,
            &config.topics.input,
            "poison",
            value.as_deref(),
            &mut positions,
        )
        .await;
    }
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;

    let dead = common::read_all(&bootstrap, &config.topics.dead_letter);
    let codes: Vec<String> = dead
        .iter()
        .map(|record| {
            record
                .headers
                .iter()
                .find(|(name, _)| name == "pagesplit.error.code")
                .map(|(_, value)| value.clone())
                .unwrap()
        })
        .collect();
    let expected: Vec<&str> = poison.iter().map(|(code, _)| *code).collect();
    assert_eq!(
        codes, expected,
        "each poison message dead-lettered with its code, in order"
    );
    assert_eq!(
        dead[3].value.len(),
        poison[3].1.as_ref().unwrap().len(),
        "original bytes kept"
    );
    assert_eq!(running.metrics.pages_consumed_count(&config.topics.input), 10);
    let accounting = account(&config);
    assert_eq!(accounting.dead_letters, 5);
    assert_nothing_lost("poison", &good, &accounting);
    // The worker is still running.
    assert!(running.health.is_ready(), "worker still ready after poison messages");
    shutdown.cancel();
    running.wait().await.unwrap();

    // `dlq replay --code empty_body` re-publishes just that page, as it was, without our headers.
    let replay_topic = format!("{}.replay", config.topics.input);
    let filter = pagesplit::dlq::ReplayFilter {
        codes: vec!["empty_body".into()],
        stage: None,
    };
    let summary = pagesplit::dlq::replay(&config, &replay_topic, &filter).await.unwrap();
    assert_eq!(
        summary,
        pagesplit::dlq::ReplaySummary {
            read: 5,
            replayed: 1,
            omitted: 0
        }
    );
    let replayed = common::read_all(&bootstrap, &replay_topic);
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].value, poison[4].1.clone().unwrap());
    assert_eq!(replayed[0].key.as_deref(), Some("poison"));
    assert!(replayed[0]
        .headers
        .iter()
        .all(|(name, _)| !name.starts_with("pagesplit.")));
    common::delete_topics(&config).await;
}

/// Bytes that neither parse as an envelope nor compress (so the broker sees their full size).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = b"not an envelope ".to_vec();
    while bytes.len() < len {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_refused_as_too_large_dead_letter_their_page_and_a_refused_dead_letter_goes_without_its_value() {
    records_refused_as_too_large(DeliveryMode::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_too_records_refused_as_too_large_dead_letter_their_page() {
    records_refused_as_too_large(DeliveryMode::ExactlyOnce).await;
}

async fn records_refused_as_too_large(mode: DeliveryMode) {
    let mut config = common::test_config("too-large", EncodingFormat::SingleObject);
    config.topics.partitions = 1;
    config.delivery.mode = mode;
    config.delivery.instance_id = "test".to_owned();
    // The producer refuses records over 40,000 bytes when they are enqueued; the dead-letter
    // topic, created here first, refuses batches over 10,000 bytes when they arrive.
    config
        .kafka
        .producer_options
        .insert("message.max.bytes".to_owned(), "40000".to_owned());
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .create()
        .unwrap();
    let dead_letter_topic = rdkafka::admin::NewTopic::new(
        &config.topics.dead_letter,
        1,
        rdkafka::admin::TopicReplication::Fixed(1),
    )
    .set("max.message.bytes", "10000");
    let created = admin
        .create_topics([&dead_letter_topic], &rdkafka::admin::AdminOptions::new())
        .await
        .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone()).await.unwrap();
    // The topics pagesplit created fit a page; the one created here does not, and startup says so.
    let warnings = pagesplit::app::topic_warnings(&admin, &config).await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(&format!(
            "topic `{}` (topics.dead_letter) has max.message.bytes=10000, below the {} bytes",
            config.topics.dead_letter,
            config.max_record_bytes()
        )),
        "{warnings:?}"
    );
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let good = small_pages("too-large", 2);
    // An article of 60,000 bytes of words: refused when enqueued, and so is its dead letter.
    let words: String = (0..12_000).map(|n| format!("w{:03} ", n % 997)).collect();
    let long_article = PageToPublish {
        url: "https://www.brecorder.com/too-large/long".to_owned(),
        fetched_at: Utc::now(),
        content_type: "text/plain".to_owned(),
        body: format!("KARACHI: A long report.\n\n{words}\n"),
    };
    // 20,000 bytes: its dead letter passes the producer, the dead-letter topic refuses it.
    let refused_by_topic = noise(20_000, 1);
    // 50,000 bytes: its dead letter is refused when enqueued.
    let refused_by_producer = noise(50_000, 2);
    let mut positions = publish_pages(&bootstrap, &config.topics.input, &good[..1])
        .await
        .unwrap();
    for value in [&refused_by_topic, &refused_by_producer] {
        send_raw(
            &bootstrap,
            &config.topics.input,
            "noise",
            Some(value.as_slice()),
            &mut positions,
        )
        .await;
    }
    merge_positions(
        &mut positions,
        publish_pages(&bootstrap, &config.topics.input, std::slice::from_ref(&long_article))
            .await
            .unwrap(),
    );
    merge_positions(
        &mut positions,
        publish_pages(&bootstrap, &config.topics.input, &good[1..])
            .await
            .unwrap(),
    );
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;

    let mut dead = common::read_all(&bootstrap, &config.topics.dead_letter);
    // A dead letter sent again without its value may land after the next page's.
    let source_offset = |record: &pagesplit::demo::ReadRecord| {
        record
            .headers
            .iter()
            .find(|(name, _)| name == "pagesplit.source.offset")
            .and_then(|(_, value)| value.parse::<i64>().ok())
    };
    dead.sort_by_key(source_offset);
    let header = |index: usize, name: &str| {
        dead[index]
            .headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    assert_eq!(dead.len(), 3, "one dead letter per refused page, none twice");
    let long_envelope_bytes = pagesplit::envelope::encode_envelope(
        &long_article.url,
        long_article.fetched_at,
        &long_article.content_type,
        &long_article.body,
    )
    .len();
    for (index, (code, size)) in [
        ("not_an_envelope", refused_by_topic.len()),
        ("not_an_envelope", refused_by_producer.len()),
        ("event_too_large", long_envelope_bytes),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(header(index, "pagesplit.error.code"), code, "dead letter {index}");
        assert!(dead[index].value.is_empty(), "dead letter {index} holds no value");
        let omitted = header(index, "pagesplit.value.omitted");
        assert!(
            omitted.starts_with(&format!("{size} bytes: the dead letter was rejected: ")),
            "dead letter {index}: {omitted}"
        );
        assert!(omitted.contains("too large"), "dead letter {index}: {omitted}");
    }
    assert_eq!(
        dead.iter().map(source_offset).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
    assert_eq!(header(2, "pagesplit.stage"), "encode");
    // The good pages went through; the long article never reached its topic.
    let articles = common::read_all(&bootstrap, &config.topics.articles);
    let urls: Vec<String> = articles.iter().filter_map(|record| record.key.clone()).collect();
    assert_eq!(urls, [good[0].url.clone(), good[1].url.clone()]);
    let metrics = running.metrics.render();
    assert!(
        metrics.contains("pagesplit_pages_dead_lettered_total{code=\"not_an_envelope\",stage=\"decode\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pagesplit_pages_dead_lettered_total{code=\"event_too_large\",stage=\"encode\"} 1"),
        "{metrics}"
    );
    assert_eq!(running.metrics.dead_letters_without_value_count(), 3);
    assert!(running.health.is_ready(), "the worker goes on");

    // A replay leaves the value-less dead letters out and says so.
    let filter = pagesplit::dlq::ReplayFilter::default();
    let replay_topic = format!("{}.replay", config.topics.input);
    let summary = pagesplit::dlq::replay(&config, &replay_topic, &filter).await.unwrap();
    assert_eq!(
        summary,
        pagesplit::dlq::ReplaySummary {
            read: 3,
            replayed: 0,
            omitted: 3
        }
    );
    shutdown.cancel();
    running.wait().await.unwrap();
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_an_event_too_large_for_its_topic_is_dead_lettered_whole_and_none_of_its_events_published() {
    let mut config = common::test_config("whole-page", EncodingFormat::SingleObject);
    config.topics.partitions = 1;
    let bootstrap = config.kafka.bootstrap_servers.clone();
    // An input topic that takes 8 MiB records; the others as pagesplit creates them: the
    // article topic takes a page of parse.max_page_bytes (5 MiB records), the quote topic the
    // brokers' default (1 MB).
    create_topics_taking_8_mib(&bootstrap, &[&config.topics.input]).await;
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone()).await.unwrap();
    // A 2 MiB URL that does not compress: each quote record carries it (over the quote topic's
    // limit), the article too (within the article topic's).
    let (good, envelope, positions) = publish_a_huge_page_between_two_good_ones(&config, 3).await;
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;

    let dead = common::read_all(&bootstrap, &config.topics.dead_letter);
    assert_eq!(dead.len(), 1, "the page is dead-lettered once");
    let header = |name: &str| header_of(&dead[0], name);
    assert_eq!(header("pagesplit.error.code"), "event_too_large");
    assert_eq!(header("pagesplit.stage"), "encode");
    assert_eq!(header("pagesplit.source.offset"), "1");
    assert_eq!(dead[0].value, envelope, "the dead letter holds the page whole");
    // None of its events anywhere: the articles and quotes are the two good pages' only.
    let articles = common::read_all(&bootstrap, &config.topics.articles);
    let urls: Vec<String> = articles.iter().filter_map(|record| record.key.clone()).collect();
    assert_eq!(urls, [good[0].url.clone(), good[1].url.clone()]);
    let quotes = common::read_all(&bootstrap, &config.topics.quotes);
    assert_eq!(quotes.len(), 6, "3 quotes of each good page");
    assert!(quotes.iter().all(|record| record.value.len() < 10_000));
    let metrics = running.metrics.render();
    assert!(
        metrics.contains(&format!(
            "pagesplit_events_produced_total{{topic=\"{}\",type=\"article\"}} 2",
            config.topics.articles
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("pagesplit_pages_dead_lettered_total{code=\"event_too_large\",stage=\"encode\"} 1"),
        "{metrics}"
    );
    shutdown.cancel();
    running.wait().await.unwrap();
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_whose_quotes_fit_their_topic_but_not_the_latest_quote_topic_is_dead_lettered_whole() {
    let mut config = common::test_config("whole-latest", EncodingFormat::SingleObject);
    config.topics.partitions = 1;
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let latest = config
        .topics
        .quotes_latest()
        .expect("the latest-quote topic is on by default")
        .to_owned();
    // The input and quote topics take 8 MiB records; the latest-quote topic is as pagesplit
    // creates it (the brokers' default, 1 MB).
    create_topics_taking_8_mib(&bootstrap, &[&config.topics.input, &config.topics.quotes]).await;
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone()).await.unwrap();
    // A 2 MiB URL that does not compress, in each quote (within the quote topic's limit) and so
    // in each of its latest-quote copies (over that topic's).
    let (good, _, positions) = publish_a_huge_page_between_two_good_ones(&config, 5).await;
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;

    let dead = common::read_all(&bootstrap, &config.topics.dead_letter);
    assert_eq!(dead.len(), 1, "the page is dead-lettered once");
    assert_eq!(header_of(&dead[0], "pagesplit.error.code"), "event_too_large");
    let message = header_of(&dead[0], "pagesplit.error.message");
    assert!(
        message.contains(&format!("larger than topic {latest} takes")),
        "{message}"
    );
    // None of its events anywhere: the two good pages' only.
    let articles = common::read_all(&bootstrap, &config.topics.articles);
    let urls: Vec<String> = articles.iter().filter_map(|record| record.key.clone()).collect();
    assert_eq!(urls, [good[0].url.clone(), good[1].url.clone()]);
    let quotes = common::read_all(&bootstrap, &config.topics.quotes);
    assert_eq!(quotes.len(), 6, "3 quotes of each good page");
    assert!(quotes.iter().all(|record| record.value.len() < 10_000));
    // The first good page's 3 quotes, then the second's AGL, the one that moved.
    let copies = common::read_all(&bootstrap, &latest);
    let symbols: Vec<String> = copies.iter().filter_map(|record| record.key.clone()).collect();
    assert_eq!(symbols, ["AGL", "BOP", "KSE100", "AGL"]);
    assert!(copies.iter().all(|record| record.value.len() < 10_000));
    shutdown.cancel();
    running.wait().await.unwrap();
    common::delete_topics(&config).await;
}

/// Creates `topics` with one partition each, taking records up to 8 MiB.
async fn create_topics_taking_8_mib(bootstrap: &str, topics: &[&str]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|topic| NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("max.message.bytes", "8388608"))
        .collect();
    let created = admin.create_topics(&topics, &AdminOptions::new()).await.unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
}

/// The value of a record's header `name`, or "" without it.
fn header_of(record: &pagesplit::demo::ReadRecord, name: &str) -> String {
    record
        .headers
        .iter()
        .find(|(header, _)| header == name)
        .map(|(_, value)| value.clone())
        .unwrap_or_default()
}

/// Publishes a good page, a page whose URL is 2 MiB of letters that do not compress (from
/// `seed`), and another good page, each as a message of its own; returns the good pages, the
/// huge page's envelope and where the three are.
async fn publish_a_huge_page_between_two_good_ones(
    config: &Config,
    seed: u64,
) -> (Vec<PageToPublish>, Vec<u8>, Positions) {
    let bootstrap = &config.kafka.bootstrap_servers;
    let good = small_pages(&config.topics.input, 2);
    let mut huge = good[0].clone();
    let letters: Vec<u8> = noise(2 << 20, seed).iter().map(|byte| b'a' + byte % 26).collect();
    huge.url = format!("https://www.brecorder.com/{}", String::from_utf8(letters).unwrap());
    let envelope = pagesplit::envelope::encode_envelope(&huge.url, huge.fetched_at, &huge.content_type, &huge.body);
    let mut positions = publish_pages(bootstrap, &config.topics.input, &good[..1])
        .await
        .unwrap();
    let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.max.bytes", "8388608")
        .create()
        .unwrap();
    let delivered = producer
        .send(
            rdkafka::producer::FutureRecord::to(&config.topics.input)
                .key("huge")
                .payload(&envelope),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(error, _)| error)
        .unwrap();
    merge_positions(
        &mut positions,
        Positions::from([(delivered.partition, delivered.offset)]),
    );
    merge_positions(
        &mut positions,
        publish_pages(bootstrap, &config.topics.input, &good[1..])
            .await
            .unwrap(),
    );
    (good, envelope, positions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_in_flight_bound_pauses_and_resumes_without_loss() {
    let mut config = common::test_config("bound", EncodingFormat::SingleObject);
    config.pipeline.max_in_flight_pages = 3;
    config.pipeline.max_in_flight_bytes = config.parse.max_page_bytes;
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let sent = small_pages("bound", 1500);
    let positions = publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &sent)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone()).await.unwrap();
    let metrics = running.metrics.clone();
    let sampler = tokio::spawn(async move {
        let mut highest = 0;
        loop {
            highest = highest.max(metrics.pages_in_flight_count());
            if metrics.pages_consumed_count_total() >= 1500 && metrics.pages_in_flight_count() == 0 {
                return highest;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    common::wait_for_commit(&config, &positions, Duration::from_secs(120)).await;
    let highest = tokio::time::timeout(Duration::from_secs(30), sampler)
        .await
        .unwrap()
        .unwrap();
    println!("highest pages in flight: {highest}");
    assert!(highest <= 3, "at most max_in_flight_pages in flight, saw {highest}");
    assert_nothing_lost("tiny bound", &sent, &account(&config));
    shutdown.cancel();
    running.wait().await.unwrap();
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_six_partitions_and_survive_losing_one() {
    let mut config = common::test_config("group3", EncodingFormat::SingleObject);
    config.topics.partitions = 6;
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let sent = small_pages("group3", 6000);
    let positions = publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &sent)
        .await
        .unwrap();
    assert_eq!(positions.len(), 6, "pages spread over the six partitions");
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| Worker::spawn(&config, WorkerOptions::default()))
        .collect();
    wait_until("first articles", Duration::from_secs(60), async || {
        articles_written(&config) >= 600
    })
    .await;
    let mut victim = workers.remove(0);
    victim.kill9();
    let at_kill = articles_written(&config);
    println!("one of three workers killed after {at_kill} of {} articles", sent.len());
    assert!(at_kill < sent.len() as i64, "the kill must land mid-stream");
    // The two others take over its partitions (after the session timeout at worst).
    common::wait_for_commit(&config, &positions, Duration::from_secs(150)).await;
    for mut worker in workers {
        assert_eq!(worker.terminate(EXIT_DEADLINE).code(), Some(0));
    }
    assert_nothing_lost("group of three, one killed", &sent, &account(&config));
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_and_restarted_mid_stream_loses_nothing() {
    let broker = OwnBroker::start();
    let mut config = common::test_config("brokerkill", EncodingFormat::SingleObject);
    config.kafka.bootstrap_servers = format!("127.0.0.1:{}", broker.port);
    let shutdown = CancellationToken::new();
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let sent = small_pages("brokerkill", 5000);
    // A backlog first, so the kill lands mid-stream.
    let positions = publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &sent)
        .await
        .unwrap();
    let running = pagesplit::app::start(config.clone(), shutdown.clone()).await.unwrap();
    wait_until("first articles", Duration::from_secs(60), async || {
        articles_written(&config) >= 300
    })
    .await;
    assert!(broker.stack(&["kill", "kafka"], false).success());
    let consumed = running.metrics.pages_consumed_count(&config.topics.input);
    println!(
        "broker killed after {consumed} of {} pages consumed; restarting on the same data",
        sent.len()
    );
    assert!(consumed < sent.len() as u64, "the fault must land mid-stream");
    if !broker.stack(&["up"], true).success() {
        broker.stack(&["logs"], true);
        panic!("broker did not restart on its data");
    }
    let metrics = running.metrics.clone();
    let mut worker = tokio::spawn(running.wait());
    tokio::select! {
        _ = common::wait_for_commit(&config, &positions, Duration::from_secs(180)) => {}
        result = &mut worker => panic!("worker stopped while the broker was down: {result:?}"),
    }
    println!(
        "{}",
        metrics
            .render()
            .lines()
            .filter(
                |l| l.starts_with("pagesplit_produce_retries_total") || l.starts_with("pagesplit_offset_commits_total")
            )
            .collect::<Vec<_>>()
            .join("\n")
    );
    let accounting = account(&config);
    assert_nothing_lost("broker kill -9", &sent, &accounting);
    shutdown.cancel();
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_joining_mid_stream_gets_a_clean_handover_without_duplicates() {
    let mut config = common::test_config("join", EncodingFormat::SingleObject);
    config.topics.partitions = 4;
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let bootstrap = config.kafka.bootstrap_servers.clone();
    // Pages keep arriving while the group changes, so pages are in flight at the handover.
    let publisher = Publisher::start(&bootstrap, &config.topics.input, "join", 200, Duration::from_millis(50));
    let logging = || WorkerOptions {
        log_level: "info",
        capture: true,
        ..WorkerOptions::default()
    };
    let mut first = Worker::spawn(&config, logging());
    wait_until("first articles", Duration::from_secs(60), async || {
        articles_written(&config) >= 300
    })
    .await;
    let mut second = Worker::spawn(&config, logging());
    wait_until("the handover", Duration::from_secs(60), async || {
        first.output().contains("partition revoked") && second.output().contains("partition assigned")
    })
    .await;
    let at_handover = publisher.sent_count();
    wait_until("more pages", Duration::from_secs(60), async || {
        publisher.sent_count() >= at_handover + 2000
    })
    .await;
    let (sent, positions) = publisher.stop().await;
    common::wait_for_commit(&config, &positions, Duration::from_secs(120)).await;
    assert_eq!(first.terminate(Duration::from_secs(30)).code(), Some(0));
    assert_eq!(second.terminate(Duration::from_secs(30)).code(), Some(0));
    let handover: Vec<String> = first
        .output()
        .lines()
        .filter(|line| line.contains("handed over") || line.contains("revoke deadline"))
        .map(str::to_owned)
        .collect();
    println!(
        "handover after {at_handover} of {} pages sent: {handover:?}",
        sent.len()
    );
    assert!(
        !first.output().contains("revoke deadline passed"),
        "in-flight pages finished within pipeline.revoke_timeout_ms"
    );
    // At-least-once allows duplicates, but a clean handover (in-flight pages finished and their
    // offsets committed before the partitions go) produces none.
    account_exactly_once(&config, &sent).assert_exactly_once("at-least-once, second worker joins", sent.len());
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_down_for_a_while_keeps_memory_bounded_and_loses_nothing() {
    let broker = OwnBroker::start();
    let mut config = common::test_config("outage", EncodingFormat::SingleObject);
    config.kafka.bootstrap_servers = broker.bootstrap();
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let sent = small_pages("outage", 20_000);
    let positions = publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &sent)
        .await
        .unwrap();
    // A small in-flight bound: 50 pages, 4 MiB (the smallest allowed: parse.max_page_bytes).
    let mut worker = Worker::spawn(
        &config,
        WorkerOptions {
            sets: vec![
                ("pipeline.max_in_flight_pages", "50".to_owned()),
                ("pipeline.max_in_flight_bytes", config.parse.max_page_bytes.to_string()),
            ],
            ..WorkerOptions::default()
        },
    );
    wait_until("first articles", Duration::from_secs(60), async || {
        articles_written(&config) >= 300
    })
    .await;
    let before_outage = worker.rss_kib().unwrap();
    assert!(broker.stack(&["kill", "kafka"], false).success());
    println!(
        "broker killed with a backlog of {} pages; worker RSS {} MiB",
        sent.len(),
        before_outage / 1024
    );
    // The output stays down for 20 s; the worker's memory is sampled meanwhile.
    let outage = Duration::from_secs(20);
    let started = Instant::now();
    let mut peak = before_outage;
    let mut samples = 0;
    while started.elapsed() < outage {
        assert!(worker.running(), "the worker must ride out the outage");
        peak = peak.max(worker.rss_kib().unwrap_or(0));
        samples += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !broker.stack(&["up"], true).success() {
        broker.stack(&["logs"], true);
        panic!("broker did not restart on its data");
    }
    common::wait_for_commit(&config, &positions, Duration::from_secs(180)).await;
    let after = worker.rss_kib().unwrap();
    assert_eq!(worker.terminate(Duration::from_secs(30)).code(), Some(0));
    println!(
        "worker RSS: {} MiB before the outage, peak {} MiB over {samples} samples during 20 s without brokers, {} MiB after catching up",
        before_outage / 1024,
        peak / 1024,
        after / 1024
    );
    // Bounded: librdkafka's prefetch queue (4 MiB), the producer queue (at most 64 MiB, but
    // only 50 pages' events fit under the in-flight bound) and 4 MiB of pages in flight, on top
    // of a ~30 MiB process. 200 MiB leaves room for allocator slack and still catches a leak
    // proportional to the 20 000-page backlog (~10 MiB of pages, ~80 000 events).
    assert!(peak < 200 * 1024, "RSS stayed under 200 MiB, peak {} MiB", peak / 1024);
    assert_nothing_lost("output down for 20 s", &sent, &account(&config));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_broker_down_exits_within_the_drain_deadline_and_the_close_timeout() {
    let broker = OwnBroker::start();
    let mut config = common::test_config("down-exit", EncodingFormat::SingleObject);
    config.kafka.bootstrap_servers = broker.bootstrap();
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let sent = small_pages("down-exit", 5000);
    publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &sent)
        .await
        .unwrap();
    let drain = Duration::from_secs(3);
    let mut worker = Worker::spawn(
        &config,
        WorkerOptions {
            sets: vec![("pipeline.drain_timeout_ms", drain.as_millis().to_string())],
            log_level: "info",
            capture: true,
            ..WorkerOptions::default()
        },
    );
    wait_until("first articles", Duration::from_secs(60), async || {
        articles_written(&config) >= 300
    })
    .await;
    assert!(broker.stack(&["kill", "kafka"], false).success());
    // Pages in flight can no longer be acknowledged, nor offsets committed, nor the group left.
    let signalled = Instant::now();
    let bound = drain + pagesplit::pipeline::CLOSE_TIMEOUT + Duration::from_secs(3);
    let exit = worker.wait_exit_after_sigterm(bound);
    let output = worker.output();
    let exit = exit.unwrap_or_else(|| panic!("no exit within {bound:?} of SIGTERM with the broker down:\n{output}"));
    println!(
        "exit {exit:?} {:.1} s after SIGTERM with the broker down",
        signalled.elapsed().as_secs_f64()
    );
    assert_eq!(exit.code(), Some(0), "{output}");
    assert!(output.contains("drain deadline passed"), "{output}");
    assert!(output.contains("offset commit failed"), "{output}");
}

/// A worker whose broker goes away while pages are in flight: its group session runs out
/// locally, librdkafka takes the partitions away and pagesplit hands them over with no broker to
/// answer. The handover keeps within `pipeline.revoke_timeout_ms` (a commit or a wait on the
/// broker would hold it until the broker returns, and no handover would be counted while it is
/// down); once the broker is back the worker consumes, publishes and commits again, and every
/// page sent before and after is in the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_with_the_broker_down_keeps_its_limit_and_the_worker_recovers_at_least_once() {
    handover_with_the_broker_down(DeliveryMode::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_with_the_broker_down_keeps_its_limit_and_the_worker_recovers_exactly_once() {
    handover_with_the_broker_down(DeliveryMode::ExactlyOnce).await;
}

async fn handover_with_the_broker_down(mode: DeliveryMode) {
    let broker = OwnBroker::start();
    let name = match mode {
        DeliveryMode::AtLeastOnce => "down-handover",
        DeliveryMode::ExactlyOnce => "down-handover-eo",
    };
    let mut config = common::test_config(name, EncodingFormat::SingleObject);
    config.kafka.bootstrap_servers = broker.bootstrap();
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let mut sent = small_pages(&format!("{name}/before"), 3000);
    let mut positions = publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &sent)
        .await
        .unwrap();
    let session = Duration::from_secs(10);
    let revoke_limit = Duration::from_secs(5);
    let mut sets = vec![
        ("kafka.session_timeout_ms", session.as_millis().to_string()),
        ("pipeline.revoke_timeout_ms", revoke_limit.as_millis().to_string()),
        ("delivery.instance_id", name.to_owned()),
    ];
    if mode == DeliveryMode::ExactlyOnce {
        sets.push(("delivery.mode", "exactly-once".to_owned()));
    }
    let mut worker = Worker::spawn(
        &config,
        WorkerOptions {
            sets,
            log_level: "info",
            capture: true,
            ..WorkerOptions::default()
        },
    );
    let metrics_url = format!("http://{}/metrics", worker.http_address());
    wait_until("first articles", Duration::from_secs(60), async || {
        articles_written(&config) >= 300
    })
    .await;
    assert!(broker.stack(&["kill", "kafka"], false).success());
    let killed = Instant::now();
    // Pages already fetched go on being split, and none can be acknowledged any more.
    wait_until(
        "pages in flight with the broker down",
        Duration::from_secs(10),
        async || metric(&metrics_url, "pagesplit_pages_in_flight").await > 0.0,
    )
    .await;
    // The session runs out after `session`; the handover must follow within its limit.
    let handovers = wait_until(
        "the partitions handed over with the broker down",
        session + revoke_limit + Duration::from_secs(15),
        async || {
            let count = metric(&metrics_url, "pagesplit_revoke_seconds_count").await;
            (count > 0.0).then_some(count)
        },
    )
    .await;
    let took = Duration::from_secs_f64(metric(&metrics_url, "pagesplit_revoke_seconds_sum").await);
    let output = worker.output();
    println!(
        "{mode:?}: {handovers} handover(s) {:.1} s after the broker went, {took:?} in all; {}",
        killed.elapsed().as_secs_f64(),
        output
            .lines()
            .filter(|line| line.contains("partitions lost")
                || line.contains("handed over")
                || line.contains("revoke deadline"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert!(output.contains("partitions lost with the group session"), "{output}");
    // Every handover together took no longer than one may.
    assert!(
        took <= revoke_limit,
        "handovers took {took:?}, limit {revoke_limit:?}:\n{output}"
    );
    if !broker.stack(&["up"], true).success() {
        broker.stack(&["logs"], true);
        panic!("broker did not restart on its data");
    }
    let after = small_pages(&format!("{name}/after"), 1000);
    merge_positions(
        &mut positions,
        publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &after)
            .await
            .unwrap(),
    );
    sent.extend(after);
    // Committed offsets move again, up to the last page sent. Exactly-once, librdkafka may
    // declare the transactional producer unusable after the outage (a fatal error such as
    // "sequence desynchronization" with the restarted broker): the worker replaces it and goes on.
    let recovery = Duration::from_secs(150);
    let back = Instant::now();
    while common::committed_within(&config, &positions, Duration::from_secs(5))
        .await
        .is_err()
    {
        assert!(
            worker.running(),
            "the worker stopped after the outage:\n{}",
            worker.output()
        );
        assert!(
            back.elapsed() < recovery,
            "no commit past every page within {recovery:?} of the broker's return:\n{}",
            worker.output()
        );
    }
    let output = worker.output();
    if let Some(renewed) = output.lines().find(|line| line.contains("replacing it with a new one")) {
        println!("{mode:?}: {renewed}");
    }
    assert!(worker.running(), "the worker rode out the outage:\n{}", worker.output());
    assert_eq!(worker.terminate(EXIT_DEADLINE).code(), Some(0));
    match mode {
        DeliveryMode::AtLeastOnce => assert_nothing_lost("handover with the broker down", &sent, &account(&config)),
        DeliveryMode::ExactlyOnce => account_exactly_once(&config, &sent)
            .assert_exactly_once("handover with the broker down, exactly-once", sent.len()),
    }
}

/// The value of an unlabelled metric on the worker's `/metrics` page (0 when absent).
async fn metric(url: &str, name: &str) -> f64 {
    let Ok(response) = reqwest::get(url).await else {
        return 0.0;
    };
    let page = response.text().await.unwrap_or_default();
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// Drills on a cluster of three brokers (replication factor 3, min.insync.replicas=2), each in
// both delivery modes: the leader of the busiest node killed while pages flow, and a rolling
// restart of every broker while pages flow. Every page accounted for, no duplicates in
// exactly-once, the longest time without output printed.

/// One 3-node cluster at a time: three JVMs per cluster on a small machine.
static CLUSTER_DRILLS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_leader_killed_and_rolling_restart_lose_nothing_at_least_once() {
    cluster_drills(DeliveryMode::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_leader_killed_and_rolling_restart_publish_every_event_exactly_once() {
    cluster_drills(DeliveryMode::ExactlyOnce).await;
}

async fn cluster_drills(mode: DeliveryMode) {
    let _one_cluster_at_a_time = CLUSTER_DRILLS.lock().await;
    let cluster = OwnCluster::start(3);
    println!("cluster of 3 up at {}", cluster.bootstrap());
    leader_killed_while_pages_flow(&cluster, mode).await;
    rolling_restart_while_pages_flow(&cluster, mode).await;
}

/// A worker on the cluster, pages published continuously, its article topic followed.
struct ClusterDrill {
    name: String,
    mode: DeliveryMode,
    config: Config,
    worker: Worker,
    publisher: Publisher,
    watch: OutputWatch,
}

impl ClusterDrill {
    async fn start(cluster: &OwnCluster, name: &str, mode: DeliveryMode) -> Self {
        let mut config = common::test_config(name, EncodingFormat::SingleObject);
        config.kafka.bootstrap_servers = cluster.bootstrap();
        config.topics.partitions = 3;
        config.topics.replication_factor = 3;
        config.delivery.mode = mode;
        pagesplit::app::prepare_topics(&config).await.unwrap();
        // Static membership under the worker's name, as deployed (the name comes from the pod).
        let mut sets = vec![
            ("kafka.session_timeout_ms", "10000".to_owned()),
            ("delivery.instance_id", "drill".to_owned()),
        ];
        if mode == DeliveryMode::ExactlyOnce {
            sets.push(("delivery.mode", "exactly-once".to_owned()));
        }
        let worker = Worker::spawn(
            &config,
            WorkerOptions {
                sets,
                ..WorkerOptions::default()
            },
        );
        let watch = OutputWatch::start(&config.kafka.bootstrap_servers, &config.topics.articles, 3);
        let publisher = Publisher::start(
            &config.kafka.bootstrap_servers,
            &config.topics.input,
            name,
            50,
            Duration::from_millis(100),
        );
        wait_until("first articles", Duration::from_secs(90), async || watch.count() >= 500).await;
        Self {
            name: format!("{name} ({mode:?})"),
            mode,
            config,
            worker,
            publisher,
            watch,
        }
    }

    /// The input and output topics.
    fn topics(&self) -> [&str; 3] {
        [
            self.config.topics.input.as_str(),
            self.config.topics.quotes.as_str(),
            self.config.topics.articles.as_str(),
        ]
    }

    /// Waits until `pages` more pages have been published and `articles` more arrived.
    async fn flow(&mut self, what: &str, pages: usize, articles: usize) {
        let (sent, seen) = (self.publisher.sent_count(), self.watch.count());
        wait_until(what, Duration::from_secs(120), async || {
            assert!(self.worker.running(), "{}: the worker exited", self.name);
            self.publisher.sent_count() >= sent + pages && self.watch.count() >= seen + articles
        })
        .await;
    }

    /// Waits until every partition of the drill's topics and the offsets topic (and the
    /// transaction state topic in exactly-once) has its 3 replicas in sync again.
    async fn wait_in_sync(&self, what: &str) {
        let mut topics = self.topics().to_vec();
        topics.push("__consumer_offsets");
        if self.mode == DeliveryMode::ExactlyOnce {
            topics.push("__transaction_state");
        }
        let bootstrap = self.config.kafka.bootstrap_servers.clone();
        wait_until(what, Duration::from_secs(120), async || {
            fully_in_sync(&bootstrap, &topics, 3)
        })
        .await;
    }

    /// Stops publishing, waits for the worker to commit past every page, stops it and accounts
    /// for every page; prints the longest time without output since `fault`.
    async fn finish(mut self, fault: Instant) {
        let (sent, positions) = self.publisher.stop().await;
        let stopped = Instant::now();
        common::wait_for_commit(&self.config, &positions, Duration::from_secs(180)).await;
        assert_eq!(self.worker.terminate(EXIT_DEADLINE).code(), Some(0));
        println!(
            "{}: longest time without output from the first fault to the end of publishing ({:.1} s): {:.2} s",
            self.name,
            (stopped - fault).as_secs_f64(),
            self.watch.longest_gap(fault, stopped).as_secs_f64()
        );
        match self.mode {
            DeliveryMode::AtLeastOnce => assert_nothing_lost(&self.name, &sent, &account(&self.config)),
            DeliveryMode::ExactlyOnce => {
                account_exactly_once(&self.config, &sent).assert_exactly_once(&self.name, sent.len())
            }
        }
        common::delete_topics(&self.config).await;
    }
}

async fn leader_killed_while_pages_flow(cluster: &OwnCluster, mode: DeliveryMode) {
    let mut drill = ClusterDrill::start(cluster, "leader-kill", mode).await;
    // The node of the worker's coordinator: the group's (the offsets topic's leader), in
    // exactly-once the transactions' (the transaction state topic's leader). It leads some of
    // the drill's partitions too: partitions and coordinator move at once, the worst case.
    let bootstrap = drill.config.kafka.bootstrap_servers.clone();
    let coordinator_topic = match mode {
        DeliveryMode::AtLeastOnce => "__consumer_offsets",
        DeliveryMode::ExactlyOnce => "__transaction_state",
    };
    let (leader, _) = busiest_leader(&bootstrap, &[coordinator_topic]);
    let mut topics = drill.topics().to_vec();
    topics.extend(["__consumer_offsets", "__transaction_state"]);
    let led: Vec<String> = partitions(&bootstrap, &topics)
        .iter()
        .filter(|state| state.leader == leader)
        .map(|state| format!("{}/{}", state.topic, state.partition))
        .collect();
    let fault = Instant::now();
    cluster.kill(leader);
    println!(
        "{}: node {leader}, leader of {led:?}, killed after {} pages sent",
        drill.name,
        drill.publisher.sent_count()
    );
    // Pages flow on the two others, then the node comes back on its data and catches up.
    drill.flow("output with a node down", 2000, 1000).await;
    let restart = Instant::now();
    println!(
        "{}: longest time without output while node {leader} was down ({:.1} s): {:.2} s",
        drill.name,
        (restart - fault).as_secs_f64(),
        drill.watch.longest_gap(fault, restart).as_secs_f64()
    );
    cluster.restart_stopped();
    drill.wait_in_sync("the restarted node back in sync").await;
    drill.flow("output after the restart", 1000, 500).await;
    println!(
        "{}: longest time without output from node {leader}'s restart until it was back in sync and output flowed ({:.1} s): {:.2} s",
        drill.name,
        restart.elapsed().as_secs_f64(),
        drill.watch.longest_gap(restart, Instant::now()).as_secs_f64()
    );
    drill.finish(fault).await;
}

async fn rolling_restart_while_pages_flow(cluster: &OwnCluster, mode: DeliveryMode) {
    let mut drill = ClusterDrill::start(cluster, "rolling", mode).await;
    let fault = Instant::now();
    for node in 1..=i32::from(cluster.nodes) {
        cluster.stop(node);
        println!(
            "{}: node {node} stopped after {} pages sent",
            drill.name,
            drill.publisher.sent_count()
        );
        cluster.restart_stopped();
        drill.wait_in_sync(&format!("node {node} back in sync")).await;
        drill
            .flow(&format!("output after node {node} restarted"), 500, 250)
            .await;
    }
    drill.finish(fault).await;
}

/// A static member whose consumer the group fenced off (here by another consumer joining under
/// its name; librdkafka does it to itself when it rejoins after its session expired during a
/// broker outage) starts again under its name and goes on, instead of stopping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_fenced_off_as_a_static_member_starts_again_and_goes_on() {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    const STARTING_AGAIN: &str = "starting again under the same name";
    let config = common::test_config("fenced", EncodingFormat::SingleObject);
    pagesplit::app::prepare_topics(&config).await.unwrap();
    let name = common::unique("fenced-member");
    let mut worker = Worker::spawn(
        &config,
        WorkerOptions {
            sets: vec![
                ("kafka.static_membership", "true".to_owned()),
                ("kafka.group_instance_id", name.clone()),
            ],
            capture: true,
            ..WorkerOptions::default()
        },
    );
    let first = "https://example.test/fenced/1";
    publish_and_wait_for_article(&config, &worker, first, 1).await;
    assert!(!worker.output().contains(STARTING_AGAIN));

    // Another consumer joins under the worker's name: the group replaces the worker's membership.
    let rival: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .set("group.id", &config.kafka.group_id)
        .set("group.instance.id", &name)
        .set("enable.auto.commit", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", "10000")
        .create()
        .expect("rival consumer");
    rival
        .subscribe(&[config.topics.input.as_str()])
        .expect("rival subscribes");
    wait_until(
        "the worker fenced off and starting again",
        Duration::from_secs(90),
        async || {
            let _ = rival.poll(Duration::from_millis(100));
            worker.output().contains(STARTING_AGAIN)
        },
    )
    .await;
    drop(rival);

    // The worker, started again under its name, takes its partitions back and splits on.
    let second = "https://example.test/fenced/2";
    publish_and_wait_for_article(&config, &worker, second, 2).await;
    assert!(!worker.has_exited(), "the fenced worker goes on:\n{}", worker.output());
    assert_eq!(worker.output().matches(STARTING_AGAIN).count(), 1);
    let exit = worker.terminate(EXIT_DEADLINE);
    assert_eq!(exit.code(), Some(0), "SIGTERM ends the worker with exit 0");
    let mut articles: Vec<String> = common::read_all(&config.kafka.bootstrap_servers, &config.topics.articles)
        .into_iter()
        .filter_map(|record| record.key)
        .collect();
    articles.sort();
    articles.dedup();
    assert_eq!(articles, [first, second]);
    common::delete_topics(&config).await;
}

/// Publishes the example page at `url` and waits until the article topic holds `articles`
/// records; on a timeout, the worker's log is in the failure.
async fn publish_and_wait_for_article(config: &Config, worker: &Worker, url: &str, articles: i64) {
    let page = PageToPublish {
        url: url.to_owned(),
        fetched_at: Utc::now(),
        content_type: "text/plain".to_owned(),
        body: common::fixture(common::pages::EXAMPLE_FIXTURE),
    };
    publish_pages(&config.kafka.bootstrap_servers, &config.topics.input, &[page])
        .await
        .expect("page published");
    let started = Instant::now();
    while written(&config.kafka.bootstrap_servers, &config.topics.articles) < articles {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no article for {url} within 90 s; the worker's log:\n{}",
            worker.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
