//! RocksDB's store on disk: it survives a reopen, refuses other formats
//! with a clear error, reports damage as corruption, and copies itself.

use rill_state::store::{FORMAT_KEY, FORMAT_VERSION};
use rill_state::{Batch, KvStore, MemoryStore, RocksStore, StoreError};

mod common;

use common::*;

#[test]
fn rocksdb_batches_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap();
        put(&s, &[("kept", "yes")]);
    }
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(get(&s, "kept").as_deref(), Some("yes"));
}

#[test]
fn rocksdb_refuses_another_format_version() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap();
        let mut b = Batch::new();
        b.put(FORMAT_KEY, 99u32.to_le_bytes());
        s.write(b).unwrap();
    }
    let err = RocksStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Format { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("format version 99"), "{err}");
    assert!(err.to_string().contains("new (empty) --state-dir"), "{err}");
    // Every older format is refused alike: there is nothing to migrate.
    for older in 1..FORMAT_VERSION {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RocksStore::open(dir.path()).unwrap();
            let mut b = Batch::new();
            b.put(FORMAT_KEY, older.to_le_bytes());
            s.write(b).unwrap();
        }
        let err = RocksStore::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::Format { .. }),
            "format {older}: {err}"
        );
    }
}

#[test]
fn rocksdb_reports_a_truncated_store_as_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap();
        put(&s, &[("a", "1")]);
    }
    std::fs::remove_file(dir.path().join("CURRENT")).unwrap();
    let err = RocksStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupted { .. }), "{err}");
    assert!(err.to_string().contains("CURRENT"), "{err}");
}

#[test]
fn rocksdb_reports_a_damaged_table_file_as_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap();
        let mut b = Batch::new();
        for k in 0..2000u32 {
            b.put(k.to_be_bytes(), vec![7; 50]);
        }
        s.write(b).unwrap();
        s.compact().unwrap();
    }
    let sst = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .expect("compaction leaves a table file");
    let mut bytes = std::fs::read(&sst).unwrap();
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5A;
    }
    std::fs::write(&sst, bytes).unwrap();
    let result = RocksStore::open(dir.path()).and_then(|s| {
        s.scan(b"", b"", usize::MAX)?;
        Ok(())
    });
    let err = result.expect_err("a damaged table file must not read as valid");
    assert!(matches!(err, StoreError::Corrupted { .. }), "{err}");
}

#[test]
fn a_rocksdb_snapshot_opens_as_a_store_with_the_same_contents() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksStore::open(&dir.path().join("live")).unwrap();
    put(&s, &[("a", "1"), ("b", "2")]);
    assert!(s.snapshot(&dir.path().join("copy")).unwrap());
    put(&s, &[("a", "changed")]);
    let copy = RocksStore::open(&dir.path().join("copy")).unwrap();
    assert_eq!(get(&copy, "a").as_deref(), Some("1"));
    assert_eq!(get(&copy, "b").as_deref(), Some("2"));
    assert!(!MemoryStore::new().snapshot(&dir.path().join("m")).unwrap());
}
