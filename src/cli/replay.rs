//! `pagesplit replay`: publishes pages from files, directories and WARC archives to the raw
//! topic as JSON envelopes keyed by URL, optionally at a limited rate, and counts what the
//! brokers acknowledged.
//!
//! Reading runs on a blocking thread and hands pages over a bounded channel to the producer
//! loop, which enqueues them (pacing them when a rate is set) and collects the acknowledgements.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, StreamExt as _};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use super::args::ReplayArgs;
use super::progress::{Measure, Progress};
use super::{check_topic, collect_inputs, elapsed_text, page_defaults, PartialFailure};
use crate::config::Config;
use crate::envelope::encode_envelope;
use crate::input::{read_input, total_size, Input, Item, PageDefaults};
use crate::model::{ContentType, RawPage};

/// Publishes the inputs `args` name; fails when a page was not acknowledged, an input could not
/// be read, or the replay was interrupted.
pub async fn run(config: &Config, args: ReplayArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let inputs = collect_inputs(&args.sources)?;
    let total = total_size(&inputs);
    let progress = Progress::new(
        "replay",
        "pages",
        Measure::Bytes,
        total,
        args.progress.progress_interval,
    );
    let options = ReplayOptions {
        topic: args.topic.unwrap_or_else(|| config.topics.input.clone()),
        rate: args.rate,
        timeout: args.kafka.timeout,
    };
    let shutdown = crate::shutdown::signal_token();
    let summary = replay(config, inputs, page_defaults(&args.page), &options, &progress, shutdown).await;
    progress.finish();
    let summary = summary?;
    eprintln!(
        "replay to `{}` at {}: {summary} in {}",
        options.topic,
        config.kafka.bootstrap_servers,
        elapsed_text(started.elapsed())
    );
    Ok(summary.outcome()?)
}

/// How a replay publishes.
#[derive(Debug, Clone)]
struct ReplayOptions {
    /// The topic to publish to.
    topic: String,
    /// At most this many pages per second, when set.
    rate: Option<f64>,
    /// How long to wait for the brokers to answer at the start.
    timeout: Duration,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ReplaySummary {
    /// Pages read from the inputs.
    pages: usize,
    /// Pages enqueued for publishing.
    sent: usize,
    /// Pages the brokers acknowledged.
    acknowledged: usize,
    /// Pages the brokers did not take (delivery failed).
    failed: usize,
    /// Inputs or records that could not be read as pages, by code.
    errors: BTreeMap<&'static str, usize>,
    /// WARC records that are not pages, by reason.
    skipped: BTreeMap<&'static str, usize>,
    /// Whether the replay was stopped (Ctrl-C) before it read everything.
    interrupted: bool,
}

impl ReplaySummary {
    /// Success when every page read was acknowledged and every input was read to its end.
    fn outcome(&self) -> Result<(), PartialFailure> {
        let unreadable: usize = self.errors.values().sum();
        if self.interrupted {
            Err(PartialFailure(format!(
                "interrupted after {} pages were acknowledged",
                self.acknowledged
            )))
        } else if self.failed > 0 {
            Err(PartialFailure(format!(
                "{} of {} pages were not acknowledged",
                self.failed, self.pages
            )))
        } else if unreadable > 0 {
            Err(PartialFailure(format!(
                "{unreadable} input(s) or record(s) could not be read as pages (see above)"
            )))
        } else {
            Ok(())
        }
    }
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pages={} sent={} acknowledged={} failed={} errors={}",
            self.pages,
            self.sent,
            self.acknowledged,
            self.failed,
            self.errors.values().sum::<usize>()
        )?;
        crate::split::write_counts_by_code(f, &self.errors, &self.skipped)?;
        if self.interrupted {
            write!(f, " (interrupted)")?;
        }
        Ok(())
    }
}

/// How long the producer keeps trying to deliver one page before reporting it failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// What the reading thread hands to the producer loop.
struct ReadItem {
    /// The input's name.
    name: String,
    item: Item,
    /// Bytes of all inputs read once this item was: the progress when it is published.
    position: u64,
}

