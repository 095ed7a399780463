//! One conformance suite for every `KvStore`: the in-memory store and
//! RocksDB on disk, the latter both writing batches through its log and
//! ingesting every batch as a table file. Each case runs against all three.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rill_state::store::{DEFERRED_PREFIX, FORMAT_KEY, FORMAT_VERSION};
use rill_state::{Batch, KvStore, MemoryStore, RocksStore, StoreError};

type Case = fn(Arc<dyn KvStore>);

fn on_each(case: Case) {
    case(Arc::new(MemoryStore::new()));
    let dir = tempfile::tempdir().unwrap();
    case(Arc::new(
        RocksStore::open(dir.path())
            .unwrap()
            .ingesting_from(usize::MAX),
    ));
    let dir = tempfile::tempdir().unwrap();
    case(Arc::new(
        RocksStore::open(dir.path()).unwrap().ingesting_from(1),
    ));
}

fn put(store: &dyn KvStore, pairs: &[(&str, &str)]) {
    let mut b = Batch::new();
    for (k, v) in pairs {
        b.put(k.as_bytes(), v.as_bytes());
    }
    store.write(b).unwrap();
}

fn get(store: &dyn KvStore, key: &str) -> Option<String> {
    store
        .get(key.as_bytes())
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn put_get_delete_and_last_write_in_a_batch_wins() {
    on_each(|s| {
        assert_eq!(get(&*s, "a"), None);
        put(&*s, &[("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(get(&*s, "a").as_deref(), Some("3"), "{}", s.kind());
        assert_eq!(get(&*s, "b").as_deref(), Some("2"));
        let mut b = Batch::new();
        b.delete(b"a");
        b.put(b"c", b"4");
        b.delete(b"c");
        b.delete(b"never-there");
        s.write(b).unwrap();
        assert_eq!(get(&*s, "a"), None);
        assert_eq!(get(&*s, "c"), None);
        assert_eq!(get(&*s, "b").as_deref(), Some("2"));
    });
}

#[test]
fn scan_is_ordered_bounded_by_prefix_from_and_limit() {
    on_each(|s| {
        put(
            &*s,
            &[
                ("p/3", "c"),
                ("p/1", "a"),
                ("q/1", "x"),
                ("p/2", "b"),
                ("o", "z"),
            ],
        );
        let keys = |v: Vec<(Vec<u8>, Vec<u8>)>| {
            v.into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(s.scan(b"p/", b"", 10).unwrap()), ["p/1", "p/2", "p/3"]);
        assert_eq!(keys(s.scan(b"p/", b"p/2", 10).unwrap()), ["p/2", "p/3"]);
        assert_eq!(keys(s.scan(b"p/", b"p/1x", 1).unwrap()), ["p/2"]);
        assert_eq!(
            keys(s.scan(b"p/", b"p/4", 10).unwrap()),
            Vec::<String>::new()
        );
        assert_eq!(keys(s.scan(b"r", b"", 10).unwrap()), Vec::<String>::new());
        // Binary keys order bytewise, 0xFF after everything.
        let mut b = Batch::new();
        b.put(vec![b'z', 0xFF], vec![1]);
        b.put(vec![b'z', 0x00], vec![0]);
        s.write(b).unwrap();
        let got = s.scan(b"z", b"", 10).unwrap();
        assert_eq!(
            got,
            vec![(vec![b'z', 0], vec![0]), (vec![b'z', 0xFF], vec![1])]
        );
    });
}

#[test]
fn a_range_deletion_removes_from_its_first_key_up_to_its_end() {
    on_each(|s| {
        put(
            &*s,
            &[
                ("r/0", "a"),
                ("r/1", "b"),
                ("r/2", "c"),
                ("r/3", "d"),
                ("s", "e"),
            ],
        );
        let mut b = Batch::new();
        b.delete_range_with(
            |k| k.extend_from_slice(b"r/1"),
            |k| k.extend_from_slice(b"r/3"),
        );
        b.put(b"t", b"f");
        s.write(b).unwrap();
        let keys: Vec<Vec<u8>> = s
            .scan(b"", b"", usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let want: Vec<&[u8]> = vec![b"r/0", b"r/3", b"s", b"t"];
        let got: Vec<&[u8]> = keys
            .iter()
            .map(|k| k.as_slice())
            .filter(|k| !k.starts_with(b"\x00"))
            .collect();
        assert_eq!(got, want, "{}", s.kind());
    });
}

/// A batch written on several threads (by RocksDB: as several table
/// files of disjoint key ranges) reads back as the same batch written on
/// one: every key, the last change to a key winning.
#[test]
fn a_batch_written_on_several_threads_reads_back_as_written_on_one() {
    on_each(|s| {
        let mut model = std::collections::BTreeMap::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for round in 0..3u32 {
            let mut b = Batch::new();
            for i in 0..3000u32 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Shared prefixes longer than the 24 bytes RocksStore
                // splits on, and keys repeated within the batch.
                let key = format!("a-long-shared-prefix-of-keys/{:04}", x % 1500).into_bytes();
                if x.is_multiple_of(7) {
                    b.delete(&key);
                    model.remove(&key);
                } else {
                    let value = format!("{round}-{i}").into_bytes();
                    b.put(&key, &value);
                    model.insert(key, value);
                }
            }
            s.write_on(b, 3).unwrap();
            let all = s.scan(b"a-", b"", usize::MAX).unwrap();
            let expect: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert!(all == expect, "{}: round {round} differs", s.kind());
        }
    });
}

#[test]
fn every_store_carries_the_format_version() {
    on_each(|s| {
        assert_eq!(
            s.get(FORMAT_KEY).unwrap(),
            Some(FORMAT_VERSION.to_le_bytes().to_vec()),
            "{}",
            s.kind()
        );
    });
}

#[test]
fn a_reader_never_sees_half_a_batch() {
    on_each(|s| {
        const KEYS: usize = 200;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let s = s.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for n in 0u32..300 {
                    let mut b = Batch::new();
                    for k in 0..KEYS {
                        b.put(format!("k{k:04}").into_bytes(), n.to_be_bytes());
                    }
                    s.write(b).unwrap();
                }
                stop.store(true, Ordering::SeqCst);
            })
        };
        let mut checks = 0;
        while !stop.load(Ordering::SeqCst) || checks == 0 {
            let seen = s.scan(b"k", b"", usize::MAX).unwrap();
            if !seen.is_empty() {
                assert_eq!(seen.len(), KEYS, "{}: a batch was half applied", s.kind());
                let first = &seen[0].1;
                assert!(
                    seen.iter().all(|(_, v)| v == first),
                    "{}: a reader saw two batches mixed",
                    s.kind()
                );
            }
            checks += 1;
        }
        writer.join().unwrap();
    });
}

#[test]
fn live_bytes_grow_with_data_and_compact_works() {
    on_each(|s| {
        let before = s.live_bytes().unwrap();
        let mut b = Batch::new();
        for k in 0..5000u32 {
            b.put(k.to_be_bytes(), vec![k as u8; 100]);
        }
        s.write(b).unwrap();
        s.compact().unwrap();
        let after = s.live_bytes().unwrap();
        assert!(after > before + 10_000, "{}: {before} -> {after}", s.kind());
    });
}

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
            } else if previous == 5 {
                // Format 5's compact form: a header byte, then per change
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

/// Kills a process writing large batches at random moments (SIGKILL), then
/// reopens the store: every key must hold the same batch number. The
/// writer ingests batches of at least `ingest_from` changes as table files,
/// built on up to `threads` threads (a file each).
fn crash_rounds(ingest_from: usize, threads: usize, defer: bool) {
    use rand::Rng;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut rng = rand::thread_rng();
    let dir = tempfile::tempdir().unwrap();
    let mut last_seen = None;
    for round in 0..4 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rill-state-torture"))
            .arg(dir.path())
            .arg("3000")
            .arg(ingest_from.to_string())
            .arg(threads.to_string())
            .arg(if defer { "1" } else { "0" })
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next()
            .expect("the writer prints after each batch")
            .unwrap();
        assert!(first.starts_with("wrote"), "{first}");
        std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(5..120)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acknowledged: Vec<u64> = lines
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("wrote ").and_then(|n| n.parse().ok()))
            .collect();
        let s = RocksStore::open(dir.path()).unwrap();
        let all = s.scan(b"key-", b"", usize::MAX).unwrap();
        assert_eq!(
            all.len(),
            3000,
            "round {round}: keys of a batch went missing"
        );
        let batch_of = |v: &Vec<u8>| u64::from_be_bytes(v[..8].try_into().unwrap());
        let n = batch_of(&all[0].1);
        assert!(
            all.iter().all(|(_, v)| batch_of(v) == n),
            "round {round}: batches mixed after a crash"
        );
        if defer {
            // The marker was written with the keys' deferred record.
            let marker = s.get(b"marker").unwrap().expect("a marker");
            assert_eq!(
                batch_of(&marker),
                n,
                "round {round}: a deferred batch and its marker parted"
            );
        }
        if let Some(&acked) = acknowledged.last() {
            assert!(
                n >= acked,
                "round {round}: acknowledged batch {acked} lost (found {n})"
            );
        }
        let incoming = std::fs::read_dir(dir.path().join("incoming"))
            .unwrap()
            .count();
        assert_eq!(incoming, 0, "round {round}: unfinished table files kept");
        last_seen = Some(n);
    }
    assert!(last_seen.is_some());
}

