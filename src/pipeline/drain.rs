//! Draining on shutdown or after a fatal error: stop consuming, let the pages in flight finish
//! (bounded by `pipeline.drain_timeout_ms`), stop, flush the producer, at-least-once commit the
//! stored offsets one last time, and close the consumer (leaving the group).
//!
//! Every step after the drain deadline shares one more deadline, [`CLOSE_TIMEOUT`], whatever the
//! brokers do: librdkafka's synchronous commit and its consumer close have none of their own
//! (with the coordinator unreachable each waited ~45 s), so they run on threads of their own and
//! are given up at the deadline. Offsets not committed then are consumed again by the next owner.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// After the drain: how long flushing the producer, the final commit and closing the consumer
/// may take together.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest the producer's flush may take of [`CLOSE_TIMEOUT`].
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest the final commit may take of [`CLOSE_TIMEOUT`]; the rest is for the close.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(2);

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
            let _ = tokio::time::timeout(ABORT_TIMEOUT, &mut produce).await;
        }
        // Nothing in flight finishes any more: revokes from closing the consumer do not wait.
        self.handover.set_stopped();
        let close_by = Instant::now() + CLOSE_TIMEOUT;
        let sink = self.sink.clone();
        let flush = FLUSH_TIMEOUT.min(close_by.saturating_duration_since(Instant::now()));
        let _ = tokio::task::spawn_blocking(move || sink.flush(flush)).await;
        if !self.exactly_once {
            self.commit_stored_offsets(COMMIT_TIMEOUT.min(close_by.saturating_duration_since(Instant::now())))
                .await;
        }
        if !produce.is_finished() {
            // Stopped, the stage ends soon; it holds the consumer, which closes with its last holder.
            let _ = tokio::time::timeout(close_by.saturating_duration_since(Instant::now()), produce).await;
        }
        let Drain {
            consumer,
            fatal,
            deliveries,
            ..
        } = self;
        close_consumer(consumer, &deliveries, close_by).await;
        match fatal.take() {
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

    /// At-least-once: the final synchronous commit of everything stored, given up after
    /// `timeout` (the brokers unreachable): its pages are consumed again by the next owner.
    async fn commit_stored_offsets(&self, timeout: Duration) {
        let consumer = self.consumer.clone();
        let committed = on_own_thread("pagesplit-commit", timeout, move || {
            consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        })
        .await;
        match committed {
            Some(Ok(())) => tracing::info!("final offsets committed"),
            Some(Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset))) => {}
            Some(Err(error)) => self.metrics.offsets_committed(Err(error.to_string())),
            None => self.metrics.offsets_committed(Err(format!(
                "final commit not answered in time ({} ms); uncommitted pages will be consumed again",
                timeout.as_millis()
            ))),
        }
    }
}

/// Closes the consumer (its group leaves, or as a static member, stays until its session times
/// out), given up at `close_by`. The consumer closes when its last holder drops it: once the
/// pipeline's other holders are gone, this one is dropped on a thread of its own.
async fn close_consumer(consumer: Arc<PageConsumer>, deliveries: &TaskTracker, close_by: Instant) {
    let left = || close_by.saturating_duration_since(Instant::now());
    let _ = tokio::time::timeout(left(), deliveries.wait()).await;
    while Arc::strong_count(&consumer) > 1 && !left().is_zero() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let last = Arc::strong_count(&consumer) == 1;
    if on_own_thread("pagesplit-close", left(), move || drop(consumer))
        .await
        .is_some()
        && last
    {
        tracing::debug!(took_ms = started.elapsed().as_millis() as u64, "consumer closed");
    } else {
        tracing::warn!("consumer not closed in time; exiting without waiting for the brokers");
    }
}

/// Runs `work`, which may block for long, on a thread of its own and waits at most `timeout`
/// for it: `None` when it did not finish in time (the thread goes on, and is abandoned at exit).
async fn on_own_thread<R: Send + 'static>(
    name: &str,
    timeout: Duration,
    work: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let (done, result) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        let _ = done.send(work());
    });
    if spawned.is_err() {
        return None;
    }
    tokio::time::timeout(timeout, result).await.ok()?.ok()
}
