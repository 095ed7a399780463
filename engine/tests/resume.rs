//! Resuming from checkpoints in RocksDB: state and source positions come
//! back, a cache a quarter of the state size reads the rest from disk, step
//! changes are clear errors, and garbage collection bounds the disk.

use rill::{Error, JobArgs};
use rill_state::checkpoint::{self, Checkpointer};
use rill_state::{KvStore, RocksStore};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn args(dir: &Path, workers: usize, cache: usize) -> JobArgs {
    JobArgs {
        workers,
        epoch_interval: Duration::from_millis(5),
        state_dir: Some(dir.to_owned()),
        state_cache_keys: cache,
        ..JobArgs::default()
    }
}

/// `n` records over `keys` keys, deterministic.
fn records(n: u64, keys: u64) -> Vec<(String, u64)> {
    (0..n)
        .map(|i| (format!("key-{:05}", (i * 7919) % keys), i % 13))
        .collect()
}

fn last_per_key(out: Vec<(String, u64)>) -> BTreeMap<String, u64> {
    out.into_iter().collect()
}

fn sum_job(data: Vec<(String, u64)>, a: JobArgs) -> rill::Result<Vec<(String, u64)>> {
    rill::testing::run_with(a, move |flow| {
        flow.source_iter_keyed("input", data.clone()).sum("totals")
    })
}

#[test]
fn a_resumed_job_continues_state_and_source_positions_with_a_quarter_cache() {
    const KEYS: u64 = 4000;
    let dir = tempfile::tempdir().unwrap();
    let all = records(40_000, KEYS);
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in &all {
        *expected.entry(k.clone()).or_default() += v;
    }
    // Run 1: the first half; the cache holds a quarter of the keys.
    let first = sum_job(
        all[..20_000].to_vec(),
        args(dir.path(), 2, (KEYS / 4 / 2) as usize),
    )
    .unwrap();
    assert_eq!(first.len(), 20_000);
    // Run 2: the whole input; the source skips what run 1 read.
    let second = sum_job(all.clone(), args(dir.path(), 2, (KEYS / 4 / 2) as usize)).unwrap();
    assert_eq!(second.len(), 20_000, "only the new half is read again");
    let mut finals = last_per_key(first);
    finals.extend(last_per_key(second));
    assert_eq!(finals, expected);
    // Run 3: nothing new; nothing is emitted and nothing is lost.
    let third = sum_job(all.clone(), args(dir.path(), 2, 100)).unwrap();
    assert!(third.is_empty());
}

#[test]
fn a_renamed_or_missing_step_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    sum_job(records(1000, 10), args(dir.path(), 1, 100)).unwrap();

    let data = records(1000, 10);
    let renamed = rill::testing::run_with(args(dir.path(), 1, 100), move |flow| {
        flow.source_iter_keyed("input", data.clone()).sum("sums")
    })
    .unwrap_err();
    let msg = renamed.to_string();
    assert!(matches!(renamed, Error::Step(_)), "{msg}");
    assert!(
        msg.contains("\"sums\"") && msg.contains("totals") && msg.contains("renamed"),
        "{msg}"
    );

    let data = records(1000, 10);
    let missing = rill::testing::run_with(args(dir.path(), 1, 100), move |flow| {
        flow.source_iter_keyed("input", data.clone())
            .map("id", |v| v)
    })
    .unwrap_err();
    let msg = missing.to_string();
    assert!(
        msg.contains("\"totals\"") && msg.contains("no stateful step"),
        "{msg}"
    );

    let data = records(1000, 10);
    let mut regrouped = args(dir.path(), 1, 100);
    regrouped.key_groups = Some(128);
    let err = rill::testing::run_with(regrouped, move |flow| {
        flow.source_iter_keyed("input", data.clone()).sum("totals")
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("--key-groups 128") && msg.contains("256"),
        "{msg}"
    );

    // An in-memory source splits its input by worker: no rescaling.
    let err = sum_job(records(1000, 10), args(dir.path(), 2, 100)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot rescale") && msg.contains("splits its input by worker"),
        "{msg}"
    );

    // The state is untouched by the refused starts.
    let out = sum_job(records(1010, 10), args(dir.path(), 1, 100)).unwrap();
    assert_eq!(out.len(), 10);
}

