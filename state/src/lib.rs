//! Rill's state layer.
//!
//! - Identifiers every Rill crate shares — [`Epoch`], [`WorkerIndex`],
//!   [`KeyGroup`], [`StepId`] — and the mapping from a key to its key group
//!   and from a key group to the worker that owns it ([`KeyGroups`]).
//! - [`store`]: the [`KvStore`] trait with no RocksDB type in it (get,
//!   ordered scan, atomic synced batch), and its two implementations,
//!   [`MemoryStore`] and [`RocksStore`].
//! - [`layout`]: the one place that encodes and parses a versioned key.
//! - [`checkpoint`]: the checkpoint protocol over any store: versions tagged
//!   by epoch, one atomic batch per worker per epoch, resume and garbage
//!   collection.
//! - [`Table`] (one value per key, typed) and [`Entries`] (list elements,
//!   map entries and timers, as bytes): a step's state on one worker, a
//!   bounded cache over the store.
//! - [`SortKey`]: the order-preserving encoding of map keys.
//!
//! This crate depends on no other Rill crate.
//!
//! ```
//! use rill_state::{KeyGroups, WorkerIndex};
//!
//! let groups = KeyGroups::new(256).unwrap();
//! let group = groups.group_of_key(&"alice");
//! let owner = groups.owner(group, 4);
//! assert!(owner < WorkerIndex(4));
//! // The same key always lands in the same group, in every process.
//! assert_eq!(group, groups.group_of_key(&"alice"));
//! ```

pub mod checkpoint;
pub mod codec;
mod entries;
mod ids;
mod key_groups;
pub mod layout;
mod sort_key;
pub mod store;
mod table;
mod versions;

pub use checkpoint::{CheckpointError, Checkpointer};
pub use entries::Entries;
pub use ids::{Epoch, Fault, StepId, WorkerIndex};
pub use key_groups::{stable_hash, KeyGroup, KeyGroups, KeyGroupsError, DEFAULT_KEY_GROUPS};
pub use layout::{StateKind, StepMeta};
pub use sort_key::SortKey;
pub use store::{Batch, KvStore, MemoryStore, RocksStore, StoreError};
pub use table::{SharedCheckpointer, Table};
