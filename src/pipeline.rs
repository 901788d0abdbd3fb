//! The only module that sees both ends: consume → split → encode → produce → store offset.
//!
//! ```text
//! source ─► pipeline ─► parse ─► encode ─► sink.send ×N
//!    ▲                                        │
//!    └── store offset ◄── all deliveries ok ◄─┘      (failures → dead-letter topic, then store offset)
//! ```
//!
//! Pages are split on a fixed pool of threads, in parallel (each thread takes the pages waiting,
//! up to a batch, and answers them together), but their events are enqueued to the producer in
//! consumption order, so events of one symbol keep their order. The delivery reports of a page's
//! records settle one counter ([`Acks`]): one wake-up per page, not per record.
//!
//! At-least-once (the default): a page's offset is stored only when every event it produced (or
//! its dead letter) is acknowledged, and only as part of the contiguous prefix of finished
//! offsets of its partition; librdkafka commits stored offsets in the background.
//!
//! Exactly-once ([`transactional`]): pages are grouped into transactions that hold their events
//! and their input offsets; nothing is stored or auto-committed.
//!
//! With `quotes.emit = "changed"`, the ordered stage leaves out of the quote topic the quotes
//! whose value this worker already published ([`QuoteFilter`]), as it hands pages to the
//! producer in consumption order. At-least-once: a symbol whose quote could not be delivered
//! (its page is dead-lettered instead) is forgotten, so its next quote is published.
//! Exactly-once: the filter's changes are undone when their transaction is aborted. Every quote
//! also goes to the compacted latest-quote topic, filtered or not.

mod transactional;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::Consumer as _;
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::Message as _;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::config::{Config, DeliveryMode};
use crate::encode::Encoder;
use crate::envelope::decode_message;
use crate::metrics::{Metrics, Stage};
use crate::offsets::{OffsetTracker, Ticket};
use crate::parse::{parse_page, ParseOptions};
use crate::quote_filter::{QuoteFilter, QuoteValue};
use crate::sink::{classify, is_queue_full, Acks, FailureKind, OutRecord, Sink, QUEUE_FULL_BACKOFF};
use crate::source::PageConsumer;

/// Output topic names.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Quote events.
    pub quotes: Arc<str>,
    /// Article events.
    pub articles: Arc<str>,
    /// Dead letters.
    pub dead_letter: Arc<str>,
}

/// The compacted topic that gets every quote, keyed by symbol.
#[derive(Debug, Clone)]
pub struct LatestQuotes {
    /// Its name.
    pub topic: Arc<str>,
    /// The framing header of its values, replacing the quote topic's (Confluent wire format: the
    /// schema id registered under this topic's subject); `None`: the same values as the quote
    /// topic (single-object encoding).
    pub header: Option<Vec<u8>>,
}

/// A consumed message, detached from the consumer.
#[derive(Debug, Clone)]
pub struct InMessage {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Broker timestamp in milliseconds, if any.
    pub timestamp_ms: Option<i64>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub payload: Option<Vec<u8>>,
    /// Record headers (name, value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl InMessage {
    /// Copies a borrowed consumer message.
    pub fn from_borrowed(message: &BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }

    fn size(&self) -> usize {
        self.payload.as_ref().map_or(0, Vec::len) + self.key.as_ref().map_or(0, Vec::len)
    }
}

/// A message that could not be turned into events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Where it failed.
    pub stage: Stage,
    /// Stable error code.
    pub code: &'static str,
    /// Human-readable reason.
    pub message: String,
}

/// The records one page becomes.
#[derive(Debug)]
pub struct Split {
    /// Records in publishing order: the `quotes` quotes, the article, then the `latest` copies
    /// of the quotes for the latest-quote topic ([`add_latest_quotes`]).
    pub records: Vec<OutRecord>,
    /// Number of quote records.
    pub quotes: usize,
    /// Number of article records.
    pub articles: usize,
    /// Number of latest-quote records.
    pub latest: usize,
    /// The compared values of the quote records, in the same order.
    pub quote_values: Vec<QuoteValue>,
    /// The page's url.
    pub url: String,
    /// When the page was fetched.
    pub fetched_at: chrono::DateTime<chrono::Utc>,
    /// Lines dropped as boilerplate.
    pub boilerplate_lines: usize,
}

/// Pure: decodes, splits and encodes one message into the records to publish.
pub fn split_message(
    message: &InMessage,
    options: &ParseOptions,
    encoder: &Encoder,
    topics: &Topics,
) -> Result<Split, Failure> {
    let headers = message
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_deref()));
    let page = decode_message(message.payload.as_deref(), headers).map_err(|error| Failure {
        stage: Stage::Decode,
        code: error.code(),
        message: error.to_string(),
    })?;
    let parsed = parse_page(&page, options).map_err(|error| Failure {
        stage: Stage::Parse,
        code: error.code(),
        message: error.to_string(),
    })?;
    let encode_failure = |error: crate::encode::EncodeError| Failure {
        stage: Stage::Encode,
        code: error.code(),
        message: error.to_string(),
    };
    let mut records = Vec::with_capacity(parsed.quotes.len() + 1);
    let quote_values = parsed.quotes.iter().map(QuoteValue::of).collect();
    for quote in &parsed.quotes {
        records.push(OutRecord {
            topic: topics.quotes.clone(),
            key: Some(quote.symbol.as_bytes().to_vec()),
            payload: Some(encoder.encode_quote(quote).map_err(encode_failure)?),
            headers: None,
        });
    }
    records.push(OutRecord {
        topic: topics.articles.clone(),
        key: Some(parsed.article.url.as_bytes().to_vec()),
        payload: Some(encoder.encode_article(&parsed.article).map_err(encode_failure)?),
        headers: None,
    });
    Ok(Split {
        quotes: parsed.quotes.len(),
        articles: 1,
        latest: 0,
        quote_values,
        records,
        url: page.url,
        fetched_at: page.fetched_at,
        boilerplate_lines: parsed.boilerplate_lines_dropped,
    })
}

