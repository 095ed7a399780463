//! [`EventClock`]: a source's watermark from the event times it read, per
//! partition: the partition's highest event time minus the allowed
//! out-of-orderness (and 1: the watermark is the last instant with no more
//! records to come). The source's watermark is the least over its
//! partitions, leaving out a partition that is idle — caught up (the
//! consumer is at its end) and silent for the idle timeout (one that never
//! delivered, too) — until it delivers again; with every partition idle the
//! source says so, and downstream leaves it out. A partition with records
//! still to read is never idle, however long it waits (a source held back
//! by a slow step, a consumer that fetches another partition first).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rill_operators::Mark;

/// Per partition: the highest event time read and when it last delivered.
#[derive(Debug)]
pub(crate) struct EventClock {
    out_of_orderness: u64,
    idle_timeout: Duration,
    started: Instant,
    partitions: BTreeMap<i32, (Option<u64>, Instant)>,
}

impl EventClock {
    /// A clock allowing records `out_of_orderness` ms behind the latest.
    pub fn new(out_of_orderness: Duration, idle_timeout: Duration) -> Self {
        EventClock {
            out_of_orderness: u64::try_from(out_of_orderness.as_millis()).unwrap_or(u64::MAX),
            idle_timeout,
            started: Instant::now(),
            partitions: BTreeMap::new(),
        }
    }

    /// A record of `partition` at event time `time` was read at `now`.
    pub fn saw(&mut self, partition: i32, time: u64, now: Instant) {
        let slot = self.partitions.entry(partition).or_insert((None, now));
        slot.0 = Some(slot.0.map_or(time, |t| t.max(time)));
        slot.1 = now;
    }

    /// The watermark over `partitions` (the ones the source reads, each
    /// with whether the consumer is at its end) at `now`: `None` while a
    /// partition that is not idle has delivered nothing.
    pub fn mark(
        &self,
        partitions: impl IntoIterator<Item = (i32, bool)>,
        now: Instant,
    ) -> Option<Mark> {
        let mut least: Option<u64> = None;
        for (p, caught_up) in partitions {
            let (max, last) = match self.partitions.get(&p) {
                Some(&(max, last)) => (max, last),
                None => (None, self.started),
            };
            if caught_up && now.duration_since(last) >= self.idle_timeout {
                continue;
            }
            let w = max?.saturating_sub(self.out_of_orderness).saturating_sub(1);
            least = Some(least.map_or(w, |l| l.min(w)));
        }
        Some(least.map_or(Mark::Idle, Mark::At))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_partition_leads_until_it_idles() {
        let t0 = Instant::now();
        let mut clock = EventClock::new(Duration::from_millis(100), Duration::from_secs(5));
        clock.started = t0;
        assert_eq!(
            clock.mark([(0, true), (1, true)], t0),
            None,
            "nothing read yet"
        );
        clock.saw(0, 1_000, t0);
        assert_eq!(
            clock.mark([(0, true), (1, true)], t0),
            None,
            "partition 1 may still deliver"
        );
        clock.saw(1, 500, t0);
        assert_eq!(clock.mark([(0, true), (1, true)], t0), Some(Mark::At(399)));
        let later = t0 + Duration::from_secs(3);
        clock.saw(0, 2_000, later);
        assert_eq!(
            clock.mark([(0, true), (1, true)], later),
            Some(Mark::At(399))
        );
        // Partition 1 delivered nothing for 5 s: left out.
        let idle = t0 + Duration::from_secs(6);
        assert_eq!(
            clock.mark([(0, true), (1, true)], idle),
            Some(Mark::At(1_899))
        );
        let all_idle = t0 + Duration::from_secs(9);
        assert_eq!(
            clock.mark([(0, true), (1, true)], all_idle),
            Some(Mark::Idle)
        );
        assert_eq!(clock.mark([], t0), Some(Mark::Idle), "no partitions");
    }

    #[test]
    fn a_partition_that_never_delivers_stops_holding_back_after_the_timeout() {
        let t0 = Instant::now();
        let mut clock = EventClock::new(Duration::ZERO, Duration::from_secs(1));
        clock.started = t0;
        clock.saw(0, 50, t0);
        assert_eq!(clock.mark([(0, true), (1, true)], t0), None);
        let after = t0 + Duration::from_millis(1_500);
        clock.saw(0, 70, after);
        assert_eq!(
            clock.mark([(0, true), (1, true)], after),
            Some(Mark::At(69))
        );
    }

    #[test]
    fn a_partition_with_records_still_to_read_is_never_idle() {
        let t0 = Instant::now();
        let mut clock = EventClock::new(Duration::ZERO, Duration::from_secs(1));
        clock.started = t0;
        clock.saw(0, 50, t0);
        clock.saw(1, 90, t0);
        let later = t0 + Duration::from_secs(10);
        // Partition 0 is behind (not at its end): it still holds back.
        assert_eq!(
            clock.mark([(0, false), (1, true)], later),
            Some(Mark::At(49))
        );
        // Never delivered and not caught up: the watermark waits for it.
        assert_eq!(clock.mark([(0, false), (2, false)], later), None);
        assert_eq!(clock.mark([(0, true), (1, true)], later), Some(Mark::Idle));
    }
}
