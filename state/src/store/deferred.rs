//! Deferred changes ([`super::KvStore::write_deferred`]): the part of a
//! write that [`super::RocksStore`] logs as records (one per part, e.g.
//! per worker), durable at once,
//! and files into its tables later: before the next read or write through
//! the same handle (a deferred write may instead stack on them: see
//! [`may_stack`]), or when the store is next opened writable.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::{Batch, Op};

/// Where a [`super::RocksStore`] keeps the records of deferred changes
/// not yet filed: this prefix, then a sequence number (u64, big-endian),
/// so that they sort in write order. Below every key the checkpoint layer
/// writes (`\x00` is reserved). Seen only through a read-only handle.
pub const DEFERRED_PREFIX: &[u8] = b"\x00deferred/";

pub(crate) const PREFIX: &[u8] = DEFERRED_PREFIX;

/// The most key and value bytes deferred in one write (all its records),
/// and not yet filed in all (the writes stacked): a larger batch is
/// written at once, and a write that would pass it files the others
/// first. One record is one RocksDB value, held in the memtable (in the
/// compact form of `record.rs`: 0.87 MB for 100,000 checkpointed `u64`
/// sums) and in memory as a batch (3 MB) until filed.
pub const DEFER_MOST_BYTES: usize = 32 << 20;

/// The most key and value bytes per change, on average, of a batch worth
/// deferring. Logging costs per byte (the record is copied into the log
/// and the memtable, and synced), building a table file mostly per change
/// (~0.37 µs each, plus ~3 ms per MiB): measured on 2026-11-29, 100,000
/// checkpointed `u64` sums (52 bytes a change with the undo log) took
/// 31-36 ms deferred against 43-55 ms ingested, while 21,000 values of
/// 1 KB (22 MB) took 203 ms deferred against 74 ms ingested. The two
/// meet at about 90 bytes a change. Since then the record stores keys
/// compactly and a write that completes its checkpoint has no undo log:
/// the sums (31 bytes a change, a 1.6 MB record) take 11-18 ms deferred
/// against 53-60 ms ingested, and with store format 6 (a 0.87 MB record)
/// 6.3-8 ms. Values are stored whole, so the bound for large values
/// stands.
pub const DEFER_MOST_BYTES_PER_CHANGE: usize = 80;

/// True when deferring `later`, a batch in parts
/// ([`super::KvStore::write_deferred`]), is cheaper than writing it at
/// once: many small changes, at most [`DEFER_MOST_BYTES`] in all.
pub fn worth_deferring(later: &[Batch]) -> bool {
    let changes: usize = later.iter().map(Batch::len).sum();
    let bytes: usize = later.iter().map(Batch::bytes).sum();
    changes > 0 && bytes <= DEFER_MOST_BYTES && bytes <= DEFER_MOST_BYTES_PER_CHANGE * changes
}

/// True when a deferred write of `now` and `later` may leave the
/// `pending` changes unfiled and log its own records after theirs. Its
/// `now` is applied at once, before the pending changes are filed, so it
/// must touch none of their keys: none between the least and the greatest
/// of them. And all of them together must stay within [`DEFER_MOST_BYTES`]
/// (they are held in memory until filed).
pub(crate) fn may_stack(pending: &[(Vec<u8>, Batch)], now: &Batch, later: &[Batch]) -> bool {
    let batches = || pending.iter().map(|(_, b)| b);
    let bytes: usize = batches().chain(later).map(Batch::bytes).sum();
    if bytes > DEFER_MOST_BYTES {
        return false;
    }
    let Some((low, high)) = span(batches()) else {
        return true;
    };
    now.ops()
        .map(reach)
        .all(|(from, to)| to < low || from > high)
}

/// The least and the greatest key a change reaches (a range deletion by
/// both its ends).
fn reach(op: Op<'_>) -> (&[u8], &[u8]) {
    match op {
        Op::Put(k, _) | Op::Delete(k) => (k, k),
        Op::DeleteRange(from, to) => (from, to),
    }
}

/// The least and the greatest key that `batches` change, if any.
fn span<'a>(batches: impl Iterator<Item = &'a Batch>) -> Option<(&'a [u8], &'a [u8])> {
    let mut span: Option<(&[u8], &[u8])> = None;
    for (from, to) in batches.flat_map(Batch::ops).map(reach) {
        span = Some(match span {
            None => (from, to),
            Some((low, high)) => (low.min(from), high.max(to)),
        });
    }
    span
}

/// The key of deferred record number `seq`.
pub(crate) fn record_key(seq: u64) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The sequence number in a record's key.
pub(crate) fn record_seq(key: &[u8]) -> Option<u64> {
    let tail = key.strip_prefix(PREFIX)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// A store's deferred changes not yet filed, oldest first, each with the
/// key of its record.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    pending: Mutex<Vec<(Vec<u8>, Batch)>>,
    /// True while anything is pending (or being deferred): checked
    /// without the lock on every read.
    any: AtomicBool,
    next: AtomicU64,
}

