//! [`Context`]: what user logic of a keyed step sees for one record or
//! timer — its key, the epoch and watermark, the key's states, timers and
//! outputs.

use std::hash::Hash;

use rill_state::{codec, SortKey, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::runtime::{Keyed, TimerKind};
use super::states::{ListState, MapState, SideOutput, TimerState, ValueState};

/// The per-key context handed to a keyed step's logic.
pub struct Context<'a, K, O, D> {
    pub(crate) key: &'a K,
    pub(crate) epoch: u64,
    pub(crate) watermark: Option<u64>,
    /// The event time of the record or timer being handled.
    pub(crate) time: u64,
    pub(crate) keyed: &'a mut Keyed<K>,
    pub(crate) out: &'a mut Vec<(K, O, u64)>,
    pub(crate) sides: &'a mut [Vec<(K, D, u64)>],
}

impl<'a, K, O, D> Context<'a, K, O, D>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
{
    /// The key of the record (or timer) being handled.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The epoch being processed.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The watermark as of the close of the last epoch: the minimum over
    /// the upstream workers (`None` until every one has sent one).
    pub fn watermark(&self) -> Option<u64> {
        self.watermark
    }

    /// The event time of the record being handled (a source's record
    /// timestamp, or what the job extracted), or of the timer that fired:
    /// its time for an event-time timer, the watermark (or 0) for an epoch
    /// timer.
    pub fn time(&self) -> u64 {
        self.time
    }

    /// Emits `output` for this key on the step's main output, with the
    /// event time of the record or timer being handled.
    pub fn emit(&mut self, output: O) {
        self.out.push((self.key.clone(), output, self.time));
    }

    /// Emits `output` for this key with event time `time` (a window's
    /// result carries its window's last instant).
    pub fn emit_at(&mut self, time: u64, output: O) {
        self.out.push((self.key.clone(), output, time));
    }

    /// Emits `value` for this key on the side output `side`.
    pub fn emit_to(&mut self, side: SideOutput, value: D) {
        self.sides[side.index].push((self.key.clone(), value, self.time));
    }

    /// This key's value in `state`.
    pub fn value<S>(&mut self, state: ValueState<S>) -> ValueRef<'_, K, S>
    where
        S: 'static,
    {
        ValueRef {
            key: self.key,
            epoch: self.epoch,
            table: self.keyed.table::<S>(state.slot),
        }
    }

    /// This key's list in `state`.
    pub fn list<T>(&mut self, state: ListState<T>) -> ListRef<'_, K, T> {
        ListRef {
            key: self.key,
            state: state.state,
            keyed: self.keyed,
            _t: std::marker::PhantomData,
        }
    }

    /// This key's map in `state`.
    pub fn map<MK, MV>(&mut self, state: MapState<MK, MV>) -> MapRef<'_, K, MK, MV> {
        MapRef {
            key: self.key,
            state: state.state,
            keyed: self.keyed,
            _kv: std::marker::PhantomData,
        }
    }

    /// This key's timers.
    pub fn timers(&mut self, _timers: TimerState) -> TimersRef<'_, K> {
        TimersRef {
            key: self.key,
            keyed: self.keyed,
        }
    }
}

/// One key's value in a value state.
pub struct ValueRef<'a, K, S> {
    key: &'a K,
    epoch: u64,
    table: &'a mut rill_state::Table<K, S>,
}

impl<K, S> ValueRef<'_, K, S>
where
    K: Hash + Eq + Clone + Serialize + std::fmt::Debug,
    S: Serialize + DeserializeOwned,
{
    /// The value, if the key has one.
    pub fn get(&mut self) -> Result<Option<S>, StoreError>
    where
        S: Clone,
    {
        self.update(|s| s.clone())
    }

    /// Sets the value.
    pub fn set(&mut self, value: S) -> Result<(), StoreError> {
        self.update(|s| *s = Some(value))
    }

    /// Removes the value.
    pub fn clear(&mut self) -> Result<(), StoreError> {
        self.update(|s| *s = None)
    }

    /// Runs `f` on the value in place (`None`: no value; setting `None`
    /// removes it) and returns what `f` returns: one lookup.
    pub fn update<R>(&mut self, f: impl FnOnce(&mut Option<S>) -> R) -> Result<R, StoreError> {
        self.table.update(self.key, self.epoch, f)
    }

    /// [`ValueRef::update`], with the key handed to `f` too.
    pub fn update_keyed<R>(
        &mut self,
        f: impl FnOnce(&K, &mut Option<S>) -> R,
    ) -> Result<R, StoreError> {
        let key = self.key;
        self.table.update(key, self.epoch, |s| f(key, s))
    }
}

/// One key's list in a list state.
pub struct ListRef<'a, K, T> {
    key: &'a K,
    state: u8,
    keyed: &'a mut Keyed<K>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<K, T> ListRef<'_, K, T>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    T: Serialize + DeserializeOwned,
{
    /// Appends `item`: a write of the new element only.
    pub fn push(&mut self, item: &T) -> Result<(), StoreError> {
        let mut entry = self.keyed.prefix(self.state, self.key)?;
        let n = self.keyed.appends.entry(entry.clone()).or_insert(0);
        // Elements are numbered by epoch, then by their order in it: no
        // epoch is ever run twice, so numbers never repeat.
        entry.extend_from_slice(&self.keyed.epoch.to_be_bytes());
        entry.extend_from_slice(&n.to_be_bytes());
        *n += 1;
        self.keyed
            .entries
            .put(&entry, |v| codec::encode_into(item, v))
    }

    /// The elements, oldest first.
    pub fn items(&mut self) -> Result<Vec<T>, StoreError> {
        let prefix = self.keyed.prefix(self.state, self.key)?;
        let found = self.keyed.entries.range(&prefix, &prefix, None)?;
        found.iter().map(|(_, v)| codec::decode(v)).collect()
    }

    /// Keeps the elements `keep` accepts, removing the others.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> Result<(), StoreError> {
        let prefix = self.keyed.prefix(self.state, self.key)?;
        for (entry, v) in self.keyed.entries.range(&prefix, &prefix, None)? {
            if !keep(&codec::decode(&v)?) {
                self.keyed.entries.remove(&entry);
            }
        }
        Ok(())
    }

    /// Removes every element.
    pub fn clear(&mut self) -> Result<(), StoreError> {
        self.retain(|_| false)
    }
}

