//! Rill's state layer.
//!
//! For now this crate holds the identifiers every other Rill crate shares —
//! [`Epoch`], [`WorkerIndex`], [`KeyGroup`], [`StepId`] — and the mapping
//! from a key to its key group and from a key group to the worker that owns
//! it ([`KeyGroups`]). The state-store traits, the RocksDB and in-memory
//! stores and the checkpoint layout will live here too; this crate depends on
//! no other Rill crate.
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

mod ids;
mod key_groups;

pub use ids::{Epoch, Fault, StepId, WorkerIndex};
pub use key_groups::{stable_hash, KeyGroup, KeyGroups, KeyGroupsError, DEFAULT_KEY_GROUPS};