/// Pure: appends to a page's records a copy of each quote for the latest-quote topic, keyed by
/// symbol, its value reframed with the topic's schema id when it has its own.
pub fn add_latest_quotes(split: &mut Split, latest: &LatestQuotes) {
    split.records.reserve(split.quotes);
    for index in 0..split.quotes {
        let quote = &split.records[index];
        let payload = match (
            &latest.header,
            quote.payload.as_deref().and_then(crate::encode::unframe),
        ) {
            (Some(header), Some(crate::encode::Framed::Confluent { datum, .. })) => {
                let mut payload = Vec::with_capacity(header.len() + datum.len());
                payload.extend_from_slice(header);
                payload.extend_from_slice(datum);
                Some(payload)
            }
            _ => quote.payload.clone(),
        };
        let record = OutRecord {
            topic: latest.topic.clone(),
            key: quote.key.clone(),
            payload,
            headers: None,
        };
        split.records.push(record);
    }
    split.latest = split.quotes;
}

/// Pure (but for the filter's memory): which of a page's records to send. With `quotes.emit =
/// "changed"`, a quote record whose value equals the last one published for its symbol is left
/// out (`false`); every other record is sent. Returns the mask and the number left out.
pub fn select_changed_quotes(
    records: &[OutRecord],
    quote_values: &[QuoteValue],
    filter: &mut QuoteFilter,
) -> (Vec<bool>, usize) {
    let mut unchanged = 0;
    let send = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let Some(value) = quote_values.get(index) else {
                return true;
            };
            let symbol = record.key.as_deref().and_then(|key| std::str::from_utf8(key).ok());
            let publish = symbol.is_none_or(|symbol| filter.admit(symbol, *value));
            unchanged += usize::from(!publish);
            publish
        })
        .collect();
    (send, unchanged)
}

/// The quote change filter of a worker, shared by the ordered stage and the deliveries.
pub type SharedQuoteFilter = Arc<Mutex<QuoteFilter>>;

/// How many events of a page go to which topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PageCounts {
    quotes: usize,
    unchanged_quotes: usize,
    latest_quotes: usize,
    articles: usize,
}

impl PageCounts {
    fn of(split: &Split) -> Self {
        Self {
            quotes: split.quotes,
            unchanged_quotes: 0,
            latest_quotes: split.latest,
            articles: split.articles,
        }
    }

    fn delivered<'a>(
        &self,
        topics: &'a Topics,
        latest: Option<&'a LatestQuotes>,
    ) -> crate::metrics::DeliveredEvents<'a> {
        crate::metrics::DeliveredEvents {
            quotes_topic: &topics.quotes,
            quotes: self.quotes,
            unchanged_quotes: self.unchanged_quotes,
            latest_topic: latest.map(|latest| &*latest.topic),
            latest_quotes: self.latest_quotes,
            articles_topic: &topics.articles,
            articles: self.articles,
        }
    }
}

/// Header names of dead letters.
pub mod dead_letter_headers {
    /// Topic the message was consumed from.
    pub const SOURCE_TOPIC: &str = "pagesplit.source.topic";
    /// Its partition.
    pub const SOURCE_PARTITION: &str = "pagesplit.source.partition";
    /// Its offset.
    pub const SOURCE_OFFSET: &str = "pagesplit.source.offset";
    /// Its broker timestamp (ms since the epoch).
    pub const SOURCE_TIMESTAMP: &str = "pagesplit.source.timestamp";
    /// `decode`, `parse` or `encode`.
    pub const STAGE: &str = "pagesplit.stage";
    /// Stable error code.
    pub const ERROR_CODE: &str = "pagesplit.error.code";
    /// Human-readable reason.
    pub const ERROR_MESSAGE: &str = "pagesplit.error.message";
    /// Version of pagesplit that wrote it.
    pub const VERSION: &str = "pagesplit.version";
    /// Present when the original value is left out (the dead letter with it was rejected, e.g.
    /// as too large): its size in bytes and why. The page is still at its source offset.
    pub const VALUE_OMITTED: &str = "pagesplit.value.omitted";
}

/// Pure: the dead letter of a message: its original key, value and headers, plus the reason.
pub fn dead_letter(message: &InMessage, failure: &Failure, topic: &str) -> OutRecord {
    dead_letter_with(message, failure, topic, None)
}

/// Pure: the dead letter of a message whose full dead letter was rejected for good (`why`, e.g.
/// too large for the dead-letter topic): the same key and pagesplit's headers (the error message
/// cut to [`OMITTED_MESSAGE_BYTES`]), neither the message's own headers nor its value, and a
/// [`VALUE_OMITTED`](dead_letter_headers::VALUE_OMITTED) header with the value's size and `why`.
pub fn dead_letter_without_value(message: &InMessage, failure: &Failure, topic: &str, why: &str) -> OutRecord {
    let size = message.payload.as_ref().map_or(0, Vec::len);
    dead_letter_with(message, failure, topic, Some(format!("{size} bytes: {why}")))
}

/// The longest error message in a dead letter without its value.
pub const OMITTED_MESSAGE_BYTES: usize = 1024;

