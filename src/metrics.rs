//! Telemetry as named events: each function both logs and counts.
//!
//! Names follow `pagesplit_<name>_<unit>`; labels are bounded (topic, partition, type, stage,
//! code, result), never URLs or error text.

use std::time::Duration;

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric pagesplit exports, registered in a registry of its own.
pub struct Metrics {
    registry: Registry,
    pages_consumed: IntCounterVec,
    events_produced: IntCounterVec,
    pages_dead_lettered: IntCounterVec,
    page_processing: Histogram,
    /// `pagesplit_page_wait_seconds`, one child per [`Wait`] (in [`Wait::ALL`] order).
    page_wait: [Histogram; 5],
    end_to_end_latency: Histogram,
    consumer_lag: IntGaugeVec,
    pages_in_flight: IntGauge,
    offset_commits: IntCounterVec,
    producer_queue: IntGauge,
    partition_stalled: IntGaugeVec,
    boilerplate_lines_dropped: IntCounter,
    produce_retries: IntCounter,
    dead_letters_without_value: IntCounter,
    transactions: IntCounterVec,
    transaction_duration: Histogram,
    revoke_abandoned_pages: IntCounter,
    revoke_duration: Histogram,
    quotes_unchanged: IntCounter,
    quote_symbols_tracked: IntGauge,
    quote_symbols_evicted: IntCounter,
    envelopes_with_unknown_fields: IntCounter,
    produce_request_retries: IntCounter,
    /// The producer's retries in librdkafka's last statistics (they only grow per broker).
    last_request_retries: std::sync::atomic::AtomicU64,
    brokers_up: IntGauge,
    /// Unknown envelope field names already logged (each is logged once), bounded.
    unknown_fields_logged: std::sync::Mutex<std::collections::BTreeSet<String>>,
    trace_context_dropped: IntCounterVec,
}

/// How many distinct unknown envelope field names are remembered (and logged once each).
const UNKNOWN_FIELDS_LOGGED_LIMIT: usize = 256;

/// The events of one page that were acknowledged (or committed), by topic.
#[derive(Debug, Clone, Copy)]
pub struct DeliveredEvents<'a> {
    /// The quote topic.
    pub quotes_topic: &'a str,
    /// Quotes produced to it.
    pub quotes: usize,
    /// Quotes left out of it because their value had not changed (`quotes.emit = "changed"`).
    pub unchanged_quotes: usize,
    /// The compacted latest-quote topic, when produced.
    pub latest_topic: Option<&'a str>,
    /// Quotes produced to it.
    pub latest_quotes: usize,
    /// The article topic.
    pub articles_topic: &'a str,
    /// Articles produced to it.
    pub articles: usize,
}

/// Where a page waits inside the worker, the `wait` label of `pagesplit_page_wait_seconds`, in
/// the order a page passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// For room under the in-flight bounds (`pipeline.max_in_flight_pages` and bytes), after it
    /// was consumed: the output is slower than the input.
    InFlightBound,
    /// In the split pool's queue for a free split thread.
    SplitQueue,
    /// Split, for the ordered stage to take it (pages before it, or the producing stage busy).
    Ordering,
    /// Handing its records to the producer (waits while the producer's queue is full).
    ProducerQueue,
    /// For the broker's acknowledgement of all its records, retries included (at-least-once;
    /// exactly-once waits for the transaction instead, `pagesplit_transaction_commit_seconds`).
    Acknowledgement,
}

impl Wait {
    /// Every wait, in the order a page passes them.
    pub const ALL: [Wait; 5] = [
        Wait::InFlightBound,
        Wait::SplitQueue,
        Wait::Ordering,
        Wait::ProducerQueue,
        Wait::Acknowledgement,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Wait::InFlightBound => "in_flight_bound",
            Wait::SplitQueue => "split_queue",
            Wait::Ordering => "ordering",
            Wait::ProducerQueue => "producer_queue",
            Wait::Acknowledgement => "acknowledgement",
        }
    }
}