/// Publishes the pages of `inputs` to `options.topic`. Fails before publishing anything when the
/// brokers do not answer within `options.timeout` or the topic does not exist.
async fn replay(
    config: &Config,
    inputs: Vec<Input>,
    defaults: PageDefaults,
    options: &ReplayOptions,
    progress: &Progress,
    shutdown: CancellationToken,
) -> anyhow::Result<ReplaySummary> {
    let producer = connect(config, options).await?;
    let (reader, mut receiver) = spawn_reader(inputs, defaults, config.parse.max_page_bytes);
    let mut publisher = Publisher {
        producer,
        bootstrap: &config.kafka.bootstrap_servers,
        options,
        progress,
        summary: ReplaySummary::default(),
        deliveries: FuturesUnordered::new(),
        started: Instant::now(),
    };
    loop {
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                publisher.summary.interrupted = true;
                break;
            }
            next = receiver.recv() => next,
        };
        let Some(read) = next else {
            break;
        };
        let Some(page) = publisher.page_of(read) else {
            continue;
        };
        if !publisher.pace(&shutdown).await {
            publisher.summary.interrupted = true;
            break;
        }
        publisher.publish(page).await?;
    }
    drop(receiver);
    let summary = publisher.finish().await;
    if !summary.interrupted {
        reader.await.context("reader task panicked")?;
    }
    // Interrupted, the reader stops at its next page; it may be waiting on standard input, so it
    // is not waited for.
    Ok(summary)
}

/// A producer for the replay, once the brokers answered and the topic was found.
async fn connect(config: &Config, options: &ReplayOptions) -> anyhow::Result<FutureProducer> {
    let producer: FutureProducer = config
        .producer_config()
        .set("statistics.interval.ms", "0")
        .set("message.timeout.ms", DELIVERY_TIMEOUT.as_millis().to_string())
        .create()
        .context("failed to create the Kafka producer")?;
    let (client, bootstrap, topic, timeout) = (
        producer.clone(),
        config.kafka.bootstrap_servers.clone(),
        options.topic.clone(),
        options.timeout,
    );
    tokio::task::spawn_blocking(move || check_topic(client.client(), &bootstrap, &topic, timeout))
        .await
        .context("metadata task panicked")??;
    Ok(producer)
}

/// Reads the inputs on a blocking thread, handing their items over a bounded channel.
fn spawn_reader(
    inputs: Vec<Input>,
    defaults: PageDefaults,
    max_page_bytes: usize,
) -> (tokio::task::JoinHandle<()>, tokio::sync::mpsc::Receiver<ReadItem>) {
    let (sender, receiver) = tokio::sync::mpsc::channel::<ReadItem>(256);
    let reader = tokio::task::spawn_blocking(move || {
        let mut done_before = 0u64;
        for input in &inputs {
            let position = std::cell::Cell::new(done_before);
            let sent = read_input(
                input,
                &defaults,
                max_page_bytes,
                &mut |read| position.set(done_before + read),
                &mut |name, item| {
                    sender.blocking_send(ReadItem {
                        name: name.to_owned(),
                        item,
                        position: position.get(),
                    })
                },
            );
            if sent.is_err() {
                return; // The producer loop stopped listening.
            }
            if let Input::File { size, .. } = input {
                done_before += size;
            }
        }
    });
    (reader, receiver)
}

/// A page's delivery report, with its URL.
type Delivery = (
    String,
    Result<rdkafka::producer::future_producer::OwnedDeliveryResult, futures::channel::oneshot::Canceled>,
);

/// The producer side of a replay: publishes pages and counts what the brokers acknowledge.
struct Publisher<'a> {
    producer: FutureProducer,
    bootstrap: &'a str,
    options: &'a ReplayOptions,
    progress: &'a Progress,
    summary: ReplaySummary,
    deliveries: FuturesUnordered<BoxFuture<'static, Delivery>>,
    started: Instant,
}