impl Deferred {
    /// True when changes may be pending.
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The pending changes, locked. While the guard is held, `any` is
    /// set, so readers wait for the lock instead of reading past it.
    pub fn lock(&self) -> MutexGuard<'_, Vec<(Vec<u8>, Batch)>> {
        let guard = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        self.any.store(true, Ordering::Release);
        guard
    }

    /// Clears `any` once `pending` (the locked list) is empty.
    pub fn settled(&self, pending: &[(Vec<u8>, Batch)]) {
        if pending.is_empty() {
            self.any.store(false, Ordering::Release);
        }
    }

    /// The key for the next record.
    pub fn next_key(&self) -> Vec<u8> {
        record_key(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Numbers new records after `seq` (one found at open).
    pub fn seen(&self, seq: u64) {
        self.next.fetch_max(seq + 1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_batches_of_small_changes_are_worth_deferring() {
        let batch_of = |n: usize, value: usize| {
            let mut b = Batch::new();
            for i in 0..n {
                b.put(format!("k{i:07}"), vec![1u8; value]);
            }
            b
        };
        assert!(!worth_deferring(&[]));
        assert!(!worth_deferring(&[Batch::new(), Batch::new()]));
        assert!(worth_deferring(&[batch_of(100_000, 8)]));
        assert!(worth_deferring(&[batch_of(50_000, 8), batch_of(50_000, 8)]));
        assert!(!worth_deferring(&[batch_of(1000, 1000)]), "large values");
        assert!(
            !worth_deferring(&[batch_of(10, 8), batch_of(1000, 1000)]),
            "large values on average over the parts"
        );
        let huge = batch_of(DEFER_MOST_BYTES / 60 + 1, 52);
        assert!(huge.bytes() > DEFER_MOST_BYTES);
        assert!(!worth_deferring(&[huge]), "more than the most bytes");
        let half = batch_of(DEFER_MOST_BYTES / 120 + 1, 52);
        assert!(
            !worth_deferring(&[half.clone(), half]),
            "more than the most bytes over the parts"
        );
    }

    #[test]
    fn a_write_stacks_on_pending_changes_only_beside_their_keys_and_within_the_bytes() {
        let mut pending_batch = Batch::new();
        pending_batch.put(b"v-b", b"1");
        pending_batch.delete_range_with(
            |o| o.extend_from_slice(b"v-d"),
            |o| o.extend_from_slice(b"v-f"),
        );
        let pending = vec![(record_key(0), pending_batch)];
        let later = [Batch::new()];
        let now_of = |f: &dyn Fn(&mut Batch)| {
            let mut b = Batch::new();
            b.put(b"p-marker", b"1");
            f(&mut b);
            b
        };
        let range = |from: &'static [u8], to: &'static [u8]| {
            move |b: &mut Batch| {
                b.delete_range_with(|o| o.extend_from_slice(from), |o| o.extend_from_slice(to))
            }
        };
        assert!(may_stack(&[], &now_of(&|b| b.put(b"v-c", b"")), &later));
        /// A change to a write's logged part.
        type Change<'a> = &'a dyn Fn(&mut Batch);
        let cases: [(Change<'_>, bool, &str); 8] = [
            (&|_| {}, true, "markers only"),
            (&|b| b.put(b"v-a", b""), true, "a put below them"),
            (&|b| b.delete(b"v-g"), true, "a deletion above them"),
            (&|b| b.put(b"v-c", b""), false, "a put between them"),
            (&|b| b.delete(b"v-b"), false, "a deletion of one"),
            (&|b| b.delete(b"v-f"), false, "the end of a pending range"),
            (&range(b"v-0", b"v-c"), false, "a range reaching into them"),
            (&range(b"a", b"z"), false, "a range around them"),
        ];
        for (change, stacks, what) in cases {
            assert_eq!(
                may_stack(&pending, &now_of(change), &later),
                stacks,
                "{what}"
            );
        }
        let mut big = Batch::new();
        big.put(b"x", vec![0u8; DEFER_MOST_BYTES]);
        assert!(!may_stack(&pending, &now_of(&|_| {}), &[big.clone()]));
        assert!(may_stack(&[], &now_of(&|_| {}), &[Batch::new()]));
        let full = vec![(record_key(1), big)];
        assert!(
            !may_stack(&full, &now_of(&|_| {}), &later),
            "pending too large"
        );
    }

    #[test]
    fn record_keys_sort_in_sequence_order_and_read_back() {
        let (a, b) = (record_key(255), record_key(256));
        assert!(a < b);
        assert_eq!(record_seq(&b), Some(256));
        assert_eq!(record_seq(b"\x00format"), None);
    }
}
