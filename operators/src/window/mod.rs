//! Event-time windows on the keyed core: which windows a record belongs
//! to ([`Windows`]), what a window emits ([`Window`]), and the logic that
//! keeps each key's open windows in `Map` state with timers at their ends
//! ([`WindowLogic`]).
//!
//! Times are event times in milliseconds. A watermark `w` says no record
//! at or before `w` is expected any more: a window `[start, end)` is
//! complete once the watermark reaches `end - 1`, and can no longer change
//! once it reaches `end - 1 + lateness`.

mod logic;
mod slices;

use serde::{Deserialize, Serialize};

pub use logic::{Fold, Merge, WindowLogic, WindowStates};

/// Milliseconds in `d` (saturating): event times and durations are ms.
pub fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How records are grouped into windows by their event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// Back-to-back windows of `size` ms: `[0, size)`, `[size, 2 size)`, ...
    Tumbling {
        /// The length of a window (ms).
        size: u64,
    },
    /// Windows of `size` ms starting every `slide` ms: a record is in
    /// every window that covers its time.
    Hopping {
        /// The length of a window (ms).
        size: u64,
        /// The distance between window starts (ms).
        slide: u64,
    },
    /// A key's records at most `gap` ms apart form one window, from its
    /// first record to its last plus the gap.
    Session {
        /// The largest gap inside a session (ms).
        gap: u64,
    },
}

impl Windows {
    /// Tumbling windows of `size`.
    pub fn tumbling(size: std::time::Duration) -> Self {
        Windows::Tumbling { size: millis(size) }
    }

    /// Hopping windows of `size`, one starting every `slide`.
    pub fn hopping(size: std::time::Duration, slide: std::time::Duration) -> Self {
        Windows::Hopping {
            size: millis(size),
            slide: millis(slide),
        }
    }

    /// Session windows: records of a key at most `gap` apart.
    pub fn session(gap: std::time::Duration) -> Self {
        Windows::Session { gap: millis(gap) }
    }

    /// The problem with these windows, if any (a zero length).
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Windows::Tumbling { size: 0 } | Windows::Hopping { size: 0, .. } => {
                Err("a window's size must be above zero".into())
            }
            Windows::Hopping { slide: 0, .. } => Err("a window's slide must be above zero".into()),
            Windows::Session { gap: 0 } => Err("a session's gap must be above zero".into()),
            _ => Ok(()),
        }
    }

    /// The length of every window (ms), for windows of fixed length.
    pub fn size(&self) -> Option<u64> {
        match *self {
            Windows::Tumbling { size } | Windows::Hopping { size, .. } => Some(size),
            Windows::Session { .. } => None,
        }
    }

    /// Whether windows of a key can merge (sessions).
    pub fn merges(&self) -> bool {
        matches!(self, Windows::Session { .. })
    }

    /// The windows `[start, end)` a record at `time` starts in or belongs
    /// to, earliest first. A session's is the record's own, before merging.
    pub fn assign(&self, time: u64) -> Vec<(u64, u64)> {
        match *self {
            Windows::Tumbling { size } => {
                let start = time - time % size;
                vec![(start, start.saturating_add(size))]
            }
            Windows::Hopping { size, slide } => {
                let last = time - time % slide;
                let mut starts: Vec<u64> = (0..)
                    .map_while(|i: u64| last.checked_sub(i.checked_mul(slide)?))
                    .take_while(|s| s.saturating_add(size) > time)
                    .collect();
                starts.reverse();
                starts
                    .into_iter()
                    .map(|s| (s, s.saturating_add(size)))
                    .collect()
            }
            Windows::Session { gap } => vec![(time, time.saturating_add(gap))],
        }
    }
}

/// A window's result: its bounds and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window<A> {
    /// The window's first instant (ms, included).
    pub start: u64,
    /// The window's end (ms, excluded).
    pub end: u64,
    /// The aggregate of the window's records.
    pub value: A,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_windows_cover_each_time_once() {
        let w = Windows::Tumbling { size: 10 };
        assert_eq!(w.assign(0), vec![(0, 10)]);
        assert_eq!(w.assign(9), vec![(0, 10)]);
        assert_eq!(w.assign(10), vec![(10, 20)]);
    }

    #[test]
    fn hopping_windows_cover_each_time_size_over_slide_times() {
        let w = Windows::Hopping { size: 10, slide: 5 };
        assert_eq!(w.assign(12), vec![(5, 15), (10, 20)]);
        assert_eq!(w.assign(3), vec![(0, 10)], "no window starts before 0");
        let w = Windows::Hopping { size: 10, slide: 3 };
        assert_eq!(w.assign(10), vec![(3, 13), (6, 16), (9, 19)]);
        for t in 0..100 {
            for (s, e) in w.assign(t) {
                assert!(s <= t && t < e && s % 3 == 0, "{t} in [{s}, {e})");
            }
        }
    }

    #[test]
    fn zero_lengths_are_refused() {
        assert!(Windows::Tumbling { size: 0 }.check().is_err());
        assert!(Windows::Hopping { size: 5, slide: 0 }.check().is_err());
        assert!(Windows::Session { gap: 0 }.check().is_err());
        assert!(Windows::Session { gap: 1 }.check().is_ok());
    }
}
