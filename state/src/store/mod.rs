//! Storage: an ordered byte-key, byte-value store with atomic, durable
//! batches. No RocksDB type crosses this boundary, so the checkpoint layer
//! above runs the same on [`MemoryStore`] and [`RocksStore`].

mod error;
mod memory;
mod order;
mod rocks;

pub use crate::versions::{VersionGc, VersionPass};
pub use error::StoreError;
pub use memory::MemoryStore;
pub use rocks::{RocksStore, INGEST_FROM};

/// The version of the on-disk layout this build reads and writes.
///
/// Stored under [`FORMAT_KEY`] in every store when it is created and checked
/// on every open: a store of another format is refused with an error that
/// says to start from a new state directory, never misread. (Format 8 is
/// the keyed core's layout: states named within a step, entries with
/// sub-keys, timers, and fenced epochs instead of undo logs.)
pub const FORMAT_VERSION: u32 = 8;

/// The reserved key holding [`FORMAT_VERSION`].
pub const FORMAT_KEY: &[u8] = b"\x00format";

/// Key-value pairs in key order, as [`KvStore::scan`] returns them.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One change in a [`Batch`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// Sets the key (first) to the value (second).
    Put(&'a [u8], &'a [u8]),
    /// Removes the key (a no-op when absent).
    Delete(&'a [u8]),
    /// Removes every key from the first (included) to the second
    /// (excluded).
    DeleteRange(&'a [u8], &'a [u8]),
}

impl<'a> Op<'a> {
    /// The key the change is to (for a range, its first key).
    pub fn key(&self) -> &'a [u8] {
        match *self {
            Op::Put(k, _) | Op::Delete(k) | Op::DeleteRange(k, _) => k,
        }
    }
}

/// What kind of change a [`Span`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Put,
    Delete,
    /// The "value" is the range's end.
    DeleteRange,
}

/// Where one change's bytes lie in a [`Batch`]'s buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    key_len: u32,
    value_len: u32,
    kind: Kind,
}

/// Changes applied all together or not at all by [`KvStore::write`].
///
/// Keys and values are laid end to end in one buffer, so building a batch
/// of many small changes costs a few allocations, not two per change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    data: Vec<u8>,
    spans: Vec<Span>,
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).expect("a key or value of 4 GiB or more")
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let start = self.data.len();
        self.data.extend_from_slice(key.as_ref());
        self.data.extend_from_slice(value.as_ref());
        self.push(start, key.as_ref().len(), Kind::Put);
    }

    /// Records the change whose key and value were just appended from
    /// `start` on.
    fn push(&mut self, start: usize, key_len: usize, kind: Kind) {
        let value_len = len32(self.data.len() - start - key_len);
        let key_len = len32(key_len);
        self.spans.push(Span {
            start,
            key_len,
            value_len,
            kind,
        });
    }

    /// Adds a put whose key and value are written straight into the
    /// batch's buffer by `key` and `value` (each appends its bytes to the
    /// vector it is given). If either fails, the batch is left as it was.
    pub fn put_with<E>(
        &mut self,
        key: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
        value: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.data.len();
        if let Err(e) = key(&mut self.data) {
            self.data.truncate(start);
            return Err(e);
        }
        let key_len = self.data.len() - start;
        if let Err(e) = value(&mut self.data) {
            self.data.truncate(start);
            return Err(e);
        }
        self.push(start, key_len, Kind::Put);
        Ok(())
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        let start = self.data.len();
        self.data.extend_from_slice(key.as_ref());
        self.push(start, key.as_ref().len(), Kind::Delete);
    }

    /// Adds a deletion of every key from `from` (included) to `to`
    /// (excluded), each appended straight into the buffer by its closure.
    /// The range must not cover another change of the same batch: a store
    /// may apply ranges and the other changes in either order.
    pub fn delete_range_with(
        &mut self,
        from: impl FnOnce(&mut Vec<u8>),
        to: impl FnOnce(&mut Vec<u8>),
    ) {
        let start = self.data.len();
        from(&mut self.data);
        let key_len = self.data.len() - start;
        to(&mut self.data);
        self.push(start, key_len, Kind::DeleteRange);
    }

    /// Appends every change of `other`, after this batch's own.
    pub fn append(&mut self, other: Batch) {
        if self.spans.is_empty() {
            *self = other;
            return;
        }
        let base = self.data.len();
        self.data.extend_from_slice(&other.data);
        self.spans.extend(other.spans.into_iter().map(|s| Span {
            start: s.start + base,
            ..s
        }));
    }

    /// The number of changes.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Key and value bytes in the batch: what a checkpoint writes.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The `i`-th change (`i < len()`).
    pub fn op(&self, i: usize) -> Op<'_> {
        let s = self.spans[i];
        let key_end = s.start + s.key_len as usize;
        let key = &self.data[s.start..key_end];
        let value = &self.data[key_end..key_end + s.value_len as usize];
        match s.kind {
            Kind::Put => Op::Put(key, value),
            Kind::Delete => Op::Delete(key),
            Kind::DeleteRange => Op::DeleteRange(key, value),
        }
    }

    /// The changes, in order (a later change to a key wins).
    pub fn ops(&self) -> impl ExactSizeIterator<Item = Op<'_>> + '_ {
        (0..self.len()).map(|i| self.op(i))
    }
}

