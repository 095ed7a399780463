//! [`VersionGc`]: which stored versions a store may drop by itself.
//!
//! A version key is the tag [`VERSION_TAG`], a prefix naming the key
//! (its length is part of it, so one prefix never extends another), and
//! the epoch, inverted and big-endian: a key's versions sort newest first.
//! Once checkpoint `c` is complete, a version older than one at an epoch
//! `<= c` is garbage. Rather than write a deletion for each of those (half
//! of every checkpoint batch when most keys change), the store drops them
//! as it rewrites its files: RocksDB in compaction, through a compaction
//! filter; the memory store after a write. Both run a [`VersionPass`] over
//! entries in key order.
//!
//! A resume at epoch `r` after workers prepared up to `p > r` *fences*
//! the epochs `r+1..=p`: the job goes on at `p+1`, so no epoch is ever
//! written twice, and a version at a fenced epoch is never read and is
//! garbage at once. It never makes older versions garbage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// The first byte of every version key.
pub(crate) const VERSION_TAG: u8 = b'v';

/// The garbage rule of one store, shared by its workers and, for RocksDB,
/// its compaction threads.
#[derive(Debug, Default)]
pub struct VersionGc {
    /// The newest complete checkpoint plus one; 0 before any.
    horizon: AtomicU64,
    /// Inclusive epoch ranges a resume discarded: sorted, disjoint and
    /// not adjacent.
    fenced: RwLock<Vec<(u64, u64)>>,
}

impl VersionGc {
    /// No checkpoint is complete yet: nothing is garbage.
    pub fn new() -> Self {
        VersionGc::default()
    }

    /// Checkpoint `epoch` is complete (every worker of the job prepared it,
    /// durably): versions replaced by one at or below it are garbage.
    /// The horizon never moves back.
    pub fn advance(&self, epoch: u64) {
        self.horizon
            .fetch_max(epoch.saturating_add(1), Ordering::AcqRel);
    }

    /// The newest complete checkpoint this rule knows of.
    pub fn horizon(&self) -> Option<u64> {
        self.horizon.load(Ordering::Acquire).checked_sub(1)
    }

    /// Versions at epochs `from..=to` are leftovers of a crash: they are
    /// never read, are garbage, and never make older versions garbage.
    /// Overlapping and adjacent ranges are merged, so a check stays a
    /// binary search however many times the job has resumed.
    pub fn fence(&self, from: u64, to: u64) {
        if from > to {
            return;
        }
        let mut d = self.fenced.write().unwrap_or_else(|p| p.into_inner());
        // The ranges are sorted and disjoint, and none touches another.
        let first = d.partition_point(|&(_, end)| end.saturating_add(1) < from);
        let last = d.partition_point(|&(start, _)| start <= to.saturating_add(1));
        let merged = d[first..last]
            .iter()
            .fold((from, to), |(f, t), &(a, b)| (f.min(a), t.max(b)));
        d.splice(first..last, [merged]);
    }

