//! Per-partition offset tracking (pure): which offset may be stored for commit.
//!
//! Pages of one partition may finish out of order (a page whose events are all acknowledged
//! may overtake a page still waiting for the broker). Only the contiguous prefix of finished
//! offsets may be committed, or a crash would skip the unfinished page. Only partitions assigned
//! to this worker are tracked; completions that arrive after their partition was revoked (or
//! revoked and assigned again) are ignored, so this worker never commits for a partition another
//! worker now owns.

use std::collections::{BTreeSet, HashMap};

/// An assignment of a partition, as a message was received under it: taken when the message is
/// received, checked when it is tracked ([`OffsetTracker::track_received`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment(u64);

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
    /// One past the highest offset seen (once a message was tracked).
    next: i64,
    /// The last offset handed out for storing (once a message was tracked).
    stored: i64,
    /// Whether a message was tracked since the assignment.
    started: bool,
    /// Whether an offset was handed out for storing since the assignment.
    advanced: bool,
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

    /// A partition was assigned to this worker: its messages may be tracked from now on.
    pub fn assign(&mut self, topic: &str, partition: i32) {
        self.generations += 1;
        self.partitions.insert(
            (topic.to_owned(), partition),
            PartitionState {
                generation: self.generations,
                pending: BTreeSet::new(),
                next: 0,
                stored: 0,
                started: false,
                advanced: false,
            },
        );
    }

    /// Records a consumed message as pending. Messages of a partition must be tracked in
    /// offset order (the order a consumer delivers them). `None` when the partition is not
    /// assigned (any more): the message must be left alone, its new owner consumes it again.
    pub fn track(&mut self, topic: &str, partition: i32, offset: i64) -> Option<Ticket> {
        let state = self.partitions.get_mut(&(topic.to_owned(), partition))?;
        if !state.started {
            state.started = true;
            state.next = offset;
            state.stored = offset;
        }
        state.pending.insert(offset);
        state.next = state.next.max(offset + 1);
        Some(Ticket {
            topic: topic.to_owned(),
            partition,
            offset,
            generation: state.generation,
        })
    }

    /// The partition's current assignment; `None` when it is not assigned.
    pub fn assignment(&self, topic: &str, partition: i32) -> Option<Assignment> {
        self.partitions
            .get(&(topic.to_owned(), partition))
            .map(|state| Assignment(state.generation))
    }

    /// Tracks a message received under the assignment `under`, as [`track`](Self::track) does;
    /// `None` as well when the partition was revoked since, even if it was assigned again: such a
    /// message was fetched from the old position, and its new assignment fetches it again from
    /// the committed offset.
    pub fn track_received(&mut self, topic: &str, partition: i32, offset: i64, under: Assignment) -> Option<Ticket> {
        if self.assignment(topic, partition) != Some(under) {
            return None;
        }
        self.track(topic, partition, offset)
    }

    /// Whether the ticket's partition is still assigned under the same assignment.
    pub fn is_current(&self, ticket: &Ticket) -> bool {
        self.partitions
            .get(&(ticket.topic.clone(), ticket.partition))
            .is_some_and(|state| state.generation == ticket.generation)
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
            state.advanced = true;
            committable
        })
    }

    /// The offset last handed out for storing in a partition since its assignment, if any.
    pub fn stored_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.partitions
            .get(&(topic.to_owned(), partition))
            .filter(|state| state.advanced)
            .map(|state| state.stored)
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
    fn a_message_received_before_its_partition_was_revoked_and_assigned_again_is_not_tracked() {
        let mut tracker = OffsetTracker::new();
        assert_eq!(tracker.assignment("t", 0), None);
        tracker.assign("t", 0);
        let before = tracker.assignment("t", 0).unwrap();
        // Received, then waiting for room while the session is lost and the partition comes
        // back: the new assignment consumes from the committed offset, 40.
        tracker.revoke("t", 0);
        assert_eq!(tracker.track_received("t", 0, 57, before), None);
        tracker.assign("t", 0);
        let now = tracker.assignment("t", 0).unwrap();
        assert_ne!(now, before);
        assert_eq!(tracker.track_received("t", 0, 57, before), None);
        let first = tracker.track_received("t", 0, 40, now).unwrap();
        assert_eq!(tracker.complete(&first), Some(41));
    }

    #[test]
    fn out_of_order_completions_wait_for_the_lowest() {
        let mut tracker = OffsetTracker::new();
        tracker.assign("t", 0);
        let t5 = tracker.track("t", 0, 5).unwrap();
        let t6 = tracker.track("t", 0, 6).unwrap();
        let t7 = tracker.track("t", 0, 7).unwrap();
        assert_eq!(tracker.complete(&t7), None);
        assert_eq!(tracker.complete(&t6), None);
        assert_eq!(tracker.complete(&t5), Some(8));
        assert_eq!(tracker.pending(), 0);
    }

    #[test]
    fn prefix_advances_step_by_step() {
        let mut tracker = OffsetTracker::new();
        tracker.assign("t", 1);
        let t0 = tracker.track("t", 1, 0).unwrap();
        let t1 = tracker.track("t", 1, 1).unwrap();
        let t2 = tracker.track("t", 1, 2).unwrap();
        assert_eq!(tracker.stored_offset("t", 1), None);
        assert_eq!(tracker.complete(&t0), Some(1));
        assert_eq!(tracker.stored_offset("t", 1), Some(1));
        assert_eq!(tracker.complete(&t2), None);
        assert_eq!(tracker.complete(&t1), Some(3));
        // Completing twice changes nothing.
        assert_eq!(tracker.complete(&t1), None);
    }

    #[test]
    fn partitions_are_independent() {
        let mut tracker = OffsetTracker::new();
        tracker.assign("t", 0);
        tracker.assign("t", 1);
        let a = tracker.track("t", 0, 10).unwrap();
        let b = tracker.track("t", 1, 20).unwrap();
        assert_eq!(tracker.complete(&b), Some(21));
        assert_eq!(tracker.pending_in("t", 0), 1);
        assert_eq!(tracker.complete(&a), Some(11));
    }

    #[test]
    fn completions_after_revoke_are_never_committed() {
        let mut tracker = OffsetTracker::new();
        tracker.assign("t", 0);
        let old = tracker.track("t", 0, 3).unwrap();
        assert!(tracker.is_current(&old));
        tracker.revoke("t", 0);
        assert!(!tracker.is_current(&old));
        assert_eq!(tracker.complete(&old), None);
        // A message received after the revoke is not tracked at all.
        assert_eq!(tracker.track("t", 0, 4), None);
        // Assigned again and consumed again from 3: the old ticket stays stale.
        tracker.assign("t", 0);
        let new = tracker.track("t", 0, 3).unwrap();
        assert!(!tracker.is_current(&old));
        assert_eq!(tracker.complete(&old), None);
        assert_eq!(tracker.pending_in("t", 0), 1);
        assert_eq!(tracker.complete(&new), Some(4));
    }
}