/// An ordered key-value store shared by the workers of one process.
///
/// Contract (checked by the conformance suite in `tests/conformance.rs` on
/// every implementation):
/// - keys are ordered bytewise;
/// - [`write`](KvStore::write) applies a whole batch atomically: a reader,
///   or a process reopening the store after a crash, sees all of a batch or
///   none of it;
/// - once `write` returns, the batch survives a crash of the process (the
///   memory store survives only for as long as the process);
/// - a store remembers its [`FORMAT_VERSION`] and refuses another;
/// - a version key that [`VersionGc`] calls garbage may disappear at any
///   time; nothing else disappears unasked.
pub trait KvStore: Send + Sync + 'static {
    /// A short name for logs and errors: `"rocksdb"` or `"memory"`.
    fn kind(&self) -> &'static str;

    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Up to `limit` entries whose key starts with `prefix` and is `>= from`,
    /// in key order. `from` shorter than `prefix` means from the first key
    /// with the prefix.
    fn scan(&self, prefix: &[u8], from: &[u8], limit: usize) -> Result<Entries, StoreError>;

    /// Applies `batch` atomically and durably.
    fn write(&self, batch: Batch) -> Result<(), StoreError>;

    /// Reclaims the space of deleted entries and of garbage versions now
    /// rather than eventually.
    fn compact(&self) -> Result<(), StoreError>;

    /// The rule by which this store drops garbage versions on its own
    /// (see [`VersionGc`]): the checkpoint layer moves its horizon.
    fn versions(&self) -> &VersionGc;

    /// Bytes of live data files: what the store occupies on disk (or in
    /// memory), with its logs; of the keys in `[from, to)` only, if given
    /// (RocksDB: an estimate over its table files, not the memtable).
    fn live_bytes(&self, range: Option<(&[u8], &[u8])>) -> Result<u64, StoreError>;

    /// Writes a consistent copy of the store, openable as a store of its
    /// own, to the directory `to` (which must not exist). Returns false if
    /// the store cannot be copied (the memory store).
    fn snapshot(&self, _to: &std::path::Path) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// Checks the format key of a freshly opened store, writing it if the store
/// is empty (`empty`: the store held no key at all).
pub(crate) fn check_format(
    store: &dyn KvStore,
    location: &str,
    empty: bool,
) -> Result<(), StoreError> {
    match store.get(FORMAT_KEY)? {
        Some(bytes) => {
            let found = <[u8; 4]>::try_from(bytes.as_slice())
                .map(u32::from_le_bytes)
                .map_err(|_| StoreError::Corrupted {
                    location: location.to_owned(),
                    detail: format!("format marker has {} bytes, expected 4", bytes.len()),
                })?;
            if found != FORMAT_VERSION {
                return Err(StoreError::Format {
                    location: location.to_owned(),
                    found,
                    expected: FORMAT_VERSION,
                });
            }
            Ok(())
        }
        None if empty => {
            let mut batch = Batch::new();
            batch.put(FORMAT_KEY, FORMAT_VERSION.to_le_bytes());
            store.write(batch)
        }
        None => Err(StoreError::Corrupted {
            location: location.to_owned(),
            detail: "the store holds data but no format marker".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_its_changes_in_order_across_appends() {
        let mut a = Batch::new();
        a.put(b"k1", b"v1");
        a.delete(b"k2");
        let mut b = Batch::new();
        b.put_with(
            |k| {
                k.extend_from_slice(b"k3");
                Ok::<(), ()>(())
            },
            |v| {
                v.extend_from_slice(b"v3");
                Ok(())
            },
        )
        .unwrap();
        b.delete(b"k4");
        b.delete_range_with(
            |k| k.extend_from_slice(b"k5"),
            |k| k.extend_from_slice(b"k7"),
        );
        a.append(b);
        let ops: Vec<Op<'_>> = a.ops().collect();
        assert_eq!(
            ops,
            vec![
                Op::Put(b"k1", b"v1"),
                Op::Delete(b"k2"),
                Op::Put(b"k3", b"v3"),
                Op::Delete(b"k4"),
                Op::DeleteRange(b"k5", b"k7"),
            ]
        );
        assert_eq!(a.len(), 5);
        assert_eq!(a.bytes(), 2 + 2 + 2 + 2 + 2 + 2 + 2 + 2);
    }

    #[test]
    fn a_failed_put_with_leaves_the_batch_as_it_was() {
        let mut b = Batch::new();
        b.put(b"a", b"1");
        let failed = b.put_with(
            |k| {
                k.extend_from_slice(b"half-written key");
                Ok(())
            },
            |v| {
                v.extend_from_slice(b"half a value");
                Err("encode failed")
            },
        );
        assert_eq!(failed, Err("encode failed"));
        let failed = b.put_with(
            |k| {
                k.extend_from_slice(b"half a key");
                Err("key failed")
            },
            |_| Ok(()),
        );
        assert_eq!(failed, Err("key failed"));
        assert_eq!(b.ops().collect::<Vec<_>>(), vec![Op::Put(b"a", b"1")]);
        assert_eq!(b.bytes(), 2);
    }
}