/// The stage at which a message failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The message is not a page (envelope).
    Decode,
    /// The page could not be split.
    Parse,
    /// An event could not be encoded.
    Encode,
}

impl Stage {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Parse => "parse",
            Stage::Encode => "encode",
        }
    }
}

/// Why a message was dead-lettered: a stable code, the `code` label of
/// `pagesplit_pages_dead_lettered_total` and the dead letter's error-code header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    /// The message has no value.
    EmptyMessage,
    /// The value looks like JSON but is not a valid envelope.
    InvalidEnvelope,
    /// Neither a JSON envelope nor a bare body with page headers.
    NotAnEnvelope,
    /// A bare body misses a page header.
    MissingHeader,
    /// A page header is not UTF-8.
    InvalidHeader,
    /// `fetched_at` is not an RFC 3339 timestamp.
    InvalidFetchedAt,
    /// The content type is neither text nor HTML.
    UnsupportedContentType,
    /// The page could not be split: the parser's code (`ParseError::code`).
    Parse(&'static str),
    /// An event could not be encoded: the encoder's code (`EncodeError::code`).
    Encode(&'static str),
    /// Splitting the page panicked (a parser bug this page runs into).
    SplitPanicked,
    /// The broker refused one of the page's events for good (e.g. too large).
    EventRejectedByBroker,
    /// One of the page's events is larger than its topic takes: the page was dead-lettered
    /// before any of its events was sent.
    EventTooLarge,
}

impl FailureCode {
    /// Label and header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureCode::EmptyMessage => "empty_message",
            FailureCode::InvalidEnvelope => "invalid_envelope",
            FailureCode::NotAnEnvelope => "not_an_envelope",
            FailureCode::MissingHeader => "missing_header",
            FailureCode::InvalidHeader => "invalid_header",
            FailureCode::InvalidFetchedAt => "invalid_fetched_at",
            FailureCode::UnsupportedContentType => "unsupported_content_type",
            FailureCode::Parse(code) | FailureCode::Encode(code) => code,
            FailureCode::SplitPanicked => "split_panicked",
            FailureCode::EventRejectedByBroker => "event_rejected_by_broker",
            FailureCode::EventTooLarge => "event_too_large",
        }
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl PartialEq<&str> for FailureCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The name and help text of an exported metric.
struct Spec {
    name: &'static str,
    help: &'static str,
}

/// Registers metrics in one registry, each created from its [`Spec`].
struct Registrar(Registry);

impl Registrar {
    fn register<M: prometheus::core::Collector + Clone + 'static>(&self, metric: M) -> M {
        self.0.register(Box::new(metric.clone())).expect("unique metric");
        metric
    }

    fn counter(&self, spec: &Spec) -> IntCounter {
        self.register(IntCounter::new(spec.name, spec.help).expect("valid metric"))
    }

    fn counter_vec(&self, spec: &Spec, labels: &[&str]) -> IntCounterVec {
        self.register(IntCounterVec::new(Opts::new(spec.name, spec.help), labels).expect("valid metric"))
    }

    fn gauge(&self, spec: &Spec) -> IntGauge {
        self.register(IntGauge::new(spec.name, spec.help).expect("valid metric"))
    }

    fn gauge_vec(&self, spec: &Spec, labels: &[&str]) -> IntGaugeVec {
        self.register(IntGaugeVec::new(Opts::new(spec.name, spec.help), labels).expect("valid metric"))
    }

    fn histogram_vec(&self, spec: &Spec, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
        let options = HistogramOpts::new(spec.name, spec.help).buckets(buckets);
        self.register(HistogramVec::new(options, labels).expect("valid metric"))
    }

    fn histogram(&self, spec: &Spec, buckets: Vec<f64>) -> Histogram {
        let options = HistogramOpts::new(spec.name, spec.help).buckets(buckets);
        self.register(Histogram::with_opts(options).expect("valid metric"))
    }
}

// Every metric pagesplit exports: the contract of the README's metric list, the alert rules and
// the dashboard (checked by deploy/validate.sh).

