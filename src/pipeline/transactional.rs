//! Exactly-once delivery: the events of a batch of pages and those pages' input offsets are
//! committed in one Kafka transaction.
//!
//! ```text
//! ordered pages ─► begin ─► enqueue records ×N ─► … ─► send offsets ─► commit ─► next batch
//!                             (≤ transaction_max_pages, ≤ transaction_max_ms)   │
//!                                     abortable failure: abort, send the batch again ◄┘
//! ```
//!
//! A batch is committed only when every page in it belongs to a partition this worker still
//! owns (checked under the handover's commit gate, which a revoke takes before forgetting its
//! partitions), so a transaction never commits the offset of a revoked partition; one that holds
//! such pages is aborted and the rest sent again. Another producer with the same
//! `transactional.id` fences this one: that, like every fatal producer error, stops the worker.
//!
//! With `quotes.emit = "changed"`, the quotes of a page are filtered each time the page is
//! enqueued into a transaction, and the filter's changes are committed or undone with the
//! transaction: a quote is left out only when an equal one of its symbol was committed before,
//! or is earlier in the same transaction.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::{
    dead_letter, dead_letter_without_value, select_changed_quotes, Failure, InFlight, InMessage, LatestQuotes,
    PageCounts, PanicStreak, SharedQuoteFilter, Topics,
};
use crate::metrics::{Metrics, Stage};
use crate::offsets::{OffsetTracker, Ticket};
use crate::quote_filter::QuoteValue;
use crate::sink::{classify, classify_transaction, is_fencing, Acks, FailureKind, OutRecord, Sink, TransactionFailure};
use crate::source::{Handover, PageConsumer};

/// Longest a single transactional call (offsets, commit, abort) may block; a call that times out
/// is made again, so this bounds how long a revoke may wait for a commit in progress.
const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the delivery reports of an aborted transaction may take to arrive.
const PURGED_REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The transactional producing stage.
pub(super) struct Transactions {
    pub consumer: Arc<PageConsumer>,
    pub sink: Sink,
    pub tracker: Arc<Mutex<OffsetTracker>>,
    pub handover: Arc<Handover>,
    pub metrics: Arc<Metrics>,
    pub topics: Topics,
    pub latest: Option<LatestQuotes>,
    pub quote_filter: Option<SharedQuoteFilter>,
    pub stop: CancellationToken,
    pub fatal: Arc<Mutex<Option<anyhow::Error>>>,
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub max_pages: usize,
    pub max_open: Duration,
    pub transactional_id: String,
    pub panics: PanicStreak,
}

/// A page in the open transaction.
struct Page {
    ticket: Ticket,
    message: InMessage,
    /// Every record of the page (unfiltered).
    records: Vec<OutRecord>,
    /// The compared values of the first records (the quotes), for the quote change filter.
    quote_values: Vec<QuoteValue>,
    /// Delivery reports of the records sent in the current attempt.
    acks: Arc<Acks>,
    /// Whether a record of the current attempt could not be enqueued.
    unsent: bool,
    /// Why a record of the current attempt was refused for good when enqueued.
    rejected: Option<rdkafka::error::KafkaError>,
    /// Why the page is dead-lettered, when `records` is its dead letter.
    dead_lettered: Option<Failure>,
    /// Whether `records` is its dead letter without the page's bytes.
    without_value: bool,
    /// What the current attempt sends (quotes left out as unchanged are not counted).
    counts: PageCounts,
    fetched_at: Option<chrono::DateTime<chrono::Utc>>,
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

/// Why the stage stopped early.
struct Stopped;

/// The result of one commit attempt.
enum Attempt {
    Committed(Duration),
    /// A page's partition was revoked: the transaction must not commit.
    Stale,
    Failed(rdkafka::error::KafkaError),
}

impl Transactions {
    /// Commits the ordered pages batch by batch until the channel closes or the stage is stopped.
    pub async fn run(self, mut ordered: mpsc::Receiver<InFlight>) {
        let _ = self.run_batches(&mut ordered).await;
    }

