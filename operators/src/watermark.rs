//! Watermarks: how far event time has got. Every source worker sends its
//! watermark (the minimum over its partitions) when an epoch closes, or
//! says it is idle; an event-time step takes the minimum over the senders
//! that are not idle.

use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

/// What one sender says about its event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mark {
    /// No record at or before this event time is expected from it any more.
    At(u64),
    /// It has nothing to deliver now: leave it out of the minimum until it
    /// sends a time again.
    Idle,
}

/// A watermark message: the index of its sender and its mark. Each
/// sender's times only grow.
pub type Watermark = (usize, Mark);

/// A stream's watermark messages and how many senders they come from.
#[derive(Clone)]
pub struct Watermarks<'s> {
    /// The messages, in the epoch they were sent.
    pub stream: StreamVec<'s, u64, Watermark>,
    /// Senders are numbered `0..senders`.
    pub senders: usize,
}

impl<'s> Watermarks<'s> {
    /// The watermarks of `senders` senders.
    pub fn new(stream: StreamVec<'s, u64, Watermark>, senders: usize) -> Self {
        Watermarks { stream, senders }
    }

    /// The watermarks of a stream merged from two: `other`'s senders are
    /// numbered after this one's, so the minimum covers both.
    pub fn merge(self, other: Watermarks<'s>) -> Watermarks<'s> {
        let offset = self.senders;
        let shifted = other.stream.map(move |(s, m)| (s + offset, m));
        Watermarks {
            stream: self.stream.concat(shifted),
            senders: offset + other.senders,
        }
    }
}

/// What an event-time step knows of its senders.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Per sender: its highest time (`None` until it sent one) and whether
    /// it is idle now.
    senders: Vec<(Option<u64>, bool)>,
    /// The step's watermark: it never goes back.
    watermark: Option<u64>,
}

impl Upstream {
    /// `senders` senders; a resumed step starts them all at its restored
    /// watermark.
    pub fn new(senders: usize, restored: Option<u64>) -> Self {
        Upstream {
            senders: vec![(restored, false); senders],
            watermark: restored,
        }
    }

    /// The watermark: the least time of the senders that are not idle,
    /// once each of them has sent one (`None` before).
    pub fn watermark(&self) -> Option<u64> {
        self.watermark
    }

    /// Applies `mark` from `sender`; returns the watermark if it moved.
    pub fn apply(&mut self, sender: usize, mark: Mark) -> Option<u64> {
        let s = self.senders.get_mut(sender)?;
        match mark {
            Mark::At(t) => *s = (Some(s.0.map_or(t, |old| old.max(t))), false),
            Mark::Idle => s.1 = true,
        }
        let mut least: Option<u64> = None;
        for (time, idle) in &self.senders {
            match (time, idle) {
                (_, true) => {}
                (None, false) => return None,
                (Some(t), false) => least = Some(least.map_or(*t, |l| l.min(*t))),
            }
        }
        // Every sender idle: nothing moves time on.
        let least = least?;
        if self.watermark.is_some_and(|w| w >= least) {
            return None;
        }
        self.watermark = Some(least);
        self.watermark
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_the_least_of_the_senders_that_are_not_idle() {
        let mut up = Upstream::new(3, None);
        assert_eq!(up.apply(0, Mark::At(10)), None);
        assert_eq!(up.apply(1, Mark::At(5)), None);
        // Sender 2 never sent a time: it holds everyone back until idle.
        assert_eq!(up.apply(2, Mark::Idle), Some(5));
        assert_eq!(up.apply(1, Mark::At(20)), Some(10));
        // Back from idle below the watermark: the watermark stays.
        assert_eq!(up.apply(2, Mark::At(3)), None);
        assert_eq!(up.watermark(), Some(10));
        assert_eq!(up.apply(2, Mark::At(30)), None);
        assert_eq!(up.apply(0, Mark::At(40)), Some(20));
    }

    #[test]
    fn all_idle_moves_nothing_and_times_never_go_back() {
        let mut up = Upstream::new(2, Some(100));
        assert_eq!(up.watermark(), Some(100));
        assert_eq!(up.apply(0, Mark::Idle), None);
        assert_eq!(up.apply(1, Mark::Idle), None);
        assert_eq!(up.apply(0, Mark::At(50)), None);
        assert_eq!(up.watermark(), Some(100));
        assert_eq!(up.apply(0, Mark::At(150)), Some(150));
        assert_eq!(
            up.apply(7, Mark::At(1)),
            None,
            "an unknown sender is ignored"
        );
    }
}
