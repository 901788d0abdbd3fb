//! Draining on shutdown or after a fatal error: stop consuming, let the pages in flight finish
//! (bounded by `pipeline.drain_timeout_ms`), stop, flush the producer, and, at-least-once, commit
//! the stored offsets one last time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::Consumer as _;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use super::fatal::Fatal;
use crate::metrics::Metrics;
use crate::offsets::OffsetTracker;
use crate::sink::Sink;
use crate::source::{Handover, PageConsumer};

/// How long the exactly-once stage may take to abort its open transaction once stopped.
const ABORT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the producer may take to deliver what is still queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What draining needs.
pub(super) struct Drain {
    /// The consumer (final commit).
    pub consumer: Arc<PageConsumer>,
    /// The producer (final flush).
    pub sink: Sink,
    /// Offsets of owned partitions (pages left when the deadline passes).
    pub tracker: Arc<Mutex<OffsetTracker>>,
    /// The consumer's handover (revokes stop waiting for pages once nothing finishes).
    pub handover: Arc<Handover>,
    /// Telemetry.
    pub metrics: Arc<Metrics>,
    /// The worker's stop, and its first fatal error.
    pub fatal: Fatal,
    /// The at-least-once delivery tasks.
    pub deliveries: TaskTracker,
    /// How long the pages in flight may take to finish.
    pub deadline: Duration,
    /// Whether delivery is exactly-once (offsets are committed in transactions).
    pub exactly_once: bool,
}

impl Drain {
    /// Drains once the consuming stage has stopped; the first fatal error, if any.
    pub async fn run(self, consume: JoinHandle<()>, mut produce: JoinHandle<()>) -> anyhow::Result<()> {
        let _ = consume.await;
        self.finish_in_flight(&mut produce).await;
        self.fatal.stop();
        if self.exactly_once && !produce.is_finished() {
            // The stage aborts its open transaction on stop (each call is bounded); an abort now
            // spares read_committed consumers waiting for the broker's transaction timeout.
            let _ = tokio::time::timeout(ABORT_TIMEOUT, produce).await;
        }
        // Nothing in flight finishes any more: revokes from closing the consumer do not wait.
        self.handover.set_stopped();
        let sink = self.sink.clone();
        let _ = tokio::task::spawn_blocking(move || sink.flush(FLUSH_TIMEOUT)).await;
        if !self.exactly_once {
            self.commit_stored_offsets().await?;
        }
        match self.fatal.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Waits, up to the deadline, for the producing stage and the deliveries to finish.
    async fn finish_in_flight(&self, produce: &mut JoinHandle<()>) {
        let drained = tokio::time::timeout(self.deadline, async {
            let _ = produce.await;
            self.deliveries.close();
            self.deliveries.wait().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                deadline_ms = self.deadline.as_millis() as u64,
                pending = self.tracker.lock().expect("tracker lock").pending(),
                "drain deadline passed; unfinished pages will be consumed again"
            );
        }
    }

    /// At-least-once: the final synchronous commit of everything stored.
    async fn commit_stored_offsets(&self) -> anyhow::Result<()> {
        let consumer = self.consumer.clone();
        let committed =
            tokio::task::spawn_blocking(move || consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync))
                .await
                .context("commit task panicked")?;
        match committed {
            Ok(()) => tracing::info!("final offsets committed"),
            Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => self.metrics.offsets_committed(Err(error.to_string())),
        }
        Ok(())
    }
}
