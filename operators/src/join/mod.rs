//! Joins on the keyed core ([`crate::Process2`]): a windowed join of two
//! streams on key (inner, left, full outer), an interval join, and a
//! stream-table join. Each keeps its sides in `Map` or `Value` state and
//! deletes them, by event-time timers, once no later record can match.

mod interval;
mod table;
mod windowed;

use serde::{Deserialize, Serialize};

pub use interval::IntervalJoin;
pub use table::TableJoin;
pub use windowed::WindowJoin;

/// Which records a windowed join emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Pairs only.
    Inner,
    /// Pairs, and each left record whose window had no right record.
    Left,
    /// Pairs, and each record of either side whose window had no record
    /// of the other.
    Outer,
}

/// What a join emits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Joined<L, R> {
    /// A left and a right record that met.
    Both(L, R),
    /// A left record that met none (left and outer joins).
    Left(L),
    /// A right record that met none (outer joins).
    Right(R),
}

/// Numbers a worker's stored records uniquely: the epoch, then the count
/// within it (no epoch runs twice, even across restarts).
#[derive(Debug, Default)]
pub(crate) struct Ids {
    epoch: u64,
    next: u64,
}

impl Ids {
    pub(crate) fn next(&mut self, epoch: u64) -> u64 {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.next = 0;
        }
        self.next += 1;
        (epoch << 32) | (self.next - 1)
    }
}

/// Whether watermark `w` has reached `time`.
pub(crate) fn reached(w: Option<u64>, time: u64) -> bool {
    w.is_some_and(|w| w >= time)
}

/// State keyed by (event time, id): a join's records, or a table's
/// versions.
pub(crate) type ByTime<T> = crate::keyed::MapState<(u64, u64), T>;

/// Entries of a [`ByTime`] state, in time order.
pub(crate) type Timed<T> = Vec<((u64, u64), T)>;

/// The entries of `state` at event times `from..=to`, in time order: the
/// cost follows what is found, not how much the key holds.
pub(crate) fn between<K, O, D, T>(
    cx: &mut crate::keyed::Context<'_, K, O, D>,
    state: ByTime<T>,
    from: u64,
    to: u64,
) -> Result<Timed<T>, rill_state::StoreError>
where
    K: std::hash::Hash
        + Eq
        + Clone
        + Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + 'static,
    T: Serialize + serde::de::DeserializeOwned,
{
    match to.checked_add(1) {
        Some(end) => cx.map(state).entries_between(&(from, 0), &(end, 0)),
        None => cx.map(state).entries_from(&(from, 0)),
    }
}
