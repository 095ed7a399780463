//! Helpers shared by the state store's integration tests.
#![allow(dead_code)] // each test file uses some of them

use std::sync::Arc;

use rill_state::{Batch, KvStore, MemoryStore, RocksStore};

/// A case run against every store.
pub type Case = fn(Arc<dyn KvStore>);

/// Runs `case` against the in-memory store and against RocksDB on disk.
pub fn on_each(case: Case) {
    case(Arc::new(MemoryStore::new()));
    let dir = tempfile::tempdir().unwrap();
    case(Arc::new(RocksStore::open(dir.path()).unwrap()));
}

/// Writes `pairs` in one batch.
pub fn put(store: &dyn KvStore, pairs: &[(&str, &str)]) {
    let mut b = Batch::new();
    for (k, v) in pairs {
        b.put(k.as_bytes(), v.as_bytes());
    }
    store.write(b).unwrap();
}

/// The value of `key`, as text.
pub fn get(store: &dyn KvStore, key: &str) -> Option<String> {
    store
        .get(key.as_bytes())
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

/// The names of the entries in `dir`, sorted.
pub fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
