//! List, map and timer entries ([`Entries`]) on both stores: ordered
//! iteration from a lower bound, removal, time-ordered timers, and the
//! same answers after the entries were checkpointed, evicted and resumed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

mod common;
use common::on_each;

use rill_state::checkpoint::{self, Checkpointer};
use rill_state::layout::{self, EVENT_TIMER};
use rill_state::{Entries, KvStore, SharedCheckpointer, SortKey, StateKind, StepMeta};

const STEP: u64 = 42;

fn open(store: &Arc<dyn KvStore>, resume: Option<u64>) -> SharedCheckpointer {
    let mut c = Checkpointer::open(store.clone(), 0, resume).unwrap();
    let meta = StepMeta {
        kind: "process".into(),
        key_groups: 1,
        states: vec![
            ("m".into(), StateKind::Map),
            ("@timers".into(), StateKind::Timers),
        ],
    };
    c.register("step", meta).unwrap();
    Rc::new(RefCell::new(c))
}

/// The entry of map key `k` in the map of record key `key`.
fn map_entry(key: &[u8], k: u64) -> Vec<u8> {
    let mut e = layout::entry_prefix(STEP, 0, 0, key);
    k.write_sort_key(&mut e);
    e
}

fn map_keys(entries: &mut Entries, key: &[u8], from: u64) -> Vec<(u64, Vec<u8>)> {
    let prefix = layout::entry_prefix(STEP, 0, 0, key);
    let from = map_entry(key, from);
    entries
        .range(&prefix, &from, None)
        .unwrap()
        .into_iter()
        .map(|(e, v)| (u64::read_sort_key(&e[prefix.len()..]).unwrap().0, v))
        .collect()
}

/// Sets `entry` to `value`.
fn put(
    entries: &mut Entries,
    entry: Vec<u8>,
    value: Vec<u8>,
) -> Result<(), rill_state::StoreError> {
    entries.put(&entry, |v| {
        v.extend(value);
        Ok(())
    })
}

/// The value of `entry`.
fn get(entries: &mut Entries, entry: &[u8]) -> Result<Option<Vec<u8>>, rill_state::StoreError> {
    entries.get(entry, <[u8]>::to_vec)
}

/// Stages and prepares epoch `e`, and completes it.
fn checkpoint(entries: &mut Entries, c: &SharedCheckpointer, e: u64) {
    entries.stage(e).unwrap();
    c.borrow_mut().prepare(e).unwrap();
    c.borrow_mut().complete(e);
}

#[test]
fn a_map_iterates_in_key_order_from_a_lower_bound_before_and_after_a_resume() {
    on_each(|store| {
        let kind = store.kind();
        let c = open(&store, None);
        // A cache of 4 entries: most of the map is read back from the store.
        let mut entries = Entries::new(Some(c.clone()), 4);
        let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for (i, k) in [50u64, 3, 700, 9, 256, 1, 65536].into_iter().enumerate() {
            put(&mut entries, map_entry(b"alice", k), vec![i as u8]).unwrap();
            model.insert(k, vec![i as u8]);
        }
        // Another key's map never shows up in alice's.
        put(&mut entries, map_entry(b"bob", 5), vec![9]).unwrap();
        checkpoint(&mut entries, &c, 0);
        entries.remove(&map_entry(b"alice", 9));
        model.remove(&9);
        put(&mut entries, map_entry(b"alice", 4), vec![40]).unwrap();
        model.insert(4, vec![40]);
        let want = |model: &BTreeMap<u64, Vec<u8>>, from: u64| -> Vec<(u64, Vec<u8>)> {
            model.range(from..).map(|(k, v)| (*k, v.clone())).collect()
        };
        assert_eq!(
            map_keys(&mut entries, b"alice", 0),
            want(&model, 0),
            "{kind}: unstaged"
        );
        assert_eq!(
            map_keys(&mut entries, b"alice", 10),
            want(&model, 10),
            "{kind}: from 10"
        );
        checkpoint(&mut entries, &c, 1);
        assert_eq!(
            map_keys(&mut entries, b"alice", 5),
            want(&model, 5),
            "{kind}: staged"
        );
        drop((entries, c));
        let c = open(&store, Some(1));
        let mut entries = Entries::new(Some(c.clone()), 4);
        assert_eq!(
            map_keys(&mut entries, b"alice", 0),
            want(&model, 0),
            "{kind}: resumed"
        );
        assert_eq!(
            get(&mut entries, &map_entry(b"alice", 9)).unwrap(),
            None,
            "{kind}: removed"
        );
        assert_eq!(
            get(&mut entries, &map_entry(b"bob", 5)).unwrap(),
            Some(vec![9])
        );
        // A removal after the resume hides the stored entry at once.
        entries.remove(&map_entry(b"alice", 700));
        model.remove(&700);
        assert_eq!(
            map_keys(&mut entries, b"alice", 0),
            want(&model, 0),
            "{kind}: removed after resume"
        );
    });
}