#[test]
fn a_damaged_store_is_a_clear_error_that_points_to_the_intact_copy() {
    let dir = tempfile::tempdir().unwrap();
    let copy_every_checkpoint = || {
        let mut a = args(dir.path(), 1, 100);
        a.state_copy_interval = Duration::ZERO;
        a
    };
    let first = sum_job(records(1000, 10), copy_every_checkpoint()).unwrap();
    let totals = last_per_key(first);
    let live = dir.path().join("process-0");
    std::fs::remove_file(live.join("CURRENT")).unwrap();
    let err = sum_job(records(1000, 10), args(dir.path(), 1, 100)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("corrupted") && msg.contains("process-0"),
        "{msg}"
    );
    assert!(
        msg.contains("is intact in") && msg.contains("process-0.snapshot"),
        "{msg}"
    );
    // Follow the advice: put the copy in place and resume from it.
    std::fs::rename(&live, dir.path().join("process-0.damaged")).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(dir.path().join("process-0.snapshot"))
        .arg(&live)
        .status()
        .unwrap();
    assert!(status.success());
    // A resumed job copies its store after its first checkpoint, even with
    // the default 60 s interval.
    let copy = dir.path().join("process-0.snapshot");
    std::fs::remove_dir_all(&copy).unwrap();
    let more = sum_job(records(1010, 10), args(dir.path(), 1, 100)).unwrap();
    assert!(copy.join("CURRENT").exists(), "no new copy after resuming");
    assert_eq!(more.len(), 10, "only the 10 new records are read");
    for (k, v) in more {
        let before = totals[&k];
        let added: u64 = records(1010, 10)[1000..]
            .iter()
            .filter(|(key, _)| *key == k)
            .map(|(_, v)| v)
            .sum();
        assert_eq!(v, before + added, "{k}");
    }

    // With no intact copy, the error says so.
    std::fs::remove_dir_all(dir.path().join("process-0.snapshot")).unwrap();
    std::fs::remove_file(live.join("CURRENT")).unwrap();
    let err = sum_job(records(1010, 10), args(dir.path(), 1, 100)).unwrap_err();
    assert!(
        err.to_string().contains("no intact older checkpoint"),
        "{err}"
    );
}

/// Checkpoints are written while input keeps flowing, not only when it
/// ends: every step (sinks included) must let closed epochs go under
/// continuous input.
///
/// The input lasts a fraction of a second, so a machine whose disk stalls
/// (another test syncing heavily) can hold the first write past its end:
/// the run is tried up to three times, and fails only if none of them
/// prepared three epochs.
#[test]
fn checkpoints_complete_while_input_flows() {
    let mut runs = Vec::new();
    for attempt in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path(), 2, 1_000_000);
        a.epoch_interval = Duration::from_millis(2);
        let started = std::time::Instant::now();
        let out = sum_job(records(400_000, 1000), a).unwrap();
        assert_eq!(out.len(), 400_000);
        let elapsed = started.elapsed();
        let store = RocksStore::open(&dir.path().join("process-0")).unwrap();
        let summary = rill_state::checkpoint::inspect(&store).unwrap();
        let epochs: std::collections::BTreeSet<u64> = summary.infos.keys().copied().collect();
        if epochs.len() >= 3 {
            return;
        }
        eprintln!("attempt {attempt}: a run of {elapsed:?} with 2 ms epochs prepared only epochs {epochs:?}");
        runs.push((elapsed, epochs));
    }
    panic!("no run prepared three epochs while its input flowed: {runs:?}");
}

/// A job's last checkpoint is listed by `rill checkpoints` with every key,
/// and the next run resumes every key from it.
#[test]
fn the_next_run_resumes_every_key_from_the_last_checkpoint() {
    const KEYS: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("process-0");
    let all = records(60_000, KEYS);
    let first = sum_job(all[..40_000].to_vec(), args(dir.path(), 2, 1_000_000)).unwrap();
    assert_eq!(first.len(), 40_000);
    {
        let store = RocksStore::open_read_only(&store_dir).unwrap();
        let summary = checkpoint::inspect(&store).unwrap();
        let (checkpoints, resume) = checkpoint::complete_checkpoints(&[summary]);
        let last = checkpoints.last().expect("a complete checkpoint");
        assert_eq!(resume, Some(last.epoch));
        assert_eq!(last.keys.get("totals"), Some(&KEYS), "{last:?}");
    }
    let second = sum_job(all.clone(), args(dir.path(), 2, 1_000_000)).unwrap();
    assert_eq!(second.len(), 20_000, "only the new records are read");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in &all {
        *expected.entry(k.clone()).or_default() += v;
    }
    let mut finals = last_per_key(first);
    finals.extend(last_per_key(second));
    assert_eq!(finals, expected);
}

