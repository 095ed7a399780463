//! The checkpoint protocol on both stores: resume at the minimum prepared
//! epoch with the newer epochs fenced, garbage collection, deletions,
//! a cache smaller than the state, step checks and the checkpoint list.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

mod common;
use common::on_each;

use rill_state::checkpoint::{self, CheckpointError, Checkpointer};
use rill_state::{KeyGroups, KvStore, SharedCheckpointer, StateKind, StepMeta, Table};

fn meta(kind: &str) -> StepMeta {
    StepMeta {
        kind: kind.into(),
        key_groups: 256,
        states: vec![("value".into(), StateKind::Value)],
    }
}

/// Readies `store` for a run of `workers` workers as a job's start does,
/// and returns the resume epoch and the first epoch of the run.
fn restart(store: &dyn KvStore, workers: u32) -> (Option<u64>, u64) {
    let prepared = checkpoint::prepared(store, 0..workers).unwrap();
    let resume = checkpoint::resume_epoch(prepared.clone());
    let last = checkpoint::last_epoch(store, 0..workers).unwrap();
    checkpoint::resume_store(store, 0..workers, resume, last).unwrap();
    (resume, checkpoint::first_epoch(last))
}

fn worker(store: &Arc<dyn KvStore>, w: u32, resume: Option<u64>) -> SharedCheckpointer {
    Rc::new(RefCell::new(
        Checkpointer::open(store.clone(), w, resume).unwrap(),
    ))
}

fn table(c: &SharedCheckpointer, name: &str, capacity: usize) -> Table<String, u64> {
    let id = c.borrow_mut().register(name, meta("sum")).unwrap();
    Table::new(
        name,
        (id, 0),
        KeyGroups::default(),
        Some(c.clone()),
        capacity,
    )
}

fn add(t: &mut Table<String, u64>, key: &str, epoch: u64, n: u64) -> u64 {
    t.update(&key.to_string(), epoch, |s| {
        let v = s.unwrap_or(0) + n;
        *s = Some(v);
        v
    })
    .unwrap()
}

fn value(t: &mut Table<String, u64>, key: &str) -> Option<u64> {
    t.get(&key.to_string()).unwrap().copied()
}

fn versions(store: &dyn KvStore) -> usize {
    store.scan(b"v", b"", usize::MAX).unwrap().len()
}

/// Stages `t` at `epoch` and prepares it.
fn checkpoint(t: &mut Table<String, u64>, c: &SharedCheckpointer, epoch: u64) {
    t.stage(epoch).unwrap();
    c.borrow_mut().prepare(epoch).unwrap();
}

#[test]
fn resume_takes_the_minimum_prepared_epoch_and_fences_the_newer_ones() {
    on_each(|store| {
        let (w0, w1) = (worker(&store, 0, None), worker(&store, 1, None));
        let (mut t0, mut t1) = (table(&w0, "sum", 100), table(&w1, "sum", 100));
        add(&mut t0, "a", 0, 1);
        add(&mut t1, "b", 0, 10);
        checkpoint(&mut t0, &w0, 0);
        checkpoint(&mut t1, &w1, 0);
        // Worker 0 gets one epoch further; then the job dies.
        add(&mut t0, "a", 1, 1);
        checkpoint(&mut t0, &w0, 1);
        drop((t0, t1, w0, w1));
        let (resume, first) = restart(&*store, 2);
        assert_eq!((resume, first), (Some(0), 2), "{}", store.kind());
        let w0 = worker(&store, 0, resume);
        let mut t0 = table(&w0, "sum", 100);
        assert_eq!(
            value(&mut t0, "a"),
            Some(1),
            "{}: epoch 1 is fenced",
            store.kind()
        );
        // The run goes on at epoch 2; a later restart resumes from it.
        add(&mut t0, "a", first, 5);
        checkpoint(&mut t0, &w0, first);
        let w1 = worker(&store, 1, resume);
        let mut t1 = table(&w1, "sum", 100);
        assert_eq!(value(&mut t1, "b"), Some(10));
        checkpoint(&mut t1, &w1, first);
        drop((t0, t1, w0, w1));
        let (resume, first) = restart(&*store, 2);
        assert_eq!((resume, first), (Some(2), 3));
        let w0 = worker(&store, 0, resume);
        let mut t0 = table(&w0, "sum", 100);
        assert_eq!(value(&mut t0, "a"), Some(6), "{}", store.kind());
        // The fenced version at epoch 1 is garbage, whatever compacts.
        store.compact().unwrap();
        let a_versions = store
            .scan(b"v", b"", usize::MAX)
            .unwrap()
            .into_iter()
            .filter(|(k, _)| rill_state::layout::version_epoch(k) == Some(1))
            .count();
        assert_eq!(a_versions, 0, "{}: a fenced version survived", store.kind());
    });
}