#[test]
fn timers_sort_by_time_within_a_group_and_a_range_finds_the_due_ones() {
    on_each(|store| {
        let c = open(&store, None);
        let mut entries = Entries::new(Some(c.clone()), 2);
        for (time, key) in [
            (30u64, &b"x"[..]),
            (10, b"y"),
            (20, b"x"),
            (10, b"a"),
            (99, b"z"),
        ] {
            let timer = layout::timer_entry(STEP, 0, EVENT_TIMER, time, key);
            put(&mut entries, timer, Vec::new()).unwrap();
        }
        checkpoint(&mut entries, &c, 0);
        let prefix = layout::timer_prefix(STEP, 0, EVENT_TIMER);
        let mut end = prefix.clone();
        end.extend_from_slice(&31u64.to_be_bytes());
        let due: Vec<(u64, Vec<u8>)> = entries
            .range(&prefix, &prefix, Some(&end))
            .unwrap()
            .iter()
            .map(|(e, _)| {
                let (t, k) = layout::parse_timer(e).unwrap();
                (t, k.to_vec())
            })
            .collect();
        let want: Vec<(u64, Vec<u8>)> = [(10, "a"), (10, "y"), (20, "x"), (30, "x")]
            .into_iter()
            .map(|(t, k)| (t, k.as_bytes().to_vec()))
            .collect();
        assert_eq!(due, want, "{}", store.kind());
    });
}

#[test]
fn entries_created_and_removed_in_one_epoch_write_nothing() {
    on_each(|store| {
        let c = open(&store, None);
        let mut entries = Entries::new(Some(c.clone()), 100);
        let before = store.scan(b"v", b"", usize::MAX).unwrap().len();
        put(&mut entries, map_entry(b"k", 1), vec![1]).unwrap();
        entries.remove(&map_entry(b"k", 1));
        checkpoint(&mut entries, &c, 0);
        assert_eq!(store.scan(b"v", b"", usize::MAX).unwrap().len(), before);
        let prepared = checkpoint::prepared(&*store, 0..1).unwrap();
        assert_eq!(prepared, vec![Some(0)]);
    });
}

#[test]
fn a_value_too_large_for_the_store_is_an_error() {
    let mut entries = Entries::new(None, 10);
    let huge = vec![0u8; layout::MOST_VALUE_BYTES + 1];
    let e = put(&mut entries, map_entry(b"k", 1), huge).unwrap_err();
    assert!(e.to_string().contains("larger than the most"), "{e}");
}

#[test]
fn live_entries_are_counted_for_the_step_across_eviction_and_resume() {
    on_each(|store| {
        let kind = store.kind();
        let c = open(&store, None);
        let live = |c: &SharedCheckpointer| c.borrow().keys().get("step").copied();
        let mut entries = Entries::of_step(Some(c.clone()), 2, "step");
        for k in 0..10 {
            put(&mut entries, map_entry(b"alice", k), vec![1]).unwrap();
        }
        checkpoint(&mut entries, &c, 0);
        assert_eq!(live(&c), Some(10), "{kind}");
        // Removals, of entries evicted from the 2-entry cache too, and an
        // overwrite of one read first.
        for k in 5..10 {
            entries.remove(&map_entry(b"alice", k));
        }
        assert!(get(&mut entries, &map_entry(b"alice", 0))
            .unwrap()
            .is_some());
        put(&mut entries, map_entry(b"alice", 0), vec![2]).unwrap();
        checkpoint(&mut entries, &c, 1);
        assert_eq!(live(&c), Some(5), "{kind}");
        drop(entries);
        drop(c);
        let c = open(&store, Some(1));
        let mut entries = Entries::of_step(Some(c.clone()), 2, "step");
        put(&mut entries, map_entry(b"alice", 20), vec![3]).unwrap();
        entries.remove(&map_entry(b"alice", 2));
        entries.remove(&map_entry(b"alice", 3));
        checkpoint(&mut entries, &c, 2);
        assert_eq!(live(&c), Some(4), "{kind}: resumed");
    });
}
