//! [`Table`]: one stateful step's keyed state on one worker — a bounded
//! in-memory cache over the versions in the store.

mod stager;

use stager::Stager;

use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;
use std::hash::Hash;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::checkpoint::Checkpointer;
use crate::codec::decode;
use crate::layout;
use crate::{KeyGroups, StoreError};

/// A worker's checkpointer, shared by the steps of its dataflow.
pub type SharedCheckpointer = Rc<RefCell<Checkpointer>>;

/// One cached key. Kept small (32 bytes beside a `u64` state) and with
/// everything an update reads next to what it writes, so that the hot
/// path touches as few cache lines as without a store.
pub(super) struct Entry<S> {
    pub(super) value: Option<S>,
    /// The epoch of the last use, shifted left one bit; the low bit says
    /// the key changed since it was last staged.
    pub(super) mark: u64,
    /// The newest version in the store (or staged), if any.
    pub(super) stored: Stored,
}

impl<S> Entry<S> {
    fn new(touched: u64) -> Self {
        Entry {
            value: None,
            mark: touched << 1,
            stored: Stored::NONE,
        }
    }

    pub(super) fn dirty(&self) -> bool {
        self.mark & 1 == 1
    }

    fn touched(&self) -> u64 {
        self.mark >> 1
    }

    fn touch(&mut self, epoch: u64) {
        self.mark = epoch << 1 | (self.mark & 1);
    }
}

/// The newest stored version of a key, packed into one word:
/// 0 for none, else `(epoch + 1) << 1` with the low bit set when the
/// version holds a value (clear for a deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stored(u64);

impl Stored {
    pub(super) const NONE: Stored = Stored(0);

    pub(super) fn new(epoch: u64, live: bool) -> Self {
        Stored((epoch + 1) << 1 | u64::from(live))
    }

    fn epoch(self) -> Option<u64> {
        (self.0 != 0).then(|| (self.0 >> 1) - 1)
    }

    pub(super) fn live(self) -> bool {
        self.0 & 1 == 1
    }
}

/// Keyed state of one step on one worker.
///
/// Reads go to the cache, then to the store (the newest version). Writes
/// change the cache and mark the key dirty; [`Table::stage`] turns the dirty
/// keys of an epoch into versions for the worker's next checkpoint batch and
/// then shrinks the cache to its capacity, evicting clean keys that were used
/// least recently. Without a checkpointer the table is a plain hash map.
pub struct Table<K, S> {
    name: String,
    step: u64,
    state: u8,
    groups: KeyGroups,
    checkpointer: Option<SharedCheckpointer>,
    cache: HashMap<K, Entry<S>>,
    capacity: usize,
    /// False until the store may hold keys this table has not seen
    /// (after a resume, or after an eviction): until then a miss is a new key.
    may_be_stored: bool,
    epoch: u64,
    /// The durable epoch at which an eviction pass could not make room.
    blocked_at: Option<Option<u64>>,
}