#[test]
fn a_run_that_prepared_nothing_leaves_the_fenced_epochs_fenced() {
    on_each(|store| {
        let (w0, w1) = (worker(&store, 0, None), worker(&store, 1, None));
        let (mut t0, mut t1) = (table(&w0, "sum", 100), table(&w1, "sum", 100));
        add(&mut t1, "b", 0, 10);
        checkpoint(&mut t0, &w0, 0);
        checkpoint(&mut t1, &w1, 0);
        checkpoint(&mut t0, &w0, 1);
        drop((t0, t1, w0, w1));
        assert_eq!(restart(&*store, 2), (Some(0), 2), "{}", store.kind());
        // That run dies before it prepares anything: epoch 1 stays fenced,
        // so the next run must not run it again (its writes would hide).
        let (resume, first) = restart(&*store, 2);
        assert_eq!((resume, first), (Some(0), 2), "{}", store.kind());
        let (w0, w1) = (worker(&store, 0, resume), worker(&store, 1, resume));
        let (mut t0, mut t1) = (table(&w0, "sum", 100), table(&w1, "sum", 100));
        add(&mut t0, "a", first, 1);
        checkpoint(&mut t0, &w0, first);
        checkpoint(&mut t1, &w1, first);
        drop((t0, t1, w0, w1));
        let (resume, _) = restart(&*store, 2);
        let w0 = worker(&store, 0, resume);
        let mut t0 = table(&w0, "sum", 100);
        assert_eq!(
            value(&mut t0, "a"),
            Some(1),
            "{}: a write was hidden",
            store.kind()
        );
    });
}

#[test]
fn a_fresh_start_discards_everything_when_a_worker_never_prepared() {
    on_each(|store| {
        let w0 = worker(&store, 0, None);
        let mut t0 = table(&w0, "sum", 100);
        add(&mut t0, "a", 0, 1);
        checkpoint(&mut t0, &w0, 0);
        drop((t0, w0));
        let (resume, first) = restart(&*store, 2);
        assert_eq!((resume, first), (None, 1));
        let w0 = worker(&store, 0, resume);
        let mut t0 = table(&w0, "sum", 100);
        assert_eq!(value(&mut t0, "a"), None);
        assert_eq!(
            checkpoint::prepared(&*store, 0..2).unwrap(),
            vec![None, None]
        );
    });
}

#[test]
fn garbage_collection_keeps_one_version_per_key() {
    on_each(|store| {
        let c = worker(&store, 0, None);
        let mut t = table(&c, "sum", 1000);
        for epoch in 0..6 {
            for k in 0..50 {
                add(&mut t, &format!("k{k}"), epoch, 1);
            }
            checkpoint(&mut t, &c, epoch);
            c.borrow_mut().complete(epoch);
        }
        store.compact().unwrap();
        assert_eq!(versions(&*store), 50, "{}", store.kind());
        assert_eq!(value(&mut t, "k7"), Some(6));
    });
}

#[test]
fn deletions_hide_older_versions_and_are_collected_once_complete() {
    on_each(|store| {
        let c = worker(&store, 0, None);
        let mut t = table(&c, "sum", 1000);
        add(&mut t, "gone", 0, 1);
        add(&mut t, "kept", 0, 1);
        checkpoint(&mut t, &c, 0);
        c.borrow_mut().complete(0);
        t.update(&"gone".to_string(), 1, |s| *s = None).unwrap();
        checkpoint(&mut t, &c, 1);
        // Not yet complete: the deletion hides the older version, also
        // to a run that resumes from it.
        {
            let (resume, _) = (Some(1), ());
            let reader = worker(&store, 0, resume);
            let mut fresh = table(&reader, "sum", 1000);
            assert_eq!(value(&mut fresh, "gone"), None, "{}", store.kind());
            assert_eq!(value(&mut fresh, "kept"), Some(1));
        }
        // Complete: the next batch removes the deletion and what it hid.
        c.borrow_mut().complete(1);
        checkpoint(&mut t, &c, 2);
        store.compact().unwrap();
        assert_eq!(
            versions(&*store),
            1,
            "{}: only `kept` is left",
            store.kind()
        );
    });
}

