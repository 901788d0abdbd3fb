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
//! Exactly-once: the filter's changes are undone when their transaction is aborted. The
//! compacted latest-quote topic has a filter of its own, whatever `quotes.emit` says, handled
//! the same way ([`ChangeFilters`](crate::quote_filter::ChangeFilters)): a quote goes there only
//! when it differs from the last one of its symbol this worker published there.
//!
//! The stages, one module each:
//!
//! - [`records`]: pure record building (split, latest-quote copies, changed quotes, dead letters);
//! - [`lineage`]: pure, the provenance and trace context headers every record carries;
//! - [`split_pool`]: the threads that split pages, and the panic streak that stops the worker;
//! - `consume`: consuming with back-pressure (in-flight bounds, pause/resume);
//! - `produce` and `deliver`: at-least-once, the ordered enqueue and each page's delivery
//!   (settle, retry, dead-letter, store offset);
//! - `transactional`: exactly-once;
//! - `context`: what both delivery modes share; `fatal`: the first fatal error and the stop;
//! - `drain`: shutdown within a deadline.

mod consume;
mod context;
mod deliver;
mod drain;
mod fatal;
pub mod limits;
pub mod lineage;
mod produce;
pub mod records;
pub mod select;
pub mod split_pool;
mod transactional;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::Consumer as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use lineage::{headers, EventHeaders};
pub use records::{
    dead_letter, dead_letter_without_value, latest_copy, split_message, Failure, InMessage, LatestQuotes,
    SharedQuoteFilter, Split, Topics, OMITTED_MESSAGE_BYTES,
};
pub use select::{select_changed_quotes, select_everything, Selected};
pub use split_pool::{SPLIT_PANICKED, SPLIT_PANIC_LIMIT};

use crate::backoff::Backoff;
use crate::config::{Config, DeliveryMode};
use crate::encode::Encoder;
use crate::metrics::Metrics;
use crate::offsets::OffsetTracker;
use crate::parse::ParseOptions;
use crate::sink::Sink;
use crate::source::PageConsumer;
pub use consume::ConsumerFenced;
use consume::{Consume, InFlightBound};
use context::{DeliveryContext, InFlight};
use drain::Drain;
pub use drain::CLOSE_TIMEOUT;
use fatal::Fatal;
pub use limits::RecordLimits;
use produce::Produce;
use split_pool::{PanicStreak, Splitter};
use transactional::Transactions;

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
    /// The largest record each output topic takes.
    pub limits: Arc<RecordLimits>,
}

impl Pipeline {
    /// Runs until `shutdown` is cancelled (then drains within the deadline) or a fatal error.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let config = self.config.clone();
        let fatal = Fatal::default();
        let (ordered_tx, ordered_rx) = mpsc::channel::<InFlight>(config.pipeline.max_in_flight_pages);

        // Stage 1: consume within the in-flight bounds and hand pages to the split threads.
        let consume = Consume {
            consumer: self.consumer.clone(),
            tracker: self.tracker.clone(),
            metrics: self.metrics.clone(),
            splitter: self.splitter()?,
            bound: InFlightBound::new(config.pipeline.max_in_flight_pages, config.pipeline.max_in_flight_bytes),
            shutdown: shutdown.clone(),
            fatal: fatal.clone(),
            ordered: ordered_tx,
        };

        // Stage 2: in consumption order, send each page's records and settle its offset:
        // in transactions (exactly-once) or by storing it once they are acknowledged.
        let context = self.delivery_context(&fatal);
        let handover = self.consumer.context().handover().clone();
        let deliveries = TaskTracker::new();
        let exactly_once = config.delivery.mode == DeliveryMode::ExactlyOnce;
        let consume = tokio::spawn(consume.run());
        let produce = if exactly_once {
            let transactions = Transactions {
                context,
                handover: handover.clone(),
                max_pages: config.delivery.transaction_max_pages,
                max_open: config.delivery.transaction_max_duration(),
                transactional_id: config.transactional_id().unwrap_or_default(),
                panics: PanicStreak::default(),
            };
            tokio::spawn(transactions.run(ordered_rx))
        } else {
            let produce = Produce {
                context,
                deliveries: deliveries.clone(),
            };
            tokio::spawn(produce.run(ordered_rx))
        };

        // Stage 3: on shutdown or a fatal stop, drain.
        tokio::select! {
            _ = shutdown.cancelled() => tracing::info!("shutdown requested; draining"),
            _ = fatal.stopped() => {}
        }
        let drain = Drain {
            // The drain holds the last reference: it closes the consumer, within its deadline.
            consumer: self.consumer,
            sink: self.sink.clone(),
            tracker: self.tracker.clone(),
            handover,
            metrics: self.metrics.clone(),
            fatal,
            deliveries,
            deadline: config.pipeline.drain_timeout(),
            exactly_once,
        };
        drain.run(consume, produce).await
    }

    /// The fixed pool of split threads.
    fn splitter(&self) -> anyhow::Result<Splitter> {
        Splitter::spawn(
            self.config.pipeline.effective_split_workers(),
            self.encoder.clone(),
            self.parse_options.clone(),
            self.topics.clone(),
        )
        .context("failed to start the split threads")
    }

    /// What the delivery stages share.
    fn delivery_context(&self, fatal: &Fatal) -> DeliveryContext {
        let pipeline = &self.config.pipeline;
        DeliveryContext {
            consumer: self.consumer.clone(),
            sink: self.sink.clone(),
            tracker: self.tracker.clone(),
            metrics: self.metrics.clone(),
            topics: self.topics.clone(),
            latest: self.latest.clone(),
            quote_filter: self.quote_filter.clone(),
            fatal: fatal.clone(),
            backoff: Backoff::new(
                Duration::from_millis(pipeline.retry_backoff_ms),
                Duration::from_millis(pipeline.retry_backoff_max_ms),
            ),
            limits: self.limits.clone(),
        }
    }
}
