//! The exactly-once sink's state in the checkpoint: the write-ahead buffer
//! (each epoch's output, as chunks of encoded records, a list per writer)
//! and the writer's "published" mark (the last epoch it published, and
//! where its output partitions ended then).

use std::collections::BTreeMap;

use rill_connectors::kafka::ScanFrom;
use rill_state::checkpoint;
use rill_state::codec::{decode, encode};
use rill_state::{layout, CheckpointError, Checkpointer, KvStore, StateKind, StepMeta, StoreError};
use serde::{Deserialize, Serialize};

/// The records in one buffered chunk, at most.
const CHUNK_RECORDS: usize = 8192;

/// The step kind of an exactly-once sink in the catalog.
pub(crate) const KIND: &str = "kafka-sink-exactly-once";

/// The step's states, as the catalog records them.
pub(super) fn meta() -> StepMeta {
    StepMeta {
        kind: KIND.into(),
        key_groups: 1,
        states: vec![
            ("buffer".into(), StateKind::List),
            ("published".into(), StateKind::Value),
        ],
    }
}

/// The first epoch whose output a writer of the exactly-once sink step
/// `step` (its id) had buffered in `store` as of checkpoint `resume` but
/// not published by then, as `(writer, epoch)`: a job must not be
/// rescaled while it has one (its writers' identities change).
pub(crate) fn unpublished(
    store: &dyn KvStore,
    step: u64,
    resume: u64,
) -> Result<Option<(u32, u64)>, CheckpointError> {
    let be = |key: &[u8], at: usize, n: usize| -> Option<u64> {
        let bytes = key.get(layout::ENTRY_HEAD + at..layout::ENTRY_HEAD + at + n)?;
        Some(bytes.iter().fold(0u64, |v, b| v << 8 | u64::from(*b)))
    };
    let head = |state: u8| {
        let mut h = Vec::new();
        layout::write_head(&mut h, step, state, 0);
        h
    };
    let mut published: BTreeMap<u64, Option<u64>> = BTreeMap::new();
    checkpoint::visible_at(store, &head(1), resume, |key, value| {
        let mark: Mark = decode(value)?;
        published.extend(be(key, 4, 4).map(|w| (w, mark.published)));
        Ok(())
    })?;
    let mut first = None;
    checkpoint::visible_at(store, &head(0), resume, |key, _| {
        if let (Some(w), Some(epoch)) = (be(key, 4, 4), be(key, 8, 8)) {
            let done = published.get(&w).copied().flatten();
            if first.is_none() && done.is_none_or(|p| epoch > p) {
                first = Some((w as u32, epoch));
            }
        }
        Ok(())
    })?;
    Ok(first)
}

/// One output record, encoded, with the partition it goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Rec {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub timestamp: Option<i64>,
}

/// What a writer has published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Mark {
    /// The last epoch whose output is all acknowledged (`None`: none yet).
    pub published: Option<u64>,
    /// The output topic's partition count when the state was created.
    pub partitions: i32,
    /// Per partition: the offset after the writer's last acknowledged
    /// record, and whether that record is the writer's own (else the
    /// partition's end when the job first started).
    pub ends: BTreeMap<i32, (i64, bool)>,
}

impl Mark {
    /// Where a scan for what landed after this mark starts.
    pub fn scan_from(&self) -> BTreeMap<i32, ScanFrom> {
        self.ends
            .iter()
            .map(|(&p, &(offset, own))| (p, ScanFrom { offset, own }))
            .collect()
    }
}

/// One writer's entries of the step `step` (its id in the checkpoint).
#[derive(Clone, Copy)]
pub(super) struct Layout {
    pub step: u64,
    pub writer: u32,
}

impl Layout {
    fn buffer_prefix(&self) -> Vec<u8> {
        layout::entry_prefix(self.step, 0, 0, &self.writer.to_be_bytes())
    }

    fn chunk_entry(&self, epoch: u64, chunk: u32) -> Vec<u8> {
        let mut e = self.buffer_prefix();
        e.extend_from_slice(&epoch.to_be_bytes());
        e.extend_from_slice(&chunk.to_be_bytes());
        e
    }

    fn mark_entry(&self) -> Vec<u8> {
        layout::entry_prefix(self.step, 1, 0, &self.writer.to_be_bytes())
    }

    /// The writer's mark in the checkpoint resumed from, if any.
    pub fn load_mark(&self, c: &Checkpointer) -> Result<Option<Mark>, StoreError> {
        match c.load(&self.mark_entry())? {
            Some((_, Some(bytes))) => Ok(Some(decode(&bytes)?)),
            _ => Ok(None),
        }
    }

    /// Every buffered epoch in the checkpoint resumed from: its records in
    /// sequence order, and its chunk count.
    pub fn load_buffers(
        &self,
        c: &Checkpointer,
    ) -> Result<BTreeMap<u64, (Vec<Rec>, u32)>, StoreError> {
        let prefix = self.buffer_prefix();
        let mut out: BTreeMap<u64, (Vec<Rec>, u32)> = BTreeMap::new();
        for (entry, _, value) in c.scan(&prefix, &prefix, None)? {
            let at = prefix.len();
            let Some(epoch) = entry.get(at..at + 8).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            let epoch = u64::from_be_bytes(epoch);
            let chunk: Vec<Rec> = decode(&value)?;
            let (records, chunks) = out.entry(epoch).or_default();
            records.extend(chunk);
            *chunks += 1;
        }
        Ok(out)
    }

    /// Stages `records` as epoch `epoch`'s buffer; returns the chunk count.
    pub fn stage_buffer(
        &self,
        c: &mut Checkpointer,
        epoch: u64,
        records: &[Rec],
    ) -> Result<u32, StoreError> {
        let mut chunks = 0u32;
        for chunk in records.chunks(CHUNK_RECORDS) {
            let bytes = encode(chunk)?;
            layout::check_sizes(0, bytes.len())?;
            let entry = self.chunk_entry(epoch, chunks);
            c.staging(epoch).version(epoch, &entry, Some(&bytes));
            chunks += 1;
        }
        Ok(chunks)
    }

    /// Stages, in epoch `at`, the mark and the removal of the buffers of
    /// the epochs it now covers (`dropped`: epoch and chunk count).
    pub fn stage_mark(
        &self,
        c: &mut Checkpointer,
        at: u64,
        mark: &Mark,
        dropped: &[(u64, u32)],
    ) -> Result<(), StoreError> {
        let bytes = encode(mark)?;
        let staging = c.staging(at);
        staging.version(at, &self.mark_entry(), Some(&bytes));
        for &(epoch, chunks) in dropped {
            for chunk in 0..chunks {
                staging.version(at, &self.chunk_entry(epoch, chunk), None);
            }
        }
        Ok(())
    }
}
