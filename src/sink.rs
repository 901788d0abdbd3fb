//! The Kafka producer: sends framed events, classifies failures, flushes.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::metrics::Metrics;

/// One record to produce.
#[derive(Debug, Clone)]
pub struct OutRecord {
    /// Destination topic.
    pub topic: String,
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

    /// Waits for every enqueued record to be acknowledged, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }

    /// The underlying producer (for metadata queries).
    pub fn producer(&self) -> &FutureProducer<SinkContext> {
        &self.producer
    }
}
