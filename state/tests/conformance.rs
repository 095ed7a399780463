//! One conformance suite for every `KvStore`: the in-memory store and
//! RocksDB on disk. Each case runs against both.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rill_state::store::{FORMAT_KEY, FORMAT_VERSION};
use rill_state::Batch;

mod common;

use common::*;

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
        let before = s.live_bytes(None).unwrap();
        let mut b = Batch::new();
        for k in 0..5000u32 {
            b.put(k.to_be_bytes(), vec![k as u8; 100]);
        }
        s.write(b).unwrap();
        s.compact().unwrap();
        let after = s.live_bytes(None).unwrap();
        assert!(after > before + 10_000, "{}: {before} -> {after}", s.kind());
        // Of a key range: the first half of the keys, and past them all.
        let (from, to) = (0u32.to_be_bytes(), 2500u32.to_be_bytes());
        let half = s.live_bytes(Some((&from, &to))).unwrap();
        assert!(half > 0 && half < after, "{}: {half} of {after}", s.kind());
        let past = s.live_bytes(Some((&[0xFF; 5], &[0xFF; 6]))).unwrap();
        assert_eq!(past, 0, "{}: bytes past every key", s.kind());
    });
}

/// A batch large enough for RocksDB to ingest it as a table file reads back
/// as the same changes applied in order: the last change to a key wins.
#[test]
fn a_large_batch_reads_back_as_its_changes_applied_in_order() {
    on_each(|s| {
        let mut model = std::collections::BTreeMap::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for round in 0..3u32 {
            let mut b = Batch::new();
            for i in 0..(rill_state::store::INGEST_FROM as u32 + 3000) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = format!("big/{:05}", x % 12_000).into_bytes();
                if x.is_multiple_of(7) {
                    b.delete(&key);
                    model.remove(&key);
                } else {
                    let value = format!("{round}-{i}").into_bytes();
                    b.put(&key, &value);
                    model.insert(key, value);
                }
            }
            s.write(b).unwrap();
            let all = s.scan(b"big/", b"", usize::MAX).unwrap();
            let expect: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert!(all == expect, "{}: round {round} differs", s.kind());
        }
    });
}
