//! The checkpoint protocol on every store (in memory; RocksDB through its
//! log; RocksDB ingesting every batch; a new RocksDB store whose first
//! write goes to its prelude): versions per epoch, resume at
//! the minimum prepared epoch, discarding newer versions, garbage
//! collection, the bounded cache, and the start-up checks of steps.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

mod common;
use common::files;

use rill_state::checkpoint::{self, CheckpointError, Checkpointer, JobMeta, UndoLog};
use rill_state::{
    Batch, FreshStore, KeyGroups, KvStore, MemoryStore, RocksStore, SharedCheckpointer, Table,
    INGEST_FROM,
};

fn on_each(case: fn(Arc<dyn KvStore>)) {
    case(Arc::new(MemoryStore::new()));
    for ingest_from in [usize::MAX, 1] {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();
        case(Arc::new(store.ingesting_from(ingest_from)));
    }
    let dir = tempfile::tempdir().unwrap();
    case(Arc::new(FreshStore::new(dir.path(), INGEST_FROM)));
}

fn worker(store: &Arc<dyn KvStore>, w: u32, resume: Option<u64>) -> SharedCheckpointer {
    Rc::new(RefCell::new(
        Checkpointer::open(store.clone(), w, resume).unwrap(),
    ))
}

fn table(c: &SharedCheckpointer, name: &str, capacity: usize) -> Table<String, u64> {
    Table::new(name, "sum", KeyGroups::default(), Some(c.clone()), capacity).unwrap()
}

fn add(t: &mut Table<String, u64>, key: &str, epoch: u64, n: u64) -> u64 {
    t.update(key.to_owned(), epoch, |_, s| {
        let v = s.unwrap_or(0) + n;
        *s = Some(v);
        v
    })
    .unwrap()
}

/// Workers 0 and 1 on `store`, opened at `resume`, each with a "sum" table.
fn two_workers(
    store: &Arc<dyn KvStore>,
    resume: Option<u64>,
) -> [(SharedCheckpointer, Table<String, u64>); 2] {
    two_workers_from(|w| Checkpointer::open(store.clone(), w, resume).unwrap())
}

/// Workers 0 and 1 from `open`, each with a "sum" table.
fn two_workers_from(
    open: impl Fn(u32) -> Checkpointer,
) -> [(SharedCheckpointer, Table<String, u64>); 2] {
    [0, 1].map(|w| {
        let c = Rc::new(RefCell::new(open(w)));
        let t = table(&c, "sum", 100);
        (c, t)
    })
}

fn value(t: &mut Table<String, u64>, key: &str) -> Option<u64> {
    t.get(&key.to_owned()).unwrap().copied()
}

fn versions(store: &dyn KvStore) -> usize {
    store.scan(b"v", b"", usize::MAX).unwrap().len()
}

fn resume_of(store: &dyn KvStore, workers: u32) -> Option<u64> {
    checkpoint::local_resume_epoch(store, 0..workers).unwrap()
}

#[test]
fn resume_takes_the_minimum_prepared_epoch_and_discards_newer_versions() {
    on_each(|store| {
        let [(c0, mut t0), (c1, mut t1)] = two_workers(&store, None);
        for epoch in 0..3u64 {
            add(&mut t0, "a", epoch, 1);
            add(&mut t1, "b", epoch, 10);
            t0.stage(epoch).unwrap();
            t1.stage(epoch).unwrap();
            c0.borrow_mut().prepare(epoch).unwrap();
            // Worker 1 "crashes" before preparing epoch 2.
            if epoch < 2 {
                c1.borrow_mut().prepare(epoch).unwrap();
            }
        }
        drop((t0, t1, c0, c1));
        let resume = resume_of(&*store, 2);
        assert_eq!(resume, Some(1), "{}", store.kind());
        let [(c0, mut t0), (_c1, mut t1)] = two_workers(&store, resume);
        assert_eq!(
            value(&mut t0, "a"),
            Some(2),
            "epoch 2 of worker 0 must be discarded"
        );
        assert_eq!(value(&mut t1, "b"), Some(20));
        // Recompute epoch 2 differently: the discarded version must not return.
        add(&mut t0, "a", 2, 5);
        t0.stage(2).unwrap();
        c0.borrow_mut().prepare(2).unwrap();
        drop(t0);
        let mut t0 = table(&c0, "sum", 100);
        assert_eq!(value(&mut t0, "a"), Some(7));
    });
}

