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
//! `transactional.id` fences this one: that stops the worker. Any other fatal producer error
//! (librdkafka's producer unusable, e.g. its sequence numbers out of step with a broker restarted
//! uncleanly) replaces the producer with a new one, whose start aborts the open transaction, and
//! the transaction's pages are sent again; after [`MAX_RENEWALS`] in a row the worker stops.
//!
//! With `quotes.emit = "changed"`, the quotes of a page are filtered each time the page is
//! enqueued into a transaction, and the filter's changes are committed or undone with the
//! transaction: a quote is left out only when an equal one of its symbol was committed before,
//! or is earlier in the same transaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::context::{DeliveryContext, InFlight, Page};
use super::fatal::Stopped;
use super::split_pool::PanicStreak;
use crate::offsets::Ticket;
use crate::sink::{classify, classify_transaction, is_fencing, Acks, FailureKind, TransactionFailure};
use crate::source::Handover;

/// Longest a single transactional call (offsets, commit, abort) may block; a call that times out
/// is made again, so this bounds how long a revoke may wait for a commit in progress.
const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a new producer may take to initialise its transactions after a fatal error.
const RENEW_TIMEOUT: Duration = Duration::from_secs(30);

/// Fatal producer errors in a row that a new producer is created for; one more stops the worker.
const MAX_RENEWALS: u32 = 3;

/// How long the delivery reports of an aborted transaction may take to arrive.
const PURGED_REPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The transactional producing stage.
pub(super) struct Transactions {
    /// What deliveries need.
    pub context: DeliveryContext,
    /// The consumer's handover (revokes wait for commits in progress).
    pub handover: Arc<Handover>,
    /// Most pages in one transaction.
    pub max_pages: usize,
    /// Longest a transaction stays open for more pages.
    pub max_open: Duration,
    /// The producer's `transactional.id` (for the fencing message).
    pub transactional_id: String,
    /// Pages in a row whose split panicked.
    pub panics: PanicStreak,
}

/// A page in the open transaction.
struct Pending {
    page: Page,
    /// Delivery reports of the records sent in the current attempt.
    acks: Arc<Acks>,
    /// Whether a record of the current attempt could not be enqueued.
    unsent: bool,
    /// Why a record of the current attempt was refused for good when enqueued.
    rejected: Option<KafkaError>,
}

