//! [`Checkpointer`]: one worker's side of the checkpoint protocol.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::layout::{self, CheckpointInfo, JobMeta, StepMeta, UndoLog};
use super::staging::Staging;
use super::write::{collect_garbage, CheckpointWrite, PendingPrepare, PrepareStats};
use super::CheckpointError;
use crate::codec::{decode, encode};
use crate::store::{Batch, KvStore, StoreError};

/// How many checkpoint records each worker keeps for `rill checkpoints`.
const INFO_KEPT: usize = 10;

/// One worker's checkpoint state: what its steps staged, what it has
/// prepared, and what is garbage once a checkpoint completes.
pub struct Checkpointer {
    store: Arc<dyn KvStore>,
    worker: u32,
    resume: Option<u64>,
    catalog: BTreeMap<String, StepMeta>,
    registered: BTreeMap<String, StepMeta>,
    /// Per epoch, the versions staged and the deletions among them.
    staged: BTreeMap<u64, (Batch, UndoLog)>,
    pending_undo: BTreeMap<u64, UndoLog>,
    /// Catalog entries and deletions of old records, for the next batch:
    /// they never touch a key staged for an epoch not yet prepared.
    extra: Batch,
    /// Undo logs of completed epochs: their replaced versions are deleted
    /// with the next batch.
    garbage: Vec<(u64, UndoLog)>,
    prepared: Option<u64>,
    keys: BTreeMap<String, u64>,
    info_epochs: VecDeque<u64>,
}

/// The last epoch each of `workers` prepared in `store`, reduced to the
/// resume epoch of this process (see [`super::resume_epoch`]).
pub fn local_resume_epoch(
    store: &dyn KvStore,
    workers: impl IntoIterator<Item = u32>,
) -> Result<Option<u64>, StoreError> {
    let mut prepared = Vec::new();
    for w in workers {
        prepared.push(read_prepared(store, w)?);
    }
    Ok(super::resume_epoch(prepared))
}

