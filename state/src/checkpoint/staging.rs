//! [`Staging`]: where a step stages the versions of one epoch.

use serde::Serialize;

use super::layout::{self, UndoLog};
use crate::codec::encode_into;
use crate::store::{Batch, StoreError};

/// The most bytes [`Staging::reserve`] reserves for each buffer at once.
const RESERVE_MAX: usize = 256 << 20;

/// The buffers of one epoch's versions (see [`super::Checkpointer::staging`]).
/// Nothing is allocated per version: key and value go
/// straight into the epoch's buffers.
pub struct Staging<'a> {
    pub(super) epoch: u64,
    pub(super) batch: &'a mut Batch,
    /// The deletions staged: the worker keeps them to collect once the
    /// epoch is complete. The whole undo log is read off the version keys
    /// when the epoch is written ([`CheckpointWrite::into_parts`]).
    pub(super) deletions: &'a mut UndoLog,
}

impl Staging<'_> {
    /// The epoch staged for.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Stages a version of `key` (already encoded) of step `step` in key
    /// group `group`: `value` is the encoded state, `None` a deletion.
    pub fn version(&mut self, (step, group): (u64, u32), key: &[u8], value: Option<&[u8]>) {
        let epoch = self.epoch;
        let staged: Result<(), std::convert::Infallible> = self.batch.put_with(
            |k| {
                layout::write_version_prefix(k, step, group, key);
                k.extend_from_slice(&(!epoch).to_be_bytes());
                Ok(())
            },
            |v| {
                layout::write_version(v, value);
                Ok(())
            },
        );
        let Ok(()) = staged;
        if value.is_none() {
            self.deletions.push(step, group, key, true);
        }
    }

    /// Stages a version of `key` of step `step` in key group `group`, as
    /// [`Staging::version`] does, encoding the key and the state (`None`:
    /// a deletion) straight into the epoch's buffer. Returns the encoded
    /// key's and value's lengths. If either fails to encode, nothing is
    /// staged.
    pub fn encode_version<K: Serialize + ?Sized, S: Serialize>(
        &mut self,
        (step, group): (u64, u32),
        key: &K,
        value: Option<&S>,
    ) -> Result<(usize, usize), StoreError> {
        let epoch = self.epoch;
        let mut key_len = 0;
        let mut value_len = 0;
        self.batch.put_with(
            |k| {
                let at = k.len();
                layout::write_version_prefix(k, step, group, &[]);
                encode_into(key, k)?;
                key_len = k.len() - at - layout::VERSION_KEY_HEAD;
                layout::set_version_key_len(&mut k[at..], key_len);
                k.extend_from_slice(&(!epoch).to_be_bytes());
                Ok(())
            },
            |v| {
                let at = v.len();
                match value {
                    None => v.push(0),
                    Some(s) => {
                        v.push(1);
                        encode_into(s, v)?;
                    }
                }
                value_len = v.len() - at - 1;
                Ok::<(), StoreError>(())
            },
        )?;
        if value.is_none() {
            let staged = self.batch.op(self.batch.len() - 1).key();
            let encoded = &staged[layout::VERSION_KEY_HEAD..staged.len() - 8];
            self.deletions.push(step, group, encoded, true);
        }
        Ok((key_len, value_len))
    }

    /// Makes room for `versions` more versions whose keys and values take
    /// about `key_len` and `value_len` bytes, so that staging them grows no
    /// buffer: a grown buffer is copied, and on a long-running job the
    /// allocator serves these sizes from the heap, not by remapping. The
    /// batch also gets room for the undo log, which is added to it when
    /// the epoch is written.
    pub fn reserve(&mut self, versions: usize, key_len: usize, value_len: usize) {
        let version = layout::version_key_len(key_len) + 1 + value_len;
        let undo = layout::undo_record_len(key_len);
        // A quarter more, for keys and values longer than these; at most
        // RESERVE_MAX, so that one unusually large first value cannot ask
        // for a huge buffer (beyond it, buffers grow as usual).
        let slack = |n: usize| n.saturating_add(n / 4).min(RESERVE_MAX);
        let undo_bytes = slack(versions.saturating_mul(undo));
        self.batch.reserve(
            versions,
            slack(versions.saturating_mul(version)).saturating_add(undo_bytes),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpointer;
    use crate::store::KvStore;
    use crate::MemoryStore;
    use std::sync::Arc;

    /// A state that fails to encode.
    struct Unencodable;

    impl Serialize for Unencodable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no encoding"))
        }
    }

    #[test]
    fn a_version_encodes_its_key_and_state_or_stages_nothing() {
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let mut c = Checkpointer::open(store, 0, None).unwrap();
        let mut staging = c.staging(3);
        let lens = staging.encode_version((7, 2), "key", Some(&42u64)).unwrap();
        assert_eq!(
            lens,
            (4, 1),
            "bincode: a length byte and 3 bytes; 42 in one"
        );
        assert_eq!(
            staging
                .encode_version::<str, u64>((7, 2), "gone", None)
                .unwrap(),
            (5, 0)
        );
        let failed = staging.encode_version((7, 2), "bad", Some(&Unencodable));
        assert!(failed.is_err());
        let failed_key = staging.encode_version((7, 2), &Unencodable, Some(&1u64));
        assert!(failed_key.is_err());
        let (write, pending) = c.begin_prepare(3).unwrap();
        assert_eq!(pending.stats().versions, 2);
        let (_, versions) = write.into_parts().unwrap();
        let ops: Vec<_> = versions.ops().collect();
        // The two versions, then their undo log.
        assert_eq!(ops.len(), 3);
        let mut key = layout::version_prefix(7, 2, b"\x03key");
        key.extend_from_slice(&(!3u64).to_be_bytes());
        assert_eq!(ops[0], crate::store::Op::Put(&key, &[1, 42]));
        let crate::store::Op::Put(undo_key, undo) = ops[2] else {
            panic!("{:?}", ops[2]);
        };
        assert_eq!(undo_key, layout::undo_key(0, 3));
        let undo = UndoLog::from_bytes(undo.to_vec());
        let records: Vec<_> = undo.iter().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(
            (records[1].key, records[1].deleted),
            (&b"\x04gone"[..], true)
        );
        // The worker keeps the deletion, to collect once complete.
        assert_eq!(pending.undo.len(), 1);
        let kept: Vec<_> = pending.undo[0].1.iter().map(Result::unwrap).collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].key, b"\x04gone");
    }
}