/// The result of one commit attempt.
enum Attempt {
    Committed(Duration),
    /// A page's partition was revoked: the transaction must not commit.
    Stale,
    Failed(KafkaError),
    /// The offsets are in the transaction, but committing it did not finish in time (a
    /// retriable error, e.g. the coordinator unreachable): librdkafka resumes the commit when it
    /// is called again, and refuses anything else meanwhile (an abort, or the offsets sent again,
    /// fail with "Conflicting commit_transaction API call is already in progress").
    CommitUnfinished(KafkaError),
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
                _ = self.context.fatal.stopped() => None,
            };
            let Some(first) = first else { return Ok(()) };
            let Some(first) = self.prepare(first).await? else {
                continue;
            };
            self.begin().await?;
            let (batch, closed) = self.fill(first, ordered).await?;
            self.commit(batch).await?;
            if closed {
                return Ok(());
            }
        }
    }

    /// Enqueues pages into the open transaction until it holds `max_pages`, has been open
    /// `max_open`, a revoke waits or the stage stops; `true` when the channel closed.
    async fn fill(
        &self,
        first: Pending,
        ordered: &mut mpsc::Receiver<InFlight>,
    ) -> Result<(Vec<Pending>, bool), Stopped> {
        let opened = tokio::time::Instant::now();
        let mut batch = vec![first];
        self.enqueue(&mut batch[0]).await;
        while batch.len() < self.max_pages && !self.handover.revoke_waiting() {
            let item = tokio::select! {
                biased;
                _ = self.context.fatal.stopped() => break,
                _ = self.handover.revoke_started() => break,
                _ = tokio::time::sleep_until(opened + self.max_open) => break,
                item = ordered.recv() => item,
            };
            let Some(item) = item else {
                return Ok((batch, true));
            };
            if let Some(mut page) = self.prepare(item).await? {
                self.enqueue(&mut page).await;
                batch.push(page);
            }
        }
        Ok((batch, false))
    }

    /// Waits for a page's split; `None` when its partition was revoked meanwhile.
    async fn prepare(&self, item: InFlight) -> Result<Option<Pending>, Stopped> {
        let InFlight { ticket, work, permits } = item;
        let outcome = self.context.split_answer(work.await, &self.panics)?;
        if !self.context.tracker.lock().expect("tracker lock").is_current(&ticket) {
            tracing::debug!(
                topic = %ticket.topic,
                partition = ticket.partition,
                offset = ticket.offset,
                "page of a revoked partition left to its new owner"
            );
            self.context.metrics.page_finished();
            return Ok(None);
        }
        Ok(Some(Pending {
            page: self.context.page(ticket, outcome, permits),
            acks: Acks::new(),
            unsent: false,
            rejected: None,
        }))
    }

    /// Enqueues a page's records into the open transaction, but the quotes whose value did not
    /// change (`quotes.emit = "changed"`).
    async fn enqueue(&self, pending: &mut Pending) {
        // Reports still due from an aborted attempt must not count against this one.
        pending.acks = Acks::new();
        pending.unsent = false;
        pending.rejected = None;
        let page = &mut pending.page;
        let (send, copies) = self.context.choose_records(page);
        let started = Instant::now();
        let chosen = page
            .records
            .iter()
            .zip(send.iter().chain(std::iter::repeat(&true)))
            .filter_map(|(record, send)| send.then_some(record))
            .chain(&copies);
        for record in chosen {
            if let Err(error) = self.context.sink.enqueue(record, &pending.acks).await {
                tracing::debug!(error = %error, "enqueue failed; the transaction will be aborted");
                pending.unsent = true;
                if classify(&error) == FailureKind::Permanent {
                    // Refused for good (larger than `message.max.bytes`): dead-lettered after
                    // the abort.
                    pending.rejected = Some(error);
                    break;
                }
            }
        }
        self.context
            .metrics
            .page_waited(crate::metrics::Wait::ProducerQueue, started.elapsed());
    }

    async fn begin(&self) -> Result<(), Stopped> {
        if let Some(filter) = &self.context.quote_filter {
            filter.lock().expect("quote filter lock").begin();
        }
        let mut renewals = 0;
        loop {
            let Err(error) = self.context.sink.begin_transaction() else {
                return Ok(());
            };
            self.renew_after(&error, "failed to begin a transaction", &mut renewals)
                .await?;
        }
    }

    /// After a fatal producer error: unless it is fencing (another worker has this
    /// `transactional.id`) or `renewals` reached [`MAX_RENEWALS`], replaces the producer with a
    /// new one (which aborts the open transaction) and returns `Ok`: the caller sends its pages
    /// again in a new transaction. Otherwise stops the worker.
    async fn renew_after(&self, error: &KafkaError, what: &str, renewals: &mut u32) -> Result<(), Stopped> {
        let fenced = matches!(classify_transaction(error), TransactionFailure::Fatal { fenced: true })
            || self.context.sink.fatal_error_code().is_some_and(is_fencing);
        if fenced || *renewals >= MAX_RENEWALS {
            return Err(self.context.fatal.fail(self.describe(error, what)));
        }
        *renewals += 1;
        let reason = self.context.sink.fatal_error().unwrap_or_else(|| error.to_string());
        tracing::warn!(error = %reason, "{what}: the producer failed fatally; replacing it with a new one");
        self.context.metrics.producer_renewed();
        self.rollback_quote_filter();
        let sink = self.context.sink.clone();
        let renewed = tokio::task::spawn_blocking(move || sink.renew(RENEW_TIMEOUT))
            .await
            .unwrap_or(Err(KafkaError::Canceled));
        match renewed {
            Ok(()) => {
                tracing::info!("new producer ready; the open transaction's pages are sent again");
                Ok(())
            }
            Err(renew_error) => Err(self.context.fatal.fail(anyhow::anyhow!(
                "fatal producer error: {what}: {reason}; a new producer could not be created: {renew_error}"
            ))),
        }
    }

    /// Commits the batch with its offsets, aborting and sending it again after abortable
    /// failures, until it is committed or the stage is stopped.
    async fn commit(&self, mut batch: Vec<Pending>) -> Result<(), Stopped> {
        let mut backoff = self.context.backoff;
        let mut unfinished = false;
        let mut renewals = 0;
        loop {
            if self.context.fatal.is_stopped() {
                self.abandon(batch).await;
                return Err(Stopped);
            }
            let attempt = if unfinished {
                self.resume_commit().await
            } else if batch.iter().any(|pending| pending.unsent) {
                // A record is missing from the transaction: committing would lose it.
                Attempt::Failed(KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::State))
            } else {
                self.try_commit(&batch).await
            };
            unfinished = matches!(attempt, Attempt::CommitUnfinished(_));
            let error = match attempt {
                Attempt::Committed(took) => {
                    self.committed(batch, took);
                    return Ok(());
                }
                Attempt::CommitUnfinished(error) => {
                    tracing::warn!(error = %error, pages = batch.len(), "committing the transaction did not finish; resuming it");
                    error
                }
                Attempt::Stale => {
                    if self.drop_revoked(&mut batch).await? {
                        return Ok(());
                    }
                    continue;
                }
                Attempt::Failed(error) => error,
            };
            match classify_transaction(&error) {
                TransactionFailure::Retry => {
                    let wait = backoff.next_wait();
                    self.context
                        .metrics
                        .produce_retried(&format!("transaction commit: {error}"), wait);
                    self.context.fatal.sleep(wait).await?;
                }
                TransactionFailure::Abort => {
                    self.abort(batch.len(), &error.to_string()).await?;
                    self.dead_letter_rejected(&mut batch).await?;
                    let wait = backoff.next_wait();
                    self.context
                        .metrics
                        .produce_retried(&format!("transaction aborted: {error}"), wait);
                    self.context.fatal.sleep(wait).await?;
                    self.resend(&mut batch).await?;
                }
                TransactionFailure::Fatal { .. } => {
                    self.renew_after(&error, "failed to commit a transaction", &mut renewals)
                        .await?;
                    self.resend(&mut batch).await?;
                }
            }
        }
    }

    /// A partition of the transaction was revoked: aborts it and sends the pages still owned
    /// again; `true` when none is left.
    async fn drop_revoked(&self, batch: &mut Vec<Pending>) -> Result<bool, Stopped> {
        self.abort(batch.len(), "a partition of the transaction was revoked")
            .await?;
        let before = batch.len();
        {
            let tracker = self.context.tracker.lock().expect("tracker lock");
            batch.retain(|pending| tracker.is_current(&pending.page.ticket));
        }
        for _ in batch.len()..before {
            self.context.metrics.page_finished();
        }
        if batch.is_empty() {
            return Ok(true);
        }
        self.resend(batch).await?;
        Ok(false)
    }

    /// Checks under the commit gate that every page's partition is still owned, then adds the
    /// offsets to the transaction and commits it.
    async fn try_commit(&self, batch: &[Pending]) -> Attempt {
        let tickets: Vec<Ticket> = batch.iter().map(|pending| pending.page.ticket.clone()).collect();
        let (sink, consumer, tracker, handover) = (
            self.context.sink.clone(),
            self.context.consumer.clone(),
            self.context.tracker.clone(),
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
                return Attempt::Failed(KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::State));
            };
            let started = Instant::now();
            let offsets = next_offsets(&tickets);
            if let Err(error) = sink.send_offsets_to_transaction(&offsets, &group, TRANSACTION_CALL_TIMEOUT) {
                return Attempt::Failed(error);
            }
            commit_outcome(sink.commit_transaction(TRANSACTION_CALL_TIMEOUT), started)
        })
        .await;
        attempt
            .unwrap_or_else(|_| Attempt::Failed(KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::Fail)))
    }

    /// Calls `commit_transaction` again after it did not finish, under the commit gate: the
    /// offsets are in the transaction already and ownership was checked when they were added.
    async fn resume_commit(&self) -> Attempt {
        let (sink, handover) = (self.context.sink.clone(), self.handover.clone());
        tokio::task::spawn_blocking(move || {
            let _gate = handover.commit_gate();
            commit_outcome(sink.commit_transaction(TRANSACTION_CALL_TIMEOUT), Instant::now())
        })
        .await
        .unwrap_or_else(|_| Attempt::Failed(KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::Fail)))
    }
}

