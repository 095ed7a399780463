//! Storage: an ordered byte-key, byte-value store with atomic, durable
//! batches. No RocksDB type crosses this boundary, so the checkpoint layer
//! above runs the same on [`MemoryStore`] and [`RocksStore`].

mod error;
mod memory;
mod rocks;

pub use error::StoreError;
pub use memory::MemoryStore;
pub use rocks::RocksStore;

/// The version of the on-disk layout this build reads and writes.
///
/// Stored under [`FORMAT_KEY`] in every store when it is created and checked
/// on every open: a store written by another format is refused, never misread.
pub const FORMAT_VERSION: u32 = 1;

/// The reserved key holding [`FORMAT_VERSION`].
pub const FORMAT_KEY: &[u8] = b"\x00format";

/// Key-value pairs in key order, as [`KvStore::scan`] returns them.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One change in a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Removes `key` (a no-op when absent).
    Delete(Vec<u8>),
}

impl Op {
    /// The key the change is to.
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put(k, _) | Op::Delete(k) => k,
        }
    }
}

/// Changes applied all together or not at all by [`KvStore::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
    bytes: usize,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.bytes += key.len() + value.len();
        self.ops.push(Op::Put(key, value));
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.bytes += key.len();
        self.ops.push(Op::Delete(key));
    }

    /// Appends every change of `other`, after this batch's own.
    pub fn append(&mut self, other: Batch) {
        self.bytes += other.bytes;
        self.ops.extend(other.ops);
    }

    /// The number of changes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Key and value bytes in the batch: what a checkpoint writes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The changes, in order (a later change to a key wins).
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Consumes the batch into its changes.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
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
/// - a store remembers its [`FORMAT_VERSION`] and refuses another.
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

    /// Reclaims the space of deleted entries now rather than eventually.
    fn compact(&self) -> Result<(), StoreError>;

    /// Bytes of live data files: what the store occupies on disk (or in
    /// memory) apart from logs.
    fn live_bytes(&self) -> Result<u64, StoreError>;

    /// Writes a consistent copy of the store, openable as a store of its
    /// own, to the directory `to` (which must not exist). Returns false if
    /// the store cannot be copied (the memory store).
    fn snapshot(&self, _to: &std::path::Path) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// Checks the format key of a freshly opened store, writing it if the store
/// is empty. `empty` says whether the store held any key at all.
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
            batch.put(FORMAT_KEY.to_vec(), FORMAT_VERSION.to_le_bytes().to_vec());
            store.write(batch)
        }
        None => Err(StoreError::Corrupted {
            location: location.to_owned(),
            detail: "the store holds data but no format marker".into(),
        }),
    }
}
