//! [`Keyed`]: the state of one keyed step on one worker — its value
//! tables, its entries (lists, maps, timers) — and how an epoch's changes
//! are staged and its timers found.

use std::any::Any;
use std::collections::HashMap;
use std::hash::Hash;

use rill_state::layout::{self, EPOCH_TIMER, EVENT_TIMER};
use rill_state::{codec, Entries, KeyGroups, StoreError, Table};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One value state's table, behind a trait so a step can hold states of
/// several types.
pub(crate) trait ValueSlot<K> {
    fn stage(&mut self, epoch: u64) -> Result<(), StoreError>;
    fn as_any(&mut self) -> &mut dyn Any;
}

/// The table of one value state.
pub(crate) struct Values<K, S>(pub Table<K, S>);

impl<K, S> ValueSlot<K> for Values<K, S>
where
    K: Hash + Eq + Clone + Serialize + std::fmt::Debug + 'static,
    S: Serialize + DeserializeOwned + 'static,
{
    fn stage(&mut self, epoch: u64) -> Result<(), StoreError> {
        self.0.stage(epoch)
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
}

/// A timer that fired: its kind and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timer {
    /// What clock it follows.
    pub kind: TimerKind,
    /// When it fires: an event time, or an epoch.
    pub time: u64,
}

/// The clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// Fires once the watermark reaches its time.
    EventTime,
    /// Fires when its epoch closes (processing time).
    Epoch,
}

impl TimerKind {
    pub(crate) fn tag(self) -> u8 {
        match self {
            TimerKind::EventTime => EVENT_TIMER,
            TimerKind::Epoch => EPOCH_TIMER,
        }
    }

    fn index(self) -> usize {
        match self {
            TimerKind::EventTime => 0,
            TimerKind::Epoch => 1,
        }
    }
}

/// Per timer kind, where the next search for due timers starts: every
/// timer before it has fired (a search from time 0 would wade through the
/// store's deleted versions of every timer fired so far).
#[derive(Debug, Default)]
pub(crate) struct TimerScan {
    from: [u64; 2],
}

impl TimerScan {
    /// A timer of `kind` was set at `time`: a search must find it.
    pub fn set(&mut self, kind: TimerKind, time: u64) {
        let from = &mut self.from[kind.index()];
        *from = (*from).min(time);
    }
}

/// The state of one keyed step on one worker.
pub(crate) struct Keyed<K> {
    pub step_id: u64,
    pub groups: KeyGroups,
    pub values: Vec<Box<dyn ValueSlot<K>>>,
    pub entries: Entries,
    /// Appends per list this epoch: the next element's number.
    pub appends: HashMap<Vec<u8>, u32>,
    /// The key groups this worker owns (timers are found group by group).
    pub owned: Vec<u32>,
    pub epoch: u64,
    pub scan: TimerScan,
    /// Where point accesses build their entry keys (no allocation each).
    pub buf: Vec<u8>,
}

impl<K> Keyed<K>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
{
    /// The table of value slot `slot`.
    pub fn table<S: 'static>(&mut self, slot: usize) -> &mut Table<K, S> {
        let any = self.values[slot].as_any();
        match any.downcast_mut::<Values<K, S>>() {
            Some(v) => &mut v.0,
            None => unreachable!("a value handle of another type"),
        }
    }

    /// The prefix of `key`'s entries in state `state`.
    pub fn prefix(&self, state: u8, key: &K) -> Result<Vec<u8>, StoreError> {
        let mut prefix = Vec::with_capacity(64);
        let group = self.groups.group_of_key(key).0;
        layout::write_head(&mut prefix, self.step_id, state, group);
        layout::write_encoded_key(&mut prefix, key)?;
        Ok(prefix)
    }

    /// Runs `f` on the entries and the entry of `key` in state `state`
    /// with the sub-key `sub` writes, built in a buffer kept for reuse.
    pub fn with_entry<R>(
        &mut self,
        (state, key): (u8, &K),
        sub: impl FnOnce(&mut Vec<u8>),
        f: impl FnOnce(&mut Entries, &[u8]) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut entry = std::mem::take(&mut self.buf);
        entry.clear();
        let group = self.groups.group_of_key(key).0;
        layout::write_head(&mut entry, self.step_id, state, group);
        let result = layout::write_encoded_key(&mut entry, key).and_then(|_| {
            sub(&mut entry);
            f(&mut self.entries, &entry)
        });
        self.buf = entry;
        result
    }

    /// The entry of `key`'s timer of `kind` at `time`.
    pub fn timer_entry(&self, key: &K, kind: TimerKind, time: u64) -> Result<Vec<u8>, StoreError> {
        let group = self.groups.group_of_key(key).0;
        let mut entry = layout::timer_prefix(self.step_id, group, kind.tag());
        entry.extend_from_slice(&time.to_be_bytes());
        layout::write_encoded_key(&mut entry, key)?;
        Ok(entry)
    }

    /// The timers of `kind` due at or before `through`, on this worker's
    /// key groups, in time order: each one's key and time. They are
    /// removed: a timer fires once.
    pub fn take_due(&mut self, kind: TimerKind, through: u64) -> Result<Vec<(K, u64)>, StoreError> {
        let mut due: Vec<(u64, u32, Vec<u8>)> = Vec::new();
        let from = self.scan.from[kind.index()];
        if from > through {
            return Ok(Vec::new());
        }
        for &group in &self.owned {
            let prefix = layout::timer_prefix(self.step_id, group, kind.tag());
            let at = |t: u64| {
                let mut e = prefix.clone();
                e.extend_from_slice(&t.to_be_bytes());
                e
            };
            let (start, end) = (at(from), through.checked_add(1).map(at));
            for (entry, _) in self.entries.range(&prefix, &start, end.as_deref())? {
                if let Some((time, _)) = layout::parse_timer(&entry) {
                    due.push((time, group, entry));
                }
            }
        }
        due.sort();
        self.scan.from[kind.index()] = through.saturating_add(1);
        let mut fired = Vec::with_capacity(due.len());
        for (time, _, entry) in due {
            self.entries.remove(&entry);
            let (_, key) = layout::parse_timer(&entry)
                .ok_or_else(|| StoreError::Codec("a malformed timer".into()))?;
            fired.push((codec::decode::<K>(key)?, time));
        }
        Ok(fired)
    }

    /// Stages every change of `epoch` for the worker's next checkpoint.
    pub fn stage(&mut self, epoch: u64) -> Result<(), StoreError> {
        for v in &mut self.values {
            v.stage(epoch)?;
        }
        self.entries.stage(epoch)?;
        self.appends.clear();
        Ok(())
    }
}