const BUILD_INFO: Spec = Spec {
    name: "pagesplit_build_info",
    help: "Build information; always 1.",
};
const PAGES_CONSUMED: Spec = Spec {
    name: "pagesplit_pages_consumed_total",
    help: "Raw page messages consumed.",
};
const EVENTS_PRODUCED: Spec = Spec {
    name: "pagesplit_events_produced_total",
    help: "Events acknowledged by the broker, by topic and type (quote, article).",
};
const PAGES_DEAD_LETTERED: Spec = Spec {
    name: "pagesplit_pages_dead_lettered_total",
    help: "Messages written to the dead-letter topic, by stage and error code.",
};
const PAGE_PROCESSING: Spec = Spec {
    name: "pagesplit_page_processing_seconds",
    help: "Time to decode, split and encode one page.",
};
const END_TO_END_LATENCY: Spec = Spec {
    name: "pagesplit_end_to_end_latency_seconds",
    help: "Time from a page's fetched_at to the acknowledgement of all its events.",
};
const CONSUMER_LAG: Spec = Spec {
    name: "pagesplit_consumer_lag_messages",
    help: "Consumer lag of each owned partition, from librdkafka statistics.",
};
const PAGES_IN_FLIGHT: Spec = Spec {
    name: "pagesplit_pages_in_flight",
    help: "Pages consumed whose events are not yet all acknowledged.",
};
const OFFSET_COMMITS: Spec = Spec {
    name: "pagesplit_offset_commits_total",
    help: "Offset commits, by result (ok, error).",
};
const PRODUCER_QUEUE: Spec = Spec {
    name: "pagesplit_producer_queue_messages",
    help: "Messages waiting in the producer's queue.",
};
const PARTITION_STALLED: Spec = Spec {
    name: "pagesplit_partition_stalled",
    help: "1 when an owned partition has lag but made no progress for pipeline.stall_timeout_ms.",
};
const BOILERPLATE_LINES_DROPPED: Spec = Spec {
    name: "pagesplit_boilerplate_lines_dropped_total",
    help: "Navigation, widget and footer lines left out of articles.",
};
const DEAD_LETTERS_WITHOUT_VALUE: Spec = Spec {
    name: "pagesplit_dead_letters_without_value_total",
    help: "Dead letters written without the page's bytes because the dead-letter topic refused them \
                 whole; the page is only at its source offset, until the input topic's retention.",
};
const PRODUCE_RETRIES: Spec = Spec {
    name: "pagesplit_produce_retries_total",
    help: "Pages whose events were sent again after a transient produce failure.",
};
const TRANSACTIONS: Spec = Spec {
    name: "pagesplit_transactions_total",
    help: "Exactly-once transactions, by result (committed, aborted; producer_renewed: a new producer \
           replaced one that failed fatally, aborting the open transaction).",
};
const TRANSACTION_DURATION: Spec = Spec {
    name: "pagesplit_transaction_commit_seconds",
    help: "Time to commit one transaction (offsets and commit), exactly-once mode.",
};
const PAGE_WAIT: Spec = Spec {
    name: "pagesplit_page_wait_seconds",
    help: "Time pages wait inside the worker, by where: in_flight_bound, split_queue, ordering, \
                 producer_queue, acknowledgement (at-least-once).",
};
const REVOKE_ABANDONED_PAGES: Spec = Spec {
    name: "pagesplit_revoke_abandoned_pages_total",
    help: "In-flight pages of revoked partitions not finished within pipeline.revoke_timeout_ms; \
                 their new owner consumes them again.",
};
const REVOKE_DURATION: Spec = Spec {
    name: "pagesplit_revoke_seconds",
    help: "Time a partition revoke waited for in-flight pages and committed what finished.",
};
const QUOTES_UNCHANGED: Spec = Spec {
    name: "pagesplit_quotes_unchanged_total",
    help: "Quotes left out of the quote topic because they equal the last quote of their symbol this \
                 worker published (quotes.emit = changed).",
};
const QUOTE_SYMBOLS_TRACKED: Spec = Spec {
    name: "pagesplit_quote_symbols_tracked",
    help: "Symbols whose last published quote is remembered, for the quote topic (quotes.emit = changed) \
                 and the latest-quote topic together.",
};
const QUOTE_SYMBOLS_EVICTED: Spec = Spec {
    name: "pagesplit_quote_symbols_evicted_total",
    help: "Symbols forgotten because quotes.max_symbols were tracked; their next quotes are published.",
};
const ENVELOPES_WITH_UNKNOWN_FIELDS: Spec = Spec {
    name: "pagesplit_envelope_unknown_fields_total",
    help: "Pages whose JSON envelope had fields pagesplit does not know; they were ignored.",
};
const PRODUCE_REQUEST_RETRIES: Spec = Spec {
    name: "pagesplit_produce_request_retries_total",
    help: "Produce requests librdkafka sent again (broker down, timeouts), from its statistics.",
};
const BROKERS_UP: Spec = Spec {
    name: "pagesplit_brokers_up",
    help: "Broker connections of the consumer that are up, from librdkafka statistics; -1 before \
     the first statistics. 0: the brokers are unreachable (and /readyz answers 503).",
};
const TRACE_CONTEXT_DROPPED: Spec = Spec {
    name: "pagesplit_trace_context_dropped_total",
    help: "Invalid W3C trace context headers of pages, not passed on to their events (the pages are \
                 split all the same), by header (traceparent, tracestate) and code.",
};

