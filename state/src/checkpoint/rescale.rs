//! Rescaling (DESIGN.md, "Scale"): the store of one process of a new job
//! shape, built from every store of the old shape as of its resume epoch.
//! Whole key groups move; nothing is replayed.

use std::collections::BTreeMap;

use super::checkpointer::{now_ms, visible};
use crate::codec::{decode, encode};
use crate::layout::{self, version_epoch, CheckpointInfo, JobMeta, StepMeta};
use crate::store::{Batch, KvStore, StoreError};
use crate::{CheckpointError, KeyGroup, KeyGroups};

/// How a rebuilt store takes the entries of one state of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carry {
    /// Each entry goes to the process whose workers now own its key group.
    ByGroup,
    /// Every process takes every entry; where old stores hold different
    /// versions, the newest wins (entries read by something other than
    /// their key group, such as a source's position per partition).
    Everywhere,
    /// A step's watermark (one entry per worker, an `Option<u64>`): each
    /// new worker takes the smallest of the old workers'.
    Watermark,
    /// Left behind.
    Drop,
}

/// Calls `f` with the version key and the value of the newest version of
/// each entry under `prefix` in `store` at or below `resume` and not
/// fenced, in key order, leaving out deleted entries.
pub fn visible_at(
    store: &dyn KvStore,
    prefix: &[u8],
    resume: u64,
    f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let fences = super::fences(store)?;
    let hidden = |e: u64| e > resume || fences.iter().any(|&(a, b)| (a..=b).contains(&e));
    visible(store, (prefix, prefix, None), hidden, f)
}

/// Writes into `into` (a new, empty store) the state of process `process`
/// of the job shape `meta`, taken from `old` (every store of the old
/// shape) as of its complete checkpoint `resume`: the catalog of steps,
/// the entries `carry` says this process takes, and each of its workers'
/// marker and record of having prepared `resume`.
pub fn rebuild(
    old: &[&dyn KvStore],
    into: &dyn KvStore,
    meta: &JobMeta,
    process: u32,
    resume: u64,
    carry: impl Fn(&StepMeta, u8) -> Carry,
) -> Result<(), CheckpointError> {
    let per = meta.workers / meta.processes.max(1);
    let mine = process * per..(process + 1) * per;
    let mut batch = Batch::new();
    let mut steps: BTreeMap<u64, (String, StepMeta)> = BTreeMap::new();
    for store in old {
        for (key, value) in store.scan(&[layout::CATALOG], &[], usize::MAX)? {
            let name = String::from_utf8_lossy(&key[1..]).into_owned();
            steps.insert(layout::step_hash(&name), (name, decode(&value)?));
            batch.put(key, value);
        }
    }
    // Entry → its newest version over all stores; (step, state) → the
    // smallest value; new worker → live entries per step.
    let mut newest: BTreeMap<Vec<u8>, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
    let mut smallest: BTreeMap<(u64, u8), (Option<u64>, Vec<u8>)> = BTreeMap::new();
    let mut keys: BTreeMap<u32, BTreeMap<String, u64>> = BTreeMap::new();
    for store in old {
        visible_at(*store, &[layout::VERSION], resume, |key, value| {
            let step = layout::be_u64(key, 1).unwrap_or(0);
            let (state, epoch) = (key[9], version_epoch(key));
            let (Some((name, step_meta)), Some(group)) =
                (steps.get(&step), layout::be_u32(key, 10))
            else {
                return Ok(());
            };
            match carry(step_meta, state) {
                Carry::ByGroup => {
                    let groups = KeyGroups::new(step_meta.key_groups).unwrap_or_default();
                    let owner = groups.owner(KeyGroup(group), meta.workers as usize).0 as u32;
                    if mine.contains(&owner) {
                        put_version(&mut batch, key, value);
                        let step_keys = keys.entry(owner).or_default();
                        *step_keys.entry(name.clone()).or_default() +=
                            u64::from(state != layout::TIMERS_STATE);
                    }
                }
                Carry::Everywhere => {
                    let entry = key[..key.len() - 8].to_vec();
                    let newer = newest
                        .get(&entry)
                        .is_none_or(|(k, _)| version_epoch(k) < epoch);
                    if newer {
                        newest.insert(entry, (key.to_vec(), value.to_vec()));
                    }
                }
                Carry::Watermark => {
                    let v: Option<u64> = decode(value)?;
                    if smallest.get(&(step, state)).is_none_or(|(s, _)| v < *s) {
                        smallest.insert((step, state), (v, value.to_vec()));
                    }
                }
                Carry::Drop => {}
            }
            if batch.bytes() > 16 << 20 {
                into.write(std::mem::take(&mut batch))?;
            }
            Ok(())
        })?;
    }
    for (key, value) in newest.values() {
        put_version(&mut batch, key, value);
    }
    for ((step, _), (_, value)) in &smallest {
        for w in mine.clone() {
            let mut key = Vec::new();
            layout::write_version_key(&mut key, &layout::watermark_entry(*step, w), resume);
            put_version(&mut batch, &key, value);
        }
    }
    for w in mine {
        batch.put(layout::prepared_key(w), resume.to_be_bytes());
        let keys = keys.remove(&w).unwrap_or_default();
        let info = CheckpointInfo {
            time_ms: now_ms(),
            bytes: 0,
            keys,
        };
        batch.put(layout::info_key(resume, w), encode(&info)?);
    }
    batch.put(layout::META, encode(meta)?);
    into.write(batch)?;
    Ok(())
}

