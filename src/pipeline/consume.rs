//! Consuming with back-pressure: each message waits for room under the in-flight bounds (pages
//! and bytes) before it is tracked and handed to the split pool; while the wait is long, fetching
//! is paused but the consumer keeps polling.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use super::context::{InFlight, Permits};
use super::fatal::Fatal;
use super::records::InMessage;
use super::split_pool::Splitter;
use crate::metrics::{Metrics, Wait};
use crate::offsets::{Assignment, OffsetTracker, Ticket};
use crate::source::PageConsumer;

/// How long consumption may wait for room under the in-flight bound before fetching is paused
/// (well under librdkafka's default `max.poll.interval.ms` of 300 s).
const PAUSE_AFTER: Duration = Duration::from_secs(5);

/// The group fenced this worker's consumer off as a static member: another consumer joined with
/// the same `group.instance.id`, or librdkafka rejoined after its session expired (a broker or
/// coordinator outage) while a request of the old membership was still answered. The consumer
/// cannot be used any more; the worker can start again under the same name.
#[derive(Debug, thiserror::Error)]
#[error("the consumer group fenced this member off (static membership): {reason}")]
pub struct ConsumerFenced {
    /// librdkafka's description.
    pub reason: String,
}

/// The bounds on pages in flight (consumed and not yet done): their number and their bytes.
pub(super) struct InFlightBound {
    pages: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_bytes: usize,
}

impl InFlightBound {
    /// At most `max_pages` pages and `max_bytes` bytes (capped at `u32::MAX`) in flight.
    pub fn new(max_pages: usize, max_bytes: usize) -> Self {
        let max_bytes = max_bytes.min(u32::MAX as usize);
        Self {
            pages: Arc::new(Semaphore::new(max_pages)),
            bytes: Arc::new(Semaphore::new(max_bytes)),
            max_bytes,
        }
    }

    /// Waits for room for one message (a message larger than the bound takes all of it).
    async fn room_for(&self, message: &InMessage) -> Permits {
        let size = message.size().clamp(1, self.max_bytes) as u32;
        let pages = self.pages.clone().acquire_owned().await.expect("semaphore open");
        let bytes = self
            .bytes
            .clone()
            .acquire_many_owned(size)
            .await
            .expect("semaphore open");
        (pages, bytes)
    }
}

/// A message as received, with the assignment of its partition at that moment (`None` when its
/// partition was not assigned any more).
struct Received {
    message: InMessage,
    under: Option<Assignment>,
}

/// The consuming stage: consume, wait for room, track, hand to the split pool, pass on in order.
pub(super) struct Consume {
    /// The consumer, subscribed to the input topic.
    pub consumer: Arc<PageConsumer>,
    /// Offsets of owned partitions.
    pub tracker: Arc<Mutex<OffsetTracker>>,
    /// Telemetry.
    pub metrics: Arc<Metrics>,
    /// The split pool.
    pub splitter: Splitter,
    /// The in-flight bounds.
    pub bound: InFlightBound,
    /// Cancelled when shutdown is requested.
    pub shutdown: CancellationToken,
    /// The worker's stop.
    pub fatal: Fatal,
    /// The pages in consumption order, to the delivery stage.
    pub ordered: mpsc::Sender<InFlight>,
}

impl Consume {
    /// Consumes until shutdown, a stop, or the delivery stage is gone.
    pub async fn run(self) {
        // Messages received while paused: they come before anything received later.
        let mut stash: VecDeque<Received> = VecDeque::new();
        loop {
            let Some(received) = self.next_message(&mut stash).await else {
                break;
            };
            let waiting = Instant::now();
            let Some(permits) = self.wait_for_room(&received.message, &mut stash).await else {
                break;
            };
            self.metrics.page_waited(Wait::InFlightBound, waiting.elapsed());
            let Some(ticket) = self.track(&received) else {
                continue;
            };
            let message = received.message;
            self.metrics.page_consumed(&message.topic);
            let (done, work) = oneshot::channel();
            self.splitter.start(message, done);
            let page = InFlight { ticket, work, permits };
            if self.ordered.send(page).await.is_err() {
                break;
            }
        }
        tracing::info!("stopped consuming");
    }

