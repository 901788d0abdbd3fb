//! The Kafka producer: sends framed events, classifies failures, flushes; in exactly-once mode,
//! transactions.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::Poll;
use std::time::Duration;

use futures::task::AtomicWaker;

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message as _;
use rdkafka::{ClientConfig, TopicPartitionList};

use crate::metrics::Metrics;

/// One record to produce.
#[derive(Debug, Clone)]
pub struct OutRecord {
    /// Destination topic (shared by the records of a page: no copy per record).
    pub topic: std::sync::Arc<str>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub payload: Option<Vec<u8>>,
    /// Record headers (shared by the records of a page; the producer takes a copy of its own).
    pub headers: Option<Arc<OwnedHeaders>>,
}

/// How a failed send should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// May succeed later (broker down, queue full, timeout): back off, hold the offset.
    Transient,
    /// Will fail the same way for this record (too large): dead-letter the page.
    Permanent,
    /// The producer cannot go on (authorization, fencing): stop the worker.
    Fatal,
}

/// Classifies a produce error.
pub fn classify(error: &KafkaError) -> FailureKind {
    let code = match error {
        KafkaError::MessageProduction(code) => *code,
        _ => return FailureKind::Transient,
    };
    match code {
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidRecord | RDKafkaErrorCode::InvalidMessage => {
            FailureKind::Permanent
        }
        RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::ClusterAuthorizationFailed
        | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
        | RDKafkaErrorCode::SaslAuthenticationFailed
        | RDKafkaErrorCode::ProducerFenced
        | RDKafkaErrorCode::InvalidProducerEpoch
        | RDKafkaErrorCode::Fatal => FailureKind::Fatal,
        _ => FailureKind::Transient,
    }
}

/// How a failed transactional call should be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionFailure {
    /// The call may be made again (timeout, coordinator moving).
    Retry,
    /// The transaction must be aborted; its pages are then sent again in a new one.
    Abort,
    /// The producer cannot go on (fenced by another worker, not authorized): stop the worker.
    Fatal {
        /// Whether another producer with the same `transactional.id` fenced this one.
        fenced: bool,
    },
}

/// Whether an error code means another producer with the same `transactional.id` took over.
pub fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch | RDKafkaErrorCode::Fenced
    )
}

/// Classifies the error of a transactional call (`begin`, `send_offsets`, `commit`, `abort`).
pub fn classify_transaction(error: &KafkaError) -> TransactionFailure {
    match error {
        KafkaError::Transaction(rd) if rd.is_fatal() => TransactionFailure::Fatal {
            fenced: is_fencing(rd.code()),
        },
        KafkaError::Transaction(rd) if rd.txn_requires_abort() => TransactionFailure::Abort,
        KafkaError::Transaction(rd) if rd.is_retriable() => TransactionFailure::Retry,
        // commit_transaction flushes first; a flush that timed out is retried like a commit.
        KafkaError::Flush(_) => TransactionFailure::Retry,
        KafkaError::Transaction(rd) if is_fencing(rd.code()) => TransactionFailure::Fatal { fenced: true },
        _ => TransactionFailure::Abort,
    }
}

/// How long to wait before trying again when the producer's queue is full.
pub const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

/// Whether an enqueue failed only because the producer's local queue is full.
pub fn is_queue_full(error: &KafkaError) -> bool {
    matches!(error, KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
}

/// Hands `record` to a producer through `send` (`ThreadedProducer::send`,
/// `FutureProducer::send_result`, ...), waiting [`QUEUE_FULL_BACKOFF`] and trying again while
/// the producer's local queue is full. `while_full` runs before each wait (e.g. to take in the
/// acknowledgements that make room); returning `ControlFlow::Break` ends the waiting, and the
/// `QueueFull` error is returned with the record. Any other outcome is returned as it is.
#[allow(
    clippy::result_large_err,
    reason = "the shape of rdkafka's `send`: the record comes back"
)]
pub async fn send_waiting_while_queue_full<R, T>(
    mut record: R,
    mut send: impl FnMut(R) -> Result<T, (KafkaError, R)>,
    mut while_full: impl FnMut() -> ControlFlow<()>,
) -> Result<T, (KafkaError, R)> {
    loop {
        match send(record) {
            Err((error, back)) if is_queue_full(&error) => {
                if while_full().is_break() {
                    return Err((error, back));
                }
                record = back;
                tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
            }
            result => return result,
        }
    }
}

/// A record the broker did not acknowledge, as its delivery report gave it back.
#[derive(Debug)]
pub struct FailedRecord {
    /// Why it failed.
    pub error: KafkaError,
    /// Its topic.
    pub topic: String,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub payload: Option<Vec<u8>>,
}