#[test]
fn a_fresh_start_discards_everything_when_a_worker_never_prepared() {
    on_each(|store| {
        let c0 = worker(&store, 0, None);
        let mut t0 = table(&c0, "sum", 100);
        add(&mut t0, "a", 0, 1);
        t0.stage(0).unwrap();
        c0.borrow_mut().prepare(0).unwrap();
        drop((t0, c0));
        assert_eq!(resume_of(&*store, 2), None);
        let c0 = worker(&store, 0, None);
        let mut t0 = table(&c0, "sum", 100);
        assert_eq!(versions(&*store), 0, "{}", store.kind());
        assert_eq!(value(&mut t0, "a"), None);
    });
}

/// A new store creates nothing until its first checkpoint, which goes to
/// its prelude with the job's shape; the next write creates RocksDB and
/// files the prelude into it.
#[test]
fn a_new_store_logs_its_first_checkpoint_with_the_job_shape_then_files_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("process-0");
    std::fs::create_dir(&path).unwrap();
    let store: Arc<dyn KvStore> = Arc::new(FreshStore::new(&path, INGEST_FROM));
    let shape = JobMeta {
        workers: 2,
        processes: 1,
    };
    let [(c0, mut t0), (c1, mut t1)] =
        two_workers_from(|w| Checkpointer::create(store.clone(), w, &shape).unwrap());
    add(&mut t0, "a", 0, 1);
    add(&mut t1, "b", 0, 2);
    assert!(
        files(&path).is_empty(),
        "a new store creates nothing before its first write"
    );
    t0.stage(0).unwrap();
    c0.borrow_mut().prepare(0).unwrap();
    assert_eq!(
        files(&path),
        ["PRELUDE"],
        "the first write is in the prelude"
    );
    t1.stage(0).unwrap();
    c1.borrow_mut().prepare(0).unwrap();
    let now = files(&path);
    assert!(
        now.contains(&"CURRENT".to_string()) && !now.contains(&"PRELUDE".to_string()),
        "the second write creates RocksDB and files the prelude: {now:?}"
    );
    assert_eq!(resume_of(&*store, 2), Some(0));
    assert_eq!(value(&mut t0, "a"), Some(1));
    // The shape came with the checkpoint: another shape is refused.
    let other = JobMeta {
        workers: 3,
        processes: 1,
    };
    let refused = checkpoint::check_job_meta(&*store, "process-0", &other);
    assert!(
        matches!(refused, Err(CheckpointError::Rescaled { .. })),
        "{refused:?}"
    );
    checkpoint::check_job_meta(&*store, "process-0", &shape).unwrap();
}

/// A job that ends right after its first checkpoint leaves only the
/// prelude: reading the directory finds the checkpoint in it, and the
/// next open creates RocksDB, files it and resumes from it.
#[test]
fn a_checkpoint_left_in_the_prelude_is_read_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("process-0");
    std::fs::create_dir(&path).unwrap();
    let shape = JobMeta {
        workers: 1,
        processes: 1,
    };
    {
        let store: Arc<dyn KvStore> = Arc::new(FreshStore::new(&path, INGEST_FROM));
        let c = Rc::new(RefCell::new(
            Checkpointer::create(store.clone(), 0, &shape).unwrap(),
        ));
        let mut t = table(&c, "sum", 100);
        for k in 0..50 {
            add(&mut t, &format!("k{k}"), 0, k);
        }
        t.stage(0).unwrap();
        c.borrow_mut().prepare(0).unwrap();
    }
    assert_eq!(
        files(&path),
        ["PRELUDE"],
        "the store was dropped before creating RocksDB"
    );
    let read = rill_state::store::open_for_reading(&path).unwrap();
    let summary = checkpoint::inspect(&*read).unwrap();
    assert_eq!(summary.meta, Some(shape.clone()));
    assert_eq!(summary.prepared.get(&0), Some(&0));
    assert!(summary.bytes > 0);
    drop(read);
    let store: Arc<dyn KvStore> = Arc::new(RocksStore::open(&path).unwrap());
    assert!(!files(&path).contains(&"PRELUDE".to_string()));
    assert_eq!(resume_of(&*store, 1), Some(0));
    let c = worker(&store, 0, Some(0));
    let mut t = table(&c, "sum", 100);
    for k in 0..50 {
        assert_eq!(value(&mut t, &format!("k{k}")), Some(k), "k{k}");
    }
}