    /// The next message, stashed or received; `None` when stopping.
    async fn next_message(&self, stash: &mut VecDeque<Received>) -> Option<Received> {
        if let Some(message) = stash.pop_front() {
            return Some(message);
        }
        loop {
            let received = tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                _ = self.fatal.stopped() => return None,
                received = self.consumer.recv() => received,
            };
            match received {
                Ok(message) => return Some(self.received(InMessage::from_borrowed(&message))),
                Err(error) => self.consumer_error(error).ok()?,
            }
        }
    }

    /// Logs a consumer error; a fatal one stops the worker (`Err`), as [`ConsumerFenced`] when
    /// the group fenced this static member off.
    fn consumer_error(&self, error: KafkaError) -> Result<(), ()> {
        tracing::warn!(error = %error, "consumer error");
        if let KafkaError::MessageConsumptionFatal(_) = error {
            let cause = match self.consumer.client().fatal_error() {
                Some((RDKafkaErrorCode::FencedInstanceId, reason)) => anyhow::Error::new(ConsumerFenced { reason }),
                Some((code, reason)) => anyhow::anyhow!("fatal consumer error: {code:?}: {reason}"),
                None => anyhow::anyhow!("fatal consumer error: {error}"),
            };
            let _ = self.fatal.fail(cause);
            return Err(());
        }
        Ok(())
    }

    /// Waits for room under the in-flight bound; librdkafka's bounded prefetch queue holds
    /// further messages meanwhile. `None` when stopping.
    async fn wait_for_room(&self, message: &InMessage, stash: &mut VecDeque<Received>) -> Option<Permits> {
        tokio::select! {
            _ = self.shutdown.cancelled() => return None,
            _ = self.fatal.stopped() => return None,
            permits = self.bound.room_for(message) => return Some(permits),
            _ = tokio::time::sleep(PAUSE_AFTER) => {}
        }
        // Still no room (the output is slow or down): pause fetching but keep polling, so the
        // group does not evict this worker for exceeding max.poll.interval.ms. (Pausing drops
        // librdkafka's prefetched messages, so it is only worth it for long waits.)
        set_paused(&self.consumer, true);
        let permits = loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break None,
                _ = self.fatal.stopped() => break None,
                permits = self.bound.room_for(message) => break Some(permits),
                received = self.consumer.recv() => match received {
                    Ok(received) => {
                        stash.push_back(self.received(InMessage::from_borrowed(&received)));
                        // From a partition assigned since the pause (or prefetched before it):
                        // pause the whole assignment again, so the stash holds at most what was
                        // fetched.
                        set_paused(&self.consumer, true);
                    }
                    Err(error) => {
                        if self.consumer_error(error).is_err() {
                            break None;
                        }
                    }
                }
            }
        };
        set_paused(&self.consumer, false);
        permits
    }

    /// A message just received, with its partition's assignment now.
    fn received(&self, message: InMessage) -> Received {
        let under = self
            .tracker
            .lock()
            .expect("tracker lock")
            .assignment(&message.topic, message.partition);
        Received { message, under }
    }

    /// Tracks a message's offset; `None` when its partition was revoked since it was received,
    /// even if it was assigned again meanwhile (its owner consumes it again from the committed
    /// offset: a message waiting for room through a lost session and a new assignment would
    /// otherwise be published twice, and move the committed offset past pages not yet done).
    fn track(&self, received: &Received) -> Option<Ticket> {
        let message = &received.message;
        let ticket = received.under.and_then(|under| {
            self.tracker.lock().expect("tracker lock").track_received(
                &message.topic,
                message.partition,
                message.offset,
                under,
            )
        });
        if ticket.is_none() {
            tracing::debug!(
                topic = %message.topic,
                partition = message.partition,
                offset = message.offset,
                "message of a revoked partition skipped"
            );
        }
        ticket
    }
}

/// Pauses or resumes fetching of every partition currently assigned.
fn set_paused(consumer: &PageConsumer, paused: bool) {
    let Ok(assignment) = consumer.assignment() else {
        return;
    };
    let result = if paused {
        consumer.pause(&assignment)
    } else {
        consumer.resume(&assignment)
    };
    match result {
        Ok(()) => tracing::debug!(
            paused,
            partitions = assignment.count(),
            "in-flight bound: fetching paused/resumed"
        ),
        Err(error) => tracing::warn!(error = %error, paused, "failed to pause or resume fetching"),
    }
}
