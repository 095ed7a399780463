//! A new store is opened in idle CPU time, but RocksDB's flush and
//! compaction threads, shared by the process, keep normal priority.

#![cfg(target_os = "linux")]

use rill_state::{KvStore, OpeningStore, RocksStore};

/// Each thread of this process named `rocksdb:…` with its scheduling
/// policy (field 41 of `/proc/self/task/N/stat`: 0 normal, 5 idle).
fn rocksdb_threads() -> Vec<(String, u32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let comm = comm.trim().to_owned();
        if !comm.starts_with("rocksdb:") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
        // Fields after the command name start with field 3.
        let rest = stat.rsplit_once(')').unwrap().1;
        let policy: u32 = rest
            .split_whitespace()
            .nth(41 - 3)
            .unwrap()
            .parse()
            .unwrap();
        found.push((comm, policy));
    }
    found
}

#[test]
fn rocksdb_threads_keep_normal_priority_when_the_store_opens_in_idle_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    RocksStore::start_background_threads().unwrap();
    let store = OpeningStore::spawn_in_idle_time("test".into(), move || {
        Ok(Box::new(RocksStore::open(&path)?) as Box<dyn KvStore>)
    })
    .unwrap();
    let mut batch = rill_state::Batch::new();
    batch.put(b"k", b"v");
    store.write(batch).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
    let threads = rocksdb_threads();
    let pools: Vec<_> = threads
        .iter()
        .filter(|(name, _)| name.starts_with("rocksdb:high") || name.starts_with("rocksdb:low"))
        .collect();
    assert!(
        pools.len() >= 2,
        "flush and compaction threads: {threads:?}"
    );
    assert!(
        pools.iter().all(|(_, policy)| *policy == 0),
        "normal priority, not idle (5): {threads:?}"
    );
}
