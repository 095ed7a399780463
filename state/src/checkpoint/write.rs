//! What one prepare stages and writes: an epoch's versions, the batch
//! handed to the writer, and what the worker keeps while it is written.

use crate::layout;
use crate::store::Batch;

/// The versions one worker staged for one epoch.
#[derive(Debug, Default)]
pub struct Staged {
    /// The versions, as puts of version keys.
    pub batch: Batch,
    /// The entries deleted: once the epoch is complete, each one's
    /// versions up to it are removed.
    pub tombstones: Vec<Vec<u8>>,
}

impl Staged {
    /// Stages a version of `entry` at `epoch`: `value` is the encoded
    /// state, `None` a deletion.
    pub fn version(&mut self, epoch: u64, entry: &[u8], value: Option<&[u8]>) {
        let staged: Result<(), std::convert::Infallible> = self.batch.put_with(
            |k| {
                layout::write_version_key(k, entry, epoch);
                Ok(())
            },
            |v| {
                layout::write_version(v, value);
                Ok(())
            },
        );
        let Ok(()) = staged;
        if value.is_none() {
            self.tombstones.push(entry.to_vec());
        }
    }
}

/// One entry a scan found: its key (without the epoch), the epoch of its
/// newest version, and its value.
pub type Found = (Vec<u8>, u64, Vec<u8>);

/// What one prepare wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareStats {
    /// The epoch now prepared.
    pub epoch: u64,
    /// Key and value bytes written.
    pub bytes: u64,
    /// Versions written.
    pub versions: u64,
}

/// A batch being written: what [`Checkpointer::finish_prepare`](super::Checkpointer::finish_prepare) records.
#[derive(Debug)]
pub struct PendingPrepare {
    pub(super) stats: PrepareStats,
    pub(super) tombstones: Vec<(u64, Vec<Vec<u8>>)>,
}

/// One worker's checkpoint batch, to write on any thread as one atomic,
/// synced write (the workers of a process may append theirs together).
#[derive(Debug, Default)]
pub struct CheckpointWrite {
    /// Everything to write: versions, garbage, records and the marker.
    pub batch: Batch,
}

impl PendingPrepare {
    /// What the batch holds.
    pub fn stats(&self) -> PrepareStats {
        self.stats
    }
}
