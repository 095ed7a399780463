//! The checkpoint protocol (DESIGN.md, "State and checkpoints").
//!
//! Every stateful step of a worker stages what it changed in epoch `e` —
//! values, list elements, map entries, timers, source offsets — as
//! versions tagged `e` ([`Checkpointer::staging`]). When the worker's
//! frontier passes `e`, [`Checkpointer::prepare`] writes everything staged
//! up to `e`, the deletions of garbage and the "worker prepared `e`"
//! marker as one synced atomic batch: that is the one write path. When
//! every worker has prepared `e` the checkpoint is complete, and
//! [`Checkpointer::complete`] moves the store's garbage horizon to `e`
//! (versions replaced by one at or below it are dropped as the store
//! compacts: [`crate::store::VersionGc`]) and removes the entries deleted
//! up to `e` with the next batch.
//!
//! At start-up the resume epoch is the minimum over all workers of their
//! last prepared epoch ([`resume_epoch`]); [`resume_store`] *fences* the
//! epochs above it that some worker prepared, and the job goes on after
//! the last of them, so that no epoch is ever written twice and a read
//! never sees a version a resume discarded.

mod checkpointer;
mod error;
mod inspect;
mod rescale;
mod write;

use std::ops::Range;

pub use checkpointer::visible;
pub use checkpointer::Checkpointer;
pub use error::CheckpointError;
pub use inspect::{complete_checkpoints, inspect, CheckpointSummary, StoreSummary};
pub use rescale::{rebuild, visible_at, Carry};
pub use write::{CheckpointWrite, Found, PendingPrepare, PrepareStats, Staged};

use crate::layout::{self, JobMeta};
use crate::store::{Batch, KvStore, StoreError};
use crate::DEFAULT_KEY_GROUPS;

/// Checks (or, for a new store, records) which job shape wrote the state,
/// and returns the stored shape. A store whose workers prepared any
/// checkpoint under another number of workers is refused: starting it
/// empty would silently discard its state. `key_groups` is the count the
/// job asked for, if it asked: it sizes new state, and a store of another
/// count is an error.
pub fn open_job(
    store: &dyn KvStore,
    location: &str,
    workers: u32,
    processes: u32,
    key_groups: Option<u32>,
) -> Result<JobMeta, CheckpointError> {
    let has_state = !store.scan(&[layout::PREPARED], &[], 1)?.is_empty();
    if let Some(bytes) = store.get(layout::META)? {
        let stored: JobMeta = crate::codec::decode(&bytes)?;
        if let Some(asked) = key_groups.filter(|&k| k != stored.key_groups) {
            return Err(CheckpointError::KeyGroupsConflict {
                location: location.to_owned(),
                stored: stored.key_groups,
                asked,
            });
        }
        if (stored.workers, stored.processes) == (workers, processes) || !has_state {
            let meta = JobMeta {
                workers,
                processes,
                ..stored
            };
            if meta != stored {
                write_meta(store, &meta)?;
            }
            return Ok(meta);
        }
        return Err(CheckpointError::Rescaled {
            location: location.to_owned(),
            stored_workers: stored.workers,
            stored_processes: stored.processes,
            workers,
            processes,
        });
    }
    let meta = JobMeta {
        workers,
        processes,
        key_groups: key_groups.unwrap_or(DEFAULT_KEY_GROUPS),
    };
    write_meta(store, &meta)?;
    Ok(meta)
}

fn write_meta(store: &dyn KvStore, meta: &JobMeta) -> Result<(), CheckpointError> {
    let mut batch = Batch::new();
    batch.put(layout::META, crate::codec::encode(meta)?);
    store.write(batch)?;
    Ok(())
}

/// The last epoch each of `workers` prepared in `store`.
pub fn prepared(store: &dyn KvStore, workers: Range<u32>) -> Result<Vec<Option<u64>>, StoreError> {
    workers
        .map(|w| match store.get(&layout::prepared_key(w))? {
            Some(bytes) => layout::be_u64(&bytes, 0)
                .map(Some)
                .ok_or_else(|| StoreError::Codec(format!("prepared marker of worker {w}"))),
            None => Ok(None),
        })
        .collect()
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

/// Readies a process's store for a run that resumes at `resume` (agreed by
/// every process) after the job's workers prepared up to `last` (the
/// maximum over all of them): the epochs above `resume` up to `last` are
/// fenced (their versions are never read again, and the run goes on at
/// `last + 1`), the markers of `workers` above `resume` go back to it, and
/// their checkpoint records above it are removed. One atomic batch. Every
/// fence is then loaded into the store's garbage rule, whose horizon
/// starts at the resume epoch.
pub fn resume_store(
    store: &dyn KvStore,
    workers: Range<u32>,
    resume: Option<u64>,
    last: Option<u64>,
) -> Result<(), StoreError> {
    let mut batch = Batch::new();
    let first_discarded = resume.map_or(0, |r| r + 1);
    if let Some(last) = last.filter(|&l| l >= first_discarded) {
        batch.put(layout::fence_key(first_discarded, last), []);
    }
    for (w, p) in workers.clone().zip(prepared(store, workers)?) {
        if p.is_some_and(|p| resume.is_none_or(|r| p > r)) {
            match resume {
                Some(r) => batch.put(layout::prepared_key(w), r.to_be_bytes()),
                None => batch.delete(layout::prepared_key(w)),
            }
        }
    }
    for (key, _) in store.scan(&[layout::INFO], &[], usize::MAX)? {
        if layout::be_u64(&key, 1).is_some_and(|e| e >= first_discarded) {
            batch.delete(key);
        }
    }
    store.write(batch)?;
    for (from, to) in fences(store)? {
        store.versions().fence(from, to);
    }
    if let Some(r) = resume {
        store.versions().advance(r);
    }
    Ok(())
}

/// The last epoch any of `workers` ran: the highest prepared marker, or
/// the end of a fence an earlier resume left (a run that prepared nothing
/// after it must still not run those epochs again: their versions stay
/// hidden).
pub fn last_epoch(store: &dyn KvStore, workers: Range<u32>) -> Result<Option<u64>, StoreError> {
    let fenced = fences(store)?.into_iter().map(|(_, to)| to);
    let prepared = prepared(store, workers)?.into_iter().flatten();
    Ok(prepared.chain(fenced).max())
}

/// The epoch ranges fenced in `store` (inclusive).
fn fences(store: &dyn KvStore) -> Result<Vec<(u64, u64)>, StoreError> {
    let fenced = store.scan(&[layout::FENCE], &[], usize::MAX)?.into_iter();
    fenced
        .map(|(key, _)| layout::be_u64(&key, 1).zip(layout::be_u64(&key, 9)))
        .map(|r| r.ok_or_else(|| StoreError::Codec("a malformed fence".into())))
        .collect()
}

/// The first epoch of a run after the job's workers prepared up to `last`.
pub fn first_epoch(last: Option<u64>) -> u64 {
    last.map_or(0, |l| l + 1)
}
