//! [`Stager`]: turns a table's dirty entries into the versions of one
//! epoch.

use std::hash::Hash;

use serde::Serialize;

use super::{Entry, Stored};
use crate::checkpoint::Staged;
use crate::codec::encode_into;
use crate::{layout, KeyGroups, StoreError};

/// Turns dirty cache entries into staged versions of one epoch.
pub(super) struct Stager<'a> {
    pub(super) epoch: u64,
    pub(super) staging: &'a mut Staged,
    pub(super) step: u64,
    pub(super) state: u8,
    pub(super) groups: KeyGroups,
    pub(super) live_delta: i64,
    /// Entries that were created and deleted since the last staging.
    pub(super) vanished: usize,
    /// Versions staged.
    pub(super) staged: usize,
}

impl Stager<'_> {
    pub(super) fn stage<K: Hash + Serialize + std::fmt::Debug, S: Serialize>(
        &mut self,
        key: &K,
        entry: &mut Entry<S>,
    ) -> Result<(), StoreError> {
        if !entry.dirty() {
            return Ok(());
        }
        if entry.value.is_none() && entry.stored == Stored::NONE {
            entry.mark &= !1;
            self.vanished += 1;
            return Ok(());
        }
        let group = self.groups.group_of_key(key).0;
        let (epoch, step, state) = (self.epoch, self.step, self.state);
        let batch = &mut self.staging.batch;
        batch
            .put_with(
                |k| {
                    layout::write_head(k, step, state, group);
                    let key_len = layout::write_encoded_key(k, key)?;
                    k.extend_from_slice(&(!epoch).to_be_bytes());
                    layout::check_sizes(key_len, 0)
                },
                |v| {
                    let at = v.len();
                    match &entry.value {
                        None => v.push(0),
                        Some(s) => {
                            v.push(1);
                            encode_into(s, v)?;
                        }
                    }
                    layout::check_sizes(0, v.len() - at - 1)
                },
            )
            .map_err(|mut e| {
                if let StoreError::TooLarge { key: k, .. } = &mut e {
                    *k = Some(crate::codec::describe_key(key));
                }
                e
            })?;
        entry.mark &= !1;
        if entry.value.is_none() {
            let staged = batch.op(batch.len() - 1).key();
            let entry_key = staged[..staged.len() - 8].to_vec();
            self.staging.tombstones.push(entry_key);
        }
        self.staged += 1;
        let live = entry.value.is_some();
        self.live_delta += i64::from(live) - i64::from(entry.stored.live());
        entry.stored = Stored::new(epoch, live);
        Ok(())
    }
}
