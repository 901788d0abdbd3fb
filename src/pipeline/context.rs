//! What both delivery modes share: the clients and bookkeeping they use ([`DeliveryContext`]), a
//! split page on its way to the producer ([`Page`]), and the steps they take alike: receiving a
//! page from the split pool, dead-lettering a page whose event the broker refuses, sending a
//! refused dead letter again without the page's bytes, counting a delivered page.

use std::sync::{Arc, Mutex};

use rdkafka::error::KafkaError;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::fatal::{Fatal, Stopped};
use super::limits::{oversized_latest_copy, oversized_record, RecordLimits};
use super::records::{
    dead_letter, dead_letter_without_value, latest_copy, Failure, InMessage, LatestQuotes, PageCounts,
    SharedQuoteFilter, Split, Topics,
};
use super::select::{select_changed_quotes, select_everything};
use super::split_pool::{PanicStreak, SplitOutcome};
use crate::backoff::Backoff;
use crate::metrics::{FailureCode, Metrics, Stage, Wait};
use crate::offsets::{OffsetTracker, Ticket};
use crate::quote_filter::QuoteValue;
use crate::sink::{OutRecord, Sink};
use crate::source::PageConsumer;

/// The permits of a page under the in-flight bounds (pages, bytes); released when it is done.
pub(super) type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// A page whose records are being split or sent, in consumption order.
pub(super) struct InFlight {
    /// Its place among the offsets of its partition.
    pub ticket: Ticket,
    /// The split pool's answer.
    pub work: oneshot::Receiver<SplitOutcome>,
    /// Its room under the in-flight bounds.
    pub permits: Permits,
}

/// What the delivery stages (at-least-once and exactly-once) need.
#[derive(Clone)]
pub(super) struct DeliveryContext {
    /// The consumer (offsets are stored or committed through it).
    pub consumer: Arc<PageConsumer>,
    /// The producer.
    pub sink: Sink,
    /// Offsets of owned partitions.
    pub tracker: Arc<Mutex<OffsetTracker>>,
    /// Telemetry.
    pub metrics: Arc<Metrics>,
    /// Output topics.
    pub topics: Topics,
    /// The latest-quote topic, when quotes are produced to it.
    pub latest: Option<LatestQuotes>,
    /// The quote change filter, with `quotes.emit = "changed"`.
    pub quote_filter: Option<SharedQuoteFilter>,
    /// The worker's stop.
    pub fatal: Fatal,
    /// The back-off between attempts after transient failures (each stage copies it).
    pub backoff: Backoff,
    /// The largest record each output topic takes.
    pub limits: Arc<RecordLimits>,
}

/// A split page on its way to the producer: its records, or its dead letter.
pub(super) struct Page {
    /// Its place among the offsets of its partition.
    pub ticket: Ticket,
    /// The consumed message.
    pub message: InMessage,
    /// The records to send (its events, or its dead letter).
    pub records: Vec<OutRecord>,
    /// The compared values of the first records (the quotes), for the quote change filter.
    pub quote_values: Vec<QuoteValue>,
    /// What it sends to which topic.
    pub counts: PageCounts,
    /// When the page was fetched (`None` for a dead letter).
    pub fetched_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why the page is dead-lettered, when `records` is its dead letter.
    pub dead_lettered: Option<Failure>,
    /// Whether `records` is its dead letter without the page's bytes.
    pub without_value: bool,
    /// The page's URL, once it is known.
    pub url: Option<String>,
    /// The page's span (topic, partition, offset, url, and the trace id and pagesplit's span id
    /// when the page carried a valid `traceparent`).
    pub span: tracing::Span,
    /// Released when the page is done.
    pub _permits: Permits,
}

impl DeliveryContext {
    /// The split pool's answer for a page, once the panic streak has seen it. A split thread
    /// that ended without answering (a panic outside a page's split) stops the worker: the page
    /// stays pending and is consumed again after a restart.
    pub fn split_answer(
        &self,
        answer: Result<SplitOutcome, impl std::fmt::Display>,
        panics: &PanicStreak,
    ) -> Result<SplitOutcome, Stopped> {
        let outcome = answer.map_err(|error| {
            self.fatal
                .fail(anyhow::anyhow!("a split thread ended without answering: {error}"))
        })?;
        panics.observe(&outcome.1).map_err(|error| self.fatal.fail(error))?;
        Ok(outcome)
    }