/// One key's map in a map state.
pub struct MapRef<'a, K, MK, MV> {
    key: &'a K,
    state: u8,
    keyed: &'a mut Keyed<K>,
    _kv: std::marker::PhantomData<fn() -> (MK, MV)>,
}

impl<K, MK, MV> MapRef<'_, K, MK, MV>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
    MK: SortKey,
    MV: Serialize + DeserializeOwned,
{
    fn entry(&self, map_key: &MK) -> Result<Vec<u8>, StoreError> {
        let mut entry = self.keyed.prefix(self.state, self.key)?;
        map_key.write_sort_key(&mut entry);
        Ok(entry)
    }

    /// The value at `map_key`.
    pub fn get(&mut self, map_key: &MK) -> Result<Option<MV>, StoreError> {
        let sub = |e: &mut Vec<u8>| map_key.write_sort_key(e);
        (self.keyed).with_entry((self.state, self.key), sub, |entries, entry| {
            entries.get(entry, codec::decode)?.transpose()
        })
    }

    /// Sets `map_key` to `value`.
    pub fn put(&mut self, map_key: &MK, value: &MV) -> Result<(), StoreError> {
        let sub = |e: &mut Vec<u8>| map_key.write_sort_key(e);
        (self.keyed).with_entry((self.state, self.key), sub, |entries, entry| {
            entries.put(entry, |v| codec::encode_into(value, v))
        })
    }

    /// Removes `map_key`.
    pub fn remove(&mut self, map_key: &MK) -> Result<(), StoreError> {
        let sub = |e: &mut Vec<u8>| map_key.write_sort_key(e);
        (self.keyed).with_entry((self.state, self.key), sub, |entries, entry| {
            entries.remove(entry);
            Ok(())
        })
    }

    /// Every entry in `MK` order.
    pub fn entries(&mut self) -> Result<Vec<(MK, MV)>, StoreError> {
        self.scan(None, None)
    }

    /// Every entry from `from` (included) on, in `MK` order.
    pub fn entries_from(&mut self, from: &MK) -> Result<Vec<(MK, MV)>, StoreError> {
        self.scan(Some(from), None)
    }

    /// Every entry from `from` (included) to `end` (excluded), in `MK`
    /// order: the cost follows the entries found, not the map's size.
    pub fn entries_between(&mut self, from: &MK, end: &MK) -> Result<Vec<(MK, MV)>, StoreError> {
        self.scan(Some(from), Some(end))
    }

    fn scan(&mut self, from: Option<&MK>, end: Option<&MK>) -> Result<Vec<(MK, MV)>, StoreError> {
        let prefix = self.keyed.prefix(self.state, self.key)?;
        let start = match from {
            Some(f) => self.entry(f)?,
            None => prefix.clone(),
        };
        let end = end.map(|e| self.entry(e)).transpose()?;
        let found = self.keyed.entries.range(&prefix, &start, end.as_deref())?;
        found
            .iter()
            .map(|(entry, v)| {
                let (k, _) = MK::read_sort_key(&entry[prefix.len()..])
                    .ok_or_else(|| StoreError::Codec("a malformed map key".into()))?;
                Ok((k, codec::decode(v)?))
            })
            .collect()
    }
}

/// One key's timers.
pub struct TimersRef<'a, K> {
    key: &'a K,
    keyed: &'a mut Keyed<K>,
}

impl<K> TimersRef<'_, K>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + std::fmt::Debug + 'static,
{
    /// Sets a timer that fires once the watermark reaches `time`.
    pub fn set_event_time(&mut self, time: u64) -> Result<(), StoreError> {
        self.set(TimerKind::EventTime, time)
    }

    /// Removes the event-time timer at `time`, if set.
    pub fn remove_event_time(&mut self, time: u64) -> Result<(), StoreError> {
        self.remove(TimerKind::EventTime, time)
    }

    /// Sets a timer that fires when epoch `epoch` closes (at once at the
    /// close of the current epoch, for an earlier one).
    pub fn set_epoch(&mut self, epoch: u64) -> Result<(), StoreError> {
        self.set(TimerKind::Epoch, epoch)
    }

    /// Removes the epoch timer at `epoch`, if set.
    pub fn remove_epoch(&mut self, epoch: u64) -> Result<(), StoreError> {
        self.remove(TimerKind::Epoch, epoch)
    }

    fn set(&mut self, kind: TimerKind, time: u64) -> Result<(), StoreError> {
        let entry = self.keyed.timer_entry(self.key, kind, time)?;
        self.keyed.scan.set(kind, time);
        self.keyed.entries.put(&entry, |_| Ok(()))
    }

    fn remove(&mut self, kind: TimerKind, time: u64) -> Result<(), StoreError> {
        let entry = self.keyed.timer_entry(self.key, kind, time)?;
        self.keyed.entries.remove(&entry);
        Ok(())
    }
}