/// 50 epochs of updates to the same 10,000 keys: after garbage collection
/// the store stays within twice the size of one epoch's full state.
/// Replaced versions are dropped by compaction once a newer checkpoint is
/// complete; the measure compacts the whole store, as RocksDB eventually
/// does by itself.
#[test]
fn disk_use_tracks_live_state_not_history() {
    const KEYS: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("process-0");
    let measure = || {
        let store: Arc<dyn KvStore> = Arc::new(RocksStore::open(&store_dir).unwrap());
        // As a job's start does: opening at the resume epoch tells the
        // store which versions are garbage; compaction then drops them.
        let prepared = checkpoint::prepared(&*store, 0..1).unwrap();
        let resume = checkpoint::resume_epoch(prepared.clone());
        let last = checkpoint::last_epoch(&*store, 0..1).unwrap();
        checkpoint::resume_store(&*store, 0..1, resume, last).unwrap();
        let _worker = Checkpointer::open(store.clone(), 0, resume).unwrap();
        store.compact().unwrap();
        let versions = store.scan(b"v", b"", usize::MAX).unwrap().len();
        (store.live_bytes(None).unwrap(), versions)
    };
    let mut one_epoch = 0;
    for run in 1..=50u64 {
        // Each run is at least one epoch and updates every key once.
        let data = records(run * KEYS, KEYS);
        let mut a = args(dir.path(), 1, 1_000_000);
        a.epoch_interval = Duration::from_secs(60);
        let out = sum_job(data, a).unwrap();
        assert_eq!(out.len() as u64, KEYS, "run {run}");
        if run == 1 {
            one_epoch = measure().0;
        }
    }
    // A start with no new input writes nothing and outputs nothing.
    let mut a = args(dir.path(), 1, 1_000_000);
    a.epoch_interval = Duration::from_secs(60);
    assert!(sum_job(records(50 * KEYS, KEYS), a).unwrap().is_empty());
    let (bytes, versions) = measure();
    // One version per key, plus the source's position.
    assert_eq!(versions as u64, KEYS + 1);
    assert!(
        bytes <= 2 * one_epoch,
        "after 50 epochs the store holds {bytes} bytes; one epoch's state is {one_epoch}"
    );
    eprintln!("one epoch: {one_epoch} bytes; after 50 epochs: {bytes} bytes");
}

/// A JSON-lines file read again after lines were appended: only the new
/// lines come out. With 2 workers, the worker that does not read the file
/// must not write a position of its own over the reader's.
#[test]
fn a_resumed_json_lines_source_reads_only_the_new_lines_with_two_workers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.jsonl");
    let lines = |from: u64, to: u64| -> String { (from..to).map(|i| format!("{i}\n")).collect() };
    let run = |file: std::path::PathBuf| {
        rill::testing::run_with(args(&dir.path().join("state"), 2, 1000), move |flow| {
            flow.jsonl_source::<u64>("numbers", &file)
                .key_by("parity", |v| v % 2)
                .sum("totals")
        })
        .unwrap()
    };
    std::fs::write(&file, lines(0, 3000)).unwrap();
    let first = run(file.clone());
    assert_eq!(first.len(), 3000);
    std::fs::write(&file, lines(0, 5000)).unwrap();
    let second = run(file.clone());
    assert_eq!(second.len(), 2000, "only the appended lines are read");
    let finals: BTreeMap<u64, u64> = second.into_iter().collect();
    let even: u64 = (0..5000).filter(|i| i % 2 == 0).sum();
    let odd: u64 = (0..5000).filter(|i| i % 2 == 1).sum();
    assert_eq!(finals, BTreeMap::from([(0u64, even), (1, odd)]));
}
