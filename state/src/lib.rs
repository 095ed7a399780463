//! Rill's state layer.
//!
//! - Identifiers every Rill crate shares — [`Epoch`], [`WorkerIndex`],
//!   [`KeyGroup`], [`StepId`] — and the mapping from a key to its key group
//!   and from a key group to the worker that owns it ([`KeyGroups`]).
//! - [`store`]: the [`KvStore`] trait with no RocksDB type in it, and its two
//!   implementations, [`MemoryStore`] and [`RocksStore`].
//! - [`checkpoint`]: the checkpoint protocol over any store: versions tagged
//!   by epoch, one atomic batch per worker per epoch, resume and garbage
//!   collection.
//! - [`Table`]: one step's keyed state, a bounded cache over the store.
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
mod ids;
mod key_groups;
pub mod store;
mod table;
mod versions;

pub use checkpoint::{CheckpointError, Checkpointer};
pub use ids::{Epoch, Fault, StepId, WorkerIndex};
pub use key_groups::{stable_hash, KeyGroup, KeyGroups, KeyGroupsError, DEFAULT_KEY_GROUPS};
pub use store::{Batch, FreshStore, KvStore, MemoryStore, RocksStore, StoreError, INGEST_FROM};
pub use table::{SharedCheckpointer, Table};