impl FailedRecord {
    /// Whether this is (a copy of) `record`.
    pub fn is(&self, record: &OutRecord) -> bool {
        *self.topic == *record.topic && self.key == record.key && self.payload == record.payload
    }
}

/// The acknowledgements of a group of records (a page's): one counter and one wake-up for the
/// group instead of a channel per record. Records sent with it count as pending until their
/// delivery report arrives; [`Acks::settled`] resolves when none is pending.
#[derive(Debug, Default)]
pub struct Acks {
    pending: AtomicUsize,
    failed: Mutex<Vec<FailedRecord>>,
    waker: AtomicWaker,
}

impl Acks {
    /// A new, empty group.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Records sent and not yet reported.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Resolves once every record sent so far has been reported, with those that failed (and
    /// forgets them, so the group can be used again for their re-sends).
    pub fn settled(&self) -> impl Future<Output = Vec<FailedRecord>> + '_ {
        std::future::poll_fn(move |cx| {
            if self.pending() > 0 {
                self.waker.register(cx.waker());
                if self.pending() > 0 {
                    return Poll::Pending;
                }
            }
            Poll::Ready(std::mem::take(&mut *self.failed.lock().expect("acks lock")))
        })
    }

    fn sending(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
    }

    fn report(&self, result: &DeliveryResult<'_>) {
        if let Err((error, message)) = result {
            self.failed.lock().expect("acks lock").push(FailedRecord {
                error: error.clone(),
                topic: message.topic().to_owned(),
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().map(<[u8]>::to_vec),
            });
        }
        self.settle_one();
    }

    fn settle_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waker.wake();
        }
    }
}

/// Producer callbacks: delivery reports settle their group's [`Acks`]; statistics become the
/// queue-depth gauge.
pub struct SinkContext {
    metrics: Arc<Metrics>,
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: Statistics) {
        self.metrics.producer_queue_depth(statistics.msg_cnt as i64);
        // librdkafka retries produce requests itself (with `message.timeout.ms = 0`, for as long
        // as the brokers are away): only its statistics see them.
        self.metrics
            .producer_request_retries(statistics.brokers.values().map(|broker| broker.txretries).sum());
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = Arc<Acks>;
    fn delivery(&self, result: &DeliveryResult<'_>, acks: Arc<Acks>) {
        acks.report(result);
    }
}

type OutputProducer = ThreadedProducer<SinkContext>;

/// The producer of all output topics. Clones share it; exactly-once, [`renew`](Self::renew)
/// replaces it for every clone after a fatal error.
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

struct Shared {
    producer: RwLock<Arc<OutputProducer>>,
    config: ClientConfig,
    metrics: Arc<Metrics>,
}

impl Sink {
    /// Creates the producer.
    pub fn new(config: &ClientConfig, metrics: Arc<Metrics>) -> Result<Self, KafkaError> {
        let producer = config.create_with_context(SinkContext {
            metrics: metrics.clone(),
        })?;
        Ok(Self {
            shared: Arc::new(Shared {
                producer: RwLock::new(Arc::new(producer)),
                config: config.clone(),
                metrics,
            }),
        })
    }

    /// The producer now.
    fn producer(&self) -> Arc<OutputProducer> {
        self.shared
            .producer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Exactly-once, after a fatal error that is not fencing (librdkafka's producer is unusable
    /// then, e.g. its sequence numbers out of step with a restarted broker): creates a new
    /// producer with the same settings and `transactional.id`, whose `init_transactions` fences
    /// the old one and aborts the transaction it left open, and puts it in the old one's place.
    /// Blocks up to `timeout`. The old producer's unsent records are dropped with it.
    pub fn renew(&self, timeout: Duration) -> Result<(), KafkaError> {
        let fresh: OutputProducer = self.shared.config.create_with_context(SinkContext {
            metrics: self.shared.metrics.clone(),
        })?;
        fresh.init_transactions(timeout)?;
        let old = std::mem::replace(
            &mut *self
                .shared
                .producer
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Arc::new(fresh),
        );
        drop(old);
        Ok(())
    }

    /// Enqueues one record, waiting while the local queue is full; its delivery report goes to
    /// `acks`.
    pub async fn enqueue(&self, record: &OutRecord, acks: &Arc<Acks>) -> Result<(), KafkaError> {
        self.enqueue_with(record, acks, || ControlFlow::Continue(())).await
    }

    /// Enqueues one record as [`send_waiting_while_queue_full`] does: `while_full` runs before
    /// each wait for room and may end the waiting (the `QueueFull` error is then returned). Its
    /// delivery report goes to `acks`.
    #[allow(
        clippy::result_large_err,
        reason = "the shape of rdkafka's `send`: the record comes back"
    )]
    pub async fn enqueue_with(
        &self,
        record: &OutRecord,
        acks: &Arc<Acks>,
        while_full: impl FnMut() -> ControlFlow<()>,
    ) -> Result<(), KafkaError> {
        let mut base: BaseRecord<'_, [u8], [u8], Arc<Acks>> = BaseRecord::with_opaque_to(&record.topic, acks.clone());
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        if let Some(payload) = &record.payload {
            base = base.payload(payload.as_slice());
        }
        if let Some(headers) = &record.headers {
            base = base.headers(OwnedHeaders::clone(headers));
        }
        acks.sending();
        let producer = self.producer();
        send_waiting_while_queue_full(base, |base| producer.send(base), while_full)
            .await
            .map_err(|(error, _)| {
                // Not enqueued: no report will come for it.
                acks.settle_one();
                error
            })
    }

