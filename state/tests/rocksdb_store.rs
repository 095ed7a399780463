//! RocksDB's store on disk: it survives a reopen, refuses or migrates
//! other formats, reports damage as corruption, drops what a crash left
//! half-done, and copies itself.

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
}

/// A store of an earlier format (with a deferred record in its form where
/// it had one) opens read-only as it is, and a writable open marks it with
/// the current format and files the record.
#[test]
fn rocksdb_opens_the_previous_formats_and_marks_them_current() {
    use rill_state::store::{DEFERRED_PREFIX, FORMAT_MIGRATES_FROM};
    for &previous in FORMAT_MIGRATES_FROM {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RocksStore::open(dir.path()).unwrap();
            let mut b = Batch::new();
            b.put(FORMAT_KEY, previous.to_le_bytes());
            b.put(b"kept", b"1");
            let mut key = DEFERRED_PREFIX.to_vec();
            key.extend_from_slice(&7u64.to_be_bytes());
            if previous == 4 {
                // A record of deferred changes in format 4's form: per
                // change a kind, the key's and value's lengths (u32 LE),
                // the key and the value.
                let mut record = vec![0u8, 5, 0, 0, 0, 1, 0, 0, 0];
                record.extend_from_slice(b"filed2");
                b.put(key, record);
            } else if previous >= 5 {
                // Format 5's compact form (format 6 added a shorter form
                // for versions, not needed here): a header byte, then per change
                // a kind, the lengths shared with the key before at its
                // start and end, the rest's length, the rest, the value's
                // length and the value.
                let mut record = vec![0x80, 0, 0, 0, 5];
                record.extend_from_slice(b"filed\x012");
                b.put(key, record);
            }
            s.write(b).unwrap();
        }
        let format = |s: &RocksStore| s.get(FORMAT_KEY).unwrap().unwrap();
        {
            let s = RocksStore::open_read_only(dir.path()).unwrap();
            assert_eq!(format(&s), previous.to_le_bytes());
            assert_eq!(get(&s, "kept").as_deref(), Some("1"));
        }
        let s = RocksStore::open(dir.path()).unwrap();
        assert_eq!(format(&s), FORMAT_VERSION.to_le_bytes());
        assert_eq!(get(&s, "kept").as_deref(), Some("1"));
        if previous >= 4 {
            assert_eq!(
                get(&s, "filed").as_deref(),
                Some("2"),
                "the old record is filed"
            );
            assert!(s.scan(DEFERRED_PREFIX, &[], 10).unwrap().is_empty());
        }
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

/// A table file left in `incoming/` was never ingested: reopening removes
/// it, and nothing in it is seen.
#[test]
fn rocksdb_drops_a_table_file_a_crash_left_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap().ingesting_from(1);
        put(&s, &[("a", "1")]);
    }
    let stray = dir.path().join("incoming").join("7.sst");
    std::fs::write(&stray, b"half a table file").unwrap();
    let s = RocksStore::open(dir.path()).unwrap().ingesting_from(1);
    assert!(!stray.exists(), "the unfinished file is still there");
    assert_eq!(get(&s, "a").as_deref(), Some("1"));
    put(&s, &[("b", "2")]);
    assert_eq!(get(&s, "b").as_deref(), Some("2"));
    let left = std::fs::read_dir(dir.path().join("incoming"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "an ingested file was left in incoming/");
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
