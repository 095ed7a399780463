//! [`Entries`]: one step's list elements, map entries and timers on one
//! worker, as bytes — a bounded cache of changes over the versions in the
//! store.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::table::SharedCheckpointer;
use crate::{layout, StoreError};

/// What the store holds of an entry, as far as this cache knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// Not looked up (a write that did not read first).
    Unknown,
    /// No version, or only a deletion.
    Absent,
    /// A live version at this epoch.
    At(u64),
    /// A deletion staged at this epoch.
    Deleted(u64),
}

#[derive(Debug)]
struct Slot {
    value: Option<Vec<u8>>,
    dirty: bool,
    stored: Stored,
}

/// Entries of one step (all its list, map and timer states) on one worker.
///
/// Keys are whole entry keys ([`crate::layout`]: everything but the
/// epoch). Reads go to the cache, then to the store; writes change the
/// cache; [`Entries::stage`] turns an epoch's changes into versions for the
/// worker's next checkpoint batch and then evicts clean entries whose
/// versions are durable, down to the capacity. Without a checkpointer the
/// cache is all there is.
pub struct Entries {
    checkpointer: Option<SharedCheckpointer>,
    /// The step whose live-entry count the checkpointer reports.
    step: String,
    slots: BTreeMap<Vec<u8>, Slot>,
    /// Where a value is encoded before it is checked and cached.
    scratch: Vec<u8>,
    capacity: usize,
    /// False until the store may hold entries the cache has not seen.
    may_be_stored: bool,
    /// Deletions staged, by epoch: once durable they leave the cache (the
    /// store then reads as absent too).
    deletions: std::collections::VecDeque<(u64, Vec<u8>)>,
}

impl Entries {
    /// The entries of a step, over `checkpointer` if state is durable;
    /// `capacity` bounds the clean entries kept in memory.
    pub fn new(checkpointer: Option<SharedCheckpointer>, capacity: usize) -> Self {
        Self::of_step(checkpointer, capacity, "")
    }

    /// [`Entries::new`] for step `step`: each staging adds the change in
    /// its live entries to the step's count of live keys (an estimate: a
    /// put over an entry neither cached nor read counts as new).
    pub fn of_step(checkpointer: Option<SharedCheckpointer>, capacity: usize, step: &str) -> Self {
        let may_be_stored = checkpointer
            .as_ref()
            .is_some_and(|c| c.borrow().resume().is_some());
        Entries {
            checkpointer,
            step: step.to_owned(),
            deletions: Default::default(),
            slots: BTreeMap::new(),
            scratch: Vec::new(),
            capacity: capacity.max(1),
            may_be_stored,
        }
    }

    /// Entries in memory now.
    pub fn cached(&self) -> usize {
        self.slots.len()
    }

