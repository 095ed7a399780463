//! Key groups: the fixed partitioning of the key space that owns state.
//!
//! A key is hashed to one of `count` key groups; key groups, not workers, own
//! state, and each worker owns a contiguous range of key groups. Because the
//! group of a key never depends on the number of workers, a job can later be
//! resumed with a different number of workers by moving whole key groups.
//!
//! The hash is XxHash64 with seed 0 over the key's `std::hash::Hash` bytes: its
//! output is fixed by the xxHash specification, so a key's group does not
//! change between builds or between processes. (differential-dataflow's
//! `Hashable` documents that its values are not a persistent format, which is
//! why it is not used here.)

use std::hash::{Hash, Hasher};
use twox_hash::XxHash64;

use crate::WorkerIndex;

/// The number of key groups a new job gets unless it asks for another.
pub const DEFAULT_KEY_GROUPS: u32 = 256;

/// The index of a key group, in `0..KeyGroups::count()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyGroup(pub u32);

/// An invalid key-group configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyGroupsError {
    /// Zero key groups were asked for.
    Zero,
}

impl std::fmt::Display for KeyGroupsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyGroupsError::Zero => f.write_str("the number of key groups must be at least 1"),
        }
    }
}

impl std::error::Error for KeyGroupsError {}

/// Hashes a key with a hash whose output is stable across builds and processes.
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = XxHash64::with_seed(0);
    key.hash(&mut hasher);
    hasher.finish()
}

/// The key-group layout of a job: how many groups, and who owns each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGroups {
    count: u32,
}

impl KeyGroups {
    /// A layout with `count` key groups.
    pub fn new(count: u32) -> Result<Self, KeyGroupsError> {
        if count == 0 {
            return Err(KeyGroupsError::Zero);
        }
        Ok(KeyGroups { count })
    }

    /// The number of key groups.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The key group of a key hash.
    pub fn group_of_hash(&self, hash: u64) -> KeyGroup {
        let count = u64::from(self.count);
        // For a power of two (the default, 256) a mask gives the same
        // group as the remainder without a 64-bit division (tens of cycles
        // per key: a fifth of staging a checkpoint, and paid again for
        // every record routed to its worker).
        let group = if self.count.is_power_of_two() {
            hash & (count - 1)
        } else {
            hash % count
        };
        KeyGroup(group as u32)
    }

    /// The key group of a key.
    pub fn group_of_key<K: Hash + ?Sized>(&self, key: &K) -> KeyGroup {
        self.group_of_hash(stable_hash(key))
    }

    /// The worker that owns `group` when the job runs on `workers` workers.
    ///
    /// Workers own contiguous ranges of groups, so rescaling moves few groups.
    /// `workers` must be at least 1.
    pub fn owner(&self, group: KeyGroup, workers: usize) -> WorkerIndex {
        let workers = workers.max(1) as u64;
        let scaled = u64::from(group.0) * workers;
        let owner = if self.count.is_power_of_two() {
            scaled >> self.count.trailing_zeros()
        } else {
            scaled / u64::from(self.count)
        };
        WorkerIndex(owner as usize)
    }
}

impl Default for KeyGroups {
    fn default() -> Self {
        KeyGroups {
            count: DEFAULT_KEY_GROUPS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_groups_is_an_error() {
        assert_eq!(KeyGroups::new(0), Err(KeyGroupsError::Zero));
    }

    #[test]
    fn owners_cover_every_worker_in_contiguous_ranges() {
        let groups = KeyGroups::new(256).unwrap();
        for workers in 1..=7 {
            let owners: Vec<usize> = (0..256)
                .map(|g| groups.owner(KeyGroup(g), workers).0)
                .collect();
            assert!(
                owners.windows(2).all(|w| w[0] <= w[1]),
                "ranges are contiguous"
            );
            let distinct: std::collections::BTreeSet<_> = owners.iter().collect();
            assert_eq!(distinct.len(), workers, "every worker owns some group");
        }
    }

    #[test]
    fn groups_and_owners_are_the_remainder_and_quotient_for_any_count() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let hashes: Vec<u64> = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .chain([0, 1, u64::MAX, u64::MAX - 1, 1 << 63])
            .collect();
        for count in [
            1,
            2,
            3,
            7,
            128,
            255,
            256,
            257,
            1000,
            1024,
            1 << 20,
            u32::MAX,
        ] {
            let groups = KeyGroups::new(count).unwrap();
            for &h in &hashes {
                let group = groups.group_of_hash(h);
                assert_eq!(u64::from(group.0), h % u64::from(count), "{count} {h}");
                for workers in 1..=9usize {
                    let expect = u64::from(group.0) * workers as u64 / u64::from(count);
                    assert_eq!(groups.owner(group, workers).0 as u64, expect);
                }
            }
        }
    }

    #[test]
    fn stable_hash_is_pinned() {
        // A change here re-routes every key of every existing job's state.
        let pinned = stable_hash("alice");
        assert_eq!(
            pinned, 0x7b90_bc8f_a5b6_b182,
            "update only with a migration: {pinned:#x}"
        );
        assert_eq!(
            KeyGroups::new(256).unwrap().group_of_key("alice"),
            KeyGroup(0x82)
        );
    }
}
