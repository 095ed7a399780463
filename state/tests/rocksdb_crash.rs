//! Crash consistency of RocksDB's store: a writer process killed with
//! SIGKILL at random moments never leaves half a batch behind.

use rill_state::{KvStore, RocksStore};

/// Kills a process writing large batches at random moments (SIGKILL), then
/// reopens the store: every key must hold the same batch number, at least
/// the last one acknowledged. At least one kill must land inside a write
/// (after its `writing N`, before its `wrote N`), or the test proves
/// nothing and fails.
#[test]
fn rocksdb_crash_never_exposes_half_a_batch() {
    crash_rounds(3000);
}

/// The same with batches large enough to be ingested as table files.
#[test]
fn rocksdb_crash_never_exposes_half_an_ingested_batch() {
    const { assert!(20_000 >= rill_state::store::INGEST_FROM) };
    crash_rounds(20_000);
}

fn crash_rounds(keys: usize) {
    use rand::Rng;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut rng = rand::thread_rng();
    let dir = tempfile::tempdir().unwrap();
    let mut inside = 0;
    for round in 0..12 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rill-state-torture"))
            .arg(dir.path())
            .arg(keys.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("the writer prints").unwrap();
        assert!(first.starts_with("writing"), "{first}");
        std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(5..120)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let said: Vec<String> = lines.map_while(Result::ok).collect();
        let acknowledged = said
            .iter()
            .filter_map(|l| l.strip_prefix("wrote ").and_then(|n| n.parse::<u64>().ok()))
            .next_back();
        if said.last().is_none_or(|l| l.starts_with("writing")) {
            inside += 1;
        }
        let s = RocksStore::open(dir.path()).unwrap();
        let all = s.scan(b"key-", b"", usize::MAX).unwrap();
        if all.is_empty() {
            assert_eq!(
                acknowledged, None,
                "round {round}: an acknowledged batch lost"
            );
            continue;
        }
        assert_eq!(
            all.len(),
            keys,
            "round {round}: keys of a batch went missing"
        );
        let batch_of = |v: &Vec<u8>| u64::from_be_bytes(v[..8].try_into().unwrap());
        let n = batch_of(&all[0].1);
        assert!(
            all.iter().all(|(_, v)| batch_of(v) == n),
            "round {round}: batches mixed after a crash"
        );
        if let Some(acked) = acknowledged {
            assert!(
                n >= acked,
                "round {round}: acknowledged batch {acked} lost (found {n})"
            );
        }
    }
    assert!(inside > 0, "no kill landed inside a write");
    eprintln!("{keys} keys: {inside} of 12 kills landed inside a write");
    let left = std::fs::read_dir(dir.path().join("incoming")).map_or(0, |d| d.count());
    assert_eq!(left, 0, "opening removes half-built table files");
}