#[test]
fn a_cache_smaller_than_the_state_reads_the_rest_from_the_store() {
    on_each(|store| {
        let c = worker(&store, 0, None);
        let mut t = table(&c, "sum", 10);
        for epoch in 0..4u64 {
            for k in 0..100 {
                add(&mut t, &format!("k{k}"), epoch, k);
            }
            checkpoint(&mut t, &c, epoch);
        }
        // An epoch that changes nothing: the keys of epoch 3 are durable
        // now, and all but 9 leave the cache.
        checkpoint(&mut t, &c, 4);
        assert!(
            t.cached() <= 10,
            "{}: {} keys cached",
            store.kind(),
            t.cached()
        );
        for k in 0..100u64 {
            assert_eq!(
                value(&mut t, &format!("k{k}")),
                Some(4 * k),
                "{}",
                store.kind()
            );
        }
        assert!(t.cached() <= 100);
    });
}

#[test]
fn resuming_checks_steps_by_name_kind_key_groups_and_states() {
    on_each(|store| {
        let c = worker(&store, 0, None);
        let mut t = table(&c, "sum", 10);
        add(&mut t, "a", 0, 1);
        checkpoint(&mut t, &c, 0);
        drop((t, c));
        let (resume, _) = restart(&*store, 1);
        let open = || Checkpointer::open(store.clone(), 0, resume).unwrap();
        let mut c = open();
        let e = c.register("renamed", meta("sum")).unwrap_err();
        assert!(matches!(e, CheckpointError::NewStep { .. }), "{e}");
        let e = open().register("sum", meta("count")).unwrap_err();
        assert!(matches!(e, CheckpointError::KindChanged { .. }), "{e}");
        let e = open()
            .register(
                "sum",
                StepMeta {
                    key_groups: 8,
                    ..meta("sum")
                },
            )
            .unwrap_err();
        assert!(matches!(e, CheckpointError::KeyGroupsChanged { .. }), "{e}");
        let more = StepMeta {
            states: vec![
                ("value".into(), StateKind::Value),
                ("seen".into(), StateKind::List),
            ],
            ..meta("sum")
        };
        let e = open().register("sum", more).unwrap_err();
        assert!(matches!(e, CheckpointError::StatesChanged { .. }), "{e}");
        let c = open();
        let e = c.check_steps().unwrap_err();
        assert!(matches!(e, CheckpointError::MissingStep { .. }), "{e}");
        assert!(e.to_string().contains("\"sum\""), "{e}");
    });
}

#[test]
fn key_groups_are_read_from_the_store_and_a_conflicting_flag_is_an_error() {
    on_each(|store| {
        let meta = checkpoint::open_job(&*store, "here", 2, 1, Some(64)).unwrap();
        assert_eq!(meta.key_groups, 64);
        assert_eq!(
            checkpoint::open_job(&*store, "here", 2, 1, None)
                .unwrap()
                .key_groups,
            64
        );
        let e = checkpoint::open_job(&*store, "here", 2, 1, Some(128)).unwrap_err();
        assert!(matches!(
            e,
            CheckpointError::KeyGroupsConflict {
                stored: 64,
                asked: 128,
                ..
            }
        ));
        assert!(e.to_string().contains("--key-groups 128"), "{e}");
    });
}

#[test]
fn checkpoints_are_listed_with_keys_per_step() {
    on_each(|store| {
        let c = worker(&store, 0, None);
        let mut t = table(&c, "sum", 10);
        for k in 0..7 {
            add(&mut t, &format!("k{k}"), 0, 1);
        }
        checkpoint(&mut t, &c, 0);
        add(&mut t, "k9", 1, 1);
        checkpoint(&mut t, &c, 1);
        let summary = checkpoint::inspect(&**c.borrow().store()).unwrap();
        assert_eq!(summary.steps.get("sum"), Some(&meta("sum")));
        let (listed, resume) = checkpoint::complete_checkpoints(&[summary]);
        assert_eq!(resume, None, "no job shape recorded: no worker count");
        assert!(listed.is_empty());
        checkpoint::open_job(&*store, "here", 1, 1, None).unwrap();
        let summary = checkpoint::inspect(&*store).unwrap();
        let (listed, resume) = checkpoint::complete_checkpoints(&[summary]);
        assert_eq!(resume, Some(1));
        let keys: Vec<u64> = listed.iter().map(|c| c.keys["sum"]).collect();
        assert_eq!(keys, vec![7, 8], "{}", store.kind());
    });
}