#[test]
fn rocksdb_crash_never_exposes_half_a_batch() {
    crash_rounds(usize::MAX, 1, false);
}

#[test]
fn rocksdb_crash_never_exposes_half_an_ingested_batch() {
    crash_rounds(1, 1, false);
}

#[test]
fn rocksdb_crash_never_exposes_half_a_batch_ingested_as_several_files() {
    crash_rounds(1, 3, false);
}

/// Deferred writes: each batch's keys are logged as one record beside a
/// marker, and filed (ingested, with the default threshold) before a
/// write that touches them, when asked, or at the next open; other writes
/// stack their records on them. A crash at any moment of any of these
/// leaves every key and the marker at one batch.
#[test]
fn rocksdb_crash_never_parts_a_deferred_batch_from_the_rest_of_its_write() {
    crash_rounds(rill_state::INGEST_FROM, 1, true);
}

/// The reserved keys (`\x00...`) of a store: its format marker only, once
/// deferred changes were filed.
fn reserved_keys(store: &dyn KvStore) -> Vec<Vec<u8>> {
    let all = store.scan(b"\x00", b"", usize::MAX).unwrap();
    all.into_iter().map(|(k, _)| k).collect()
}

#[test]
fn a_deferred_write_reads_back_and_orders_like_a_write() {
    on_each(|s| {
        put(&*s, &[("a", "0"), ("c", "0")]);
        let mut now = Batch::new();
        now.put(b"marker", b"1");
        // Two parts, applied in order: the second's `a` wins.
        let mut first = Batch::new();
        first.put(b"a", b"1");
        first.delete(b"c");
        let mut second = Batch::new();
        second.put(b"b", b"1");
        second.put(b"a", b"2");
        s.write_deferred(now, vec![first, Batch::new(), second], 2)
            .unwrap();
        assert_eq!(get(&*s, "a").as_deref(), Some("2"));
        assert_eq!(get(&*s, "b").as_deref(), Some("1"));
        assert_eq!(get(&*s, "c"), None);
        assert_eq!(get(&*s, "marker").as_deref(), Some("1"));
        // A write after a deferred one wins over it.
        let mut later = Batch::new();
        later.put(b"b", b"2");
        s.write_deferred(Batch::new(), vec![later], 1).unwrap();
        put(&*s, &[("b", "3")]);
        assert_eq!(get(&*s, "b").as_deref(), Some("3"));
        assert_eq!(reserved_keys(&*s), vec![FORMAT_KEY.to_vec()]);
    });
}

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