/// Left alone after its first write, a new store creates its RocksDB
/// by itself, soon after.
#[test]
fn a_new_store_creates_its_rocksdb_soon_after_its_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = FreshStore::new(dir.path(), INGEST_FROM);
    let mut b = Batch::new();
    b.put(b"k", b"v");
    store.write(b).unwrap();
    let started = std::time::Instant::now();
    while files(dir.path()).contains(&"PRELUDE".to_string()) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no RocksDB 30 s after the first write: {:?}",
            files(dir.path())
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(started.elapsed() >= rill_state::store::CREATE_AFTER / 2);
    assert!(files(dir.path()).contains(&"CURRENT".to_string()));
    assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn garbage_collection_keeps_one_version_per_key() {
    on_each(|store| {
        let c = worker(&store, 0, None);
        let mut t = table(&c, "sum", 1_000_000);
        for epoch in 0..20u64 {
            for k in 0..100 {
                add(&mut t, &format!("k{k}"), epoch, 1);
            }
            t.stage(epoch).unwrap();
            c.borrow_mut().prepare(epoch).unwrap();
            // Single worker: prepared means complete.
            c.borrow_mut().complete(epoch);
        }
        c.borrow_mut().flush_garbage().unwrap();
        // Replaced versions are the store's to drop as it compacts.
        store.compact().unwrap();
        assert_eq!(versions(&*store), 100, "{}", store.kind());
        assert!(
            store.scan(b"u", b"", usize::MAX).unwrap().is_empty(),
            "undo lists of complete epochs are deleted"
        );
        drop((t, c));
        let c = worker(&store, 0, resume_of(&*store, 1));
        let mut t = table(&c, "sum", 10);
        assert_eq!(value(&mut t, "k42"), Some(20));
    });
}

#[test]
fn deletions_hide_older_versions_and_are_collected_once_complete() {
    on_each(|store| {
        let c = worker(&store, 0, None);
        let mut t = table(&c, "sum", 100);
        add(&mut t, "kept", 0, 4);
        // Three versions of "gone", none compacted away before it is
        // deleted: the collection must take all of them, or an older one
        // would come back.
        for epoch in 0..3 {
            add(&mut t, "gone", epoch, 3);
            t.stage(epoch).unwrap();
            c.borrow_mut().prepare(epoch).unwrap();
            c.borrow_mut().complete(epoch);
        }
        t.update("gone".to_owned(), 3, |_, s| *s = None).unwrap();
        t.stage(3).unwrap();
        c.borrow_mut().prepare(3).unwrap();
        assert_eq!(value(&mut t, "gone"), None, "{}", store.kind());
        drop((t, c));
        // Resume at 3: the deletion hides the older versions of "gone".
        let c = worker(&store, 0, resume_of(&*store, 1));
        let mut t = table(&c, "sum", 100);
        assert_eq!(value(&mut t, "gone"), None, "{}", store.kind());
        assert_eq!(value(&mut t, "kept"), Some(4));
        // Opening at a complete epoch collected its garbage: the deletion
        // and every version it hid are gone, before any compaction.
        let left: Vec<_> = store.scan(b"v", b"", usize::MAX).unwrap();
        assert_eq!(left.len(), 1, "{}: only 'kept' remains", store.kind());
        drop((t, c));
        let c = worker(&store, 0, resume_of(&*store, 1));
        let mut t = table(&c, "sum", 100);
        assert_eq!(value(&mut t, "gone"), None, "{}", store.kind());
    });
}

/// Every worker prepares `epoch` in one atomic write, as the engine's
/// writer does when the batches of all workers arrive together;
/// `together` marks the writes as completing the checkpoint.
fn prepare_together(workers: &[&SharedCheckpointer], epoch: u64, together: bool) {
    let store = workers[0].borrow().store().clone();
    let mut batch = Batch::new();
    let mut pending = Vec::new();
    for c in workers {
        let (mut write, p) = c.borrow_mut().begin_prepare(epoch).unwrap();
        assert_eq!(write.through(), Some(epoch));
        if together {
            write.completes_checkpoint();
        }
        batch.append(write.into_batch().unwrap());
        pending.push(p);
    }
    store.write(batch).unwrap();
    for (c, p) in workers.iter().zip(pending) {
        c.borrow_mut().finish_prepare(p);
    }
}

/// The records of the undo logs in the store: (worker, epoch) and how
/// many records, of which how many deletions.
fn undo_logs(store: &dyn KvStore) -> Vec<((u32, u64), usize, usize)> {
    store
        .scan(b"u", b"", usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            let worker = u32::from_be_bytes(k[1..5].try_into().unwrap());
            let epoch = u64::from_be_bytes(k[5..13].try_into().unwrap());
            let log = UndoLog::from_bytes(v);
            let records: Vec<_> = log.iter().map(Result::unwrap).map(|u| u.deleted).collect();
            let deleted = records.iter().filter(|d| **d).count();
            ((worker, epoch), records.len(), deleted)
        })
        .collect()
}