fn read_prepared(store: &dyn KvStore, worker: u32) -> Result<Option<u64>, StoreError> {
    match store.get(&layout::prepared_key(worker))? {
        Some(bytes) => layout::be_u64(&bytes, 0)
            .map(Some)
            .ok_or_else(|| StoreError::Codec(format!("prepared marker of worker {worker}"))),
        None => Ok(None),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Fences the epochs a resume at `resume` discards from `worker`'s
/// versions (it last prepared `prepared`), and loads every fence into the
/// store's garbage rule, whose horizon starts at the resume epoch.
fn fence(
    store: &dyn KvStore,
    worker: u32,
    resume: Option<u64>,
    batch: &mut Batch,
) -> Result<(), StoreError> {
    let gc = store.versions();
    let prepared = read_prepared(store, worker)?;
    if let Some(p) = prepared.filter(|&p| resume.is_none_or(|r| p > r)) {
        let from = resume.map_or(0, |r| r + 1);
        gc.distrust(from, p);
        batch.put(layout::fence_key(from, p), []);
    }
    for (key, _) in store.scan(&[layout::FENCE], &[], usize::MAX)? {
        match (layout::be_u64(&key, 1), layout::be_u64(&key, 9)) {
            (Some(from), Some(to)) => gc.distrust(from, to),
            _ => return Err(StoreError::Codec("a malformed fence".into())),
        }
    }
    if let Some(r) = resume {
        gc.advance(r);
    }
    Ok(())
}

impl Checkpointer {
    /// Opens worker `worker`'s side at `resume` (from [`super::resume_epoch`]
    /// agreed by every worker of the job): versions this worker wrote above
    /// `resume` are discarded, garbage up to `resume` is collected, and the
    /// catalog and per-step key counts are loaded. One atomic batch.
    pub fn open(
        store: Arc<dyn KvStore>,
        worker: u32,
        resume: Option<u64>,
    ) -> Result<Self, CheckpointError> {
        let mut batch = Batch::new();
        fence(store.as_ref(), worker, resume, &mut batch)?;
        let mut prefix = Vec::new();
        for (key, value) in store.scan(&layout::undo_prefix(worker), &[], usize::MAX)? {
            let epoch =
                layout::be_u64(&key, 5).ok_or_else(|| StoreError::Codec("undo key".into()))?;
            let undo = UndoLog::from_bytes(value);
            match resume {
                Some(r) if epoch <= r => collect_garbage(epoch, &undo, &mut batch)?,
                _ => {
                    for u in undo.iter() {
                        let u = u?;
                        prefix.clear();
                        u.write_prefix(&mut prefix);
                        batch.delete_with(|k| layout::write_version_key(k, &prefix, epoch));
                    }
                }
            }
            batch.delete(key);
        }
        let mut info_epochs = VecDeque::new();
        let mut keys = BTreeMap::new();
        for (key, value) in store.scan(&[layout::INFO], &[], usize::MAX)? {
            let (Some(epoch), Some(w)) = (layout::be_u64(&key, 1), layout::be_u32(&key, 9)) else {
                continue;
            };
            if w != worker {
                continue;
            }
            if resume.is_some_and(|r| epoch <= r) {
                // Ascending order: the last record at or below the resume
                // epoch holds the key counts to resume with.
                info_epochs.push_back(epoch);
                let info: CheckpointInfo = decode(&value)?;
                keys = info.keys;
            } else {
                batch.delete(key);
            }
        }
        match resume {
            Some(r) => batch.put(layout::prepared_key(worker), r.to_be_bytes()),
            // A fresh start: only a marker left by an earlier run needs
            // removing (on a new store there is nothing to write).
            None => {
                if read_prepared(store.as_ref(), worker)?.is_some() {
                    batch.delete(layout::prepared_key(worker));
                }
            }
        }
        let mut catalog = BTreeMap::new();
        if resume.is_some() {
            for (key, value) in store.scan(&[layout::CATALOG], &[], usize::MAX)? {
                let name = String::from_utf8_lossy(&key[1..]).into_owned();
                catalog.insert(name, decode::<StepMeta>(&value)?);
            }
        }
        store.write(batch)?;
        Ok(Checkpointer {
            catalog,
            keys,
            info_epochs,
            ..Checkpointer::empty(store, worker, resume)
        })
    }

    /// Opens worker `worker`'s side of a store created for this job and
    /// still empty ([`crate::store::FreshStore`]). It reads nothing and
    /// writes nothing: the job's shape (`meta`, see
    /// [`super::check_job_meta`]) is written with this worker's first
    /// checkpoint, so a store holding a prepared checkpoint always says
    /// which shape wrote it.
    pub fn create(
        store: Arc<dyn KvStore>,
        worker: u32,
        meta: &JobMeta,
    ) -> Result<Self, CheckpointError> {
        let mut created = Checkpointer::empty(store, worker, None);
        created.extra.put(layout::META, encode(meta)?);
        Ok(created)
    }

    fn empty(store: Arc<dyn KvStore>, worker: u32, resume: Option<u64>) -> Self {
        Checkpointer {
            store,
            worker,
            resume,
            catalog: BTreeMap::new(),
            registered: BTreeMap::new(),
            staged: BTreeMap::new(),
            pending_undo: BTreeMap::new(),
            extra: Batch::new(),
            garbage: Vec::new(),
            prepared: resume,
            keys: BTreeMap::new(),
            info_epochs: VecDeque::new(),
        }
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

    /// Registers a stateful step and returns the id its keys are stored
    /// under. Resuming, the step must exist in the checkpoint with the same
    /// kind and key-group count.
    pub fn register(&mut self, step: &str, meta: StepMeta) -> Result<u64, CheckpointError> {
        if let Some(r) = self.resume {
            match self.catalog.get(step) {
                None => {
                    return Err(CheckpointError::NewStep {
                        step: step.to_owned(),
                        epoch: r,
                        known: self.catalog.keys().cloned().collect::<Vec<_>>().join(", "),
                    })
                }
                Some(stored) if stored.kind != meta.kind => {
                    return Err(CheckpointError::KindChanged {
                        step: step.to_owned(),
                        stored: stored.kind.clone(),
                        now: meta.kind,
                    })
                }
                Some(stored) if stored.key_groups != meta.key_groups => {
                    return Err(CheckpointError::KeyGroupsChanged {
                        step: step.to_owned(),
                        stored: stored.key_groups,
                        now: meta.key_groups,
                    })
                }
                Some(_) => {}
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

    /// The newest stored version under `prefix` (a key's version prefix):
    /// its epoch and value (`None` for a deletion).
    #[allow(clippy::type_complexity)]
    pub fn load(&self, prefix: &[u8]) -> Result<Option<(u64, Option<Vec<u8>>)>, StoreError> {
        let found = self.store.scan(prefix, prefix, 1)?;
        let Some((key, mut value)) = found.into_iter().next() else {
            return Ok(None);
        };
        if key.len() != prefix.len() + 8 {
            return Ok(None);
        }
        let epoch = layout::version_epoch(&key).unwrap_or(0);
        match value.first() {
            Some(1) => {
                value.remove(0);
                Ok(Some((epoch, Some(value))))
            }
            Some(0) => Ok(Some((epoch, None))),
            _ => Err(StoreError::Corrupted {
                location: self.store.kind().into(),
                detail: "a state version has an unknown tag".into(),
            }),
        }
    }

    /// Stages a version of `key` (already encoded) of step `step` (the id
    /// [`Checkpointer::register`] returned) in key group `group` at
    /// `epoch`: `value` is the encoded state, `None` a deletion. To stage
    /// many versions of one epoch, take its [`Staging`] once instead.
    pub fn stage_version(
        &mut self,
        epoch: u64,
        step_group: (u64, u32),
        key: &[u8],
        value: Option<&[u8]>,
    ) {
        self.staging(epoch).version(step_group, key, value);
    }

    /// Where the versions of `epoch` are staged: one lookup of the epoch
    /// for all of them.
    pub fn staging(&mut self, epoch: u64) -> Staging<'_> {
        let (batch, deletions) = self.staged.entry(epoch).or_default();
        Staging {
            epoch,
            batch,
            deletions,
        }
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
        self.store.write(write.into_batch()?)?;
        Ok(self.finish_prepare(pending))
    }

    /// The first half of [`Checkpointer::prepare`]: takes everything staged
    /// up to `through` into the write (to finish on any thread with
    /// [`CheckpointWrite::into_batch`]); call
    /// [`Checkpointer::finish_prepare`] once it is written.
    pub fn begin_prepare(
        &mut self,
        through: u64,
    ) -> Result<(CheckpointWrite, PendingPrepare), CheckpointError> {
        let later = self.staged.split_off(&(through + 1));
        let ready = std::mem::replace(&mut self.staged, later);
        let mut staged_versions = Batch::new();
        let mut versions = 0;
        // The worker keeps the deletions, to collect once the epoch is
        // complete; the write may need them too.
        let mut deletion_lists = Vec::with_capacity(ready.len());
        for (epoch, (staged, deletions)) in ready {
            versions += staged.len() as u64;
            staged_versions.append(staged);
            deletion_lists.push((epoch, deletions));
        }
        let mut batch = std::mem::take(&mut self.extra);
        let bytes = (staged_versions.bytes() + batch.bytes()) as u64;
        let info = CheckpointInfo {
            time_ms: now_ms(),
            bytes,
            keys: self.keys.clone(),
        };
        batch.put(layout::info_key(through, self.worker), encode(&info)?);
        batch.put(layout::prepared_key(self.worker), through.to_be_bytes());
        let pending = PendingPrepare {
            stats: PrepareStats {
                epoch: through,
                bytes,
                versions,
            },
            undo: deletion_lists.clone(),
        };
        let write = CheckpointWrite {
            versions: staged_versions,
            batch,
            garbage: std::mem::take(&mut self.garbage),
            deletions: deletion_lists,
            worker: self.worker,
            through: Some(through),
            completes: false,
        };
        Ok((write, pending))
    }

    /// The second half of [`Checkpointer::prepare`], once the batch from
    /// [`Checkpointer::begin_prepare`] is durable.
    pub fn finish_prepare(&mut self, pending: PendingPrepare) -> PrepareStats {
        for (epoch, undo) in pending.undo {
            self.pending_undo.entry(epoch).or_default().append(undo);
        }
        let through = pending.stats.epoch;
        self.prepared = Some(through);
        if self.info_epochs.back() != Some(&through) {
            self.info_epochs.push_back(through);
        }
        pending.stats
    }

    /// Checkpoint `epoch` is complete (every worker prepared it): the
    /// versions replaced up to it become garbage, for the store to drop
    /// as it compacts; keys deleted up to it are deleted with the next
    /// batch (or by [`Checkpointer::flush_garbage`]).
    pub fn complete(&mut self, epoch: u64) {
        self.store.versions().advance(epoch);
        let later = self.pending_undo.split_off(&(epoch + 1));
        let done = std::mem::replace(&mut self.pending_undo, later);
        for (e, undo) in done {
            self.extra.delete(layout::undo_key(self.worker, e));
            self.garbage.push((e, undo));
        }
        while self.info_epochs.len() > INFO_KEPT {
            if let Some(old) = self.info_epochs.pop_front() {
                self.extra.delete(layout::info_key(old, self.worker));
            }
        }
    }

    /// Writes pending garbage deletions (and other pending changes) now.
    /// Left unwritten, they are collected when the store is next opened.
    pub fn flush_garbage(&mut self) -> Result<(), CheckpointError> {
        let write = CheckpointWrite {
            batch: std::mem::take(&mut self.extra),
            garbage: std::mem::take(&mut self.garbage),
            worker: self.worker,
            ..CheckpointWrite::default()
        };
        if !write.is_empty() {
            self.store.write(write.into_batch()?)?;
        }
        Ok(())
    }

    /// The store behind this checkpointer.
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }
}
