//! Deferred writes on RocksDB: records filed at the next open, stacked on
//! one another, and filed together in order before a read.

use rill_state::store::{DEFERRED_PREFIX, FORMAT_KEY};
use rill_state::{Batch, KvStore, RocksStore};

mod common;

use common::*;

#[test]
fn rocksdb_files_deferred_changes_when_next_opened() {
    let dir = tempfile::tempdir().unwrap();
    let keys = 10_000u32;
    {
        let s = RocksStore::open(dir.path()).unwrap();
        put(&s, &[("a", "0")]);
        let mut now = Batch::new();
        now.put(b"marker", b"1");
        // Two parts (two workers' batches): filed in order, so the
        // second's `a` wins.
        let (mut first, mut second) = (Batch::new(), Batch::new());
        first.put(b"a", b"1");
        for k in 0..keys {
            let part = if k % 2 == 0 { &mut first } else { &mut second };
            part.put(format!("k{k:05}"), k.to_be_bytes());
        }
        second.put(b"a", b"4");
        s.write_deferred(now, vec![first, second], 2).unwrap();
    }
    {
        // Read-only: what was written now, not yet what was deferred.
        let s = RocksStore::open_read_only(dir.path()).unwrap();
        assert_eq!(get(&s, "marker").as_deref(), Some("1"));
    }
    {
        let s = RocksStore::open(dir.path()).unwrap();
        assert_eq!(get(&s, "a").as_deref(), Some("4"));
        let filed = s.scan(b"k", b"", usize::MAX).unwrap();
        assert_eq!(filed.len(), keys as usize);
        assert!(filed
            .iter()
            .enumerate()
            .all(|(k, (_, v))| v[..] == (k as u32).to_be_bytes()));
        assert_eq!(reserved_keys(&s), vec![FORMAT_KEY.to_vec()]);
        // Deferred, then overwritten, then reopened: the overwrite stays.
        let mut later = Batch::new();
        later.put(b"a", b"2");
        s.write_deferred(Batch::new(), vec![later], 1).unwrap();
        put(&s, &[("a", "3")]);
    }
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(get(&s, "a").as_deref(), Some("3"));
    assert_eq!(reserved_keys(&s), vec![FORMAT_KEY.to_vec()]);
    // Large values are not worth a record: written at once, on two
    // threads (as table files), and seen by a read-only handle.
    let s = s.ingesting_from(100);
    let mut later = Batch::new();
    for k in 0..1000u32 {
        later.put(format!("big{k:04}"), vec![7u8; 1000]);
    }
    s.write_deferred(Batch::new(), vec![later], 2).unwrap();
    assert_eq!(reserved_keys(&s), vec![FORMAT_KEY.to_vec()], "no record");
    drop(s);
    let s = RocksStore::open_read_only(dir.path()).unwrap();
    assert_eq!(s.scan(b"big", b"", usize::MAX).unwrap().len(), 1000);
}

/// A batch of `keys` changes `k00000`... to `value`.
fn keys_at(keys: u32, value: u8) -> Batch {
    let mut b = Batch::new();
    for k in 0..keys {
        b.put(format!("k{k:05}"), [value]);
    }
    b
}

/// The deferred records a store holds (read through a read-only handle).
fn deferred_records(path: &std::path::Path) -> usize {
    let s = RocksStore::open_read_only(path).unwrap();
    let records = s.scan(DEFERRED_PREFIX, b"", usize::MAX).unwrap();
    records.len()
}

