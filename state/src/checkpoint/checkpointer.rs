//! [`Checkpointer`]: one worker's side of the checkpoint protocol.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::write::{CheckpointWrite, Found, PendingPrepare, PrepareStats, Staged};
use super::CheckpointError;
use crate::codec::{decode, encode};
use crate::layout::{self, CheckpointInfo, StepMeta};
use crate::store::{Batch, KvStore, StoreError};
use crate::versions::is_fenced;

/// How many checkpoint records each worker keeps for `rill checkpoints`.
const INFO_KEPT: usize = 10;

/// How many store entries one read of a scan takes at a time.
const SCAN_CHUNK: usize = 256;

/// One worker's checkpoint state: what its steps staged, what it has
/// prepared, and what is garbage once a checkpoint completes.
pub struct Checkpointer {
    store: Arc<dyn KvStore>,
    worker: u32,
    resume: Option<u64>,
    fenced: Vec<(u64, u64)>,
    catalog: BTreeMap<String, StepMeta>,
    registered: BTreeMap<String, StepMeta>,
    staged: BTreeMap<u64, Staged>,
    /// Deleted entries of prepared epochs, to remove once complete.
    pending: BTreeMap<u64, Vec<Vec<u8>>>,
    /// Catalog entries and deletions of garbage, for the next batch: they
    /// never touch an entry staged for an epoch not yet prepared.
    extra: Batch,
    prepared: Option<u64>,
    keys: BTreeMap<String, u64>,
    info_epochs: VecDeque<u64>,
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Checkpointer {
    /// Opens worker `worker`'s side at `resume`, once
    /// [`super::resume_store`] fenced the epochs the resume discards: it
    /// reads the catalog of steps and the worker's last key counts, and
    /// writes nothing.
    pub fn open(
        store: Arc<dyn KvStore>,
        worker: u32,
        resume: Option<u64>,
    ) -> Result<Self, CheckpointError> {
        let mut info_epochs = VecDeque::new();
        let mut keys = BTreeMap::new();
        let mut catalog = BTreeMap::new();
        if let Some(r) = resume {
            for (key, value) in store.scan(&[layout::INFO], &[], usize::MAX)? {
                let (Some(epoch), Some(w)) = (layout::be_u64(&key, 1), layout::be_u32(&key, 9))
                else {
                    continue;
                };
                if w == worker && epoch <= r {
                    // Ascending: the last record holds the counts to resume with.
                    info_epochs.push_back(epoch);
                    keys = decode::<CheckpointInfo>(&value)?.keys;
                }
            }
            for (key, value) in store.scan(&[layout::CATALOG], &[], usize::MAX)? {
                let name = String::from_utf8_lossy(&key[1..]).into_owned();
                catalog.insert(name, decode::<StepMeta>(&value)?);
            }
        }
        let fenced = store.versions().fenced();
        Ok(Checkpointer {
            store,
            worker,
            resume,
            fenced,
            catalog,
            registered: BTreeMap::new(),
            staged: BTreeMap::new(),
            pending: BTreeMap::new(),
            extra: Batch::new(),
            prepared: resume,
            keys,
            info_epochs,
        })
    }

    /// The epoch the job resumed from (`None` on a fresh start).
    pub fn resume(&self) -> Option<u64> {
        self.resume
    }

    /// The last epoch this worker made durable.
    pub fn prepared(&self) -> Option<u64> {
        self.prepared
    }

    /// Live keys per stateful step on this worker, as of the last staging.
    pub fn keys(&self) -> &BTreeMap<String, u64> {
        &self.keys
    }

    /// The latest epoch anything is staged for, if any.
    pub fn staged_through(&self) -> Option<u64> {
        self.staged.last_key_value().map(|(e, _)| *e)
    }

    /// The worker this checkpointer writes for.
    pub fn worker(&self) -> u32 {
        self.worker
    }

    /// Registers a stateful step and returns the id its entries are stored
    /// under. Resuming, the step must exist in the checkpoint with the same
    /// kind, key-group count and states.
    pub fn register(&mut self, step: &str, meta: StepMeta) -> Result<u64, CheckpointError> {
        if let Some(r) = self.resume {
            let Some(stored) = self.catalog.get(step) else {
                return Err(CheckpointError::NewStep {
                    step: step.to_owned(),
                    epoch: r,
                    known: self.catalog.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            };
            if stored.kind != meta.kind {
                return Err(CheckpointError::KindChanged {
                    step: step.to_owned(),
                    stored: stored.kind.clone(),
                    now: meta.kind,
                });
            }
            if stored.key_groups != meta.key_groups {
                return Err(CheckpointError::KeyGroupsChanged {
                    step: step.to_owned(),
                    stored: stored.key_groups,
                    now: meta.key_groups,
                });
            }
            if stored.states != meta.states {
                return Err(CheckpointError::StatesChanged {
                    step: step.to_owned(),
                    stored: format!("{:?}", stored.states),
                    now: format!("{:?}", meta.states),
                });
            }
        } else {
            self.extra.put(layout::catalog_key(step), encode(&meta)?);
        }
        self.keys.entry(step.to_owned()).or_insert(0);
        self.registered.insert(step.to_owned(), meta);
        Ok(layout::step_hash(step))
    }

    /// After every step registered: a step in the checkpoint that the job
    /// no longer has is an error.
    pub fn check_steps(&self) -> Result<(), CheckpointError> {
        let Some(epoch) = self.resume else {
            return Ok(());
        };
        for (step, meta) in &self.catalog {
            if !self.registered.contains_key(step) {
                return Err(CheckpointError::MissingStep {
                    step: step.clone(),
                    kind: meta.kind.clone(),
                    epoch,
                });
            }
        }
        Ok(())
    }

    /// The newest stored version of `entry`: its epoch and value (`None`
    /// for a deletion). Versions at fenced epochs are skipped.
    #[allow(clippy::type_complexity)]
    pub fn load(&self, entry: &[u8]) -> Result<Option<(u64, Option<Vec<u8>>)>, StoreError> {
        let mut from = entry.to_vec();
        loop {
            let found = self.store.scan(entry, &from, 4)?;
            let last = found.len() < 4;
            for (key, value) in &found {
                if key.len() != entry.len() + 8 {
                    return Ok(None);
                }
                let epoch = layout::version_epoch(key).unwrap_or(0);
                if is_fenced(&self.fenced, epoch) {
                    continue;
                }
                let value = layout::parse_version(self.store.kind(), value)?;
                return Ok(Some((epoch, value.map(<[u8]>::to_vec))));
            }
            match found.last() {
                Some((key, _)) if !last => {
                    from.clone_from(key);
                    from.push(0);
                }
                _ => return Ok(None),
            }
        }
    }

    /// Every live entry under `prefix` from `from` on, and before `end`
    /// (if given), with its newest version, in key order. Entries whose
    /// newest version is a deletion are left out.
    pub fn scan(
        &self,
        prefix: &[u8],
        from: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Vec<Found>, StoreError> {
        let mut out: Vec<Found> = Vec::new();
        let hidden = |epoch| is_fenced(&self.fenced, epoch);
        visible(&*self.store, (prefix, from, end), hidden, |key, value| {
            let (entry, epoch) = key.split_at(key.len() - 8);
            let epoch = layout::version_epoch(epoch).unwrap_or(0);
            out.push((entry.to_vec(), epoch, value.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    /// Where the versions of `epoch` are staged.
    pub fn staging(&mut self, epoch: u64) -> &mut Staged {
        self.staged.entry(epoch).or_default()
    }

    /// Adjusts the live-key count of `step` (reported per checkpoint).
    pub fn add_keys(&mut self, step: &str, delta: i64) {
        let count = self.keys.entry(step.to_owned()).or_insert(0);
        *count = count.saturating_add_signed(delta);
    }

    /// Writes everything staged for epochs up to `through`, with the
    /// "prepared `through`" marker, as one synced atomic batch.
    pub fn prepare(&mut self, through: u64) -> Result<PrepareStats, CheckpointError> {
        let (write, pending) = self.begin_prepare(through)?;
        self.store.write(write.batch)?;
        Ok(self.finish_prepare(pending))
    }

    /// The first half of [`Checkpointer::prepare`]: takes everything staged
    /// up to `through` into one batch, to write on any thread; call
    /// [`Checkpointer::finish_prepare`] once it is durable.
    pub fn begin_prepare(
        &mut self,
        through: u64,
    ) -> Result<(CheckpointWrite, PendingPrepare), CheckpointError> {
        let later = self.staged.split_off(&(through + 1));
        let ready = std::mem::replace(&mut self.staged, later);
        let mut batch = std::mem::take(&mut self.extra);
        let mut versions = 0;
        let mut tombstones = Vec::with_capacity(ready.len());
        for (epoch, staged) in ready {
            versions += staged.batch.len() as u64;
            batch.append(staged.batch);
            tombstones.push((epoch, staged.tombstones));
        }
        let bytes = batch.bytes() as u64;
        let info = CheckpointInfo {
            time_ms: now_ms(),
            bytes,
            keys: self.keys.clone(),
        };
        batch.put(layout::info_key(through, self.worker), encode(&info)?);
        batch.put(layout::prepared_key(self.worker), through.to_be_bytes());
        let stats = PrepareStats {
            epoch: through,
            bytes,
            versions,
        };
        Ok((
            CheckpointWrite { batch },
            PendingPrepare { stats, tombstones },
        ))
    }

    /// The second half of [`Checkpointer::prepare`], once the batch from
    /// [`Checkpointer::begin_prepare`] is durable.
    pub fn finish_prepare(&mut self, pending: PendingPrepare) -> PrepareStats {
        for (epoch, entries) in pending.tombstones {
            self.pending.entry(epoch).or_default().extend(entries);
        }
        let through = pending.stats.epoch;
        self.prepared = Some(through);
        if self.info_epochs.back() != Some(&through) {
            self.info_epochs.push_back(through);
        }
        pending.stats
    }

    /// Checkpoint `epoch` is complete (every worker prepared it): versions
    /// replaced up to it become garbage, for the store to drop as it
    /// compacts; entries deleted up to it are removed with the next batch
    /// (or by [`Checkpointer::flush_garbage`]).
    pub fn complete(&mut self, epoch: u64) {
        self.store.versions().advance(epoch);
        let later = self.pending.split_off(&(epoch + 1));
        for (e, entries) in std::mem::replace(&mut self.pending, later) {
            for entry in entries {
                layout::delete_versions_through(&mut self.extra, &entry, e);
            }
        }
        while self.info_epochs.len() > INFO_KEPT {
            if let Some(old) = self.info_epochs.pop_front() {
                self.extra.delete(layout::info_key(old, self.worker));
            }
        }
    }

    /// Writes pending garbage deletions (and other pending changes) now.
    /// Left unwritten, deleted entries keep their last versions (which
    /// read as absent) until they are written again.
    pub fn flush_garbage(&mut self) -> Result<(), CheckpointError> {
        let batch = std::mem::take(&mut self.extra);
        if !batch.is_empty() {
            self.store.write(batch)?;
        }
        Ok(())
    }

    /// The store behind this checkpointer.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }
}

/// Calls `f` with the version key and the value of the newest version of
/// each entry under `prefix`, from `from` on and before `end` (if given),
/// in key order, leaving out the versions `hidden` says to and the entries
/// whose newest version is a deletion.
pub fn visible(
    store: &dyn KvStore,
    (prefix, from, end): (&[u8], &[u8], Option<&[u8]>),
    hidden: impl Fn(u64) -> bool,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut at = if from > prefix { from } else { prefix }.to_vec();
    // The entry whose newest version was seen: older ones are skipped.
    let mut seen: Option<Vec<u8>> = None;
    loop {
        let chunk = store.scan(prefix, &at, SCAN_CHUNK)?;
        for (key, value) in &chunk {
            let Some(epoch) = layout::version_epoch(key) else {
                continue;
            };
            let entry = &key[..key.len() - 8];
            if end.is_some_and(|e| entry >= e) {
                return Ok(());
            }
            if seen.as_deref() == Some(entry) || hidden(epoch) {
                continue;
            }
            seen = Some(entry.to_vec());
            if let Some(v) = layout::parse_version(store.kind(), value)? {
                f(key, v)?;
            }
        }
        match chunk.last() {
            Some((key, _)) if chunk.len() == SCAN_CHUNK => {
                at.clone_from(key);
                at.push(0);
            }
            _ => return Ok(()),
        }
    }
}