fn dead_letter_with(message: &InMessage, failure: &Failure, topic: &str, omitted: Option<String>) -> OutRecord {
    use dead_letter_headers as h;
    let mut headers = OwnedHeaders::new_with_capacity(message.headers.len() + 9);
    let mut error_message = failure.message.as_str();
    if omitted.is_none() {
        for (name, value) in &message.headers {
            headers = headers.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
    } else if error_message.len() > OMITTED_MESSAGE_BYTES {
        let mut end = OMITTED_MESSAGE_BYTES;
        while !error_message.is_char_boundary(end) {
            end -= 1;
        }
        error_message = &error_message[..end];
    }
    let partition = message.partition.to_string();
    let offset = message.offset.to_string();
    let timestamp = message.timestamp_ms.map(|ms| ms.to_string()).unwrap_or_default();
    for (key, value) in [
        (h::SOURCE_TOPIC, message.topic.as_str()),
        (h::SOURCE_PARTITION, partition.as_str()),
        (h::SOURCE_OFFSET, offset.as_str()),
        (h::SOURCE_TIMESTAMP, timestamp.as_str()),
        (h::STAGE, failure.stage.as_str()),
        (h::ERROR_CODE, failure.code),
        (h::ERROR_MESSAGE, error_message),
        (h::VERSION, env!("CARGO_PKG_VERSION")),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    let payload = match &omitted {
        None => message.payload.clone(),
        Some(omitted) => {
            headers = headers.insert(Header {
                key: h::VALUE_OMITTED,
                value: Some(omitted.as_str()),
            });
            None
        }
    };
    OutRecord {
        topic: topic.into(),
        key: message.key.clone(),
        payload,
        headers: Some(headers),
    }
}

/// Everything the pipeline needs, built by `app::run`.
pub struct Pipeline {
    /// The consumer, subscribed to the input topic.
    pub consumer: Arc<PageConsumer>,
    /// The producer.
    pub sink: Sink,
    /// Event encoder.
    pub encoder: Arc<Encoder>,
    /// Parser options.
    pub parse_options: Arc<ParseOptions>,
    /// Offsets of owned partitions (shared with the consumer context).
    pub tracker: Arc<Mutex<OffsetTracker>>,
    /// Telemetry.
    pub metrics: Arc<Metrics>,
    /// Output topics.
    pub topics: Topics,
    /// The latest-quote topic, when quotes are produced to it.
    pub latest: Option<LatestQuotes>,
    /// The quote change filter, with `quotes.emit = "changed"`.
    pub quote_filter: Option<SharedQuoteFilter>,
    /// The configuration.
    pub config: Arc<Config>,
}

/// A page as split: the message, its events or why it failed, how long splitting took.
type SplitOutcome = (InMessage, Result<Split, Failure>, Duration);

/// Most pages a split thread takes from the queue at once, splits, then answers together.
const SPLIT_BATCH: usize = 32;

/// A page to split and where its outcome goes.
type SplitJob = (InMessage, oneshot::Sender<SplitOutcome>);

/// A fixed pool of threads that split pages (CPU work, off the runtime's threads; a fixed
/// number, where the blocking pool would grow a thread whenever none was idle at a hand-over).
/// A thread takes every page waiting (up to [`SPLIT_BATCH`]), splits them and answers them
/// together: under load the ordered stage wakes once per batch, not once per page. The threads
/// end when the splitter is dropped, after the pages already queued.
struct Splitter {
    jobs: crossbeam_channel::Sender<SplitJob>,
}

impl Splitter {
    fn spawn(
        workers: usize,
        encoder: Arc<Encoder>,
        options: Arc<ParseOptions>,
        topics: Topics,
        latest: Option<LatestQuotes>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = crossbeam_channel::unbounded::<SplitJob>();
        for index in 0..workers.max(1) {
            let (queue, encoder, options, topics, latest) = (
                queue.clone(),
                encoder.clone(),
                options.clone(),
                topics.clone(),
                latest.clone(),
            );
            std::thread::Builder::new()
                .name(format!("pagesplit-split-{index}"))
                .spawn(move || {
                    let mut batch = Vec::with_capacity(SPLIT_BATCH);
                    let take_waiting = |batch: &mut Vec<SplitJob>| {
                        while batch.len() < SPLIT_BATCH {
                            let Ok(next) = queue.try_recv() else { break };
                            batch.push(next);
                        }
                    };
                    while let Ok(first) = queue.recv() {
                        batch.push(first);
                        take_waiting(&mut batch);
                        split_batch(&mut batch, &options, &encoder, &topics, latest.as_ref());
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Queues a page for the pool. A panic while splitting a page is its failure
    /// ([`split_guarded`]); should a thread end anyway, the senders of its pages are dropped:
    /// their receivers learn that the pages were not split (and the worker stops).
    fn start(&self, message: InMessage, done: oneshot::Sender<SplitOutcome>) {
        let _ = self.jobs.send((message, done));
    }
}

fn split_batch(
    batch: &mut Vec<SplitJob>,
    options: &ParseOptions,
    encoder: &Encoder,
    topics: &Topics,
    latest: Option<&LatestQuotes>,
) {
    let mut outcomes = Vec::with_capacity(batch.len());
    for (message, done) in batch.drain(..) {
        let started = Instant::now();
        let mut outcome = split_guarded(|| split_message(&message, options, encoder, topics));
        if let (Ok(split), Some(latest)) = (&mut outcome, latest) {
            add_latest_quotes(split, latest);
        }
        outcomes.push((done, (message, outcome, started.elapsed())));
    }
    for (done, outcome) in outcomes {
        let _ = done.send(outcome);
    }
}

/// The code of a page that panicked while being split.
pub const SPLIT_PANICKED: &str = "split_panicked";

/// Pages in a row that panic while being split before the worker stops.
pub const SPLIT_PANIC_LIMIT: usize = 20;

/// Pages that panicked while being split, one after another in consumption order. One such page
/// is a parser bug some odd page runs into: it is dead-lettered and the worker goes on.
/// [`SPLIT_PANIC_LIMIT`] in a row is a bug that hits every page: rather than dead-letter the
/// whole backlog, the worker stops (the page is not dead-lettered, its offset is held).
#[derive(Debug, Default)]
struct PanicStreak(std::sync::atomic::AtomicUsize);

impl PanicStreak {
    fn observe(&self, outcome: &Result<Split, Failure>) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        match outcome {
            Err(failure) if failure.code == SPLIT_PANICKED => {
                let streak = self.0.fetch_add(1, Relaxed) + 1;
                if streak >= SPLIT_PANIC_LIMIT {
                    anyhow::bail!(
                        "splitting panicked on {streak} pages in a row (a bug that hits every page); the last: {}",
                        failure.message
                    );
                }
                Ok(())
            }
            _ => {
                self.0.store(0, Relaxed);
                Ok(())
            }
        }
    }
}

/// Runs `split`, turning a panic (a parser bug some page runs into) into a failure with code
/// `split_panicked`: the page is dead-lettered with the panic's message and the thread goes on
/// with the next page. Left to stop the worker, the same page would stop it again after every
/// restart.
fn split_guarded(split: impl FnOnce() -> Result<Split, Failure>) -> Result<Split, Failure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(split)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|reason| (*reason).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        Err(Failure {
            stage: Stage::Parse,
            code: SPLIT_PANICKED,
            message: format!("splitting the page panicked: {reason}"),
        })
    })
}

/// A page whose records are being split or sent, with the permits that bound work in flight.
struct InFlight {
    ticket: Ticket,
    work: oneshot::Receiver<SplitOutcome>,
    _pages: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

impl Pipeline {
    /// Runs until `shutdown` is cancelled (then drains within the deadline) or a fatal error.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let config = self.config.clone();
        let pages = Arc::new(Semaphore::new(config.pipeline.max_in_flight_pages));
        let max_bytes = config.pipeline.max_in_flight_bytes.min(u32::MAX as usize);
        let bytes = Arc::new(Semaphore::new(max_bytes));
        let (ordered_tx, mut ordered_rx) = mpsc::channel::<InFlight>(config.pipeline.max_in_flight_pages);
        // Cancelled on a fatal error anywhere, or once draining is over.
        let stop = CancellationToken::new();
        let fatal: Arc<Mutex<Option<anyhow::Error>>> = Arc::default();
        let deliveries = TaskTracker::new();

        // Stage 1: consume, track, and hand pages to the split threads.
        let consume = {
            let consumer = self.consumer.clone();
            let tracker = self.tracker.clone();
            let metrics = self.metrics.clone();
            let splitter = Splitter::spawn(
                config.pipeline.effective_split_workers(),
                self.encoder.clone(),
                self.parse_options.clone(),
                self.topics.clone(),
                self.latest.clone(),
            )
            .context("failed to start the split threads")?;
            let shutdown = shutdown.clone();
            let stop = stop.clone();
            let fatal = fatal.clone();
            async move {
                // Messages received while paused: they come before anything received later.
                let mut stash: VecDeque<InMessage> = VecDeque::new();
                loop {
                    let message = match stash.pop_front() {
                        Some(message) => message,
                        None => {
                            let received = tokio::select! {
                                _ = shutdown.cancelled() => break,
                                _ = stop.cancelled() => break,
                                received = consumer.recv() => received,
                            };
                            match received {
                                Ok(message) => InMessage::from_borrowed(&message),
                                Err(error) => {
                                    tracing::warn!(error = %error, "consumer error");
                                    if let rdkafka::error::KafkaError::MessageConsumptionFatal(_) = error {
                                        *fatal.lock().expect("fatal lock") =
                                            Some(anyhow::anyhow!("fatal consumer error: {error}"));
                                        stop.cancel();
                                        break;
                                    }
                                    continue;
                                }
                            }
                        }
                    };
                    let size = message.size().clamp(1, max_bytes) as u32;
                    let acquire = || async {
                        let pages_permit = pages.clone().acquire_owned().await.expect("semaphore open");
                        let bytes_permit = bytes.clone().acquire_many_owned(size).await.expect("semaphore open");
                        (pages_permit, bytes_permit)
                    };
                    // Wait for room under the in-flight bound; librdkafka's bounded prefetch queue
                    // holds further messages meanwhile.
                    let waited = tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = stop.cancelled() => break,
                        permits = acquire() => Some(permits),
                        _ = tokio::time::sleep(PAUSE_AFTER) => None,
                    };
                    let (pages_permit, bytes_permit) = match waited {
                        Some(permits) => permits,
                        None => {
                            // Still no room (the output is slow or down): pause fetching but keep
                            // polling, so the group does not evict this worker for exceeding
                            // max.poll.interval.ms. (Pausing drops librdkafka's prefetched
                            // messages, so it is only worth it for long waits.)
                            set_paused(&consumer, true);
                            let permits = loop {
                                tokio::select! {
                                    _ = shutdown.cancelled() => break None,
                                    _ = stop.cancelled() => break None,
                                    permits = acquire() => break Some(permits),
                                    received = consumer.recv() => match received {
                                        Ok(received) => {
                                            stash.push_back(InMessage::from_borrowed(&received));
                                            // From a partition assigned since the pause (or
                                            // prefetched before it): pause the whole assignment
                                            // again, so the stash holds at most what was fetched.
                                            set_paused(&consumer, true);
                                        }
                                        Err(rdkafka::error::KafkaError::MessageConsumptionFatal(code)) => {
                                            *fatal.lock().expect("fatal lock") =
                                                Some(anyhow::anyhow!("fatal consumer error: {code}"));
                                            stop.cancel();
                                            break None;
                                        }
                                        Err(error) => tracing::warn!(error = %error, "consumer error"),
                                    }
                                }
                            };
                            set_paused(&consumer, false);
                            match permits {
                                Some(permits) => permits,
                                None => break,
                            }
                        }
                    };
                    let ticket =
                        tracker
                            .lock()
                            .expect("tracker lock")
                            .track(&message.topic, message.partition, message.offset);
                    let Some(ticket) = ticket else {
                        // Received before its partition was revoked: its new owner consumes it.
                        tracing::debug!(
                            topic = %message.topic,
                            partition = message.partition,
                            offset = message.offset,
                            "message of a revoked partition skipped"
                        );
                        continue;
                    };
                    metrics.page_consumed(&message.topic);
                    let (done, work) = oneshot::channel();
                    splitter.start(message, done);
                    let item = InFlight {
                        ticket,
                        work,
                        _pages: pages_permit,
                        _bytes: bytes_permit,
                    };
                    if ordered_tx.send(item).await.is_err() {
                        break;
                    }
                }
                tracing::info!("stopped consuming");
            }
        };

        // Stage 2, exactly-once: in consumption order, pages and their offsets in transactions.
        let handover = self.consumer.context().handover().clone();
        let transactions = (config.delivery.mode == DeliveryMode::ExactlyOnce).then(|| transactional::Transactions {
            consumer: self.consumer.clone(),
            sink: self.sink.clone(),
            tracker: self.tracker.clone(),
            handover: handover.clone(),
            metrics: self.metrics.clone(),
            topics: self.topics.clone(),
            latest: self.latest.clone(),
            quote_filter: self.quote_filter.clone(),
            stop: stop.clone(),
            fatal: fatal.clone(),
            backoff: Duration::from_millis(config.pipeline.retry_backoff_ms),
            backoff_max: Duration::from_millis(config.pipeline.retry_backoff_max_ms),
            max_pages: config.delivery.transaction_max_pages,
            max_open: config.delivery.transaction_max_duration(),
            transactional_id: config.transactional_id().unwrap_or_default(),
            panics: PanicStreak::default(),
        });

        // Stage 2, at-least-once: in consumption order, enqueue each page's records, then wait
        // for their acknowledgements in delivery tasks (one per group of pages sent together).
        let produce = {
            let ctx = DeliveryContext {
                consumer: self.consumer.clone(),
                sink: self.sink.clone(),
                tracker: self.tracker.clone(),
                metrics: self.metrics.clone(),
                topics: self.topics.clone(),
                latest: self.latest.clone(),
                quote_filter: self.quote_filter.clone(),
                stop: stop.clone(),
                fatal: fatal.clone(),
                backoff: Duration::from_millis(config.pipeline.retry_backoff_ms),
                backoff_max: Duration::from_millis(config.pipeline.retry_backoff_max_ms),
            };
            let deliveries = deliveries.clone();
            async move {
                if let Some(transactions) = transactions {
                    transactions.run(ordered_rx).await;
                    return;
                }
                // Pages sent, handed to one delivery task per group (up to a batch) rather than a
                // task per page; the task awaits them concurrently, so a page retrying does not
                // hold back the others.
                let mut sent: Vec<Sent> = Vec::new();
                let panics = PanicStreak::default();
                let flush = |sent: &mut Vec<Sent>| {
                    if sent.is_empty() {
                        return;
                    }
                    let pages = std::mem::take(sent);
                    let ctx = ctx.clone();
                    deliveries.spawn(async move {
                        futures::future::join_all(pages.into_iter().map(|page| {
                            let span = page.span.clone();
                            ctx.deliver(page).instrument(span)
                        }))
                        .await;
                    });
                };
                loop {
                    let item = match ordered_rx.try_recv() {
                        Ok(item) => item,
                        Err(mpsc::error::TryRecvError::Empty) => {
                            flush(&mut sent);
                            match ordered_rx.recv().await {
                                Some(item) => item,
                                None => break,
                            }
                        }
                        Err(mpsc::error::TryRecvError::Disconnected) => break,
                    };
                    let InFlight {
                        ticket,
                        mut work,
                        _pages,
                        _bytes,
                    } = item;
                    let split = match work.try_recv() {
                        Err(oneshot::error::TryRecvError::Empty) => {
                            flush(&mut sent);
                            work.await.map_err(|error| error.to_string())
                        }
                        Ok(done) => Ok(done),
                        Err(closed @ oneshot::error::TryRecvError::Closed) => Err(closed.to_string()),
                    };
                    let (message, outcome, took) = match split {
                        Ok(done) => done,
                        Err(error) => {
                            // A split thread ended without answering (a panic outside a page's
                            // split): the page stays pending and is consumed again after a restart.
                            *ctx.fatal.lock().expect("fatal lock") =
                                Some(anyhow::anyhow!("a split thread ended without answering: {error}"));
                            ctx.stop.cancel();
                            break;
                        }
                    };
                    if let Err(error) = panics.observe(&outcome) {
                        tracing::error!(error = %error, "stopping");
                        *ctx.fatal.lock().expect("fatal lock") = Some(error);
                        ctx.stop.cancel();
                        break;
                    }
                    let span = tracing::info_span!(
                        "page",
                        topic = %message.topic,
                        partition = message.partition,
                        offset = message.offset,
                        url = tracing::field::Empty,
                    );
                    let (records, counts, fetched_at, dead_lettered) = match outcome {
                        Ok(mut split) => {
                            span.record("url", split.url.as_str());
                            ctx.metrics.page_processed(took, split.boilerplate_lines);
                            let mut counts = PageCounts::of(&split);
                            if let Some(filter) = &ctx.quote_filter {
                                // In consumption order, as the records go to the producer.
                                let mut filter = filter.lock().expect("quote filter lock");
                                let (send, unchanged) =
                                    select_changed_quotes(&split.records, &split.quote_values, &mut filter);
                                ctx.metrics.quote_symbols(filter.len(), filter.evicted());
                                drop(filter);
                                let mut send = send.into_iter();
                                split.records.retain(|_| send.next().unwrap_or(true));
                                counts.quotes -= unchanged;
                                counts.unchanged_quotes = unchanged;
                            }
                            (split.records, counts, Some(split.fetched_at), None)
                        }
                        Err(failure) => {
                            let record = dead_letter(&message, &failure, &ctx.topics.dead_letter);
                            span.in_scope(|| {
                                ctx.metrics
                                    .page_dead_lettered(failure.stage, failure.code, &failure.message)
                            });
                            (vec![record], PageCounts::default(), None, Some(failure))
                        }
                    };
                    let acks = Acks::new();
                    let mut unsent = Vec::new();
                    let mut rejected = None;
                    for (index, record) in records.iter().enumerate() {
                        loop {
                            match ctx.sink.try_enqueue(record, &acks) {
                                Ok(()) => break,
                                Err(error) if is_queue_full(&error) && !ctx.stop.is_cancelled() => {
                                    // No room in the producer's queue: the pages already sent are
                                    // handed over first, so their offsets do not wait for it.
                                    flush(&mut sent);
                                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                                }
                                Err(error) if classify(&error) != FailureKind::Transient => {
                                    // Refused for good (larger than `message.max.bytes`): the
                                    // page is dead-lettered once its other records settle; or
                                    // the producer failed for good: the worker stops.
                                    rejected = Some(error);
                                    break;
                                }
                                Err(error) => {
                                    tracing::warn!(error = %error, "enqueue failed; the record will be sent again");
                                    unsent.push(index);
                                    break;
                                }
                            }
                        }
                        if rejected.is_some() {
                            break;
                        }
                    }
                    sent.push(Sent {
                        ticket,
                        message,
                        records,
                        acks,
                        unsent,
                        rejected,
                        dead_lettered,
                        counts,
                        fetched_at,
                        span,
                        _permits: (_pages, _bytes),
                    });
                    if sent.len() >= SPLIT_BATCH {
                        flush(&mut sent);
                    }
                }
                flush(&mut sent);
            }
        };

        let consume_task = tokio::spawn(consume);
        let mut produce_task = tokio::spawn(produce);

        // Wait for shutdown or a fatal stop.
        tokio::select! {
            _ = shutdown.cancelled() => tracing::info!("shutdown requested; draining"),
            _ = stop.cancelled() => {}
        }
        let _ = consume_task.await;
        let drain_deadline = config.pipeline.drain_timeout();
        let drained = tokio::time::timeout(drain_deadline, async {
            let _ = (&mut produce_task).await;
            deliveries.close();
            deliveries.wait().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                deadline_ms = drain_deadline.as_millis() as u64,
                pending = self.tracker.lock().expect("tracker lock").pending(),
                "drain deadline passed; unfinished pages will be consumed again"
            );
        }
        stop.cancel();
        if config.delivery.mode == DeliveryMode::ExactlyOnce && !produce_task.is_finished() {
            // The stage aborts its open transaction on stop (each call is bounded); an abort now
            // spares read_committed consumers waiting for the broker's transaction timeout.
            let _ = tokio::time::timeout(Duration::from_secs(15), produce_task).await;
        }
        // Nothing in flight finishes any more: revokes from closing the consumer do not wait.
        handover.set_stopped();
        let sink = self.sink.clone();
        let flush_timeout = Duration::from_secs(5);
        let _ = tokio::task::spawn_blocking(move || sink.flush(flush_timeout)).await;
        if config.delivery.mode == DeliveryMode::AtLeastOnce {
            // Final synchronous commit of everything stored.
            let consumer = self.consumer.clone();
            let metrics = self.metrics.clone();
            let committed = tokio::task::spawn_blocking(move || {
                consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            })
            .await
            .context("commit task panicked")?;
            match committed {
                Ok(()) => tracing::info!("final offsets committed"),
                Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
                Err(error) => metrics.offsets_committed(Err(error.to_string())),
            }
        }
        if let Some(error) = fatal.lock().expect("fatal lock").take() {
            return Err(error);
        }
        Ok(())
    }
}

/// How long consumption may wait for room under the in-flight bound before fetching is paused
/// (well under librdkafka's default `max.poll.interval.ms` of 300 s).
const PAUSE_AFTER: Duration = Duration::from_secs(5);

/// Pauses or resumes fetching of every partition currently assigned.
fn set_paused(consumer: &PageConsumer, paused: bool) {
    let Ok(assignment) = consumer.assignment() else {
        return;
    };
    let result = if paused {
        consumer.pause(&assignment)
    } else {
        consumer.resume(&assignment)
    };
    match result {
        Ok(()) => tracing::debug!(
            paused,
            partitions = assignment.count(),
            "in-flight bound: fetching paused/resumed"
        ),
        Err(error) => tracing::warn!(error = %error, paused, "failed to pause or resume fetching"),
    }
}

/// A page whose records were handed to the producer, awaiting their acknowledgements.
struct Sent {
    ticket: Ticket,
    message: InMessage,
    records: Vec<OutRecord>,
    acks: Arc<Acks>,
    /// Records that could not be enqueued (for now).
    unsent: Vec<usize>,
    /// Why a record was refused for good when enqueued.
    rejected: Option<rdkafka::error::KafkaError>,
    /// Why the page is dead-lettered, when `records` is its dead letter.
    dead_lettered: Option<Failure>,
    counts: PageCounts,
    fetched_at: Option<chrono::DateTime<chrono::Utc>>,
    span: tracing::Span,
    /// Released when the page is done.
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// What a delivery task needs.
#[derive(Clone)]
struct DeliveryContext {
    consumer: Arc<PageConsumer>,
    sink: Sink,
    tracker: Arc<Mutex<OffsetTracker>>,
    metrics: Arc<Metrics>,
    topics: Topics,
    latest: Option<LatestQuotes>,
    quote_filter: Option<SharedQuoteFilter>,
    stop: CancellationToken,
    fatal: Arc<Mutex<Option<anyhow::Error>>>,
    backoff: Duration,
    backoff_max: Duration,
}

impl DeliveryContext {
    /// The producer failed for good (authorization, fencing, its own fatal error): the worker
    /// stops with the cause; the page's offset is not stored.
    fn stop_fatal(&self, topic: &str, error: &rdkafka::error::KafkaError) {
        let reason = self.sink.fatal_error().unwrap_or_else(|| error.to_string());
        tracing::error!(error = %reason, "fatal produce error; stopping");
        *self.fatal.lock().expect("fatal lock") =
            Some(anyhow::anyhow!("fatal produce error on topic {topic}: {reason}"));
        self.stop.cancel();
        self.metrics.page_finished();
    }

    /// Waits for every record of a page; re-sends those that failed transiently with back-off;
    /// dead-letters the page when a record can never be delivered; then stores the offset.
    async fn deliver(&self, sent: Sent) {
        let Sent {
            ticket,
            message,
            mut records,
            acks,
            mut unsent,
            mut rejected,
            mut dead_lettered,
            mut counts,
            fetched_at,
            span: _,
            _permits,
        } = sent;
        let mut backoff = self.backoff;
        let mut without_value = false;
        loop {
            let reported = tokio::select! {
                reported = acks.settled() => reported,
                _ = self.stop.cancelled() => {
                    // Abandoned: the offset is not stored, so the page is consumed again later.
                    self.metrics.page_finished();
                    return;
                }
            };
            let mut failed = std::mem::take(&mut unsent);
            let mut permanent = None;
            if let Some(error) = rejected.take() {
                if classify(&error) == FailureKind::Fatal {
                    self.stop_fatal(&records[0].topic, &error);
                    return;
                }
                permanent = Some(error);
            }
            for report in reported {
                // A producer that failed for good purges its queue: those reports look transient.
                let kind = if self.sink.fatal_error().is_some() {
                    FailureKind::Fatal
                } else {
                    classify(&report.error)
                };
                match kind {
                    FailureKind::Transient => {
                        // Identical records are interchangeable: the first not yet chosen.
                        match (0..records.len()).find(|index| !failed.contains(index) && report.is(&records[*index])) {
                            Some(index) => failed.push(index),
                            None => {
                                // Not one of the page's records (not expected): sending them
                                // all again is safe.
                                let rest: Vec<usize> =
                                    (0..records.len()).filter(|index| !failed.contains(index)).collect();
                                failed.extend(rest);
                            }
                        }
                    }
                    FailureKind::Permanent => permanent = Some(report.error),
                    FailureKind::Fatal => {
                        self.stop_fatal(&report.topic, &report.error);
                        return;
                    }
                }
            }
            if let (Some(error), Some(failure)) = (&permanent, &dead_lettered) {
                // The dead letter itself can never be delivered (too large for the topic): once
                // more without the page's bytes, which stay at their source offset.
                if without_value {
                    tracing::error!(error = %error, "the dead-letter topic rejects dead letters; stopping");
                    *self.fatal.lock().expect("fatal lock") = Some(anyhow::anyhow!(
                        "topic {} rejected the dead letter of {}/{} offset {} even without its value: {error}",
                        self.topics.dead_letter,
                        message.topic,
                        message.partition,
                        message.offset
                    ));
                    self.stop.cancel();
                    return;
                }
                self.metrics.dead_letter_without_value(&error.to_string());
                without_value = true;
                let why = format!("the dead letter was rejected: {error}");
                records = vec![dead_letter_without_value(
                    &message,
                    failure,
                    &self.topics.dead_letter,
                    &why,
                )];
                unsent = vec![0];
                continue;
            }
            if let Some(error) = permanent {
                // An event can never be delivered: the page goes to the dead-letter topic instead.
                // Events already delivered stay (consumers de-duplicate by event_id on replay).
                let failure = Failure {
                    stage: Stage::Encode,
                    code: "event_rejected_by_broker",
                    message: error.to_string(),
                };
                self.metrics
                    .page_dead_lettered(failure.stage, failure.code, &failure.message);
                if let Some(filter) = &self.quote_filter {
                    // Its quotes may not have reached the quote topic: publish the next ones.
                    let mut filter = filter.lock().expect("quote filter lock");
                    for record in records.iter().filter(|record| record.topic == self.topics.quotes) {
                        if let Some(symbol) = record.key.as_deref().and_then(|key| std::str::from_utf8(key).ok()) {
                            filter.forget(symbol);
                        }
                    }
                }
                records = vec![dead_letter(&message, &failure, &self.topics.dead_letter)];
                dead_lettered = Some(failure);
                unsent = vec![0];
                counts = PageCounts::default();
                continue;
            }
            if failed.is_empty() {
                break;
            }
            if self.stop.is_cancelled() {
                // Abandoned: the offset is not stored, so the page is consumed again later.
                self.metrics.page_finished();
                return;
            }
            self.metrics
                .produce_retried(&format!("{} record(s) of the page failed", failed.len()), backoff);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => {
                    self.metrics.page_finished();
                    return;
                }
            }
            backoff = (backoff * 2).min(self.backoff_max);
            for index in failed {
                match self.sink.enqueue(&records[index], &acks).await {
                    Ok(()) => {}
                    Err(error) if classify(&error) != FailureKind::Transient => {
                        rejected = Some(error);
                        break;
                    }
                    Err(_) => unsent.push(index),
                }
            }
        }
        let since_fetch = fetched_at.and_then(|at| (chrono::Utc::now() - at).to_std().ok());
        self.metrics
            .events_delivered(&counts.delivered(&self.topics, self.latest.as_ref()), since_fetch);
        self.metrics.page_finished();
        // Stored while holding the tracker's lock, so the stores of one partition reach librdkafka
        // in order: it keeps the last offset stored, even a lower one, and would commit that.
        let mut tracker = self.tracker.lock().expect("tracker lock");
        if let Some(next_offset) = tracker.complete(&ticket) {
            // `rd_kafka_offsets_store` stores the offset as given (the next one to consume);
            // `store_offset` would store `next_offset + 1` and skip a page on the next handover.
            let mut offsets = rdkafka::TopicPartitionList::new();
            let stored = offsets
                .add_partition_offset(&ticket.topic, ticket.partition, rdkafka::Offset::Offset(next_offset))
                .and_then(|()| self.consumer.store_offsets(&offsets));
            if let Err(error) = stored {
                // The partition was revoked meanwhile: another worker owns it now.
                tracing::debug!(error = %error, "offset not stored");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{unframe, Framed, Framing};

    const PAGE: &str = include_str!("../tests/fixtures/pages/brecorder-putin-assad.masked.txt");

    fn topics() -> Topics {
        Topics {
            quotes: "market.quotes.v1".into(),
            articles: "news.articles.v1".into(),
            dead_letter: "pagesplit.dlq.v1".into(),
        }
    }

    fn message(body: &str, minute: u32) -> InMessage {
        use chrono::TimeZone as _;
        let fetched_at = chrono::Utc.with_ymd_and_hms(2024, 12, 8, 10, minute, 0).unwrap();
        InMessage {
            topic: "pages.raw".to_owned(),
            partition: 0,
            offset: i64::from(minute),
            timestamp_ms: None,
            key: None,
            payload: Some(crate::envelope::encode_envelope(
                "https://www.brecorder.com/news/1",
                fetched_at,
                "text/plain",
                body,
            )),
            headers: Vec::new(),
        }
    }

    fn split(body: &str, minute: u32, encoder: &Encoder, latest: &LatestQuotes) -> Split {
        let mut split = split_message(&message(body, minute), &ParseOptions::default(), encoder, &topics()).unwrap();
        add_latest_quotes(&mut split, latest);
        split
    }

    fn sent_topics(split: &Split, send: &[bool]) -> Vec<(String, String)> {
        split
            .records
            .iter()
            .zip(send)
            .filter(|(_, send)| **send)
            .map(|(record, _)| {
                let key = String::from_utf8(record.key.clone().unwrap()).unwrap();
                (record.topic.to_string(), key)
            })
            .collect()
    }

    #[test]
    fn the_split_pool_answers_every_page() {
        let splitter = Splitter::spawn(
            2,
            Arc::new(Encoder::new(Framing::SingleObject)),
            Arc::new(ParseOptions::default()),
            topics(),
            Some(LatestQuotes {
                topic: "market.quotes.latest.v1".into(),
                header: None,
            }),
        )
        .unwrap();
        let mut not_a_page = message(PAGE, 2);
        not_a_page.payload = Some(b"{\"url\": 1}".to_vec());
        let mut answers = Vec::new();
        for message in [message(PAGE, 0), not_a_page, message(PAGE, 5)] {
            let (done, answer) = oneshot::channel();
            splitter.start(message, done);
            answers.push(answer);
        }
        let outcomes: Vec<SplitOutcome> = answers
            .into_iter()
            .map(|answer| answer.blocking_recv().unwrap())
            .collect();
        assert_eq!(
            outcomes
                .iter()
                .map(|(message, _, _)| message.offset)
                .collect::<Vec<_>>(),
            [0, 2, 5]
        );
        let first = outcomes[0].1.as_ref().unwrap();
        assert_eq!(
            (first.quotes, first.articles, first.latest, first.records.len()),
            (34, 1, 34, 69)
        );
        assert_eq!(outcomes[1].1.as_ref().unwrap_err().code, "invalid_envelope");
        assert_eq!(outcomes[2].1.as_ref().unwrap().quotes, 34);
    }

    #[test]
    fn twenty_pages_in_a_row_that_panic_stop_the_worker() {
        let panicked = || split_guarded(|| panic!("boom"));
        let other_failure = || {
            Err(Failure {
                stage: Stage::Parse,
                code: "empty_body",
                message: "page body is empty".to_owned(),
            })
        };
        let streak = PanicStreak::default();
        for _ in 0..SPLIT_PANIC_LIMIT - 1 {
            streak.observe(&panicked()).unwrap();
        }
        // Any other outcome ends the streak.
        streak.observe(&other_failure()).unwrap();
        for _ in 0..SPLIT_PANIC_LIMIT - 1 {
            streak.observe(&panicked()).unwrap();
        }
        let error = streak.observe(&panicked()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "splitting panicked on 20 pages in a row (a bug that hits every page); the last: \
             splitting the page panicked: boom"
        );
    }

    #[test]
    fn a_dead_letter_without_value_keeps_the_reason_but_not_the_page() {
        let mut page = message(PAGE, 4);
        page.headers = vec![("crawler".to_owned(), Some(b"x".repeat(2000)))];
        let failure = Failure {
            stage: Stage::Parse,
            code: "split_panicked",
            message: "é".repeat(600),
        };
        let whole = dead_letter(&page, &failure, "pagesplit.dlq.v1");
        assert_eq!(whole.payload, page.payload);
        let header = |record: &OutRecord, name: &str| {
            record
                .headers
                .as_ref()
                .unwrap()
                .iter()
                .find(|header| header.key == name)
                .and_then(|header| header.value.map(|value| String::from_utf8_lossy(value).into_owned()))
        };
        assert_eq!(header(&whole, "crawler").map(|value| value.len()), Some(2000));
        assert_eq!(header(&whole, dead_letter_headers::ERROR_MESSAGE).unwrap().len(), 1200);
        assert_eq!(header(&whole, dead_letter_headers::VALUE_OMITTED), None);

        let bare = dead_letter_without_value(&page, &failure, "pagesplit.dlq.v1", "too large");
        assert_eq!(bare.payload, None);
        assert_eq!(bare.key, page.key);
        assert_eq!(header(&bare, "crawler"), None, "the message's own headers are left out");
        assert_eq!(
            header(&bare, dead_letter_headers::ERROR_MESSAGE).unwrap(),
            "é".repeat(512)
        );
        assert_eq!(
            header(&bare, dead_letter_headers::ERROR_CODE).unwrap(),
            "split_panicked"
        );
        assert_eq!(header(&bare, dead_letter_headers::SOURCE_OFFSET).unwrap(), "4");
        let size = page.payload.as_ref().unwrap().len();
        assert_eq!(
            header(&bare, dead_letter_headers::VALUE_OMITTED).unwrap(),
            format!("{size} bytes: too large")
        );
    }

    #[test]
    fn a_panic_while_splitting_is_the_page_s_failure() {
        let failure = split_guarded(|| panic!("index 7 out of range")).unwrap_err();
        assert_eq!(
            failure,
            Failure {
                stage: Stage::Parse,
                code: "split_panicked",
                message: "splitting the page panicked: index 7 out of range".to_owned(),
            }
        );
        let symbol = "PSO";
        let failure = split_guarded(|| panic!("no quote for {symbol}")).unwrap_err();
        assert_eq!(failure.message, "splitting the page panicked: no quote for PSO");
        let encoder = Encoder::new(Framing::SingleObject);
        let split = split_guarded(|| split_message(&message(PAGE, 3), &ParseOptions::default(), &encoder, &topics()));
        assert_eq!(split.unwrap().quotes, 34);
    }

    #[test]
    fn every_quote_is_copied_to_the_latest_topic_with_its_own_schema_id() {
        let encoder = Encoder::new(Framing::Confluent {
            quote_schema_id: 7,
            article_schema_id: 8,
        });
        let latest = LatestQuotes {
            topic: "market.quotes.latest.v1".into(),
            header: Some(crate::encode::confluent_header(9)),
        };
        let split = split(PAGE, 0, &encoder, &latest);
        assert_eq!((split.quotes, split.articles, split.latest), (34, 1, 34));
        assert_eq!(split.records.len(), 69);
        assert_eq!(split.quote_values.len(), 34);
        for (quote, copy) in split.records[..34].iter().zip(&split.records[35..]) {
            assert_eq!(&*quote.topic, "market.quotes.v1");
            assert_eq!(&*copy.topic, "market.quotes.latest.v1");
            assert_eq!(quote.key, copy.key);
            let (
                Some(Framed::Confluent { schema_id: 7, datum }),
                Some(Framed::Confluent {
                    schema_id: 9,
                    datum: copied,
                }),
            ) = (
                unframe(quote.payload.as_deref().unwrap()),
                unframe(copy.payload.as_deref().unwrap()),
            )
            else {
                panic!("not reframed: {quote:?} {copy:?}")
            };
            assert_eq!(datum, copied);
        }
        assert_eq!(&*split.records[34].topic, "news.articles.v1");
        // Single-object values carry the schema's fingerprint, the same for both topics.
        let encoder = Encoder::new(Framing::SingleObject);
        let latest = LatestQuotes { header: None, ..latest };
        let single = super::tests::split(PAGE, 0, &encoder, &latest);
        assert_eq!(single.records[0].payload, single.records[35].payload);
    }

    #[test]
    fn a_repeated_page_sends_only_its_changed_quotes_and_every_latest_copy() {
        let encoder = Encoder::new(Framing::SingleObject);
        let latest = LatestQuotes {
            topic: "market.quotes.latest.v1".into(),
            header: None,
        };
        let mut filter = QuoteFilter::new(1000);

        let first = split(PAGE, 0, &encoder, &latest);
        let (send, unchanged) = select_changed_quotes(&first.records, &first.quote_values, &mut filter);
        assert_eq!(unchanged, 0);
        assert_eq!(send.iter().filter(|send| **send).count(), 69);

        let again = split(PAGE, 1, &encoder, &latest);
        let (send, unchanged) = select_changed_quotes(&again.records, &again.quote_values, &mut filter);
        assert_eq!(unchanged, 34);
        let sent = sent_topics(&again, &send);
        assert_eq!(sent.len(), 35, "the article and the 34 latest copies");
        assert_eq!(sent[0].0, "news.articles.v1");
        assert!(sent[1..].iter().all(|(topic, _)| topic == "market.quotes.latest.v1"));

        // AGL moves; BOP's line keeps its numbers but says "No Change" now.
        let moved = PAGE
            .replacen(
                "AGL 37.94 Decreased By ▼ -0.54 (-1.4%)",
                "AGL 38.10 Decreased By ▼ -0.38 (-0.99%)",
                1,
            )
            .replacen(
                "BOP 9.32 Decreased By ▼ -0.85 (-8.36%)",
                "BOP 9.32 No Change ▼ -0.85 (-8.36%)",
                1,
            );
        assert_ne!(moved, PAGE);
        let moved = split(&moved, 2, &encoder, &latest);
        let (send, unchanged) = select_changed_quotes(&moved.records, &moved.quote_values, &mut filter);
        assert_eq!(unchanged, 32);
        let quotes: Vec<String> = sent_topics(&moved, &send)
            .into_iter()
            .filter(|(topic, _)| topic == "market.quotes.v1")
            .map(|(_, symbol)| symbol)
            .collect();
        assert_eq!(quotes, ["AGL", "BOP"]);
        assert_eq!(filter.len(), 34);
    }
}