    async fn run_batches(&self, ordered: &mut mpsc::Receiver<InFlight>) -> Result<(), Stopped> {
        loop {
            let first = tokio::select! {
                item = ordered.recv() => item,
                _ = self.stop.cancelled() => None,
            };
            let Some(first) = first else { return Ok(()) };
            let Some(first) = self.prepare(first).await? else {
                continue;
            };
            self.begin()?;
            let opened = tokio::time::Instant::now();
            let mut batch = vec![first];
            self.enqueue(&mut batch[0]).await;
            let mut closed = false;
            while batch.len() < self.max_pages && !self.handover.revoke_waiting() {
                let item = tokio::select! {
                    biased;
                    _ = self.stop.cancelled() => break,
                    _ = self.handover.revoke_started() => break,
                    _ = tokio::time::sleep_until(opened + self.max_open) => break,
                    item = ordered.recv() => item,
                };
                let Some(item) = item else {
                    closed = true;
                    break;
                };
                if let Some(mut page) = self.prepare(item).await? {
                    self.enqueue(&mut page).await;
                    batch.push(page);
                }
            }
            self.commit(batch).await?;
            if closed {
                return Ok(());
            }
        }
    }

    /// Waits for a page's split; `None` when its partition was revoked meanwhile.
    async fn prepare(&self, item: InFlight) -> Result<Option<Page>, Stopped> {
        let InFlight {
            ticket,
            work,
            _pages,
            _bytes,
        } = item;
        let (message, outcome, took) = match work.await {
            Ok(done) => done,
            Err(error) => {
                return Err(self.fail(anyhow::anyhow!("a split thread ended without answering: {error}")));
            }
        };
        if let Err(error) = self.panics.observe(&outcome) {
            return Err(self.fail(error));
        }
        if !self.tracker.lock().expect("tracker lock").is_current(&ticket) {
            tracing::debug!(
                topic = %ticket.topic,
                partition = ticket.partition,
                offset = ticket.offset,
                "page of a revoked partition left to its new owner"
            );
            self.metrics.page_finished();
            return Ok(None);
        }
        let (records, quote_values, counts, fetched_at, dead_lettered) = match outcome {
            Ok(split) => {
                self.metrics.page_processed(took, split.boilerplate_lines);
                let counts = PageCounts::of(&split);
                (split.records, split.quote_values, counts, Some(split.fetched_at), None)
            }
            Err(failure) => {
                let record = dead_letter(&message, &failure, &self.topics.dead_letter);
                tracing::info_span!(
                    "page",
                    topic = %message.topic,
                    partition = message.partition,
                    offset = message.offset
                )
                .in_scope(|| {
                    self.metrics
                        .page_dead_lettered(failure.stage, failure.code, &failure.message)
                });
                (vec![record], Vec::new(), PageCounts::default(), None, Some(failure))
            }
        };
        Ok(Some(Page {
            ticket,
            message,
            acks: Acks::new(),
            unsent: false,
            rejected: None,
            dead_lettered,
            without_value: false,
            counts,
            records,
            quote_values,
            fetched_at,
            _permits: (_pages, _bytes),
        }))
    }