    /// A page as split: its records, or its dead letter when it could not be split.
    pub fn page(&self, ticket: Ticket, (message, outcome, times): SplitOutcome, permits: Permits) -> Page {
        self.metrics.page_waited(Wait::SplitQueue, times.queued);
        self.metrics.page_waited(Wait::Ordering, times.done.elapsed());
        let span = tracing::info_span!(
            "page",
            topic = %message.topic,
            partition = message.partition,
            offset = message.offset,
            url = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        let mut page = Page {
            ticket,
            message,
            records: Vec::new(),
            quote_values: Vec::new(),
            counts: PageCounts::default(),
            fetched_at: None,
            dead_lettered: None,
            without_value: false,
            url: None,
            span,
            _permits: permits,
        };
        match outcome.and_then(|split| self.whole(split)) {
            Ok(split) => {
                page.span.record("url", split.url.as_str());
                if let Some(trace) = &split.trace {
                    page.span
                        .record("trace_id", tracing::field::display(trace.parent.trace_id_hex()));
                    page.span.record("span_id", tracing::field::display(split.span));
                }
                if let Some(dropped) = split.trace_dropped {
                    page.span.in_scope(|| self.metrics.trace_context_dropped(dropped));
                }
                self.metrics.page_processed(times.took, split.boilerplate_lines);
                if !split.unknown_fields.is_empty() {
                    page.span
                        .in_scope(|| self.metrics.envelope_fields_ignored(&split.unknown_fields));
                }
                page.counts = PageCounts::of(&split);
                page.fetched_at = Some(split.fetched_at);
                page.records = split.records;
                page.quote_values = split.quote_values;
                page.url = Some(split.url);
            }
            Err(failure) => {
                // Its headers go to the dead letter as they came; the trace id joins the logs.
                if let Some(parent) = page.message.trace().parent {
                    page.span
                        .record("trace_id", tracing::field::display(parent.trace_id_hex()));
                }
                if let Some(url) = &failure.url {
                    page.span.record("url", url.as_str());
                }
                page.url.clone_from(&failure.url);
                page.records = vec![dead_letter(&page.message, &failure, &self.topics.dead_letter)];
                page.span.in_scope(|| {
                    self.metrics
                        .page_dead_lettered(failure.stage, failure.code, &failure.message)
                });
                page.dead_lettered = Some(failure);
            }
        }
        page
    }

    /// A split whose every record (and latest-quote copy) fits its topic, or the failure that
    /// dead-letters the page: a record larger than its topic takes would be refused after the
    /// others went out, so the whole page is dead-lettered before any is sent.
    fn whole(&self, split: Split) -> Result<Split, Failure> {
        let oversized = oversized_record(&split.records, &self.limits).or_else(|| {
            let latest = self.latest.as_ref()?;
            oversized_latest_copy(&split.records[..split.quotes], &latest.topic, &self.limits)
        });
        match oversized {
            Some(failure) => Err(Failure {
                url: Some(split.url),
                ..failure
            }),
            None => Ok(split),
        }
    }

    /// An event of the page can never be delivered (`error`): the page goes to the dead-letter
    /// topic instead. Events already delivered stay (consumers de-duplicate by event_id).
    pub fn dead_letter_instead(&self, page: &mut Page, error: &KafkaError) {
        let failure = Failure {
            stage: Stage::Encode,
            code: FailureCode::EventRejectedByBroker,
            message: error.to_string(),
            url: page.url.clone(),
        };
        self.metrics
            .page_dead_lettered(failure.stage, failure.code, &failure.message);
        page.records = vec![dead_letter(&page.message, &failure, &self.topics.dead_letter)];
        page.dead_lettered = Some(failure);
        page.quote_values.clear();
        page.counts = PageCounts::default();
    }

    /// The page's dead letter can never be delivered (`error`, e.g. too large for the topic):
    /// it goes once more without the page's bytes, which stay at their source offset. Refused
    /// even so, the worker stops.
    pub fn dead_letter_refused(&self, page: &mut Page, error: &KafkaError) -> Result<(), Stopped> {
        let Some(failure) = &page.dead_lettered else {
            return Ok(());
        };
        if page.without_value {
            return Err(self.fatal.fail(anyhow::anyhow!(
                "topic {} rejected the dead letter of {}/{} offset {} even without its value: {error}",
                self.topics.dead_letter,
                page.message.topic,
                page.message.partition,
                page.message.offset
            )));
        }
        self.metrics.dead_letter_without_value(&error.to_string());
        let why = format!("the dead letter was rejected: {error}");
        page.records = vec![dead_letter_without_value(
            &page.message,
            failure,
            &self.topics.dead_letter,
            &why,
        )];
        page.without_value = true;
        Ok(())
    }

    /// What of a split page to send, in consumption order: a flag per record (the quotes left
    /// out as unchanged are not sent, with `quotes.emit = "changed"`) and the copies of its
    /// changed quotes for the latest-quote topic, made here for those only. Sets the page's
    /// counts accordingly. A dead-lettered page is sent as it is.
    pub fn choose_records(&self, page: &mut Page) -> (Vec<bool>, Vec<OutRecord>) {
        if page.dead_lettered.is_some() {
            return (vec![true; page.records.len()], Vec::new());
        }
        let with_latest = self.latest.is_some();
        let selected = match &self.quote_filter {
            Some(filter) => {
                let mut filter = filter.lock().expect("quote filter lock");
                // A split page has its fetch time; without one, the quote counts as the newest.
                let fetched_ms = page.fetched_at.map_or(i64::MAX, |at| at.timestamp_millis());
                let selected =
                    select_changed_quotes(&page.records, &page.quote_values, &mut filter, with_latest, fetched_ms);
                self.metrics.quote_symbols(filter.tracked(), filter.evicted());
                selected
            }
            None => select_everything(&page.records, page.quote_values.len(), with_latest),
        };
        let copies: Vec<OutRecord> = match &self.latest {
            Some(latest) => selected
                .latest
                .iter()
                .map(|&quote| latest_copy(&page.records[quote], latest))
                .collect(),
            None => Vec::new(),
        };
        page.counts.quotes = page.quote_values.len() - selected.unchanged_quotes;
        page.counts.unchanged_quotes = selected.unchanged_quotes;
        page.counts.latest_quotes = copies.len();
        (selected.send, copies)
    }

    /// Every record of the page is acknowledged: counts its events and the page as finished.
    pub fn page_delivered(&self, page: &Page) {
        let since_fetch = page.fetched_at.and_then(|at| (chrono::Utc::now() - at).to_std().ok());
        self.metrics
            .events_delivered(&page.counts.delivered(&self.topics, self.latest.as_ref()), since_fetch);
        self.metrics.page_finished();
    }
}
