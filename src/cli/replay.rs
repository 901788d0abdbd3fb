//! `pagesplit replay`: publishes pages from files, directories and WARC archives to the raw
//! topic as JSON envelopes keyed by URL, optionally at a limited rate, and counts what the
//! brokers acknowledged.
//!
//! Reading runs on a blocking thread and hands pages over a bounded channel to the producer
//! loop, which enqueues them (pacing them when a rate is set) and collects the acknowledgements.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::stream::FuturesUnordered;
use futures::{FutureExt as _, StreamExt as _};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use crate::cli::inputs::{read_input, Input, Item};
use crate::cli::progress::Progress;
use crate::config::Config;
use crate::envelope::encode_envelope;
use crate::model::{ContentType, RawPage};
use crate::split::PageDefaults;

/// How a replay publishes.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The topic to publish to.
    pub topic: String,
    /// At most this many pages per second, when set.
    pub rate: Option<f64>,
    /// How long to wait for the brokers to answer at the start.
    pub timeout: Duration,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Pages read from the inputs.
    pub pages: usize,
    /// Pages enqueued for publishing.
    pub sent: usize,
    /// Pages the brokers acknowledged.
    pub acknowledged: usize,
    /// Pages the brokers did not take (delivery failed).
    pub failed: usize,
    /// Inputs or records that could not be read as pages, by code.
    pub errors: BTreeMap<&'static str, usize>,
    /// WARC records that are not pages, by reason.
    pub skipped: BTreeMap<&'static str, usize>,
    /// Whether the replay was stopped (Ctrl-C) before it read everything.
    pub interrupted: bool,
}

impl ReplaySummary {
    /// Whether every page read was acknowledged and nothing failed.
    pub fn is_complete(&self) -> bool {
        !self.interrupted && self.failed == 0 && self.errors.is_empty() && self.acknowledged == self.pages
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
pub async fn replay(
    config: &Config,
    inputs: Vec<Input>,
    defaults: PageDefaults,
    options: &ReplayOptions,
    progress: &Progress,
    shutdown: CancellationToken,
) -> anyhow::Result<ReplaySummary> {
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let producer: FutureProducer = config
        .producer_config()
        .set("statistics.interval.ms", "0")
        .set("message.timeout.ms", DELIVERY_TIMEOUT.as_millis().to_string())
        .create()
        .context("failed to create the Kafka producer")?;
    {
        let (producer, bootstrap, topic, timeout) = (
            producer.clone(),
            bootstrap.clone(),
            options.topic.clone(),
            options.timeout,
        );
        tokio::task::spawn_blocking(move || crate::cli::check_topic(producer.client(), &bootstrap, &topic, timeout))
            .await
            .context("metadata task panicked")??;
    }

    let (sender, mut receiver) = tokio::sync::mpsc::channel::<ReadItem>(256);
    let reader = {
        tokio::task::spawn_blocking(move || {
            let mut done_before = 0u64;
            for input in &inputs {
                let position = std::cell::Cell::new(done_before);
                let sent = read_input(
                    input,
                    &defaults,
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
        })
    };

    let mut summary = ReplaySummary::default();
    let mut deliveries = FuturesUnordered::new();
    let started = Instant::now();
    loop {
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                summary.interrupted = true;
                break;
            }
            next = receiver.recv() => next,
        };
        let Some(ReadItem { name, item, position }) = next else {
            break;
        };
        progress.set_position(position);
        let page = match item {
            Item::Page(page) => page,
            Item::Skipped(code) => {
                *summary.skipped.entry(code).or_default() += 1;
                continue;
            }
            Item::Failed { code, message } => {
                *summary.errors.entry(code).or_default() += 1;
                progress.println(&format!("{name}: {code}: {message}"));
                continue;
            }
        };
        summary.pages += 1;
        if let Some(rate) = options.rate {
            let due = started + Duration::from_secs_f64(summary.sent as f64 / rate);
            tokio::select! {
                () = shutdown.cancelled() => {
                    summary.interrupted = true;
                    break;
                }
                () = tokio::time::sleep_until(due.into()) => {}
            }
        }
        let value = envelope_for(&page);
        let mut record = FutureRecord::to(&options.topic)
            .key(page.url.as_bytes())
            .payload(&value);
        let delivery = loop {
            match producer.send_result(record) {
                Ok(delivery) => break Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    // The local queue is full: let acknowledgements come in.
                    acknowledge_ready(&mut deliveries, &mut summary, progress, &options.topic);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((KafkaError::MessageProduction(code), _)) if code != RDKafkaErrorCode::Fatal => {
                    // This page cannot be published (larger than the producer's
                    // message.max.bytes): counted, and the replay goes on.
                    break Err(code);
                }
                Err((error, _)) => {
                    anyhow::bail!(
                        "failed to publish {} to `{}` at {bootstrap}: {error}",
                        page.url,
                        options.topic
                    )
                }
            }
        };
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(code) => {
                summary.failed += 1;
                progress.println(&format!("{}: not published: {code}", page.url));
                continue;
            }
        };
        summary.sent += 1;
        progress.add_items(1);
        let url = page.url;
        deliveries.push(delivery.map(move |result| (url, result)));
        acknowledge_ready(&mut deliveries, &mut summary, progress, &options.topic);
        progress.set_detail(format!("{} acknowledged", summary.acknowledged));
    }
    drop(receiver);
    while let Some((url, result)) = deliveries.next().await {
        count_delivery(&url, result, &mut summary, progress, &options.topic);
    }
    if !summary.interrupted {
        reader.await.context("reader task panicked")?;
    }
    // Interrupted, the reader stops at its next page; it may be waiting on standard input, so it
    // is not waited for.
    Ok(summary)
}

type Delivery = (
    String,
    Result<rdkafka::producer::future_producer::OwnedDeliveryResult, futures::channel::oneshot::Canceled>,
);

fn acknowledge_ready(
    deliveries: &mut FuturesUnordered<impl std::future::Future<Output = Delivery> + Unpin>,
    summary: &mut ReplaySummary,
    progress: &Progress,
    topic: &str,
) {
    while let Some(Some((url, result))) = deliveries.next().now_or_never() {
        count_delivery(&url, result, summary, progress, topic);
    }
}

fn count_delivery(
    url: &str,
    result: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, futures::channel::oneshot::Canceled>,
    summary: &mut ReplaySummary,
    progress: &Progress,
    topic: &str,
) {
    match result {
        Ok(Ok(_)) => summary.acknowledged += 1,
        Ok(Err((error, _))) => {
            summary.failed += 1;
            progress.println(&format!("failed to publish {url} to `{topic}`: {error}"));
        }
        Err(_) => {
            summary.failed += 1;
            progress.println(&format!("failed to publish {url} to `{topic}`: the producer went away"));
        }
    }
}

/// The JSON envelope of a page, as the worker reads it back.
///
/// The envelope's body is a JSON string, so a page in another charset is transcoded to UTF-8
/// (by its byte-order mark, its declared charset, for HTML its `<meta>` charset, else UTF-8 with
/// invalid bytes replaced: the order the worker decodes in). The worker reads an envelope's body
/// as UTF-8 whatever `<meta charset>` the page still names.
pub fn envelope_for(page: &RawPage) -> Vec<u8> {
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
        assert!(summary.is_complete());
        assert_eq!(summary.to_string(), "pages=3 sent=3 acknowledged=3 failed=0 errors=0");
        summary.skipped.insert("not_a_response", 2);
        assert_eq!(
            summary.to_string(),
            "pages=3 sent=3 acknowledged=3 failed=0 errors=0 skipped=2 not_a_response=2"
        );
    }
}
