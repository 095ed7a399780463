//! [`MemoryStore`]: a `BTreeMap` behind a lock. State lives as long as the
//! process; used by tests and by jobs that want state without durability.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{check_format, Batch, Entries, KvStore, Op, StoreError};
use crate::versions::VersionGc;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory [`KvStore`]. A batch is applied under the write lock, so a
/// reader sees all of it or none of it. Garbage versions ([`VersionGc`])
/// are dropped after the first write or compaction that follows a move of
/// the horizon.
#[derive(Debug)]
pub struct MemoryStore {
    map: RwLock<Map>,
    gc: VersionGc,
    /// The horizon (plus one) of the last garbage pass.
    collected: AtomicU64,
}

impl MemoryStore {
    /// An empty store, with its format marker written.
    pub fn new() -> Self {
        let store = MemoryStore {
            map: RwLock::new(BTreeMap::new()),
            gc: VersionGc::new(),
            collected: AtomicU64::new(0),
        };
        check_format(&store, "memory", true).expect("an empty memory store accepts its format");
        store
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_lock(&self) -> RwLockWriteGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops garbage versions if the horizon moved since the last pass.
    fn collect(&self, map: &mut Map, always: bool) {
        let horizon = self.gc.horizon().map_or(0, |h| h + 1);
        if !always && self.collected.swap(horizon, Ordering::AcqRel) == horizon {
            return;
        }
        let mut pass = self.gc.pass();
        map.retain(|k, _| !pass.drops(k));
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl KvStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().get(key).cloned())
    }

    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreError> {
        let start = if from > prefix { from } else { prefix };
        let map = self.read();
        Ok(map
            .range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        let mut map = self.write_lock();
        for op in batch.ops() {
            match op {
                Op::Put(k, v) => _ = map.insert(k.to_vec(), v.to_vec()),
                Op::Delete(k) => _ = map.remove(k),
                Op::DeleteRange(from, to) => {
                    let doomed: Vec<Vec<u8>> = map
                        .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in doomed {
                        map.remove(&k);
                    }
                }
            }
        }
        self.collect(&mut map, false);
        Ok(())
    }

    fn compact(&self) -> Result<(), StoreError> {
        self.collect(&mut self.write_lock(), true);
        Ok(())
    }

    fn versions(&self) -> &VersionGc {
        &self.gc
    }

    fn live_bytes(&self, range: Option<(&[u8], &[u8])>) -> Result<u64, StoreError> {
        let inside = |k: &[u8]| range.is_none_or(|(from, to)| from <= k && k < to);
        let entries = self.read();
        let live = entries.iter().filter(|(k, _)| inside(k));
        Ok(live.map(|(k, v)| (k.len() + v.len()) as u64).sum())
    }
}