#[test]
fn a_write_that_completes_its_checkpoint_stores_only_its_deletions() {
    on_each(|store| {
        let [(c0, mut t0), (c1, mut t1)] = two_workers(&store, None);
        add(&mut t0, "a", 0, 1);
        add(&mut t0, "gone", 0, 5);
        add(&mut t1, "b", 0, 10);
        t0.stage(0).unwrap();
        t1.stage(0).unwrap();
        prepare_together(&[&c0, &c1], 0, false);
        let kind = store.kind();
        assert_eq!(
            undo_logs(&*store),
            vec![((0, 0), 2, 0), ((1, 0), 1, 0)],
            "{kind}: full logs"
        );
        for c in [&c0, &c1] {
            c.borrow_mut().complete(0);
        }
        add(&mut t0, "a", 1, 1);
        t0.update("gone".to_owned(), 1, |_, s| *s = None).unwrap();
        add(&mut t1, "b", 1, 10);
        t0.stage(1).unwrap();
        t1.stage(1).unwrap();
        prepare_together(&[&c0, &c1], 1, true);
        // Epoch 0's logs went with its completion; epoch 1 keeps only
        // worker 0's deletion.
        assert_eq!(undo_logs(&*store), vec![((0, 1), 1, 1)], "{kind}");
        drop((t0, t1, c0, c1));
        assert_eq!(resume_of(&*store, 2), Some(1));
        let [(_c0, mut t0), (_c1, mut t1)] = two_workers(&store, Some(1));
        assert_eq!(value(&mut t0, "a"), Some(2), "{kind}");
        assert_eq!(value(&mut t0, "gone"), None, "{kind}");
        assert_eq!(value(&mut t1, "b"), Some(20), "{kind}");
        // The deletion was still collected at open, with what it hid.
        let gone = store
            .scan(b"v", b"", usize::MAX)
            .unwrap()
            .into_iter()
            .filter(|(k, _)| k.windows(4).any(|w| w == b"gone"))
            .count();
        assert_eq!(gone, 0, "{kind}");
    });
}

#[test]
fn a_resume_fences_the_epochs_it_discards_for_good() {
    on_each(|store| {
        let [(c0, mut t0), (c1, mut t1)] = two_workers(&store, None);
        for epoch in 0..3u64 {
            add(&mut t0, "a", epoch, 1);
            t0.stage(epoch).unwrap();
            c0.borrow_mut().prepare(epoch).unwrap();
        }
        add(&mut t1, "b", 0, 10);
        t1.stage(0).unwrap();
        c1.borrow_mut().prepare(0).unwrap();
        drop((t0, t1, c0, c1));
        let before = store.scan(b"v", b"", usize::MAX).unwrap();
        // Worker 0 got to 2, worker 1 to 0: the job resumes at 0, and
        // epochs 1..=2 of worker 0 are discarded and fenced.
        let resume = resume_of(&*store, 2);
        assert_eq!(resume, Some(0));
        let [(c0, mut t0), _w1] = two_workers(&store, resume);
        let fences = store.scan(b"f", b"", usize::MAX).unwrap();
        assert_eq!(fences.len(), 1, "{}", store.kind());
        assert_eq!(store.versions().distrusted(), vec![(1, 2)]);
        assert_eq!(value(&mut t0, "a"), Some(1), "{}", store.kind());
        let kept = store.scan(b"v", b"", usize::MAX).unwrap();
        assert_eq!((before.len(), kept.len()), (4, 2), "{}", store.kind());
        // A compaction may meet a discarded version without the deletion
        // that discarded it (they can sit in different levels): put the
        // leftovers back, as such a compaction would see them.
        let mut leftovers = Batch::new();
        for (k, v) in before.iter().filter(|entry| !kept.contains(entry)) {
            leftovers.put(k, v);
        }
        store.write(leftovers).unwrap();
        // Later checkpoints complete past the fence and "a" is never
        // written again: its version 0 must outlive every compaction.
        for epoch in 1..6u64 {
            add(&mut t0, "other", epoch, 1);
            t0.stage(epoch).unwrap();
            c0.borrow_mut().prepare(epoch).unwrap();
            c0.borrow_mut().complete(epoch);
        }
        c0.borrow_mut().flush_garbage().unwrap();
        store.compact().unwrap();
        let after = store.scan(b"v", b"", usize::MAX).unwrap();
        for entry in &kept {
            assert!(
                after.contains(entry),
                "{}: a fenced leftover made a complete version garbage",
                store.kind()
            );
        }
        // Reopening loads the fence again, once.
        drop((t0, c0, _w1));
        let _c0 = worker(&store, 0, Some(5));
        assert_eq!(store.versions().distrusted(), vec![(1, 2)]);
    });
}

