//! Crash consistency of RocksDB's store: a writer process killed with
//! SIGKILL at random moments never leaves half a batch behind.

use rill_state::{KvStore, RocksStore};

mod common;

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
        // Opening removes the files of table files never ingested (and
        // their directory, made again by the next file).
        let incoming = std::fs::read_dir(dir.path().join("incoming")).map_or(0, |d| d.count());
        assert_eq!(incoming, 0, "round {round}: unfinished table files kept");
        last_seen = Some(n);
    }
    assert!(last_seen.is_some());
}

/// Kills a process writing deferred batches to a new store at random
/// moments from its start (SIGKILL): while its first batch goes to the
/// prelude, while it waits there, while RocksDB is created and the
/// prelude filed, or after.
/// Each round starts on a new directory; reopening it must show no batch
/// (if none was acknowledged) or one whole batch and its marker.
#[test]
fn a_new_store_crashed_while_logging_or_filing_its_first_write_keeps_whole_batches() {
    use rand::Rng;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut rng = rand::thread_rng();
    let mut outcomes = std::collections::BTreeSet::new();
    for round in 0..16 {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rill-state-torture"))
            .arg(dir.path())
            .args(["3000", "8192", "1", "2"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // From the start: the first batch takes a few milliseconds.
        std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(0..100)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acknowledged: Vec<u64> = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("wrote ").and_then(|n| n.parse().ok()))
            .collect();
        let left = common::files(dir.path());
        let s = RocksStore::open(dir.path()).unwrap();
        assert!(
            !dir.path().join("PRELUDE").exists(),
            "round {round}: opening filed no prelude"
        );
        let all = s.scan(b"key-", b"", usize::MAX).unwrap();
        let batch_of = |v: &[u8]| u64::from_be_bytes(v[..8].try_into().unwrap());
        let marker = s.get(b"marker").unwrap();
        if all.is_empty() {
            assert!(
                acknowledged.is_empty(),
                "round {round}: acknowledged {acknowledged:?} lost (left {left:?})"
            );
            assert_eq!(marker, None, "round {round}: a marker without its batch");
            outcomes.insert("nothing");
            continue;
        }
        assert_eq!(
            all.len(),
            3000,
            "round {round}: keys of a batch went missing (left {left:?})"
        );
        let n = batch_of(&all[0].1);
        assert!(
            all.iter().all(|(_, v)| batch_of(v) == n),
            "round {round}: batches mixed after a crash"
        );
        assert_eq!(
            marker.map(|m| batch_of(&m)),
            Some(n),
            "round {round}: a batch and its marker parted"
        );
        if let Some(&acked) = acknowledged.last() {
            assert!(
                n >= acked,
                "round {round}: acknowledged batch {acked} lost (found {n})"
            );
        }
        outcomes.insert(if left.contains(&"CURRENT".to_string()) {
            "in RocksDB"
        } else {
            "in the prelude"
        });
    }
    eprintln!("outcomes seen: {outcomes:?}");
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
