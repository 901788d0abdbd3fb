//! The Kafka consumer and its context: rebalances, commits and statistics.
//!
//! When the group takes partitions away, the revoke callback runs on the thread that polls the
//! consumer (inside the pipeline's `recv()`), before the partitions go. It waits, up to
//! `pipeline.revoke_timeout_ms`, for the pages of those partitions already in flight, polling the
//! offset tracker's pending count (the pipeline's tasks finish them meanwhile: the wait runs in
//! `block_in_place`, so the runtime moves other tasks off this thread). Then, at-least-once, it
//! commits the stored offsets of those partitions, asynchronously: the commit request goes to
//! the group coordinator ahead of the worker's next join request (the new owner is assigned the
//! partitions only after that join), and the revoke never waits for brokers that do not answer;
//! exactly-once, the pipeline has committed their pages in a transaction meanwhile. Finally it forgets the partitions: pages
//! still unfinished are abandoned (their late completions are ignored and never committed; in
//! exactly-once mode their transaction is aborted) and the new owner consumes them again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::config::DeliveryMode;
use crate::metrics::Metrics;
use crate::offsets::OffsetTracker;

/// The consumer used by the pipeline.
pub type PageConsumer = StreamConsumer<SourceContext>;

/// What a revoke callback and the pipeline share.
pub struct Handover {
    mode: DeliveryMode,
    revoke_timeout: Duration,
    /// Revokes waiting now; while there are any, the transactional pipeline commits at once.
    revoking: AtomicUsize,
    /// Wakes the transactional pipeline when a revoke starts waiting.
    revoke_started: tokio::sync::Notify,
    /// Exactly-once: held while a transaction's pages are checked and committed. A revoke takes it
    /// before it forgets its partitions, so no transaction commits a page of a revoked partition.
    commit_gate: Mutex<()>,
    /// Set once the pipeline has stopped: revokes (closing the consumer) no longer wait.
    stopped: AtomicBool,
}

impl Handover {
    /// Shared state of a pipeline in `mode`.
    pub fn new(mode: DeliveryMode, revoke_timeout: Duration) -> Self {
        Self {
            mode,
            revoke_timeout,
            revoking: AtomicUsize::new(0),
            revoke_started: tokio::sync::Notify::new(),
            commit_gate: Mutex::new(()),
            stopped: AtomicBool::new(false),
        }
    }

    /// Whether a revoke is waiting for in-flight pages.
    pub fn revoke_waiting(&self) -> bool {
        self.revoking.load(Ordering::Acquire) > 0
    }

    /// Resolves when a revoke starts waiting (at once if one is waiting already).
    pub async fn revoke_started(&self) {
        let notified = self.revoke_started.notified();
        if self.revoke_waiting() {
            return;
        }
        notified.await;
    }

    /// Held while a transaction is checked and committed.
    pub fn commit_gate(&self) -> std::sync::MutexGuard<'_, ()> {
        self.commit_gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pipeline has stopped: nothing in flight will finish any more.
    pub fn set_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
    }
}

/// Runs `f`, which blocks, without stalling the runtime's other tasks when called on one of its
/// worker threads (the consumer's callbacks run inside `recv()`).
fn blocking_section<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// State shared between the consumer's callbacks and the pipeline.
pub struct SourceContext {
    metrics: Arc<Metrics>,
    tracker: Arc<Mutex<OffsetTracker>>,
    handover: Arc<Handover>,
    owned: Mutex<HashMap<(String, i32), Progress>>,
    assigned_once: Arc<AtomicBool>,
    stall_timeout: Duration,
}

/// Progress of one owned partition, for stall detection.
struct Progress {
    stored_offset: i64,
    since: Instant,
}

impl SourceContext {
    /// A context sharing `tracker` and `handover` with the pipeline.
    pub fn new(
        metrics: Arc<Metrics>,
        tracker: Arc<Mutex<OffsetTracker>>,
        handover: Arc<Handover>,
        stall_timeout: Duration,
    ) -> Self {
        Self {
            metrics,
            tracker,
            handover,
            owned: Mutex::new(HashMap::new()),
            assigned_once: Arc::new(AtomicBool::new(false)),
            stall_timeout,
        }
    }

    /// Partitions owned now.
    pub fn owned_partitions(&self) -> usize {
        self.owned.lock().expect("owned lock").len()
    }