#[test]
fn a_cache_smaller_than_the_state_reads_the_rest_from_the_store() {
    on_each(|store| {
        let c = worker(&store, 0, None);
        let mut t = table(&c, "sum", 50);
        for epoch in 0..20u64 {
            // Each epoch changes 100 of the 1,000 keys.
            for k in (0..1000u64).filter(|k| k % 10 == epoch % 10) {
                add(&mut t, &format!("k{k}"), epoch, k);
            }
            t.stage(epoch).unwrap();
            c.borrow_mut().prepare(epoch).unwrap();
            c.borrow_mut().complete(epoch);
            // Keys staged in this epoch stay until their batch is durable.
            assert!(
                t.cached() <= 50 + 100,
                "{}: cache holds {}",
                store.kind(),
                t.cached()
            );
        }
        for k in 0..1000u64 {
            assert_eq!(value(&mut t, &format!("k{k}")), Some(2 * k), "k{k}");
            assert!(t.cached() <= 50 + 100);
        }
    });
}

#[test]
fn resuming_checks_steps_by_name_kind_and_key_groups() {
    on_each(|store| {
        let c = worker(&store, 0, None);
        let mut t = table(&c, "totals", 10);
        add(&mut t, "a", 0, 1);
        t.stage(0).unwrap();
        c.borrow_mut().prepare(0).unwrap();
        drop((t, c));
        let resume = resume_of(&*store, 1);

        // Renamed step.
        let c = worker(&store, 0, resume);
        let err = Table::<String, u64>::new("sums", "sum", KeyGroups::default(), Some(c), 10)
            .err()
            .expect("a renamed step is an error");
        assert!(matches!(err, CheckpointError::NewStep { .. }), "{err}");
        assert!(
            err.to_string().contains("\"sums\"") && err.to_string().contains("totals"),
            "{err}"
        );

        // Missing step.
        let c = worker(&store, 0, resume);
        let err = c.borrow().check_steps().unwrap_err();
        assert!(matches!(err, CheckpointError::MissingStep { .. }), "{err}");
        assert!(err.to_string().contains("\"totals\""), "{err}");

        // Changed key-group count.
        let c = worker(&store, 0, resume);
        let groups = KeyGroups::new(64).unwrap();
        let err = Table::<String, u64>::new("totals", "sum", groups, Some(c), 10)
            .err()
            .expect("a changed key-group count is an error");
        assert!(
            matches!(
                err,
                CheckpointError::KeyGroupsChanged {
                    stored: 256,
                    now: 64,
                    ..
                }
            ),
            "{err}"
        );

        // Changed kind.
        let c = worker(&store, 0, resume);
        let err = Table::<String, u64>::new("totals", "count", KeyGroups::default(), Some(c), 10)
            .err()
            .expect("a changed kind is an error");
        assert!(matches!(err, CheckpointError::KindChanged { .. }), "{err}");

        // The same step resumes.
        let c = worker(&store, 0, resume);
        let mut t = table(&c, "totals", 10);
        c.borrow().check_steps().unwrap();
        assert_eq!(value(&mut t, "a"), Some(1));
    });
}

#[test]
fn checkpoints_are_listed_with_keys_per_step() {
    on_each(|store| {
        let c = worker(&store, 0, None);
        let mut t = table(&c, "totals", 10);
        for epoch in 0..3u64 {
            for k in 0..=epoch {
                add(&mut t, &format!("k{k}"), epoch, 1);
            }
            t.stage(epoch).unwrap();
            c.borrow_mut().prepare(epoch).unwrap();
        }
        checkpoint::check_job_meta(
            &*store,
            "test",
            &checkpoint::JobMeta {
                workers: 1,
                processes: 1,
            },
        )
        .unwrap();
        let summary = checkpoint::inspect(&*store).unwrap();
        let (list, resume) = checkpoint::complete_checkpoints(&[summary]);
        assert_eq!(resume, Some(2));
        assert_eq!(list.iter().map(|c| c.epoch).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(list[2].keys.get("totals"), Some(&3));
        assert_eq!(list[0].keys.get("totals"), Some(&1));
        assert!(list.iter().all(|c| c.workers == 1 && c.bytes > 0));
    });
}
