//! Where everything lives in a store: one byte of tag, then big-endian
//! fields so that byte order is numeric order.
//!
//! | tag | key                                             | value                      |
//! |-----|-------------------------------------------------|----------------------------|
//! | `m` |                                                 | [`JobMeta`]                |
//! | `c` | step name                                       | [`StepMeta`]               |
//! | `v` | step hash, key group, key length, key, !epoch   | 0 (deleted) or 1 + value   |
//! | `p` | worker                                          | last prepared epoch        |
//! | `u` | worker, epoch                                   | an [`UndoLog`]             |
//! | `i` | epoch, worker                                   | [`CheckpointInfo`]         |
//!
//! Versions of one key sort newest first (the epoch is stored inverted), so
//! the newest version is the first entry under the key's prefix.

use serde::{Deserialize, Serialize};

use crate::store::StoreError;
use std::collections::BTreeMap;

/// Facts about the job that wrote a store, fixed when the state is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMeta {
    /// Workers in the whole job (all processes).
    pub workers: u32,
    /// Processes in the job.
    pub processes: u32,
}

/// Facts about one stateful step, checked when a job resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMeta {
    /// What kind of step keeps the state (`sum`, `kafka-source`, ...).
    pub kind: String,
    /// The step's key-group count.
    pub key_groups: u32,
}

/// What one worker wrote for one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// When the batch was written, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Key and value bytes in the batch.
    pub bytes: u64,
    /// Live keys per step on this worker after the checkpoint.
    pub keys: BTreeMap<String, u64>,
}

/// One record of an [`UndoLog`]: how to undo (at resume) or
/// garbage-collect (at completion) one version written in an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undo<'a> {
    /// The key's version prefix (everything but the epoch).
    pub prefix: &'a [u8],
    /// The epoch of the version it replaced, if any.
    pub previous: Option<u64>,
    /// True when the version is a deletion.
    pub deleted: bool,
}

const HAS_PREVIOUS: u8 = 1;
const DELETED: u8 = 2;

/// The [`Undo`] records of the versions one worker wrote in one epoch,
/// laid end to end in one buffer (also the stored form): per record the
/// prefix length (u32, big-endian), the prefix, a flags byte (1: replaced
/// a version, 2: a deletion) and, if it replaced one, that version's epoch
/// (u64, big-endian).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoLog {
    bytes: Vec<u8>,
    records: usize,
}

impl UndoLog {
    /// A log read back from the store.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        UndoLog { bytes, records: 0 }
    }

    /// The stored form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Records pushed since the log was created (0 for a log read back).
    pub fn pushed(&self) -> usize {
        self.records
    }

    /// Adds a record whose prefix `prefix` appends to the buffer.
    pub fn push_with(
        &mut self,
        prefix: impl FnOnce(&mut Vec<u8>),
        previous: Option<u64>,
        deleted: bool,
    ) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        prefix(&mut self.bytes);
        let len = (self.bytes.len() - at - 4) as u32;
        self.bytes[at..at + 4].copy_from_slice(&len.to_be_bytes());
        let mut flags = 0;
        if previous.is_some() {
            flags |= HAS_PREVIOUS;
        }
        if deleted {
            flags |= DELETED;
        }
        self.bytes.push(flags);
        if let Some(p) = previous {
            self.bytes.extend_from_slice(&p.to_be_bytes());
        }
        self.records += 1;
    }

    /// Appends the records of `other`.
    pub fn append(&mut self, other: UndoLog) {
        if self.bytes.is_empty() {
            *self = other;
            return;
        }
        self.bytes.extend_from_slice(&other.bytes);
        self.records += other.records;
    }

    /// The records in order; a malformed log ends with an error.
    pub fn iter(&self) -> impl Iterator<Item = Result<Undo<'_>, StoreError>> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= self.bytes.len() {
                return None;
            }
            let record = parse_undo(&self.bytes, at);
            match record {
                Some((undo, next)) => {
                    at = next;
                    Some(Ok(undo))
                }
                None => {
                    at = self.bytes.len();
                    Some(Err(StoreError::Codec("a malformed undo log".into())))
                }
            }
        })
    }
}

fn parse_undo(bytes: &[u8], at: usize) -> Option<(Undo<'_>, usize)> {
    let len = be_u32(bytes, at)? as usize;
    let prefix = bytes.get(at + 4..at + 4 + len)?;
    let mut next = at + 4 + len;
    let flags = *bytes.get(next)?;
    next += 1;
    let previous = if flags & HAS_PREVIOUS != 0 {
        next += 8;
        Some(be_u64(bytes, next - 8)?)
    } else {
        None
    };
    let undo = Undo {
        prefix,
        previous,
        deleted: flags & DELETED != 0,
    };
    Some((undo, next))
}