impl Publisher<'_> {
    /// Counts an item read; the page to publish, when it is one.
    fn page_of(&mut self, read: ReadItem) -> Option<RawPage> {
        let ReadItem { name, item, position } = read;
        self.progress.set_position(position);
        match item {
            Item::Page(page) => {
                self.summary.pages += 1;
                Some(page)
            }
            Item::Skipped(code) => {
                *self.summary.skipped.entry(code).or_default() += 1;
                None
            }
            Item::Failed { code, message } => {
                *self.summary.errors.entry(code).or_default() += 1;
                self.progress.println(&format!("{name}: {code}: {message}"));
                None
            }
        }
    }

    /// With a rate, waits until the next page is due; false when `shutdown` came first.
    async fn pace(&self, shutdown: &CancellationToken) -> bool {
        let Some(rate) = self.options.rate else {
            return true;
        };
        let due = self.started + Duration::from_secs_f64(self.summary.sent as f64 / rate);
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep_until(due.into()) => true,
        }
    }

    /// Enqueues one page; a page the producer refuses is counted as failed. Fails only when the
    /// producer cannot publish at all.
    async fn publish(&mut self, page: RawPage) -> anyhow::Result<()> {
        let topic = &self.options.topic;
        let value = envelope_for(&page);
        let mut record = FutureRecord::to(topic).key(page.url.as_bytes()).payload(&value);
        let delivery = loop {
            match self.producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    // The local queue is full: let acknowledgements come in.
                    self.acknowledge_ready();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((KafkaError::MessageProduction(code), _)) if code != RDKafkaErrorCode::Fatal => {
                    // This page cannot be published (larger than the producer's
                    // message.max.bytes): counted, and the replay goes on.
                    self.summary.failed += 1;
                    self.progress.println(&format!("{}: not published: {code}", page.url));
                    return Ok(());
                }
                Err((error, _)) => {
                    anyhow::bail!(
                        "failed to publish {} to `{topic}` at {}: {error}",
                        page.url,
                        self.bootstrap
                    )
                }
            }
        };
        self.summary.sent += 1;
        self.progress.add_items(1);
        let url = page.url;
        self.deliveries.push(delivery.map(move |result| (url, result)).boxed());
        self.acknowledge_ready();
        self.progress
            .set_detail(format!("{} acknowledged", self.summary.acknowledged));
        Ok(())
    }

    /// Counts the acknowledgements that have come in.
    fn acknowledge_ready(&mut self) {
        while let Some(Some(delivery)) = self.deliveries.next().now_or_never() {
            self.count(delivery);
        }
    }

    /// Waits for every acknowledgement still due; the summary.
    async fn finish(mut self) -> ReplaySummary {
        while let Some(delivery) = self.deliveries.next().await {
            self.count(delivery);
        }
        self.summary
    }

    fn count(&mut self, (url, result): Delivery) {
        let topic = &self.options.topic;
        match result {
            Ok(Ok(_)) => self.summary.acknowledged += 1,
            Ok(Err((error, _))) => {
                self.summary.failed += 1;
                self.progress
                    .println(&format!("failed to publish {url} to `{topic}`: {error}"));
            }
            Err(_) => {
                self.summary.failed += 1;
                self.progress
                    .println(&format!("failed to publish {url} to `{topic}`: the producer went away"));
            }
        }
    }
}