    /// The fenced epoch ranges, inclusive, sorted and merged.
    pub fn fenced(&self) -> Vec<(u64, u64)> {
        self.fenced
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A pass over entries in key order, with the rule as it is now.
    pub fn pass(&self) -> VersionPass {
        VersionPass {
            horizon: self.horizon(),
            fenced: self.fenced(),
            last: Vec::new(),
            superseded: false,
        }
    }
}

/// One pass of [`VersionGc`] over entries in key order.
#[derive(Debug)]
pub struct VersionPass {
    horizon: Option<u64>,
    fenced: Vec<(u64, u64)>,
    /// The prefix of the last version seen.
    last: Vec<u8>,
    /// Whether a trusted version at or below the horizon was seen under
    /// `last`: every older version under it is garbage.
    superseded: bool,
}

impl VersionPass {
    /// True when the entry at `key` (the next in key order) is garbage.
    pub fn drops(&mut self, key: &[u8]) -> bool {
        if key.first() != Some(&VERSION_TAG) || key.len() < 9 {
            return false;
        }
        let (prefix, tail) = key.split_at(key.len() - 8);
        let mut word = [0u8; 8];
        word.copy_from_slice(tail);
        let epoch = !u64::from_be_bytes(word);
        if is_fenced(&self.fenced, epoch) {
            return true;
        }
        let Some(horizon) = self.horizon else {
            return false;
        };
        if prefix == self.last.as_slice() {
            if self.superseded {
                return true;
            }
        } else {
            self.last.clear();
            self.last.extend_from_slice(prefix);
            self.superseded = false;
        }
        if epoch <= horizon {
            self.superseded = true;
        }
        false
    }
}

/// True when `epoch` lies in one of `fenced` (sorted, disjoint ranges).
pub fn is_fenced(fenced: &[(u64, u64)], epoch: u64) -> bool {
    // The first range not wholly below `epoch` is the only candidate.
    let at = fenced.partition_point(|&(_, to)| to < epoch);
    fenced.get(at).is_some_and(|&(from, _)| from <= epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(key: &[u8], epoch: u64) -> Vec<u8> {
        let mut k = vec![VERSION_TAG, key.len() as u8];
        k.extend_from_slice(key);
        k.extend_from_slice(&(!epoch).to_be_bytes());
        k
    }

    /// Runs a pass over `keys` (sorted here) and returns the kept ones.
    fn kept(gc: &VersionGc, mut keys: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        keys.sort();
        let mut pass = gc.pass();
        keys.into_iter().filter(|k| !pass.drops(k)).collect()
    }

    #[test]
    fn nothing_is_garbage_before_a_checkpoint_completes() {
        let gc = VersionGc::new();
        let keys = vec![version(b"a", 0), version(b"a", 1), version(b"a", 2)];
        assert_eq!(kept(&gc, keys.clone()).len(), 3);
    }

    #[test]
    fn versions_older_than_a_complete_one_are_garbage() {
        let gc = VersionGc::new();
        gc.advance(2);
        let mut keys = vec![
            version(b"a", 0),
            version(b"a", 1),
            version(b"a", 2),
            version(b"a", 3),
            version(b"b", 0),
            version(b"c", 3),
            version(b"c", 4),
            b"p-not-a-version".to_vec(),
        ];
        let garbage = [version(b"a", 0), version(b"a", 1)];
        let mut expect: Vec<Vec<u8>> = keys
            .iter()
            .filter(|k| !garbage.contains(k))
            .cloned()
            .collect();
        expect.sort();
        keys.reverse();
        // 'a' at 3 is not complete: 2 is kept under it, 1 and 0 go.
        assert_eq!(kept(&gc, keys), expect);
        // The horizon never moves back.
        gc.advance(1);
        assert_eq!(gc.horizon(), Some(2));
    }

    #[test]
    fn a_fenced_version_is_garbage_and_never_makes_older_versions_garbage() {
        let gc = VersionGc::new();
        // A crash left epochs 5..=6 behind; the job resumed at 4 and has
        // since completed 9.
        gc.fence(5, 6);
        gc.advance(9);
        let keys = vec![version(b"a", 3), version(b"a", 6)];
        assert_eq!(kept(&gc, keys.clone()), vec![version(b"a", 3)]);
        // A trusted newer version still collects the older one.
        let mut more = keys;
        more.push(version(b"a", 8));
        assert_eq!(kept(&gc, more), vec![version(b"a", 8)]);
    }

    #[test]
    fn fenced_ranges_are_kept_sorted_and_merged() {
        let gc = VersionGc::new();
        for (from, to) in [(20, 22), (5, 6), (10, 12), (7, 7), (11, 15), (30, 29)] {
            gc.fence(from, to);
        }
        // 7 touches 5..=6; 11..=15 overlaps 10..=12; 30..=29 is empty.
        assert_eq!(gc.fenced(), vec![(5, 7), (10, 15), (20, 22)]);
        gc.fence(8, 19);
        assert_eq!(gc.fenced(), vec![(5, 22)]);
        for (epoch, fenced) in [(4, false), (5, true), (22, true), (23, false)] {
            assert_eq!(is_fenced(&gc.fenced(), epoch), fenced, "epoch {epoch}");
        }
    }
}