#[test]
fn rocksdb_stacks_a_deferred_write_on_unfiled_ones_unless_it_touches_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap();
        put(&s, &[("a", "0"), ("z", "0")]);
        let marker = |n: &str| {
            let mut now = Batch::new();
            now.put(b"marker", n);
            now
        };
        let mut first = keys_at(5000, 1);
        first.put(b"a", b"1");
        s.write_deferred(marker("1"), vec![first], 1).unwrap();
        // `marker` lies above every pending key: stacked, nothing filed.
        s.write_deferred(marker("2"), vec![keys_at(5000, 2)], 1)
            .unwrap();
        assert_eq!(deferred_records(dir.path()), 2, "the second stacked");
        // `z` is above them too; the deletion of `a` is not: filed first,
        // or filing `a` later would bring it back.
        let mut now = marker("3");
        now.delete(b"z");
        now.delete(b"a");
        s.write_deferred(now, vec![keys_at(4000, 3)], 1).unwrap();
        assert_eq!(deferred_records(dir.path()), 1, "filed, then deferred");
        let mut range = marker("4");
        range.delete_range_with(
            |o| o.extend_from_slice(b"b"),
            |o| o.extend_from_slice(b"k00001"),
        );
        let mut last = Batch::new();
        last.put(b"k09999", [4]);
        s.write_deferred(range, vec![last], 1).unwrap();
        assert_eq!(deferred_records(dir.path()), 1, "a range reaching them");
    }
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(
        get(&s, "a"),
        None,
        "a deletion written after `a` was deferred"
    );
    assert_eq!(get(&s, "z"), None);
    assert_eq!(get(&s, "marker").as_deref(), Some("4"));
    let all = s.scan(b"k", b"", usize::MAX).unwrap();
    assert_eq!(all.len(), 5000, "k00000 deleted by the range, k09999 added");
    for (k, v) in &all {
        let n: u32 = std::str::from_utf8(&k[1..]).unwrap().parse().unwrap();
        let expect = match n {
            1..=3999 => 3,
            4000..=4999 => 2,
            9999 => 4,
            _ => panic!("k{n:05} is left"),
        };
        assert_eq!(v[..], [expect], "k{n:05}");
    }
    assert_eq!(reserved_keys(&s), vec![FORMAT_KEY.to_vec()]);
}

#[test]
fn rocksdb_files_stacked_deferred_writes_together_in_order_before_a_read() {
    let dir = tempfile::tempdir().unwrap();
    // Every filing ingests a table file.
    let s = RocksStore::open(dir.path()).unwrap().ingesting_from(1);
    s.write_deferred(Batch::new(), vec![keys_at(3000, 1)], 1)
        .unwrap();
    s.write_deferred(Batch::new(), vec![keys_at(2000, 2)], 1)
        .unwrap();
    // A range deletion among them: filed on its own, after the others
    // (which are filed together).
    let mut ranged = Batch::new();
    ranged.delete_range_with(
        |o| o.extend_from_slice(b"k00000"),
        |o| o.extend_from_slice(b"k00005"),
    );
    ranged.put(b"k09999", [4]);
    s.write_deferred(Batch::new(), vec![ranged], 1).unwrap();
    s.write_deferred(Batch::new(), vec![keys_at(3, 5)], 1)
        .unwrap();
    assert_eq!(deferred_records(dir.path()), 4);
    let all = s.scan(b"k", b"", usize::MAX).unwrap();
    assert_eq!(deferred_records(dir.path()), 0, "filed before the read");
    let values: Vec<(String, u8)> = all
        .iter()
        .map(|(k, v)| (String::from_utf8(k.clone()).unwrap(), v[0]))
        .collect();
    assert_eq!(values.len(), 3 + 2995 + 1, "{:?}", &values[..8]);
    assert_eq!(values[0], ("k00000".into(), 5));
    assert_eq!(values[2], ("k00002".into(), 5));
    assert_eq!(values[3], ("k00005".into(), 2));
    assert_eq!(values[1997], ("k01999".into(), 2));
    assert_eq!(values[1998], ("k02000".into(), 1));
    assert_eq!(values[2998], ("k09999".into(), 4));
    // Filed together: the first two records as one table file, then the
    // other two, each filing followed by its records' deletion (a file
    // too, ingesting from one change), and one flush of the memtable that
    // held the records (RocksDB flushes it before ingesting a file over
    // its keys): 7 files, where filing each record on its own makes 9.
    let tables = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sst"))
        })
        .count();
    assert_eq!(tables, 7, "table files");
}