    /// Enqueues a page's records into the open transaction, but the quotes whose value did not
    /// change (`quotes.emit = "changed"`).
    async fn enqueue(&self, page: &mut Page) {
        // Reports still due from an aborted attempt must not count against this one.
        page.acks = Acks::new();
        page.unsent = false;
        page.rejected = None;
        let mut send = Vec::new();
        if let Some(filter) = &self.quote_filter {
            let mut filter = filter.lock().expect("quote filter lock");
            let unchanged;
            (send, unchanged) = select_changed_quotes(&page.records, &page.quote_values, &mut filter);
            self.metrics.quote_symbols(filter.len(), filter.evicted());
            page.counts.quotes = page.quote_values.len() - unchanged;
            page.counts.unchanged_quotes = unchanged;
        }
        for (index, record) in page.records.iter().enumerate() {
            if !send.get(index).copied().unwrap_or(true) {
                continue;
            }
            if let Err(error) = self.sink.enqueue(record, &page.acks).await {
                tracing::debug!(error = %error, "enqueue failed; the transaction will be aborted");
                page.unsent = true;
                if classify(&error) == FailureKind::Permanent {
                    // Refused for good (larger than `message.max.bytes`): dead-lettered after
                    // the abort.
                    page.rejected = Some(error);
                    break;
                }
            }
        }
    }

    fn begin(&self) -> Result<(), Stopped> {
        if let Some(filter) = &self.quote_filter {
            filter.lock().expect("quote filter lock").begin();
        }
        self.sink
            .begin_transaction()
            .map_err(|error| self.fail(self.describe(&error, "failed to begin a transaction")))
    }

    /// Commits the batch with its offsets, aborting and sending it again after abortable
    /// failures, until it is committed or the stage is stopped.
    async fn commit(&self, mut batch: Vec<Page>) -> Result<(), Stopped> {
        let mut backoff = self.backoff;
        loop {
            if self.stop.is_cancelled() {
                self.abandon(batch).await;
                return Err(Stopped);
            }
            let attempt = if batch.iter().any(|page| page.unsent) {
                // A record is missing from the transaction: committing would lose it.
                Attempt::Failed(rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::State,
                ))
            } else {
                self.try_commit(&batch).await
            };
            let error = match attempt {
                Attempt::Committed(took) => {
                    if let Some(filter) = &self.quote_filter {
                        filter.lock().expect("quote filter lock").commit();
                    }
                    self.metrics.transaction_committed(batch.len(), took);
                    self.finish(batch);
                    return Ok(());
                }
                Attempt::Stale => {
                    self.abort(batch.len(), "a partition of the transaction was revoked")
                        .await?;
                    let before = batch.len();
                    {
                        let tracker = self.tracker.lock().expect("tracker lock");
                        batch.retain(|page| tracker.is_current(&page.ticket));
                    }
                    for _ in batch.len()..before {
                        self.metrics.page_finished();
                    }
                    if batch.is_empty() {
                        return Ok(());
                    }
                    self.resend(&mut batch).await?;
                    continue;
                }
                Attempt::Failed(error) => error,
            };
            match classify_transaction(&error) {
                TransactionFailure::Retry => {
                    self.metrics
                        .produce_retried(&format!("transaction commit: {error}"), backoff);
                    self.sleep(backoff).await?;
                }
                TransactionFailure::Abort => {
                    self.abort(batch.len(), &error.to_string()).await?;
                    self.dead_letter_rejected(&mut batch).await?;
                    self.metrics
                        .produce_retried(&format!("transaction aborted: {error}"), backoff);
                    self.sleep(backoff).await?;
                    self.resend(&mut batch).await?;
                }
                TransactionFailure::Fatal { .. } => {
                    return Err(self.fail(self.describe(&error, "failed to commit a transaction")));
                }
            }
            backoff = (backoff * 2).min(self.backoff_max);
        }
    }