impl Metrics {
    /// Creates and registers all metrics.
    pub fn new() -> Self {
        let r = Registrar(Registry::new());
        r.gauge_vec(&BUILD_INFO, &["version", "git_sha"])
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("PAGESPLIT_GIT_SHA").unwrap_or("unknown"),
            ])
            .set(1);
        let brokers_up = r.gauge(&BROKERS_UP);
        brokers_up.set(-1);
        Self {
            pages_consumed: r.counter_vec(&PAGES_CONSUMED, &["topic"]),
            events_produced: r.counter_vec(&EVENTS_PRODUCED, &["topic", "type"]),
            pages_dead_lettered: r.counter_vec(&PAGES_DEAD_LETTERED, &["stage", "code"]),
            page_processing: r.histogram(
                &PAGE_PROCESSING,
                prometheus::exponential_buckets(0.000_01, 4.0, 10).expect("valid buckets"),
            ),
            page_wait: {
                let waits = r.histogram_vec(
                    &PAGE_WAIT,
                    &["wait"],
                    prometheus::exponential_buckets(0.000_01, 4.0, 12).expect("valid buckets"),
                );
                Wait::ALL.map(|wait| waits.with_label_values(&[wait.as_str()]))
            },
            end_to_end_latency: r.histogram(
                &END_TO_END_LATENCY,
                vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                ],
            ),
            consumer_lag: r.gauge_vec(&CONSUMER_LAG, &["topic", "partition"]),
            pages_in_flight: r.gauge(&PAGES_IN_FLIGHT),
            offset_commits: r.counter_vec(&OFFSET_COMMITS, &["result"]),
            producer_queue: r.gauge(&PRODUCER_QUEUE),
            partition_stalled: r.gauge_vec(&PARTITION_STALLED, &["topic", "partition"]),
            boilerplate_lines_dropped: r.counter(&BOILERPLATE_LINES_DROPPED),
            dead_letters_without_value: r.counter(&DEAD_LETTERS_WITHOUT_VALUE),
            produce_retries: r.counter(&PRODUCE_RETRIES),
            transactions: r.counter_vec(&TRANSACTIONS, &["result"]),
            transaction_duration: r.histogram(
                &TRANSACTION_DURATION,
                prometheus::exponential_buckets(0.001, 2.5, 10).expect("valid buckets"),
            ),
            revoke_abandoned_pages: r.counter(&REVOKE_ABANDONED_PAGES),
            revoke_duration: r.histogram(
                &REVOKE_DURATION,
                prometheus::exponential_buckets(0.001, 3.0, 10).expect("valid buckets"),
            ),
            quotes_unchanged: r.counter(&QUOTES_UNCHANGED),
            quote_symbols_tracked: r.gauge(&QUOTE_SYMBOLS_TRACKED),
            quote_symbols_evicted: r.counter(&QUOTE_SYMBOLS_EVICTED),
            envelopes_with_unknown_fields: r.counter(&ENVELOPES_WITH_UNKNOWN_FIELDS),
            unknown_fields_logged: std::sync::Mutex::default(),
            produce_request_retries: r.counter(&PRODUCE_REQUEST_RETRIES),
            last_request_retries: std::sync::atomic::AtomicU64::new(0),
            brokers_up,
            trace_context_dropped: r.counter_vec(&TRACE_CONTEXT_DROPPED, &["header", "code"]),
            registry: r.0,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("exposition is UTF-8")
    }

    /// A raw page message arrived.
    pub fn page_consumed(&self, topic: &str) {
        self.pages_consumed.with_label_values(&[topic]).inc();
        self.pages_in_flight.inc();
    }

    /// A page left the pipeline (its events or its dead letter acknowledged, or abandoned).
    pub fn page_finished(&self) {
        self.pages_in_flight.dec();
    }

    /// A page's envelope had fields the input contract does not define (ignored): counted;
    /// each field name is logged the first time it is seen.
    pub fn envelope_fields_ignored(&self, fields: &[String]) {
        self.envelopes_with_unknown_fields.inc();
        let new: Vec<&str> = {
            let mut logged = self.unknown_fields_logged.lock().expect("unknown fields lock");
            fields
                .iter()
                .filter(|field| logged.len() < UNKNOWN_FIELDS_LOGGED_LIMIT && logged.insert((*field).clone()))
                .map(String::as_str)
                .collect()
        };
        if !new.is_empty() {
            tracing::warn!(
                fields = %new.join(","),
                "page envelope has fields pagesplit does not know; ignored (logged once per field)"
            );
        }
    }

    /// Pages whose envelope had unknown fields, so far.
    pub fn envelopes_with_unknown_fields_count(&self) -> u64 {
        self.envelopes_with_unknown_fields.get()
    }

    /// The producer's statistics: `retries` produce requests sent again so far (summed over its
    /// brokers; a total lower than the last one, after a broker's connection was replaced,
    /// starts over).
    pub fn producer_request_retries(&self, retries: u64) {
        let last = self
            .last_request_retries
            .swap(retries, std::sync::atomic::Ordering::Relaxed);
        let new = if retries >= last { retries - last } else { retries };
        self.produce_request_retries.inc_by(new);
    }

    /// The consumer's statistics: `up` broker connections are up.
    pub fn brokers_up(&self, up: usize) {
        let gauge = &self.brokers_up;
        if up == 0 && gauge.get() != 0 {
            tracing::warn!("no broker reachable; /readyz answers 503 until one is");
        }
        gauge.set(up as i64);
    }

    /// Whether a broker was reachable at the last statistics (or none were taken yet).
    pub fn brokers_reachable(&self) -> bool {
        self.brokers_up.get() != 0
    }

    /// A trace context header of a page was invalid and not passed on to its events.
    pub fn trace_context_dropped(&self, invalid: crate::trace_context::InvalidTraceContext) {
        tracing::debug!(header = invalid.header(), code = invalid.code(), error = %invalid, "trace context dropped");
        self.trace_context_dropped
            .with_label_values(&[invalid.header(), invalid.code()])
            .inc();
    }

    /// Trace context headers dropped so far with `header` and `code` (for tests).
    pub fn trace_context_dropped_count(&self, header: &str, code: &str) -> u64 {
        self.trace_context_dropped.with_label_values(&[header, code]).get()
    }

    /// A page was split and encoded.
    pub fn page_processed(&self, took: Duration, boilerplate_lines: usize) {
        self.page_processing.observe(took.as_secs_f64());
        self.boilerplate_lines_dropped.inc_by(boilerplate_lines as u64);
    }

    /// A page waited `took` at `wait`.
    pub fn page_waited(&self, wait: Wait, took: Duration) {
        self.page_wait[wait as usize].observe(took.as_secs_f64());
    }

    /// Pages observed at `wait` so far, and their total wait in seconds (for tests).
    pub fn page_wait_totals(&self, wait: Wait) -> (u64, f64) {
        let histogram = &self.page_wait[wait as usize];
        (histogram.get_sample_count(), histogram.get_sample_sum())
    }

    /// All events of a page were acknowledged.
    pub fn events_delivered(&self, events: &DeliveredEvents<'_>, since_fetch: Option<Duration>) {
        self.events_produced
            .with_label_values(&[events.quotes_topic, "quote"])
            .inc_by(events.quotes as u64);
        if let Some(latest_topic) = events.latest_topic {
            self.events_produced
                .with_label_values(&[latest_topic, "quote"])
                .inc_by(events.latest_quotes as u64);
        }
        self.events_produced
            .with_label_values(&[events.articles_topic, "article"])
            .inc_by(events.articles as u64);
        self.quotes_unchanged.inc_by(events.unchanged_quotes as u64);
        if let Some(latency) = since_fetch {
            self.end_to_end_latency.observe(latency.as_secs_f64());
        }
    }

    /// A message was written to the dead-letter topic.
    pub fn page_dead_lettered(&self, stage: Stage, code: FailureCode, error: &str) {
        let code = code.as_str();
        tracing::warn!(stage = stage.as_str(), code, error, "message dead-lettered");
        self.pages_dead_lettered
            .with_label_values(&[stage.as_str(), code])
            .inc();
    }

    /// A dead letter is sent again without the page's bytes.
    pub fn dead_letter_without_value(&self, error: &str) {
        tracing::warn!(error, "dead letter refused; sending it without the page's bytes");
        self.dead_letters_without_value.inc();
    }

    /// Dead letters sent without the page's bytes so far.
    pub fn dead_letters_without_value_count(&self) -> u64 {
        self.dead_letters_without_value.get()
    }

    /// A page's events are sent again after a transient failure.
    pub fn produce_retried(&self, error: &str, backoff: Duration) {
        tracing::warn!(
            error,
            backoff_ms = backoff.as_millis() as u64,
            "produce failed transiently; retrying"
        );
        self.produce_retries.inc();
    }

    /// Partitions were revoked after waiting for their in-flight pages.
    pub fn revoke_finished(&self, partitions: usize, abandoned_pages: usize, took: Duration) {
        if abandoned_pages > 0 {
            tracing::warn!(
                partitions,
                abandoned_pages,
                took_ms = took.as_millis() as u64,
                "revoke deadline passed; unfinished pages are left to the partitions' new owner"
            );
        } else {
            tracing::info!(partitions, took_ms = took.as_millis() as u64, "partitions handed over");
        }
        self.revoke_abandoned_pages.inc_by(abandoned_pages as u64);
        self.revoke_duration.observe(took.as_secs_f64());
    }

    /// A transaction with `pages` pages committed, with their offsets.
    pub fn transaction_committed(&self, pages: usize, took: Duration) {
        tracing::debug!(pages, took_ms = took.as_millis() as u64, "transaction committed");
        self.transactions.with_label_values(&["committed"]).inc();
        self.transaction_duration.observe(took.as_secs_f64());
    }

    /// A transaction was aborted; its pages are sent again (or left to another worker).
    pub fn transaction_aborted(&self, pages: usize, reason: &str) {
        tracing::warn!(pages, error = reason, "transaction aborted");
        self.transactions.with_label_values(&["aborted"]).inc();
    }

    /// Exactly-once: the producer failed fatally and a new one took its place (the open
    /// transaction aborted by it).
    pub fn producer_renewed(&self) {
        self.transactions.with_label_values(&["producer_renewed"]).inc();
    }

    /// The quote change filter's table: symbols tracked now, and evicted so far.
    pub fn quote_symbols(&self, tracked: usize, evicted_total: u64) {
        self.quote_symbols_tracked.set(tracked as i64);
        let before = self.quote_symbols_evicted.get();
        if evicted_total > before {
            tracing::debug!(tracked, evicted = evicted_total - before, "quote symbols evicted");
            self.quote_symbols_evicted.inc_by(evicted_total - before);
        }
    }

    /// Quotes left out of the quote topic as unchanged so far (for tests and summaries).
    pub fn quotes_unchanged_count(&self) -> u64 {
        self.quotes_unchanged.get()
    }

    /// Events acknowledged on `topic` of `event_type` (`quote`, `article`) so far (for tests).
    pub fn events_produced_count(&self, topic: &str, event_type: &str) -> u64 {
        self.events_produced.with_label_values(&[topic, event_type]).get()
    }

    /// Transactions with `result` so far (for tests).
    pub fn transactions_count(&self, result: &str) -> u64 {
        self.transactions.with_label_values(&[result]).get()
    }

    /// librdkafka reported an offset commit.
    pub fn offsets_committed(&self, result: Result<(), String>) {
        match result {
            Ok(()) => self.offset_commits.with_label_values(&["ok"]).inc(),
            Err(error) => {
                tracing::warn!(error, "offset commit failed");
                self.offset_commits.with_label_values(&["error"]).inc()
            }
        }
    }

    /// A partition's lag, from statistics.
    pub fn partition_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// Whether a partition is stalled.
    pub fn partition_stalled(&self, topic: &str, partition: i32, stalled: bool) {
        let gauge = self
            .partition_stalled
            .with_label_values(&[topic, &partition.to_string()]);
        if stalled && gauge.get() == 0 {
            tracing::warn!(topic, partition, "partition has lag but makes no progress");
        }
        gauge.set(i64::from(stalled));
    }

    /// A partition is no longer owned: its series disappear.
    pub fn partition_revoked(&self, topic: &str, partition: i32) {
        let partition = partition.to_string();
        let _ = self.consumer_lag.remove_label_values(&[topic, &partition]);
        let _ = self.partition_stalled.remove_label_values(&[topic, &partition]);
    }

    /// The producer's queue depth, from statistics.
    pub fn producer_queue_depth(&self, messages: i64) {
        self.producer_queue.set(messages);
    }

    /// Pages counted as consumed on `topic` so far (for tests and the demo).
    pub fn pages_consumed_count(&self, topic: &str) -> u64 {
        self.pages_consumed.with_label_values(&[topic]).get()
    }

    /// Pages counted as consumed on all topics so far.
    pub fn pages_consumed_count_total(&self) -> u64 {
        use prometheus::core::Collector as _;
        self.pages_consumed
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
            .map(|metric| metric.get_counter().get_value() as u64)
            .sum()
    }

    /// Pages in flight now.
    pub fn pages_in_flight_count(&self) -> i64 {
        self.pages_in_flight.get()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_envelope_fields_are_counted_per_page_and_each_name_logged_once() {
        let metrics = Metrics::new();
        metrics.envelope_fields_ignored(&["crawler".to_owned()]);
        metrics.envelope_fields_ignored(&["crawler".to_owned(), "lang".to_owned()]);
        metrics.envelope_fields_ignored(&["lang".to_owned()]);
        assert_eq!(metrics.envelopes_with_unknown_fields_count(), 3);
        let logged = metrics.unknown_fields_logged.lock().unwrap().clone();
        assert_eq!(logged.into_iter().collect::<Vec<_>>(), ["crawler", "lang"]);
        assert!(metrics.render().contains("pagesplit_envelope_unknown_fields_total 3"));
    }

    #[test]
    fn produce_retries_follow_librdkafka_statistics_and_broker_outages_show() {
        let metrics = Metrics::new();
        metrics.producer_request_retries(0);
        metrics.producer_request_retries(7);
        metrics.producer_request_retries(12);
        // A replaced connection's counters start over.
        metrics.producer_request_retries(3);
        assert!(metrics.render().contains("pagesplit_produce_request_retries_total 15"));
        assert!(metrics.brokers_reachable(), "unknown before the first statistics");
        metrics.brokers_up(0);
        assert!(!metrics.brokers_reachable());
        assert!(metrics.render().contains("pagesplit_brokers_up 0"));
        metrics.brokers_up(1);
        assert!(metrics.brokers_reachable());
    }

    #[test]
    fn exposition_has_the_documented_names() {
        let metrics = Metrics::new();
        metrics.page_consumed("pages.raw");
        metrics.events_delivered(
            &DeliveredEvents {
                quotes_topic: "market.quotes.v1",
                quotes: 30,
                unchanged_quotes: 4,
                latest_topic: Some("market.quotes.latest.v1"),
                latest_quotes: 34,
                articles_topic: "news.articles.v1",
                articles: 1,
            },
            Some(Duration::from_millis(20)),
        );
        metrics.quote_symbols(34, 0);
        metrics.page_dead_lettered(Stage::Parse, FailureCode::Parse("empty_body"), "page body is empty");
        metrics.page_finished();
        let text = metrics.render();
        assert!(
            text.contains("pagesplit_pages_consumed_total{topic=\"pages.raw\"} 1"),
            "{text}"
        );
        assert!(text.contains("pagesplit_events_produced_total{topic=\"market.quotes.v1\",type=\"quote\"} 30"));
        assert!(text.contains("pagesplit_events_produced_total{topic=\"market.quotes.latest.v1\",type=\"quote\"} 34"));
        assert!(text.contains("pagesplit_quotes_unchanged_total 4"), "{text}");
        assert!(text.contains("pagesplit_quote_symbols_tracked 34"), "{text}");
        assert!(text.contains("pagesplit_quote_symbols_evicted_total 0"), "{text}");
        assert!(text.contains("pagesplit_pages_dead_lettered_total{code=\"empty_body\",stage=\"parse\"} 1"));
        assert!(text.contains("pagesplit_pages_in_flight 0"));
        assert!(text.contains("pagesplit_build_info{git_sha="));
        assert!(text.contains("pagesplit_end_to_end_latency_seconds_count 1"));
    }

    #[test]
    fn each_wait_of_a_page_is_its_own_series() {
        let metrics = Metrics::new();
        metrics.page_waited(Wait::SplitQueue, Duration::from_micros(30));
        metrics.page_waited(Wait::SplitQueue, Duration::from_micros(50));
        metrics.page_waited(Wait::Acknowledgement, Duration::from_millis(12));
        assert_eq!(metrics.page_wait_totals(Wait::SplitQueue).0, 2);
        assert!((metrics.page_wait_totals(Wait::SplitQueue).1 - 0.000_08).abs() < 1e-9);
        assert_eq!(metrics.page_wait_totals(Wait::Ordering), (0, 0.0));
        let text = metrics.render();
        assert!(
            text.contains("pagesplit_page_wait_seconds_count{wait=\"split_queue\"} 2"),
            "{text}"
        );
        assert!(text.contains("pagesplit_page_wait_seconds_count{wait=\"acknowledgement\"} 1"));
        // Every wait is exported from the start, at 0.
        assert!(text.contains("pagesplit_page_wait_seconds_count{wait=\"in_flight_bound\"} 0"));
        assert!(text.contains("pagesplit_page_wait_seconds_bucket{wait=\"split_queue\",le=\"0.00004\"} 1"));
    }

    #[test]
    fn revoked_partitions_disappear() {
        let metrics = Metrics::new();
        metrics.partition_lag("pages.raw", 2, 17);
        assert!(metrics
            .render()
            .contains("pagesplit_consumer_lag_messages{partition=\"2\",topic=\"pages.raw\"} 17"));
        metrics.partition_revoked("pages.raw", 2);
        assert!(!metrics.render().contains("pagesplit_consumer_lag_messages{"));
    }
}