    /// The producer's fatal error, if it has one.
    pub fn fatal_error(&self) -> Option<String> {
        self.producer()
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{code:?}: {reason}"))
    }

    /// The code of the producer's fatal error, if it has one.
    pub fn fatal_error_code(&self) -> Option<RDKafkaErrorCode> {
        self.producer().client().fatal_error().map(|(code, _)| code)
    }

    /// Waits for every enqueued record to be acknowledged, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer().flush(timeout)
    }

    /// Exactly-once: fences earlier producers with the same `transactional.id` (aborting the
    /// transaction they left open) and readies this one. Blocks up to `timeout`.
    pub fn init_transactions(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer().init_transactions(timeout)
    }

    /// Exactly-once: opens a transaction (local, does not block).
    pub fn begin_transaction(&self) -> Result<(), KafkaError> {
        self.producer().begin_transaction()
    }

    /// Exactly-once: adds the input offsets to the open transaction. Blocks up to `timeout`.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), KafkaError> {
        self.producer().send_offsets_to_transaction(offsets, group, timeout)
    }

    /// Exactly-once: flushes and commits the open transaction. Blocks up to `timeout`.
    pub fn commit_transaction(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer().commit_transaction(timeout)
    }

    /// Exactly-once: aborts the open transaction, purging what was not sent. Blocks up to `timeout`.
    pub fn abort_transaction(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer().abort_transaction(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_failures_are_sorted_by_whether_a_retry_helps() {
        let produce = |code| KafkaError::MessageProduction(code);
        assert_eq!(classify(&produce(RDKafkaErrorCode::QueueFull)), FailureKind::Transient);
        assert_eq!(
            classify(&produce(RDKafkaErrorCode::MessageSizeTooLarge)),
            FailureKind::Permanent
        );
        assert_eq!(classify(&produce(RDKafkaErrorCode::ProducerFenced)), FailureKind::Fatal);
        assert_eq!(
            classify(&produce(RDKafkaErrorCode::TopicAuthorizationFailed)),
            FailureKind::Fatal
        );
    }

    fn record(key: &str) -> OutRecord {
        OutRecord {
            topic: "events".into(),
            key: Some(key.as_bytes().to_vec()),
            payload: Some(format!("value of {key}").into_bytes()),
            headers: None,
        }
    }

    #[tokio::test]
    async fn a_group_settles_once_every_record_is_reported_with_the_failed_ones() {
        use rdkafka::mocking::MockCluster;
        use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("events", 1, 1).unwrap();
        let sink = Sink::new(
            ClientConfig::new()
                .set("bootstrap.servers", cluster.bootstrap_servers())
                .set("linger.ms", "0"),
            Arc::new(Metrics::new()),
        )
        .unwrap();

        let acks = Acks::new();
        for key in ["a", "b", "c"] {
            sink.enqueue(&record(key), &acks).await.unwrap();
        }
        let failed = tokio::time::timeout(Duration::from_secs(10), acks.settled())
            .await
            .unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(acks.pending(), 0);

        // The broker rejects the next produce request for good: the report names the record.
        cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
        );
        let acks = Acks::new();
        sink.enqueue(&record("d"), &acks).await.unwrap();
        let failed = tokio::time::timeout(Duration::from_secs(10), acks.settled())
            .await
            .unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(classify(&failed[0].error), FailureKind::Permanent);
        assert!(failed[0].is(&record("d")) && !failed[0].is(&record("a")));
        // Settled again right away: the failures were handed over once.
        assert!(acks.settled().await.is_empty());
    }

    #[test]
    fn a_commit_whose_flush_timed_out_is_retried() {
        assert_eq!(
            classify_transaction(&KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)),
            TransactionFailure::Retry
        );
        assert!(is_fencing(RDKafkaErrorCode::Fenced) && is_fencing(RDKafkaErrorCode::ProducerFenced));
    }
}
