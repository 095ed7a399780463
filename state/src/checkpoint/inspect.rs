//! Reading a store's checkpoints without running the job
//! (`rill checkpoints`).

use std::collections::BTreeMap;

use crate::codec::decode;
use crate::layout::{self, CheckpointInfo, JobMeta, StepMeta};
use crate::store::{KvStore, StoreError};

/// What one process's store holds.
#[derive(Debug, Clone, Default)]
pub struct StoreSummary {
    /// The job shape that wrote it.
    pub meta: Option<JobMeta>,
    /// Stateful steps.
    pub steps: BTreeMap<String, StepMeta>,
    /// Last prepared epoch per worker.
    pub prepared: BTreeMap<u32, u64>,
    /// Checkpoint records: epoch → worker → record.
    pub infos: BTreeMap<u64, BTreeMap<u32, CheckpointInfo>>,
    /// Bytes of live data files.
    pub bytes: u64,
}

/// One complete checkpoint, over every process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSummary {
    /// The epoch.
    pub epoch: u64,
    /// When its last batch was written (ms since the Unix epoch).
    pub time_ms: u64,
    /// Bytes written for it, over every worker that has a record of it.
    pub bytes: u64,
    /// Workers with a record of it.
    pub workers: usize,
    /// Live keys per step (summed over those workers).
    pub keys: BTreeMap<String, u64>,
}

/// Reads the checkpoint records of one store.
pub fn inspect(store: &dyn KvStore) -> Result<StoreSummary, StoreError> {
    let mut summary = StoreSummary {
        meta: store.get(layout::META)?.map(|b| decode(&b)).transpose()?,
        bytes: store.live_bytes(None)?,
        ..StoreSummary::default()
    };
    for (key, value) in store.scan(&[layout::CATALOG], &[], usize::MAX)? {
        let name = String::from_utf8_lossy(&key[1..]).into_owned();
        summary.steps.insert(name, decode(&value)?);
    }
    for (key, value) in store.scan(&[layout::PREPARED], &[], usize::MAX)? {
        if let (Some(w), Some(e)) = (layout::be_u32(&key, 1), layout::be_u64(&value, 0)) {
            summary.prepared.insert(w, e);
        }
    }
    for (key, value) in store.scan(&[layout::INFO], &[], usize::MAX)? {
        if let (Some(e), Some(w)) = (layout::be_u64(&key, 1), layout::be_u32(&key, 9)) {
            summary
                .infos
                .entry(e)
                .or_default()
                .insert(w, decode(&value)?);
        }
    }
    Ok(summary)
}

/// The complete checkpoints recorded in `stores` (one per process) and
/// the epoch a job would resume from. A checkpoint is complete when every
/// one of the job's workers has prepared it or a later epoch.
pub fn complete_checkpoints(stores: &[StoreSummary]) -> (Vec<CheckpointSummary>, Option<u64>) {
    let workers = stores
        .iter()
        .filter_map(|s| s.meta.as_ref())
        .map(|m| m.workers)
        .max()
        .unwrap_or(0);
    let mut prepared: BTreeMap<u32, u64> = BTreeMap::new();
    for s in stores {
        prepared.extend(s.prepared.iter().map(|(w, e)| (*w, *e)));
    }
    let resume = super::resume_epoch((0..workers).map(|w| prepared.get(&w).copied()));
    let mut epochs: BTreeMap<u64, CheckpointSummary> = BTreeMap::new();
    for s in stores {
        for (epoch, records) in &s.infos {
            if resume.is_none_or(|r| *epoch > r) {
                continue;
            }
            let c = epochs.entry(*epoch).or_insert_with(|| CheckpointSummary {
                epoch: *epoch,
                time_ms: 0,
                bytes: 0,
                workers: 0,
                keys: BTreeMap::new(),
            });
            for info in records.values() {
                c.time_ms = c.time_ms.max(info.time_ms);
                c.bytes += info.bytes;
                c.workers += 1;
                for (step, n) in &info.keys {
                    *c.keys.entry(step.clone()).or_insert(0) += n;
                }
            }
        }
    }
    (epochs.into_values().collect(), resume)
}