/// Puts the version key `key` with the value `value` into `batch`.
fn put_version(batch: &mut Batch, key: &[u8], value: &[u8]) {
    let mut stored = Vec::with_capacity(value.len() + 1);
    layout::write_version(&mut stored, Some(value));
    batch.put(key, stored);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    fn step(kind: &str) -> StepMeta {
        StepMeta {
            kind: kind.into(),
            key_groups: 8,
            states: vec![],
        }
    }

    fn put(store: &MemoryStore, entry: &[u8], epoch: u64, value: Option<&[u8]>) {
        let mut batch = Batch::new();
        let mut key = Vec::new();
        layout::write_version_key(&mut key, entry, epoch);
        let mut v = Vec::new();
        layout::write_version(&mut v, value);
        batch.put(key, v);
        store.write(batch).unwrap();
    }

    fn entry(step: &str, state: u8, group: u32, key: &[u8]) -> Vec<u8> {
        layout::entry_prefix(layout::step_hash(step), state, group, key)
    }

    /// Every visible entry of `store`, as (entry, epoch, value).
    fn contents(store: &MemoryStore) -> Vec<(Vec<u8>, u64, Vec<u8>)> {
        let mut out = Vec::new();
        visible_at(store, &[layout::VERSION], u64::MAX, |k, v| {
            out.push((
                k[..k.len() - 8].to_vec(),
                layout::version_epoch(k).unwrap(),
                v.to_vec(),
            ));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_rebuild_moves_each_key_group_to_its_new_owner_as_of_the_resume_epoch() {
        // An old job of 2 processes x 1 worker, resuming at epoch 4; a
        // fence hides epoch 3 of the second store.
        let old = [MemoryStore::new(), MemoryStore::new()];
        for (p, store) in old.iter().enumerate() {
            let mut batch = Batch::new();
            batch.put(layout::catalog_key("sum"), encode(&step("sum")).unwrap());
            batch.put(layout::catalog_key("src"), encode(&step("source")).unwrap());
            if p == 1 {
                batch.put(layout::fence_key(3, 3), []);
            }
            store.write(batch).unwrap();
        }
        for g in 0..8u32 {
            let store = &old[(g / 4) as usize];
            let k = [g as u8];
            put(store, &entry("sum", 0, g, &k), 2, Some(b"old"));
            put(store, &entry("sum", 0, g, &k), 4, Some(b"now"));
            put(store, &entry("sum", 0, g, &k), 5, Some(b"discarded"));
            put(store, &entry("sum", 255, g, &k), 1, Some(b"timer"));
        }
        put(&old[0], &entry("sum", 0, 1, b"gone"), 4, None);
        put(&old[1], &entry("sum", 0, 6, b"fenced"), 3, Some(b"x"));
        // A source position in both stores: the newest wins.
        put(&old[0], &entry("src", 0, 0, b"p0"), 1, Some(b"stale"));
        put(&old[1], &entry("src", 0, 0, b"p0"), 4, Some(b"fresh"));
        // Watermarks of old workers 0 and 1.
        put(
            &old[0],
            &entry("sum", 254, 0, b""),
            4,
            Some(&encode(&Some(70u64)).unwrap()),
        );
        put(
            &old[1],
            &entry("sum", 254, 1, b""),
            4,
            Some(&encode(&Some(50u64)).unwrap()),
        );

        let meta = JobMeta {
            workers: 3,
            processes: 3,
            key_groups: 8,
        };
        let carry = |s: &StepMeta, state: u8| match (s.kind.as_str(), state) {
            ("source", _) => Carry::Everywhere,
            (_, layout::WATERMARK_STATE) => Carry::Watermark,
            _ => Carry::ByGroup,
        };
        let refs: Vec<&dyn KvStore> = old.iter().map(|s| s as &dyn KvStore).collect();
        let groups = KeyGroups::new(8).unwrap();
        let mut seen_groups = Vec::new();
        for p in 0..3u32 {
            let new = MemoryStore::new();
            rebuild(&refs, &new, &meta, p, 4, carry).unwrap();
            assert_eq!(
                super::super::prepared(&new, p..p + 1).unwrap(),
                vec![Some(4)]
            );
            let got = contents(&new);
            for (e, epoch, value) in &got {
                let (state, group) = (e[9], layout::be_u32(e, 10).unwrap());
                match state {
                    0 if e.starts_with(&entry("src", 0, 0, b"")[..14]) => {
                        assert_eq!((value.as_slice(), *epoch), (&b"fresh"[..], 4));
                    }
                    0 => {
                        assert_eq!(groups.owner(KeyGroup(group), 3).0 as u32, p);
                        assert_eq!(
                            (value.as_slice(), *epoch),
                            (&b"now"[..], 4),
                            "group {group}"
                        );
                        seen_groups.push(group);
                    }
                    255 => assert_eq!(groups.owner(KeyGroup(group), 3).0 as u32, p),
                    254 => {
                        assert_eq!(group, p, "one watermark per new worker");
                        assert_eq!(decode::<Option<u64>>(value).unwrap(), Some(50));
                    }
                    _ => panic!("unexpected state {state}"),
                }
            }
            assert!(got.iter().any(|(e, _, _)| e[9] == 254));
            assert!(new.get(layout::META).unwrap().is_some());
        }
        seen_groups.sort_unstable();
        assert_eq!(
            seen_groups,
            (0..8).collect::<Vec<_>>(),
            "each group exactly once"
        );
    }
}