    /// Checks under the commit gate that every page's partition is still owned, then adds the
    /// offsets to the transaction and commits it.
    async fn try_commit(&self, batch: &[Page]) -> Attempt {
        let tickets: Vec<Ticket> = batch.iter().map(|page| page.ticket.clone()).collect();
        let (sink, consumer, tracker, handover) = (
            self.sink.clone(),
            self.consumer.clone(),
            self.tracker.clone(),
            self.handover.clone(),
        );
        let attempt = tokio::task::spawn_blocking(move || {
            let _gate = handover.commit_gate();
            if !{
                let tracker = tracker.lock().expect("tracker lock");
                tickets.iter().all(|ticket| tracker.is_current(ticket))
            } {
                return Attempt::Stale;
            }
            let Some(group) = consumer.group_metadata() else {
                return Attempt::Failed(rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::State,
                ));
            };
            let started = Instant::now();
            let offsets = next_offsets(&tickets);
            let result = sink
                .send_offsets_to_transaction(&offsets, &group, TRANSACTION_CALL_TIMEOUT)
                .and_then(|()| sink.commit_transaction(TRANSACTION_CALL_TIMEOUT));
            match result {
                Ok(()) => Attempt::Committed(started.elapsed()),
                Err(error) => Attempt::Failed(error),
            }
        })
        .await;
        attempt.unwrap_or_else(|_| {
            Attempt::Failed(rdkafka::error::KafkaError::MessageProduction(
                rdkafka::types::RDKafkaErrorCode::Fail,
            ))
        })
    }

    /// Aborts the open transaction (retrying while the call times out).
    async fn abort(&self, pages: usize, reason: &str) -> Result<(), Stopped> {
        self.metrics.transaction_aborted(pages, reason);
        self.rollback_quote_filter();
        let mut backoff = self.backoff;
        loop {
            let sink = self.sink.clone();
            let result = tokio::task::spawn_blocking(move || sink.abort_transaction(TRANSACTION_CALL_TIMEOUT))
                .await
                .unwrap_or(Err(rdkafka::error::KafkaError::Canceled));
            let Err(error) = result else { return Ok(()) };
            match classify_transaction(&error) {
                TransactionFailure::Fatal { .. } => {
                    return Err(self.fail(self.describe(&error, "failed to abort a transaction")))
                }
                TransactionFailure::Retry if !self.stop.is_cancelled() => {
                    tracing::warn!(error = %error, "aborting the transaction timed out; retrying");
                    self.sleep(backoff).await?;
                    backoff = (backoff * 2).min(self.backoff_max);
                }
                _ => {
                    tracing::warn!(error = %error, "transaction could not be aborted");
                    return Ok(());
                }
            }
        }
    }

    /// After an abort: pages with a record refused for good (too large) go to the dead-letter
    /// topic instead, as in at-least-once mode; a dead letter refused for good goes once more
    /// without the page's bytes, and if that is refused too, the worker stops.
    async fn dead_letter_rejected(&self, batch: &mut [Page]) -> Result<(), Stopped> {
        for page in batch.iter_mut() {
            let reported = tokio::time::timeout(PURGED_REPORT_TIMEOUT, page.acks.settled())
                .await
                .unwrap_or_default();
            let rejected = page.rejected.take().or_else(|| {
                reported
                    .into_iter()
                    .map(|report| report.error)
                    .find(|error| classify(error) == FailureKind::Permanent)
            });
            let Some(error) = rejected else { continue };
            if let Some(failure) = &page.dead_lettered {
                if page.without_value {
                    return Err(self.fail(anyhow::anyhow!(
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
                continue;
            }
            {
                let failure = Failure {
                    stage: Stage::Encode,
                    code: "event_rejected_by_broker",
                    message: error.to_string(),
                };
                self.metrics
                    .page_dead_lettered(failure.stage, failure.code, &failure.message);
                page.records = vec![dead_letter(&page.message, &failure, &self.topics.dead_letter)];
                page.dead_lettered = Some(failure);
                page.quote_values.clear();
                page.counts = PageCounts::default();
            }
        }
        Ok(())
    }

    /// Opens a new transaction and enqueues every page of the batch again.
    async fn resend(&self, batch: &mut [Page]) -> Result<(), Stopped> {
        self.begin()?;
        for page in batch.iter_mut() {
            self.enqueue(page).await;
        }
        Ok(())
    }

    /// The batch is committed: its pages are done.
    fn finish(&self, batch: Vec<Page>) {
        let mut tracker = self.tracker.lock().expect("tracker lock");
        for page in &batch {
            // Nothing to store: the offsets were committed with the transaction.
            let _ = tracker.complete(&page.ticket);
        }
        drop(tracker);
        for page in batch {
            let since_fetch = page.fetched_at.and_then(|at| (chrono::Utc::now() - at).to_std().ok());
            self.metrics
                .events_delivered(&page.counts.delivered(&self.topics, self.latest.as_ref()), since_fetch);
            self.metrics.page_finished();
        }
    }

    /// The open transaction's quotes were never published: the filter forgets them.
    fn rollback_quote_filter(&self) {
        if let Some(filter) = &self.quote_filter {
            let mut filter = filter.lock().expect("quote filter lock");
            filter.rollback();
            self.metrics.quote_symbols(filter.len(), filter.evicted());
        }
    }

    /// Stopping: the open transaction is aborted; its pages are consumed again later.
    async fn abandon(&self, batch: Vec<Page>) {
        self.rollback_quote_filter();
        let sink = self.sink.clone();
        if let Ok(Err(error)) =
            tokio::task::spawn_blocking(move || sink.abort_transaction(TRANSACTION_CALL_TIMEOUT)).await
        {
            tracing::warn!(error = %error, "open transaction not aborted; the broker aborts it after transaction_timeout_ms");
        } else {
            self.metrics.transaction_aborted(batch.len(), "stopping");
        }
        for _ in &batch {
            self.metrics.page_finished();
        }
    }

    async fn sleep(&self, duration: Duration) -> Result<(), Stopped> {
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = self.stop.cancelled() => Err(Stopped),
        }
    }

    /// A clear message for a fatal producer error.
    fn describe(&self, error: &rdkafka::error::KafkaError, what: &str) -> anyhow::Error {
        let fenced = matches!(classify_transaction(error), TransactionFailure::Fatal { fenced: true })
            || self.sink.fatal_error_code().is_some_and(is_fencing);
        let reason = self.sink.fatal_error().unwrap_or_else(|| error.to_string());
        if fenced {
            anyhow::anyhow!(
                "producer fenced: another worker started with transactional.id `{}` (each worker needs its own \
                 delivery.instance_id); {what}: {reason}",
                self.transactional_id
            )
        } else {
            anyhow::anyhow!("fatal producer error: {what}: {reason}")
        }
    }

    /// Records a fatal error and stops the worker.
    fn fail(&self, error: anyhow::Error) -> Stopped {
        tracing::error!(error = %format!("{error:#}"), "stopping");
        let mut fatal = self.fatal.lock().expect("fatal lock");
        if fatal.is_none() {
            *fatal = Some(error);
        }
        self.stop.cancel();
        Stopped
    }
}

/// Pure: per partition, the offset after the highest page of the batch (the offset to commit).
fn next_offsets(tickets: &[Ticket]) -> TopicPartitionList {
    let mut next: std::collections::BTreeMap<(&str, i32), i64> = std::collections::BTreeMap::new();
    for ticket in tickets {
        let entry = next.entry((ticket.topic.as_str(), ticket.partition)).or_insert(0);
        *entry = (*entry).max(ticket.offset + 1);
    }
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        let _ = offsets.add_partition_offset(topic, partition, Offset::Offset(offset));
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_commits_the_offset_after_its_highest_page_per_partition() {
        let mut tracker = OffsetTracker::new();
        tracker.assign("t", 0);
        tracker.assign("t", 1);
        let tickets = vec![
            tracker.track("t", 0, 7).unwrap(),
            tracker.track("t", 1, 3).unwrap(),
            tracker.track("t", 0, 8).unwrap(),
        ];
        let offsets = next_offsets(&tickets);
        assert_eq!(offsets.count(), 2);
        assert_eq!(offsets.find_partition("t", 0).unwrap().offset(), Offset::Offset(9));
        assert_eq!(offsets.find_partition("t", 1).unwrap().offset(), Offset::Offset(4));
    }
}
