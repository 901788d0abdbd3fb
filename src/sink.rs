//! The Kafka producer: sends framed events, classifies failures, flushes; in exactly-once mode,
//! transactions.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
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
    /// Record headers.
    pub headers: Option<OwnedHeaders>,
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

/// Producer callbacks: statistics become the queue-depth gauge.
pub struct SinkContext {
    metrics: Arc<Metrics>,
}

impl ClientContext for SinkContext {
    fn stats(&self, statistics: Statistics) {
        self.metrics.producer_queue_depth(statistics.msg_cnt as i64);
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _result: &rdkafka::producer::DeliveryResult<'_>, _opaque: ()) {}
}

/// The producer of all output topics.
#[derive(Clone)]
pub struct Sink {
    producer: FutureProducer<SinkContext>,
}

impl Sink {
    /// Creates the producer.
    pub fn new(config: &ClientConfig, metrics: Arc<Metrics>) -> Result<Self, KafkaError> {
        let producer = config.create_with_context(SinkContext { metrics })?;
        Ok(Self { producer })
    }

    /// Enqueues one record, waiting while the local queue is full. Returns the future of its
    /// acknowledgement.
    pub async fn enqueue(&self, record: &OutRecord) -> Result<DeliveryFuture, KafkaError> {
        loop {
            let mut future_record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&record.topic);
            if let Some(key) = &record.key {
                future_record = future_record.key(key.as_slice());
            }
            if let Some(payload) = &record.payload {
                future_record = future_record.payload(payload.as_slice());
            }
            if let Some(headers) = &record.headers {
                future_record = future_record.headers(headers.clone());
            }
            match self.producer.send_result(future_record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// The producer's fatal error, if it has one.
    pub fn fatal_error(&self) -> Option<String> {
        self.producer
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{code:?}: {reason}"))
    }

    /// The code of the producer's fatal error, if it has one.
    pub fn fatal_error_code(&self) -> Option<RDKafkaErrorCode> {
        self.producer.client().fatal_error().map(|(code, _)| code)
    }

    /// Waits for every enqueued record to be acknowledged, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }

    /// Exactly-once: fences earlier producers with the same `transactional.id` (aborting the
    /// transaction they left open) and readies this one. Blocks up to `timeout`.
    pub fn init_transactions(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.init_transactions(timeout)
    }

    /// Exactly-once: opens a transaction (local, does not block).
    pub fn begin_transaction(&self) -> Result<(), KafkaError> {
        self.producer.begin_transaction()
    }

    /// Exactly-once: adds the input offsets to the open transaction. Blocks up to `timeout`.
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), KafkaError> {
        self.producer.send_offsets_to_transaction(offsets, group, timeout)
    }

    /// Exactly-once: flushes and commits the open transaction. Blocks up to `timeout`.
    pub fn commit_transaction(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.commit_transaction(timeout)
    }

    /// Exactly-once: aborts the open transaction, purging what was not sent. Blocks up to `timeout`.
    pub fn abort_transaction(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.abort_transaction(timeout)
    }

    /// The underlying producer (for metadata queries).
    pub fn producer(&self) -> &FutureProducer<SinkContext> {
        &self.producer
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

    #[test]
    fn a_commit_whose_flush_timed_out_is_retried() {
        assert_eq!(
            classify_transaction(&KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)),
            TransactionFailure::Retry
        );
        assert!(is_fencing(RDKafkaErrorCode::Fenced) && is_fencing(RDKafkaErrorCode::ProducerFenced));
    }
}