impl<K, S> Table<K, S>
where
    K: Hash + Eq + Clone + Serialize + std::fmt::Debug,
    S: Serialize + DeserializeOwned,
{
    /// The table of value state `state` of step `name`, whose id
    /// [`Checkpointer::register`] returned (`step`; anything without a
    /// checkpointer). `capacity` bounds the number of clean keys kept in
    /// memory.
    pub fn new(
        name: &str,
        (step, state): (u64, u8),
        groups: KeyGroups,
        checkpointer: Option<SharedCheckpointer>,
        capacity: usize,
    ) -> Self {
        let may_be_stored = checkpointer
            .as_ref()
            .is_some_and(|c| c.borrow().resume().is_some());
        Table {
            name: name.to_owned(),
            step,
            state,
            groups,
            checkpointer,
            cache: HashMap::default(),
            capacity: capacity.max(1),
            may_be_stored,
            epoch: 0,
            blocked_at: None,
        }
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keys in memory now.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    fn prefix_of(&self, key: &K) -> Result<Vec<u8>, StoreError> {
        let mut prefix = Vec::with_capacity(64);
        let group = self.groups.group_of_key(key).0;
        layout::write_head(&mut prefix, self.step, self.state, group);
        layout::write_encoded_key(&mut prefix, key)?;
        Ok(prefix)
    }

    fn fetch(&mut self, key: &K) -> Result<Entry<S>, StoreError> {
        let mut entry = Entry::new(self.epoch);
        if !self.may_be_stored {
            return Ok(entry);
        }
        let Some(c) = self.checkpointer.clone() else {
            return Ok(entry);
        };
        let prefix = self.prefix_of(key)?;
        if let Some((epoch, value)) = c.borrow().load(&prefix)? {
            entry.stored = Stored::new(epoch, value.is_some());
            entry.value = value.map(|v| decode(&v)).transpose()?;
        }
        Ok(entry)
    }

    /// Runs `f` on the state of `key` during `epoch` and returns its result.
    /// `f` may set the state to `None` to delete it. Data must arrive in
    /// epoch order, with [`Table::stage`] called for an epoch before any
    /// update of a later one.
    pub fn update<R>(
        &mut self,
        key: &K,
        epoch: u64,
        f: impl FnOnce(&mut Option<S>) -> R,
    ) -> Result<R, StoreError> {
        self.epoch = epoch;
        let durable = self.checkpointer.is_some();
        if let Some(entry) = self.cache.get_mut(key) {
            let result = f(&mut entry.value);
            if !durable {
                entry.mark = epoch << 1;
                if entry.value.is_none() {
                    self.cache.remove(key);
                }
                return Ok(result);
            }
            entry.mark = epoch << 1 | 1;
            return Ok(result);
        }
        // A miss: load the key (or start it empty), then apply as a hit.
        self.make_room();
        let entry = self.fetch(key)?;
        self.cache.insert(key.clone(), entry);
        self.update(key, epoch, f)
    }

    /// The current state of `key`, if any (reading the store on a miss).
    pub fn get(&mut self, key: &K) -> Result<Option<&S>, StoreError> {
        if !self.cache.contains_key(key) {
            self.make_room();
            let entry = self.fetch(key)?;
            if entry.value.is_none() {
                return Ok(None);
            }
            self.cache.insert(key.clone(), entry);
        }
        let epoch = self.epoch;
        let entry = self.cache.get_mut(key);
        Ok(entry.and_then(|e| {
            e.touch(epoch);
            e.value.as_ref()
        }))
    }

    /// Stages every key changed since the last call as a version tagged
    /// `epoch`, then evicts clean keys down to the capacity.
    pub fn stage(&mut self, epoch: u64) -> Result<(), StoreError> {
        let Some(c) = self.checkpointer.clone() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let mut c = c.borrow_mut();
        let mut stager = Stager {
            epoch,
            staging: c.staging(epoch),
            staged: 0,
            step: self.step,
            state: self.state,
            groups: self.groups,
            live_delta: 0,
            vanished: 0,
        };
        // One pass in memory order over the cache finds the dirty keys
        // faster than a lookup per key from a list of them.
        for (key, entry) in &mut self.cache {
            stager.stage(key, entry)?;
        }
        let (live_delta, vanished, changed) = (stager.live_delta, stager.vanished, stager.staged);
        if vanished > 0 {
            // Created and deleted within the epoch: nothing to keep.
            self.cache
                .retain(|_, e| e.value.is_some() || e.stored != Stored::NONE);
        }
        if live_delta != 0 {
            c.add_keys(&self.name, live_delta);
        }
        drop(c);
        self.evict_to_capacity();
        log::debug!(
            "state: {} staged {changed} keys of epoch {epoch} in {:.1?}",
            self.name,
            started.elapsed()
        );
        Ok(())
    }

    /// On a miss with a full cache: evict, once per newly durable epoch
    /// (keys staged but not yet written cannot leave the cache).
    fn make_room(&mut self) {
        if self.cache.len() < self.capacity {
            return;
        }
        let durable = self
            .checkpointer
            .as_ref()
            .and_then(|c| c.borrow().prepared());
        if self.blocked_at != Some(durable) {
            self.evict_to_capacity();
        }
    }

    fn evict_to_capacity(&mut self) {
        let durable = self
            .checkpointer
            .as_ref()
            .and_then(|c| c.borrow().prepared());
        self.evict(durable);
        // Nothing more can leave until another epoch is durable.
        self.blocked_at = (self.cache.len() >= self.capacity).then_some(durable);
    }

    /// Evicts clean keys whose newest version is durable, least recently
    /// used first, down to 90% of the capacity (the slack amortizes the
    /// pass over the cache).
    fn evict(&mut self, durable: Option<u64>) {
        if self.checkpointer.is_none() || self.cache.len() < self.capacity {
            return;
        }
        let target = self.capacity - self.capacity / 10;
        let evictable = |e: &Entry<S>| {
            !e.dirty()
                && e.stored
                    .epoch()
                    .is_none_or(|s| durable.is_some_and(|d| s <= d))
        };
        let mut ages: Vec<u64> = self
            .cache
            .values()
            .filter(|e| evictable(e))
            .map(|e| e.touched())
            .collect();
        let excess = self.cache.len() - target;
        if ages.is_empty() {
            return;
        }
        let n = excess.min(ages.len());
        let (_, &mut cutoff, _) = ages.select_nth_unstable(n - 1);
        let mut left = n;
        self.cache.retain(|_, e| {
            if left > 0 && e.touched() <= cutoff && evictable(e) {
                left -= 1;
                false
            } else {
                true
            }
        });
        self.may_be_stored = true;
    }
}
