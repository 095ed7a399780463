//! What a Kafka source reader knows of one partition: its position and,
//! for bounded reads, whether it reached its end.

use std::time::{Duration, Instant};

/// How long a bounded read keeps a partition open after an end-of-partition
/// event that came anywhere but at the end offset seen at start-up. Past it:
/// the broker either under-reports end offsets (Tansu reports 1) or is still
/// receiving records, and right after a produce its end-of-partition event
/// can come before the last records are visible. Before it: the offsets in
/// between are not records a consumer is handed (transaction markers,
/// aborted or deleted records).
pub(super) const SETTLE: Duration = Duration::from_millis(300);

/// Where an earliest read starts: offset 0, not the start offset the broker
/// reports. Tansu has reported a partition's start as 10,000 (its first
/// batch) after a producer writing to it was killed, while a fetch from 0
/// still returned offsets 0–9,999. Where 0 is really gone (a broker that
/// deleted old records), `auto.offset.reset=earliest` moves the consumer to
/// the first offset there is.
pub(super) const EARLIEST: i64 = 0;

/// What a reader knows of one partition it owns.
#[derive(Debug, Clone)]
pub(super) struct PartitionState {
    /// The offset of the next record to read.
    pub(super) next: i64,
    /// For bounded reads: the end offset seen at start-up (a lower bound:
    /// some brokers, Tansu among them, under-report it).
    pub(super) end: Option<i64>,
    /// For bounded reads: the partition reached its end.
    pub(super) done: bool,
    /// For bounded reads: when an end-of-partition event past `end` came,
    /// with no record since (the partition is done once it is [`SETTLE`] old).
    pub(super) settling: Option<Instant>,
    /// The consumer reached the partition's end, and no record came since.
    pub(super) caught_up: bool,
}

impl PartitionState {
    pub(super) fn new(next: i64, end: Option<i64>) -> Self {
        PartitionState {
            next,
            end,
            done: false,
            settling: None,
            caught_up: false,
        }
    }

    /// An end-of-partition event at `now`. At exactly the end seen at
    /// start-up the partition is done. Anywhere else it is done after
    /// [`SETTLE`] without another record: past the end, because the broker
    /// under-reported it or is still receiving records; before it, because
    /// the consumer caught up without being handed the offsets in between
    /// (deleted records, a read that started at 0 on a partition whose
    /// records start later, transaction markers).
    pub(super) fn end_of_partition(&mut self, now: Instant) {
        self.caught_up = true;
        match self.end {
            Some(end) if self.next == end => self.done = true,
            Some(_) => {
                self.settling.get_or_insert(now);
            }
            None => {}
        }
    }

    /// A record at `offset` was read.
    pub(super) fn read(&mut self, offset: i64) {
        self.next = offset + 1;
        self.settling = None;
        self.caught_up = false;
    }

    /// Marks the partition done if it has settled by `now`.
    pub(super) fn settle(&mut self, now: Instant) {
        if self
            .settling
            .is_some_and(|since| now.duration_since(since) >= SETTLE)
        {
            self.done = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_partition_ends_at_once_at_the_reported_end() {
        let now = Instant::now();
        let mut p = PartitionState::new(0, Some(3));
        p.end_of_partition(now);
        assert!(!p.done, "end of partition before the reported end");
        for offset in 0..3 {
            p.read(offset);
        }
        p.end_of_partition(now);
        assert!(p.done);
    }

    #[test]
    fn past_an_under_reported_end_a_partition_settles_first() {
        let start = Instant::now();
        // Tansu reports an end offset of 1 whatever the partition holds.
        let mut p = PartitionState::new(0, Some(1));
        for offset in 0..5 {
            p.read(offset);
        }
        p.end_of_partition(start);
        p.settle(start + SETTLE / 2);
        assert!(!p.done, "done before settling");
        // A record that was not yet visible arrives: the wait starts over.
        p.read(5);
        p.settle(start + SETTLE);
        assert!(!p.done, "done although a record just came");
        let again = start + SETTLE;
        p.end_of_partition(again);
        p.settle(again + SETTLE);
        assert!(p.done);
        assert_eq!(p.next, 6);
    }

    #[test]
    fn caught_up_before_the_reported_end_a_partition_settles_too() {
        let start = Instant::now();
        // A read from offset 0 of a partition whose records 0..1000 were
        // deleted: the consumer is moved to 1000, which is also the end.
        let mut p = PartitionState::new(EARLIEST, Some(1000));
        p.end_of_partition(start);
        p.settle(start + SETTLE / 2);
        assert!(!p.done, "done before settling");
        p.settle(start + SETTLE);
        assert!(p.done, "an emptied partition never ends");
        // Records that come after an early event start the wait over.
        let mut q = PartitionState::new(EARLIEST, Some(10));
        q.end_of_partition(start);
        q.read(5);
        q.settle(start + SETTLE);
        assert!(!q.done, "done although a record just came");
        for offset in 6..10 {
            q.read(offset);
        }
        q.end_of_partition(start + SETTLE);
        assert!(q.done);
    }
}
