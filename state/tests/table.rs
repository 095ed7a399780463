//! A value table stages a version of exactly the keys an epoch changed,
//! with their newest state: in memory and in RocksDB on disk.

use std::cell::RefCell;
use std::rc::Rc;

mod common;

use rill_state::codec::{decode, encode};
use rill_state::layout::{entry_prefix, version_epoch, write_version_key};
use rill_state::{Checkpointer, KeyGroups, Table};

#[test]
fn an_epoch_stages_exactly_its_changed_keys() {
    common::on_each(|store| {
        let kind = store.kind();
        let c = Rc::new(RefCell::new(
            Checkpointer::open(store.clone(), 0, None).unwrap(),
        ));
        let groups = KeyGroups::default();
        let mut t: Table<u64, u64> = Table::new("sum", (1, 0), groups, Some(c.clone()), 1000);
        let mut sums = [0u64; 100];
        // The keys each epoch changes (each twice): every key, a few, two
        // ranges, none.
        let epochs: [&[(u64, u64)]; 4] = [&[(0, 100)], &[(10, 15)], &[(0, 10), (50, 80)], &[]];
        for (epoch, ranges) in epochs.iter().enumerate() {
            let epoch = epoch as u64;
            for k in ranges.iter().flat_map(|&(from, to)| from..to) {
                for n in [1, k] {
                    t.update(&k, epoch, |s| *s = Some(s.unwrap_or(0) + n))
                        .unwrap();
                    sums[k as usize] += n;
                }
            }
            t.stage(epoch).unwrap();
            c.borrow_mut().prepare(epoch).unwrap();
            let staged = store
                .scan(b"v", b"", usize::MAX)
                .unwrap()
                .into_iter()
                .filter(|(k, _)| version_epoch(k) == Some(epoch))
                .count();
            let changed: Vec<u64> = ranges.iter().flat_map(|&(from, to)| from..to).collect();
            assert_eq!(staged, changed.len(), "{kind}: epoch {epoch}");
            for k in changed {
                let entry = entry_prefix(1, 0, groups.group_of_key(&k).0, &encode(&k).unwrap());
                let mut version = Vec::new();
                write_version_key(&mut version, &entry, epoch);
                let value = store.get(&version).unwrap();
                let state = value.map(|v| decode::<u64>(&v[1..]).unwrap());
                assert_eq!(
                    state,
                    Some(sums[k as usize]),
                    "{kind}: key {k} in epoch {epoch}"
                );
            }
        }
    });
}
