//! The Kafka consumer and its context: rebalances, commits and statistics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;

use crate::metrics::Metrics;
use crate::offsets::OffsetTracker;

/// The consumer used by the pipeline.
pub type PageConsumer = StreamConsumer<SourceContext>;

/// State shared between the consumer's callbacks and the pipeline.
pub struct SourceContext {
    metrics: Arc<Metrics>,
    tracker: Arc<Mutex<OffsetTracker>>,
    owned: Mutex<HashMap<(String, i32), Progress>>,
    assigned_once: std::sync::atomic::AtomicBool,
    stall_timeout: Duration,
}

/// Progress of one owned partition, for stall detection.
struct Progress {
    stored_offset: i64,
    since: Instant,
}

impl SourceContext {
    /// A context sharing `tracker` with the pipeline.
    pub fn new(metrics: Arc<Metrics>, tracker: Arc<Mutex<OffsetTracker>>, stall_timeout: Duration) -> Self {
        Self {
            metrics,
            tracker,
            owned: Mutex::new(HashMap::new()),
            assigned_once: std::sync::atomic::AtomicBool::new(false),
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
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: Statistics) {
        let owned = &mut *self.owned.lock().expect("owned lock");
        for (topic_name, topic) in &statistics.topics {
            for (partition, stats) in &topic.partitions {
                let Some(progress) = owned.get_mut(&(topic_name.clone(), *partition)) else {
                    continue;
                };
                if stats.consumer_lag >= 0 {
                    self.metrics.partition_lag(topic_name, *partition, stats.consumer_lag);
                }
                if stats.stored_offset != progress.stored_offset {
                    progress.stored_offset = stats.stored_offset;
                    progress.since = Instant::now();
                }
                let stalled = stats.consumer_lag > 0 && progress.since.elapsed() >= self.stall_timeout;
                self.metrics.partition_stalled(topic_name, *partition, stalled);
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let mut tracker = self.tracker.lock().expect("tracker lock");
            let mut owned = self.owned.lock().expect("owned lock");
            for element in partitions.elements() {
                let abandoned = tracker.pending_in(element.topic(), element.partition());
                tracing::info!(
                    topic = element.topic(),
                    partition = element.partition(),
                    abandoned,
                    "partition revoked"
                );
                tracker.revoke(element.topic(), element.partition());
                owned.remove(&(element.topic().to_owned(), element.partition()));
                self.metrics.partition_revoked(element.topic(), element.partition());
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
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
