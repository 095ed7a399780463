//! [`CheckpointWrite`]: what one prepare hands to the thread that writes,
//! and what the worker keeps while it is written.

use super::layout::{self, UndoLog};
use crate::store::{Batch, StoreError};

/// What one [`super::Checkpointer::prepare`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareStats {
    /// The epoch now prepared.
    pub epoch: u64,
    /// Key and value bytes written.
    pub bytes: u64,
    /// Versions written.
    pub versions: u64,
}

/// A batch being written: what [`super::Checkpointer::finish_prepare`] records.
#[derive(Debug)]
pub struct PendingPrepare {
    pub(super) stats: PrepareStats,
    /// The deletions staged, per epoch: kept to collect once complete.
    pub(super) undo: Vec<(u64, UndoLog)>,
}

/// What one prepare writes: the staged versions, the rest of the batch
/// (markers, records, catalog), plus the undo logs of completed epochs
/// whose replaced versions it also deletes. Turning those logs into
/// deletions, and reading the undo logs of the staged epochs off their
/// version keys, is left to [`CheckpointWrite::into_batch`], so that it
/// runs on the thread that writes rather than on the worker.
#[derive(Debug, Default)]
pub struct CheckpointWrite {
    /// The staged versions.
    pub(super) versions: Batch,
    /// Markers, records and catalog.
    pub(super) batch: Batch,
    /// The undo logs of completed epochs, to collect.
    pub(super) garbage: Vec<(u64, UndoLog)>,
    /// The deletions among the versions, per epoch staged: all of its
    /// undo log that a write completing its checkpoint stores.
    pub(super) deletions: Vec<(u64, UndoLog)>,
    /// The worker that wrote it, and the epoch it prepares (`None` for a
    /// write of garbage only).
    pub(super) worker: u32,
    pub(super) through: Option<u64>,
    /// The write completes its checkpoint: see
    /// [`CheckpointWrite::completes_checkpoint`].
    pub(super) completes: bool,
}

impl CheckpointWrite {
    /// The worker whose batch this is.
    pub fn worker(&self) -> u32 {
        self.worker
    }

    /// The epoch this write prepares, if it prepares one.
    pub fn through(&self) -> Option<u64> {
        self.through
    }

    /// Says that this write completes checkpoint [`CheckpointWrite::through`]
    /// by itself: it is written in one atomic batch with the writes of every
    /// other worker of the job preparing the same epoch. A resume can then
    /// never start below that epoch, so the versions written need no undo
    /// records: only the deletions among them are stored, to collect once
    /// the checkpoint is seen complete. This saves about a third of a batch
    /// of small states (17 of the 50 bytes of a `u64` sum's version).
    pub fn completes_checkpoint(&mut self) {
        self.completes = true;
    }

    /// The whole batch to write, garbage deletions included.
    pub fn into_batch(self) -> Result<Batch, StoreError> {
        let (now, mut batch) = self.into_parts()?;
        batch.append(now);
        Ok(batch)
    }

    /// The batch in two parts, for [`crate::store::KvStore::write_deferred`]: the
    /// markers, records, catalog and garbage deletions, which `rill
    /// checkpoints` and the choice of a resume epoch read; and the staged
    /// versions with their undo logs, which only a job that resumes reads
    /// (once its writable open filed them). Written together they are
    /// [`CheckpointWrite::into_batch`].
    pub fn into_parts(self) -> Result<(Batch, Batch), StoreError> {
        let mut batch = self.batch;
        for (epoch, undo) in &self.garbage {
            collect_garbage(*epoch, undo, &mut batch)?;
        }
        let mut versions = self.versions;
        let undo = if self.completes {
            self.deletions
        } else {
            layout::undo_logs_of(&versions)?
        };
        for (epoch, log) in undo {
            if log.as_bytes().is_empty() {
                continue;
            }
            versions.put(layout::undo_key(self.worker, epoch), log.as_bytes());
        }
        Ok((batch, versions))
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
            && self.batch.is_empty()
            && self.garbage.is_empty()
            && self.deletions.is_empty()
    }
}

impl PendingPrepare {
    /// What the batch holds.
    pub fn stats(&self) -> PrepareStats {
        self.stats
    }
}

/// Adds the deletions that garbage-collect what one undo list's epoch
/// deleted, once it is complete: the deletion and every older version of
/// its key, in one range. (Versions a newer one replaced are the store's
/// to drop: see [`crate::store::VersionGc`].)
pub(super) fn collect_garbage(
    epoch: u64,
    undo: &UndoLog,
    batch: &mut Batch,
) -> Result<(), StoreError> {
    if !undo.may_delete() {
        return Ok(());
    }
    let mut prefix = Vec::new();
    for u in undo.iter() {
        let u = u?;
        if u.deleted {
            prefix.clear();
            u.write_prefix(&mut prefix);
            layout::delete_versions_through(batch, &prefix, epoch);
        }
    }
    Ok(())
}