    /// `f` of the value of `entry`, if it has one.
    pub fn get<R>(
        &mut self,
        entry: &[u8],
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, StoreError> {
        if let Some(slot) = self.slots.get(entry) {
            return Ok(slot.value.as_deref().map(f));
        }
        let Some(c) = self.checkpointer.as_ref().filter(|_| self.may_be_stored) else {
            return Ok(None);
        };
        let loaded = c.borrow().load(entry)?;
        let (value, stored) = match loaded {
            Some((epoch, Some(v))) => (Some(v), Stored::At(epoch)),
            _ => (None, Stored::Absent),
        };
        let found = value.as_deref().map(f);
        let slot = Slot {
            value,
            dirty: false,
            stored,
        };
        self.slots.insert(entry.to_vec(), slot);
        Ok(found)
    }

    /// Sets `entry` to the bytes `value` appends to an empty buffer. An
    /// entry in the cache keeps its buffers: no allocation.
    pub fn put(
        &mut self,
        entry: &[u8],
        value: impl FnOnce(&mut Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.scratch.clear();
        value(&mut self.scratch)?;
        layout::check_sizes(entry.len(), self.scratch.len())?;
        let durable = self.checkpointer.is_some();
        match self.slots.get_mut(entry) {
            Some(slot) => {
                slot.value
                    .get_or_insert_with(Vec::new)
                    .clone_from(&self.scratch);
                slot.dirty = durable;
            }
            None => self.insert(entry.to_vec(), Some(self.scratch.clone())),
        }
        Ok(())
    }

    /// Removes `entry` (a no-op when it has no value).
    pub fn remove(&mut self, entry: &[u8]) {
        if self.checkpointer.is_none() {
            self.slots.remove(entry);
        } else if let Some(slot) = self.slots.get_mut(entry) {
            slot.value = None;
            slot.dirty = true;
        } else {
            self.insert(entry.to_vec(), None);
        }
    }

    /// Caches a slot for an entry not in the cache: changed, when state
    /// is durable (the store may hold an older version, unless it is new).
    fn insert(&mut self, entry: Vec<u8>, value: Option<Vec<u8>>) {
        let durable = self.checkpointer.is_some();
        let stored = match durable && self.may_be_stored {
            true => Stored::Unknown,
            false => Stored::Absent,
        };
        let slot = Slot {
            value,
            dirty: durable,
            stored,
        };
        self.slots.insert(entry, slot);
    }

    /// Every entry with a value under `prefix`, from `from` on and before
    /// `end` (if given), in key order, with its value.
    #[allow(clippy::type_complexity)]
    pub fn range(
        &mut self,
        prefix: &[u8],
        from: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let start = if from > prefix { from } else { prefix };
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        if let Some(c) = self.checkpointer.as_ref().filter(|_| self.may_be_stored) {
            for (entry, _, value) in c.borrow().scan(prefix, start, end)? {
                found.insert(entry, value);
            }
        }
        let upper = match end {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        for (entry, slot) in self.slots.range::<[u8], _>((Bound::Included(start), upper)) {
            if !entry.starts_with(prefix) {
                break;
            }
            match &slot.value {
                Some(v) => found.insert(entry.clone(), v.clone()),
                None => found.remove(entry),
            };
        }
        Ok(found.into_iter().collect())
    }

    /// Stages every entry changed since the last call as a version tagged
    /// `epoch`, then evicts clean entries down to the capacity.
    pub fn stage(&mut self, epoch: u64) -> Result<(), StoreError> {
        let Some(c) = self.checkpointer.clone() else {
            return Ok(());
        };
        let mut c = c.borrow_mut();
        let durable = c.prepared();
        let mut live = 0i64;
        let mut vanished = Vec::new();
        let staging = c.staging(epoch);
        // One pass over the cache, in key order: cheaper than a lookup per
        // entry from a list of the changed ones, and staged in key order.
        for (entry, slot) in self.slots.iter_mut().filter(|(_, s)| s.dirty) {
            slot.dirty = false;
            if slot.value.is_none() && slot.stored == Stored::Absent {
                // Created and removed since it was last staged.
                vanished.push(entry.clone());
                continue;
            }
            // A write to an entry not read first: a removal removed a live
            // entry, a put made a new one (reading the store to know would
            // cost a lookup per timer set).
            let was = match slot.stored {
                Stored::At(_) => true,
                Stored::Absent | Stored::Deleted(_) => false,
                Stored::Unknown => slot.value.is_none(),
            };
            live += i64::from(slot.value.is_some()) - i64::from(was);
            staging.version(epoch, entry, slot.value.as_deref());
            if slot.value.is_none() {
                self.deletions.push_back((epoch, entry.clone()));
            }
            slot.stored = match slot.value {
                Some(_) => Stored::At(epoch),
                None => Stored::Deleted(epoch),
            };
        }
        for entry in vanished {
            self.slots.remove(&entry);
        }
        if live != 0 && !self.step.is_empty() {
            c.add_keys(&self.step, live);
        }
        drop(c);
        self.forget_deletions(durable);
        if self.slots.len() > self.capacity {
            self.evict(durable);
        }
        Ok(())
    }

    /// Drops deleted entries whose deletion is durable: a store read of
    /// them finds nothing either, so the cache need not hold them.
    fn forget_deletions(&mut self, durable: Option<u64>) {
        let Some(d) = durable else { return };
        while let Some((e, _)) = self.deletions.front() {
            if *e > d {
                break;
            }
            let (_, entry) = self.deletions.pop_front().expect("just seen");
            let gone = self.slots.get(&entry).is_some_and(|s| {
                !s.dirty && s.value.is_none() && matches!(s.stored, Stored::Deleted(x) if x <= d)
            });
            if gone {
                self.slots.remove(&entry);
            }
        }
    }

    /// Drops clean entries whose versions are durable, down to 90% of the
    /// capacity. A deletion not yet durable stays: it hides older versions.
    fn evict(&mut self, durable: Option<u64>) {
        let target = self.capacity - self.capacity / 10;
        let mut excess = self.slots.len().saturating_sub(target);
        let mut live = false;
        self.slots.retain(|_, slot| {
            let evictable = !slot.dirty
                && match slot.stored {
                    Stored::At(e) | Stored::Deleted(e) => durable.is_some_and(|d| e <= d),
                    Stored::Absent => true,
                    Stored::Unknown => false,
                };
            if excess > 0 && evictable {
                excess -= 1;
                live |= slot.value.is_some();
                false
            } else {
                true
            }
        });
        // Only a live entry evicted is in the store and not in the cache.
        if live {
            self.may_be_stored = true;
        }
    }
}