/// The JSON envelope of a page, as the worker reads it back.
///
/// The envelope's body is a JSON string, so a page in another charset is transcoded to UTF-8
/// (by its byte-order mark, its declared charset, for HTML its `<meta>` charset, else UTF-8 with
/// invalid bytes replaced: the order the worker decodes in). The worker reads an envelope's body
/// as UTF-8 whatever `<meta charset>` the page still names.
fn envelope_for(page: &RawPage) -> Vec<u8> {
    let is_html = page.content_type == ContentType::Html;
    let encoding = encoding_rs::Encoding::for_bom(&page.body)
        .map(|(encoding, _)| encoding)
        .or_else(|| {
            page.charset
                .as_deref()
                .and_then(|label| encoding_rs::Encoding::for_label(label.trim().trim_matches(['"', '\'']).as_bytes()))
        })
        .or_else(|| {
            (is_html && std::str::from_utf8(&page.body).is_err())
                .then(|| crate::parse::sniff_meta_charset(&page.body))
                .flatten()
        })
        .unwrap_or(encoding_rs::UTF_8);
    let (text, _, _) = encoding.decode(&page.body);
    let body = text.into_owned();
    let content_type = if is_html { "text/html" } else { "text/plain" };
    encode_envelope(&page.url, page.fetched_at, content_type, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::decode_message;
    use crate::parse::{parse_page, ParseOptions};

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn page(body: Vec<u8>, content_type: ContentType, charset: Option<&str>) -> RawPage {
        RawPage {
            url: "https://example.com/p".to_owned(),
            fetched_at: "2024-12-08T10:15:00Z".parse().unwrap(),
            content_type,
            charset: charset.map(str::to_owned),
            body,
        }
    }

    /// The worker splits the envelope exactly as it would split the page itself.
    fn assert_same_split(original: &RawPage) {
        let options = ParseOptions::default();
        let envelope = envelope_for(original);
        let decoded = decode_message(Some(&envelope), []).expect("a valid envelope");
        assert_eq!(decoded.url, original.url);
        assert_eq!(decoded.fetched_at, original.fetched_at);
        assert_eq!(
            parse_page(&decoded, &options).unwrap(),
            parse_page(original, &options).unwrap()
        );
    }

    #[test]
    fn windows_1252_html_survives_the_envelope() {
        let body = fixture("html/windows-1252.html");
        assert_same_split(&page(body.clone(), ContentType::Html, None));
        assert_same_split(&page(body, ContentType::Html, Some("windows-1252")));
        assert_eq!(
            crate::parse::sniff_meta_charset(&fixture("html/windows-1252.html")),
            Some(encoding_rs::WINDOWS_1252)
        );
        // A charset declared past the first kilobyte, as the worker reads it.
        let mut late = b"<html><head><title>x</title>".to_vec();
        late.extend(std::iter::repeat_n(b' ', 1500));
        late.extend_from_slice(b"<meta charset=windows-1252></head><body><p>Caf\xe9 society</p></body></html>");
        assert_same_split(&page(late.clone(), ContentType::Html, None));
        let envelope: serde_json::Value =
            serde_json::from_slice(&envelope_for(&page(late, ContentType::Html, None))).unwrap();
        assert!(envelope["body"].as_str().unwrap().contains("Café society"));
    }

    #[test]
    fn utf8_pages_are_published_as_they_are() {
        let body = fixture("pages/brecorder-putin-assad.masked.txt");
        let original = page(body.clone(), ContentType::Text, None);
        assert_same_split(&original);
        let envelope: serde_json::Value = serde_json::from_slice(&envelope_for(&original)).unwrap();
        assert_eq!(envelope["body"].as_str().unwrap().as_bytes(), body.as_slice());
        assert_eq!(envelope["content_type"], "text/plain");
        assert_same_split(&page(fixture("html/brecorder-article.html"), ContentType::Html, None));
    }

    #[test]
    fn summary_reads_well() {
        let mut summary = ReplaySummary {
            pages: 3,
            sent: 3,
            acknowledged: 3,
            ..ReplaySummary::default()
        };
        assert!(summary.outcome().is_ok());
        assert_eq!(summary.to_string(), "pages=3 sent=3 acknowledged=3 failed=0 errors=0");
        summary.skipped.insert("not_a_response", 2);
        assert_eq!(
            summary.to_string(),
            "pages=3 sent=3 acknowledged=3 failed=0 errors=0 skipped=2 not_a_response=2"
        );
        assert!(summary.outcome().is_ok(), "skipped records are not failures");
    }

    #[test]
    fn a_replay_fails_unless_every_page_was_acknowledged() {
        let message = |summary: ReplaySummary| summary.outcome().unwrap_err().to_string();
        let done = ReplaySummary {
            pages: 3,
            sent: 3,
            acknowledged: 2,
            failed: 1,
            ..ReplaySummary::default()
        };
        assert_eq!(message(done.clone()), "1 of 3 pages were not acknowledged");
        let mut unreadable = ReplaySummary {
            failed: 0,
            acknowledged: 3,
            ..done.clone()
        };
        unreadable.errors.insert("unreadable_input", 2);
        assert_eq!(
            message(unreadable),
            "2 input(s) or record(s) could not be read as pages (see above)"
        );
        let interrupted = ReplaySummary {
            interrupted: true,
            ..done
        };
        assert_eq!(message(interrupted), "interrupted after 2 pages were acknowledged");
    }
}
