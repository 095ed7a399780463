//! The checkpoint protocol (DESIGN.md, "State and checkpoints").
//!
//! Every stateful step of a worker stages the keys it changed in epoch `e`
//! as versions tagged `e` ([`Checkpointer::stage_version`]). When the worker's
//! frontier passes `e`, [`Checkpointer::prepare`] writes everything staged
//! up to `e` — versions, the undo list of `e`, deletions of garbage, and
//! the "worker prepared `e`" marker — as one synced atomic batch. When every
//! worker has prepared `e` the checkpoint is complete, and
//! [`Checkpointer::complete`] moves the store's garbage horizon to `e`
//! (versions replaced by one at or below it are dropped as the store
//! compacts: [`crate::store::VersionGc`]) and turns the deletions in the
//! undo lists up to `e` into range deletions of their keys' versions. At
//! start-up [`resume_epoch`] is the minimum prepared epoch over the
//! workers, and [`Checkpointer::open`] discards every version above it and
//! fences the discarded epochs.

mod checkpointer;
mod error;
mod inspect;
mod layout;
mod staging;
mod write;

pub use checkpointer::{local_resume_epoch, Checkpointer};
pub use error::CheckpointError;
pub use inspect::{complete_checkpoints, inspect, CheckpointSummary, StoreSummary};
pub(crate) use layout::version_prefix as version_prefix_for;
#[cfg(test)]
pub(crate) use layout::{version_epoch, write_version_key};
pub use layout::{CheckpointInfo, JobMeta, StepMeta, Undo, UndoLog};
pub use staging::Staging;
pub use write::{CheckpointWrite, PendingPrepare, PrepareStats};

/// Checks (or, for a new store, records) which job shape wrote the state.
/// A store whose workers prepared any checkpoint under another shape is
/// refused: starting it empty would silently discard its state.
pub fn check_job_meta(
    store: &dyn crate::store::KvStore,
    location: &str,
    meta: &JobMeta,
) -> Result<(), CheckpointError> {
    if let Some(bytes) = store.get(layout::META)? {
        let stored: JobMeta = crate::codec::decode(&bytes)?;
        if stored == *meta {
            return Ok(());
        }
        let has_state = !store.scan(&[layout::PREPARED], &[], 1)?.is_empty();
        if has_state {
            return Err(CheckpointError::Rescaled {
                location: location.to_owned(),
                stored_workers: stored.workers,
                stored_processes: stored.processes,
                workers: meta.workers,
                processes: meta.processes,
            });
        }
    }
    let mut batch = crate::store::Batch::new();
    batch.put(layout::META, crate::codec::encode(meta)?);
    store.write(batch)?;
    Ok(())
}

/// The epoch a job resumes from, given each worker's last prepared epoch:
/// the minimum, or `None` (a fresh start) if any worker never prepared one.
pub fn resume_epoch(prepared: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    let mut min: Option<u64> = None;
    for p in prepared {
        let p = p?;
        min = Some(min.map_or(p, |m| m.min(p)));
    }
    min
}