/// What a `commit_transaction` call started at `started` came to: a retriable failure leaves the
/// commit unfinished, to be resumed.
fn commit_outcome(result: Result<(), KafkaError>, started: Instant) -> Attempt {
    match result {
        Ok(()) => Attempt::Committed(started.elapsed()),
        Err(error) if classify_transaction(&error) == TransactionFailure::Retry => Attempt::CommitUnfinished(error),
        Err(error) => Attempt::Failed(error),
    }
}

impl Transactions {
    /// Aborts the open transaction (retrying while the call times out).
    async fn abort(&self, pages: usize, reason: &str) -> Result<(), Stopped> {
        self.context.metrics.transaction_aborted(pages, reason);
        self.rollback_quote_filter();
        let mut backoff = self.context.backoff;
        loop {
            let sink = self.context.sink.clone();
            let result = tokio::task::spawn_blocking(move || sink.abort_transaction(TRANSACTION_CALL_TIMEOUT))
                .await
                .unwrap_or(Err(KafkaError::Canceled));
            let Err(error) = result else { return Ok(()) };
            match classify_transaction(&error) {
                TransactionFailure::Fatal { .. } => {
                    // The new producer aborts the open transaction as it starts.
                    let mut renewals = 0;
                    return self
                        .renew_after(&error, "failed to abort a transaction", &mut renewals)
                        .await;
                }
                TransactionFailure::Retry if !self.context.fatal.is_stopped() => {
                    tracing::warn!(error = %error, "aborting the transaction timed out; retrying");
                    self.context.fatal.sleep(backoff.next_wait()).await?;
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
    async fn dead_letter_rejected(&self, batch: &mut [Pending]) -> Result<(), Stopped> {
        for pending in batch.iter_mut() {
            let reported = tokio::time::timeout(PURGED_REPORT_TIMEOUT, pending.acks.settled())
                .await
                .unwrap_or_default();
            let rejected = pending.rejected.take().or_else(|| {
                reported
                    .into_iter()
                    .map(|report| report.error)
                    .find(|error| classify(error) == FailureKind::Permanent)
            });
            let Some(error) = rejected else { continue };
            if pending.page.dead_lettered.is_some() {
                self.context.dead_letter_refused(&mut pending.page, &error)?;
            } else {
                self.context.dead_letter_instead(&mut pending.page, &error);
            }
        }
        Ok(())
    }

    /// Opens a new transaction and enqueues every page of the batch again.
    async fn resend(&self, batch: &mut [Pending]) -> Result<(), Stopped> {
        self.begin().await?;
        for pending in batch.iter_mut() {
            self.enqueue(pending).await;
        }
        Ok(())
    }

    /// The batch is committed: its pages are done (their offsets were committed with it).
    fn committed(&self, batch: Vec<Pending>, took: Duration) {
        if let Some(filter) = &self.context.quote_filter {
            filter.lock().expect("quote filter lock").commit();
        }
        self.context.metrics.transaction_committed(batch.len(), took);
        let mut tracker = self.context.tracker.lock().expect("tracker lock");
        for pending in &batch {
            // Nothing to store: the offsets were committed with the transaction.
            let _ = tracker.complete(&pending.page.ticket);
        }
        drop(tracker);
        for pending in batch {
            self.context.page_delivered(&pending.page);
        }
    }

    /// The open transaction's quotes were never published: the filter forgets them.
    fn rollback_quote_filter(&self) {
        if let Some(filter) = &self.context.quote_filter {
            let mut filter = filter.lock().expect("quote filter lock");
            filter.rollback();
            self.context.metrics.quote_symbols(filter.tracked(), filter.evicted());
        }
    }

    /// Stopping: the open transaction is aborted; its pages are consumed again later.
    async fn abandon(&self, batch: Vec<Pending>) {
        self.rollback_quote_filter();
        let sink = self.context.sink.clone();
        if let Ok(Err(error)) =
            tokio::task::spawn_blocking(move || sink.abort_transaction(TRANSACTION_CALL_TIMEOUT)).await
        {
            tracing::warn!(error = %error, "open transaction not aborted; the broker aborts it after transaction_timeout_ms");
        } else {
            self.context.metrics.transaction_aborted(batch.len(), "stopping");
        }
        for _ in &batch {
            self.context.metrics.page_finished();
        }
    }

    /// A clear message for a fatal producer error.
    fn describe(&self, error: &KafkaError, what: &str) -> anyhow::Error {
        let sink = &self.context.sink;
        let fenced = matches!(classify_transaction(error), TransactionFailure::Fatal { fenced: true })
            || sink.fatal_error_code().is_some_and(is_fencing);
        let reason = sink.fatal_error().unwrap_or_else(|| error.to_string());
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
    fn a_commit_that_did_not_finish_is_resumed_not_aborted() {
        let started = Instant::now();
        // commit_transaction flushes first: a flush that timed out leaves the commit unfinished.
        let timed_out = KafkaError::Flush(rdkafka::types::RDKafkaErrorCode::OperationTimedOut);
        assert!(matches!(
            commit_outcome(Err(timed_out), started),
            Attempt::CommitUnfinished(KafkaError::Flush(_))
        ));
        let refused = KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::State);
        assert!(matches!(commit_outcome(Err(refused), started), Attempt::Failed(_)));
        assert!(matches!(commit_outcome(Ok(()), started), Attempt::Committed(_)));
    }
    use crate::offsets::OffsetTracker;

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