    /// Whether the group has answered at least once (an assignment, possibly empty).
    pub fn joined_group(&self) -> bool {
        self.assigned_once.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Set once the group has answered: for readiness probes, which must not hold the consumer
    /// (its last holder closes it).
    pub fn joined_group_flag(&self) -> Arc<AtomicBool> {
        self.assigned_once.clone()
    }

    /// What the revoke callback shares with the pipeline.
    pub fn handover(&self) -> &Arc<Handover> {
        &self.handover
    }

    /// Waits (bounded) for the in-flight pages of `partitions` to finish; returns how many are
    /// still unfinished.
    fn wait_for_in_flight(&self, partitions: &[(String, i32)]) -> usize {
        let pending = || {
            let tracker = self.tracker.lock().expect("tracker lock");
            partitions
                .iter()
                .map(|(topic, partition)| tracker.pending_in(topic, *partition))
                .sum::<usize>()
        };
        let handover = &self.handover;
        if handover.stopped.load(Ordering::Acquire) {
            return pending();
        }
        handover.revoking.fetch_add(1, Ordering::AcqRel);
        handover.revoke_started.notify_waiters();
        let deadline = Instant::now() + handover.revoke_timeout;
        let left = loop {
            let left = pending();
            if left == 0 || Instant::now() >= deadline || handover.stopped.load(Ordering::Acquire) {
                break left;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        handover.revoking.fetch_sub(1, Ordering::AcqRel);
        left
    }

    /// At-least-once: commits the stored offsets of `partitions` before they go, without waiting
    /// for the answer (the commit callback counts it). Once the pipeline has stopped (the
    /// consumer closing), the drain has made the final commit already.
    fn commit_stored(&self, consumer: &BaseConsumer<Self>, partitions: &[(String, i32)]) {
        if self.handover.stopped.load(Ordering::Acquire) {
            return;
        }
        let mut offsets = TopicPartitionList::new();
        {
            let tracker = self.tracker.lock().expect("tracker lock");
            for (topic, partition) in partitions {
                if let Some(offset) = tracker.stored_offset(topic, *partition) {
                    let _ = offsets.add_partition_offset(topic, *partition, Offset::Offset(offset));
                }
            }
        }
        if offsets.count() == 0 {
            return;
        }
        match consumer.commit(&offsets, CommitMode::Async) {
            Ok(()) => tracing::debug!(
                partitions = offsets.count(),
                "offsets of revoked partitions sent for commit"
            ),
            Err(error) => self.metrics.offsets_committed(Err(error.to_string())),
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, partitions: &TopicPartitionList) {
        let partitions: Vec<(String, i32)> = partitions
            .elements()
            .iter()
            .map(|element| (element.topic().to_owned(), element.partition()))
            .collect();
        if partitions.is_empty() {
            return;
        }
        let started = Instant::now();
        // Lost (the session timed out, the brokers away): the group has given the partitions
        // to others already and takes no commit for them; nothing is worth waiting for.
        let lost = consumer.assignment_lost();
        let unfinished = if lost {
            tracing::warn!(partitions = partitions.len(), "partitions lost with the group session");
            0
        } else {
            self.wait_for_in_flight(&partitions)
        };
        if self.handover.mode == DeliveryMode::AtLeastOnce && !lost {
            self.commit_stored(consumer, &partitions);
        }
        // Exactly-once: wait for a commit in progress, so none includes these partitions later.
        // Not for lost partitions: the group takes no offsets for them from this member any
        // more (a transaction that adds them fails and is aborted), and a transaction call with
        // the brokers away may hold the gate for its whole timeout.
        let _gate = (!lost).then(|| self.handover.commit_gate());
        let mut tracker = self.tracker.lock().expect("tracker lock");
        let mut owned = self.owned.lock().expect("owned lock");
        for (topic, partition) in &partitions {
            let abandoned = tracker.pending_in(topic, *partition);
            tracing::info!(topic, partition, abandoned, "partition revoked");
            tracker.revoke(topic, *partition);
            owned.remove(&(topic.clone(), *partition));
            self.metrics.partition_revoked(topic, *partition);
        }
        self.metrics
            .revoke_finished(partitions.len(), unfinished, started.elapsed());
    }
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: Statistics) {
        // Exactly-once, offsets are committed by the producer's transactions, which the consumer's
        // statistics do not see (its committed and stored offsets stay put): progress and lag
        // are measured against what the transactions committed, as the tracker knows it.
        let transactional: HashMap<(String, i32), i64> = if self.handover.mode == DeliveryMode::ExactlyOnce {
            let tracker = self.tracker.lock().expect("tracker lock");
            statistics
                .topics
                .iter()
                .flat_map(|(topic, stats)| stats.partitions.keys().map(move |partition| (topic, *partition)))
                .filter_map(|(topic, partition)| {
                    tracker
                        .stored_offset(topic, partition)
                        .map(|offset| ((topic.clone(), partition), offset))
                })
                .collect()
        } else {
            HashMap::new()
        };
        self.metrics.brokers_up(
            statistics
                .brokers
                .values()
                .filter(|broker| broker.state == "UP")
                .count(),
        );
        let owned = &mut *self.owned.lock().expect("owned lock");
        for (topic_name, topic) in &statistics.topics {
            for (partition, stats) in &topic.partitions {
                let Some(progress) = owned.get_mut(&(topic_name.clone(), *partition)) else {
                    continue;
                };
                let (lag, stored_offset) = match transactional.get(&(topic_name.clone(), *partition)) {
                    Some(committed) => {
                        let end = if stats.ls_offset >= 0 {
                            stats.ls_offset
                        } else {
                            stats.hi_offset
                        };
                        ((end - committed).max(0), *committed)
                    }
                    // Progress is what the group has committed: stored offsets that are never
                    // committed (the coordinator away) are no progress.
                    None => (stats.consumer_lag, stats.committed_offset),
                };
                if lag >= 0 {
                    self.metrics.partition_lag(topic_name, *partition, lag);
                }
                if stored_offset != progress.stored_offset {
                    progress.stored_offset = stored_offset;
                    progress.since = Instant::now();
                }
                let stalled = lag > 0 && progress.since.elapsed() >= self.stall_timeout;
                self.metrics.partition_stalled(topic_name, *partition, stalled);
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => blocking_section(|| self.revoke(consumer, partitions)),
            Rebalance::Assign(partitions) => {
                // Before the partitions are fetched: their messages are tracked from the first.
                let mut tracker = self.tracker.lock().expect("tracker lock");
                for element in partitions.elements() {
                    tracker.assign(element.topic(), element.partition());
                }
            }
            Rebalance::Error(_) => {}
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                // librdkafka keeps a partition paused across a revoke and a new assignment: one
                // paused while the outputs were down (consumption waiting for room) and lost with
                // the session would never be fetched again. The consuming stage pauses it again
                // if it is still waiting.
                if let Err(error) = consumer.resume(partitions) {
                    tracing::warn!(error = %error, "failed to resume assigned partitions");
                }
                let mut owned = self.owned.lock().expect("owned lock");
                for element in partitions.elements() {
                    tracing::info!(
                        topic = element.topic(),
                        partition = element.partition(),
                        "partition assigned"
                    );
                    owned.insert(
                        (element.topic().to_owned(), element.partition()),
                        Progress {
                            stored_offset: -1001,
                            since: Instant::now(),
                        },
                    );
                }
                self.assigned_once.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Rebalance::Revoke(_) => self.assigned_once.store(true, std::sync::atomic::Ordering::Relaxed),
            Rebalance::Error(error) => tracing::error!(error = %error, "rebalance failed"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            // Nothing was stored since the last commit: not a commit at all.
            Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            other => self.metrics.offsets_committed(other.map_err(|error| error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::statistics::{Partition, Topic};

    fn statistics(committed: i64, stored: i64, lag: i64, brokers_up: usize) -> Statistics {
        let partition = Partition {
            partition: 0,
            committed_offset: committed,
            stored_offset: stored,
            consumer_lag: lag,
            ..Partition::default()
        };
        let topic = Topic {
            topic: "pages.raw".to_owned(),
            partitions: HashMap::from([(0, partition)]),
            ..Topic::default()
        };
        let brokers = (0..brokers_up)
            .map(|n| {
                let broker = rdkafka::statistics::Broker {
                    state: "UP".to_owned(),
                    ..rdkafka::statistics::Broker::default()
                };
                (format!("broker-{n}"), broker)
            })
            .collect();
        Statistics {
            topics: HashMap::from([("pages.raw".to_owned(), topic)]),
            brokers,
            ..Statistics::default()
        }
    }

    #[test]
    fn a_partition_whose_committed_offset_stands_still_with_lag_is_stalled_whatever_is_stored() {
        let metrics = Arc::new(Metrics::new());
        let context = SourceContext::new(
            metrics.clone(),
            Arc::new(Mutex::new(OffsetTracker::new())),
            Arc::new(Handover::new(DeliveryMode::AtLeastOnce, Duration::from_secs(1))),
            Duration::from_millis(20),
        );
        context.owned.lock().unwrap().insert(
            ("pages.raw".to_owned(), 0),
            Progress {
                stored_offset: -1001,
                since: Instant::now(),
            },
        );
        let stalled = || {
            metrics
                .render()
                .contains("pagesplit_partition_stalled{partition=\"0\",topic=\"pages.raw\"} 1")
        };
        context.stats(statistics(10, 50, 40, 1));
        assert!(!stalled());
        std::thread::sleep(Duration::from_millis(30));
        // Pages finish and are stored, but the coordinator takes no commit: no progress.
        context.stats(statistics(10, 90, 40, 0));
        assert!(stalled(), "{}", metrics.render());
        assert!(!metrics.brokers_reachable());
        context.stats(statistics(90, 90, 5, 1));
        assert!(!stalled(), "committed offsets moved");
        assert!(metrics.brokers_reachable());
    }
}
