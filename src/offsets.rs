//! Per-partition offset tracking (pure): which offset may be stored for commit.
//!
//! Pages of one partition may finish out of order (a page whose events are all acknowledged
//! may overtake a page still waiting for the broker). Only the contiguous prefix of finished
//! offsets may be committed, or a crash would skip the unfinished page. Completions that arrive
//! after their partition was revoked (or revoked and assigned again) are ignored, so this
//! worker never commits for a partition another worker now owns.

use std::collections::{BTreeSet, HashMap};

/// Identifies one consumed message and the assignment it was consumed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Topic of the message.
    pub topic: String,
    /// Partition of the message.
    pub partition: i32,
    /// Offset of the message.
    pub offset: i64,
    generation: u64,
}

#[derive(Debug)]
struct PartitionState {
    generation: u64,
    pending: BTreeSet<i64>,
    /// One past the highest offset seen.
    next: i64,
    /// The last offset handed out for storing.
    stored: i64,
}

/// Offsets of all owned partitions.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<(String, i32), PartitionState>,
    generations: u64,
}

impl OffsetTracker {
    /// A tracker that owns no partition yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a consumed message as pending. Messages of a partition must be tracked in
    /// offset order (the order a consumer delivers them).
    pub fn track(&mut self, topic: &str, partition: i32, offset: i64) -> Ticket {
        let generations = &mut self.generations;
        let state = self.partitions.entry((topic.to_owned(), partition)).or_insert_with(|| {
            *generations += 1;
            PartitionState {
                generation: *generations,
                pending: BTreeSet::new(),
                next: offset,
                stored: offset,
            }
        });
        state.pending.insert(offset);
        state.next = state.next.max(offset + 1);
        Ticket {
            topic: topic.to_owned(),
            partition,
            offset,
            generation: state.generation,
        }
    }

    /// Marks a message finished. Returns the offset to store (the next offset to consume) when
    /// the committable prefix grew, `None` when it did not or the ticket is stale.
    pub fn complete(&mut self, ticket: &Ticket) -> Option<i64> {
        let state = self.partitions.get_mut(&(ticket.topic.clone(), ticket.partition))?;
        if state.generation != ticket.generation || !state.pending.remove(&ticket.offset) {
            return None;
        }
        let committable = state.pending.first().copied().unwrap_or(state.next);
        (committable > state.stored).then(|| {
            state.stored = committable;
            committable
        })
    }

    /// Forgets a partition that is no longer owned; its outstanding tickets become stale.
    pub fn revoke(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_owned(), partition));
    }

    /// Messages not yet finished, over all partitions.
    pub fn pending(&self) -> usize {
        self.partitions.values().map(|state| state.pending.len()).sum()
    }

    /// Messages not yet finished in one partition.
    pub fn pending_in(&self, topic: &str, partition: i32) -> usize {
        self.partitions
            .get(&(topic.to_owned(), partition))
            .map_or(0, |state| state.pending.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_completions_wait_for_the_lowest() {
        let mut tracker = OffsetTracker::new();
        let t5 = tracker.track("t", 0, 5);
        let t6 = tracker.track("t", 0, 6);
        let t7 = tracker.track("t", 0, 7);
        assert_eq!(tracker.complete(&t7), None);
        assert_eq!(tracker.complete(&t6), None);
        assert_eq!(tracker.complete(&t5), Some(8));
        assert_eq!(tracker.pending(), 0);
    }

    #[test]
    fn prefix_advances_step_by_step() {
        let mut tracker = OffsetTracker::new();
        let t0 = tracker.track("t", 1, 0);
        let t1 = tracker.track("t", 1, 1);
        let t2 = tracker.track("t", 1, 2);
        assert_eq!(tracker.complete(&t0), Some(1));
        assert_eq!(tracker.complete(&t2), None);
        assert_eq!(tracker.complete(&t1), Some(3));
        // Completing twice changes nothing.
        assert_eq!(tracker.complete(&t1), None);
    }

    #[test]
    fn partitions_are_independent() {
        let mut tracker = OffsetTracker::new();
        let a = tracker.track("t", 0, 10);
        let b = tracker.track("t", 1, 20);
        assert_eq!(tracker.complete(&b), Some(21));
        assert_eq!(tracker.pending_in("t", 0), 1);
        assert_eq!(tracker.complete(&a), Some(11));
    }

    #[test]
    fn completions_after_revoke_are_never_committed() {
        let mut tracker = OffsetTracker::new();
        let old = tracker.track("t", 0, 3);
        tracker.revoke("t", 0);
        assert_eq!(tracker.complete(&old), None);
        // Assigned again and consumed again from 3: the old ticket stays stale.
        let new = tracker.track("t", 0, 3);
        assert_eq!(tracker.complete(&old), None);
        assert_eq!(tracker.pending_in("t", 0), 1);
        assert_eq!(tracker.complete(&new), Some(4));
    }
}