pub(crate) const META: &[u8] = b"m";
pub(crate) const CATALOG: u8 = b'c';
pub(crate) const VERSION: u8 = b'v';
pub(crate) const PREPARED: u8 = b'p';
pub(crate) const UNDO: u8 = b'u';
pub(crate) const INFO: u8 = b'i';

/// The stable id of a step in keys: a hash of its name.
pub(crate) fn step_hash(name: &str) -> u64 {
    crate::stable_hash(name)
}

pub(crate) fn catalog_key(step: &str) -> Vec<u8> {
    let mut k = vec![CATALOG];
    k.extend_from_slice(step.as_bytes());
    k
}

/// The prefix of every version of `key` (already encoded) of a step.
pub(crate) fn version_prefix(step: u64, group: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(17 + key.len() + 8);
    write_version_prefix(&mut k, step, group, key);
    k
}

/// Appends the version prefix of `key` (already encoded) to `out`.
pub(crate) fn write_version_prefix(out: &mut Vec<u8>, step: u64, group: u32, key: &[u8]) {
    out.push(VERSION);
    out.extend_from_slice(&step.to_be_bytes());
    out.extend_from_slice(&group.to_be_bytes());
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
}

/// Appends the version key of `prefix` at `epoch` to `out`.
pub(crate) fn write_version_key(out: &mut Vec<u8>, prefix: &[u8], epoch: u64) {
    out.extend_from_slice(prefix);
    out.extend_from_slice(&(!epoch).to_be_bytes());
}

/// The epoch of a version key.
pub(crate) fn version_epoch(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(!u64::from_be_bytes(tail))
}

pub(crate) fn prepared_key(worker: u32) -> Vec<u8> {
    let mut k = vec![PREPARED];
    k.extend_from_slice(&worker.to_be_bytes());
    k
}

pub(crate) fn undo_prefix(worker: u32) -> Vec<u8> {
    let mut k = vec![UNDO];
    k.extend_from_slice(&worker.to_be_bytes());
    k
}

pub(crate) fn undo_key(worker: u32, epoch: u64) -> Vec<u8> {
    let mut k = undo_prefix(worker);
    k.extend_from_slice(&epoch.to_be_bytes());
    k
}

pub(crate) fn info_key(epoch: u64, worker: u32) -> Vec<u8> {
    let mut k = vec![INFO];
    k.extend_from_slice(&epoch.to_be_bytes());
    k.extend_from_slice(&worker.to_be_bytes());
    k
}

/// Reads a big-endian u64 at `at`.
pub(crate) fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Reads a big-endian u32 at `at`.
pub(crate) fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Appends a stored version's value to `out`: `None` for a deletion.
pub(crate) fn write_version(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undo_log_reads_back_what_was_pushed() {
        let mut log = UndoLog::default();
        log.push_with(|p| p.extend_from_slice(b"first"), None, false);
        log.push_with(|p| p.extend_from_slice(b""), Some(7), true);
        log.push_with(|p| p.extend_from_slice(b"third"), Some(u64::MAX), false);
        let mut other = UndoLog::default();
        other.push_with(|p| p.extend_from_slice(b"fourth"), None, true);
        log.append(other);
        assert_eq!(log.pushed(), 4);
        let stored = UndoLog::from_bytes(log.as_bytes().to_vec());
        let back: Vec<Undo<'_>> = stored.iter().map(Result::unwrap).collect();
        let expect = [
            (&b"first"[..], None, false),
            (&b""[..], Some(7), true),
            (&b"third"[..], Some(u64::MAX), false),
            (&b"fourth"[..], None, true),
        ];
        assert_eq!(back.len(), expect.len());
        for (u, (prefix, previous, deleted)) in back.iter().zip(expect) {
            assert_eq!(
                (u.prefix, u.previous, u.deleted),
                (prefix, previous, deleted)
            );
        }
    }

    #[test]
    fn a_truncated_undo_log_is_an_error_not_a_short_list() {
        let mut log = UndoLog::default();
        log.push_with(|p| p.extend_from_slice(b"prefix"), Some(3), false);
        let bytes = log.as_bytes();
        let cut = UndoLog::from_bytes(bytes[..bytes.len() - 2].to_vec());
        let read: Vec<_> = cut.iter().collect();
        assert_eq!(read.len(), 1);
        assert!(read[0].is_err());
    }
}
