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
//! | `f` | first epoch, last epoch                          | (empty)                    |
//!
//! An `f` record fences epochs whose versions a resume discarded (see
//! [`crate::store::VersionGc::distrust`]).
//!
//! Versions of one key sort newest first (the epoch is stored inverted), so
//! the newest version is the first entry under the key's prefix.

use serde::{Deserialize, Serialize};

use crate::store::{Batch, Op, StoreError};
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

/// One record of an [`UndoLog`]: a version written in an epoch, to undo
/// at resume if its checkpoint never completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undo<'a> {
    /// The step's id (see [`crate::Checkpointer::register`]).
    pub step: u64,
    /// The key's group.
    pub group: u32,
    /// The key, encoded.
    pub key: &'a [u8],
    /// True when the version is a deletion (at completion it and every
    /// older version of the key are removed).
    pub deleted: bool,
}

impl Undo<'_> {
    /// Appends the key's version prefix (everything but the epoch) to `out`.
    pub fn write_prefix(&self, out: &mut Vec<u8>) {
        write_version_prefix(out, self.step, self.group, self.key);
    }
}

const DELETED: u8 = 1;
const NEW_STEP: u8 = 2;

/// The [`Undo`] records of the versions one worker wrote in one epoch,
/// laid end to end in one buffer (also the stored form). Per record: a
/// flags byte (1: a deletion; 2: a step id follows), the step id (u64,
/// big-endian) when it differs from the record before, the key group
/// (u32, big-endian), the key's length (u32, big-endian) and the key.
/// A step stages its keys together, so the step id is written about once
/// per step and a record of a `u64` key takes 17 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoLog {
    bytes: Vec<u8>,
    records: usize,
    /// Deletions among the records pushed.
    deletions: usize,
    /// The step of the last record pushed.
    step: Option<u64>,
}

impl UndoLog {
    /// A log read back from the store.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        UndoLog {
            bytes,
            records: 0,
            deletions: 0,
            step: None,
        }
    }

    /// The stored form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Records pushed since the log was created (0 for a log read back).
    pub fn pushed(&self) -> usize {
        self.records
    }

    /// True when the log may hold a deletion: always for a log read back.
    pub fn may_delete(&self) -> bool {
        self.deletions > 0 || (self.records == 0 && !self.bytes.is_empty())
    }

    /// Adds a record.
    pub fn push(&mut self, step: u64, group: u32, key: &[u8], deleted: bool) {
        let new_step = self.step != Some(step);
        let mut flags = 0;
        if deleted {
            flags |= DELETED;
            self.deletions += 1;
        }
        if new_step {
            flags |= NEW_STEP;
        }
        self.bytes.push(flags);
        if new_step {
            self.bytes.extend_from_slice(&step.to_be_bytes());
            self.step = Some(step);
        }
        self.bytes.extend_from_slice(&group.to_be_bytes());
        self.bytes
            .extend_from_slice(&(key.len() as u32).to_be_bytes());
        self.bytes.extend_from_slice(key);
        self.records += 1;
    }

    /// Makes room for `bytes` more bytes of records.
    pub fn reserve(&mut self, bytes: usize) {
        self.bytes.reserve(bytes);
    }

    /// Appends the records of `other`.
    pub fn append(&mut self, other: UndoLog) {
        if self.bytes.is_empty() {
            *self = other;
            return;
        }
        // The first record of `other` names its step: the stored form
        // stays readable from the start.
        self.bytes.extend_from_slice(&other.bytes);
        self.records += other.records;
        self.deletions += other.deletions;
        self.step = other.step;
    }

    /// The records in order; a malformed log ends with an error.
    pub fn iter(&self) -> impl Iterator<Item = Result<Undo<'_>, StoreError>> + '_ {
        let mut at = 0;
        let mut step = None;
        std::iter::from_fn(move || {
            if at >= self.bytes.len() {
                return None;
            }
            match parse_undo(&self.bytes, at, step) {
                Some((undo, next)) => {
                    at = next;
                    step = Some(undo.step);
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

fn parse_undo(bytes: &[u8], at: usize, step: Option<u64>) -> Option<(Undo<'_>, usize)> {
    let flags = *bytes.get(at)?;
    let mut next = at + 1;
    let step = if flags & NEW_STEP != 0 {
        next += 8;
        be_u64(bytes, next - 8)?
    } else {
        step?
    };
    let group = be_u32(bytes, next)?;
    let len = be_u32(bytes, next + 4)? as usize;
    next += 8;
    let key = bytes.get(next..next + len)?;
    let undo = Undo {
        step,
        group,
        key,
        deleted: flags & DELETED != 0,
    };
    Some((undo, next + len))
}

/// The undo logs of a batch of staged versions, one per epoch, in the
/// order the epochs come: each version key read back into its step, key
/// group and key. Anything in the batch but a version is an error.
pub(crate) fn undo_logs_of(versions: &Batch) -> Result<Vec<(u64, UndoLog)>, StoreError> {
    let mut logs: Vec<(u64, UndoLog)> = Vec::new();
    for op in versions.ops() {
        let Op::Put(k, v) = op else {
            return Err(StoreError::Codec("a staged change is not a version".into()));
        };
        let (step, group, key, epoch) =
            parse_version_key(k).ok_or_else(|| StoreError::Codec("a version key".into()))?;
        if logs.last().map(|(e, _)| *e) != Some(epoch) {
            logs.push((epoch, UndoLog::default()));
        }
        if let Some((_, log)) = logs.last_mut() {
            log.push(step, group, key, v.first() == Some(&0));
        }
    }
    Ok(logs)
}

/// A version key's step, key group, key and epoch.
fn parse_version_key(k: &[u8]) -> Option<(u64, u32, &[u8], u64)> {
    if k.first() != Some(&VERSION) {
        return None;
    }
    let step = be_u64(k, 1)?;
    let group = be_u32(k, 9)?;
    let len = be_u32(k, 13)? as usize;
    let key = k.get(VERSION_KEY_HEAD..VERSION_KEY_HEAD.checked_add(len)?)?;
    if k.len() != version_key_len(len) {
        return None;
    }
    Some((step, group, key, version_epoch(k)?))
}

pub(crate) const META: &[u8] = b"m";
pub(crate) const CATALOG: u8 = b'c';
pub(crate) const VERSION: u8 = crate::versions::VERSION_TAG;
pub(crate) const PREPARED: u8 = b'p';
pub(crate) const UNDO: u8 = b'u';
pub(crate) const INFO: u8 = b'i';
pub(crate) const FENCE: u8 = b'f';

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
    let mut k = Vec::with_capacity(version_key_len(key.len()));
    write_version_prefix(&mut k, step, group, key);
    k
}

/// The bytes of a version key before the key: tag, step, group, length.
pub(crate) const VERSION_KEY_HEAD: usize = 1 + 8 + 4 + 4;

/// The length of a version key of an encoded key of `key_len` bytes.
pub(crate) fn version_key_len(key_len: usize) -> usize {
    VERSION_KEY_HEAD + key_len + 8
}

/// The length of an undo record of an encoded key of `key_len` bytes
/// (after the first of its step).
pub(crate) fn undo_record_len(key_len: usize) -> usize {
    1 + 4 + 4 + key_len
}

/// Appends the version prefix of `key` (already encoded) to `out`.
pub(crate) fn write_version_prefix(out: &mut Vec<u8>, step: u64, group: u32, key: &[u8]) {
    // Built on the stack and appended at once: one capacity check, not
    // four (a checkpoint writes this head once per changed key).
    let mut head = [VERSION; VERSION_KEY_HEAD];
    head[1..9].copy_from_slice(&step.to_be_bytes());
    head[9..13].copy_from_slice(&group.to_be_bytes());
    head[13..].copy_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(key);
}

/// Sets the key length in a version key (or prefix) written with
/// [`write_version_prefix`] before its key was known.
pub(crate) fn set_version_key_len(version: &mut [u8], len: usize) {
    version[13..17].copy_from_slice(&(len as u32).to_be_bytes());
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

pub(crate) fn fence_key(from: u64, to: u64) -> Vec<u8> {
    let mut k = vec![FENCE];
    k.extend_from_slice(&from.to_be_bytes());
    k.extend_from_slice(&to.to_be_bytes());
    k
}

/// Appends to `batch` the deletion of every version of `prefix` at or
/// below `epoch`.
pub(crate) fn delete_versions_through(batch: &mut Batch, prefix: &[u8], epoch: u64) {
    batch.delete_range_with(
        |k| write_version_key(k, prefix, epoch),
        |k| {
            // Just past the oldest possible version (epoch 0).
            k.extend_from_slice(prefix);
            k.extend_from_slice(&[0xff; 8]);
            k.push(0);
        },
    );
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
    fn the_undo_logs_of_staged_versions_are_read_off_their_keys() {
        let mut versions = Batch::new();
        let mut expect = [UndoLog::default(), UndoLog::default()];
        for (i, (epoch, step, group, key, value)) in [
            (4u64, 7u64, 1u32, &b"a"[..], Some(&b"x"[..])),
            (4, 7, 2, b"", None),
            (4, 9, 3, b"long key", Some(b"")),
            (5, 9, 3, b"long key", None),
        ]
        .into_iter()
        .enumerate()
        {
            let mut k = version_prefix(step, group, key);
            k.extend_from_slice(&(!epoch).to_be_bytes());
            let mut v = Vec::new();
            write_version(&mut v, value);
            versions.put(k, v);
            expect[usize::from(i == 3)].push(step, group, key, value.is_none());
        }
        let logs = undo_logs_of(&versions).unwrap();
        assert_eq!(logs, vec![(4, expect[0].clone()), (5, expect[1].clone())]);
        let mut other = versions;
        other.put(b"p-not-a-version", b"");
        assert!(undo_logs_of(&other).is_err());
        let mut cut = Batch::new();
        cut.put(b"v\0\0\0\0\0\0\0\x07\0\0\0\x01\0\0\0\x09ab", b"\x01");
        assert!(undo_logs_of(&cut).is_err(), "a key shorter than its length");
    }

    #[test]
    fn an_undo_log_reads_back_what_was_pushed() {
        let mut log = UndoLog::default();
        log.push(7, 1, b"first", false);
        log.push(7, 2, b"", true);
        log.push(9, 3, b"third", false);
        let mut other = UndoLog::default();
        other.push(9, 4, b"fourth", true);
        log.append(other);
        assert_eq!(log.pushed(), 4);
        assert!(log.may_delete());
        let stored = UndoLog::from_bytes(log.as_bytes().to_vec());
        let back: Vec<Undo<'_>> = stored.iter().map(Result::unwrap).collect();
        let expect = [
            (7, 1, &b"first"[..], false),
            (7, 2, &b""[..], true),
            (9, 3, &b"third"[..], false),
            (9, 4, &b"fourth"[..], true),
        ];
        assert_eq!(back.len(), expect.len());
        for (u, (step, group, key, deleted)) in back.iter().zip(expect) {
            assert_eq!(
                (u.step, u.group, u.key, u.deleted),
                (step, group, key, deleted)
            );
        }
        let mut prefix = Vec::new();
        back[0].write_prefix(&mut prefix);
        assert_eq!(prefix, version_prefix(7, 1, b"first"));
    }

    #[test]
    fn a_truncated_undo_log_is_an_error_not_a_short_list() {
        let mut log = UndoLog::default();
        log.push(3, 1, b"prefix", false);
        let bytes = log.as_bytes();
        // No deletion pushed: nothing to collect. Read back: unknown.
        assert!(!log.may_delete());
        assert!(UndoLog::from_bytes(bytes.to_vec()).may_delete());
        let cut = UndoLog::from_bytes(bytes[..bytes.len() - 2].to_vec());
        let read: Vec<_> = cut.iter().collect();
        assert_eq!(read.len(), 1);
        assert!(read[0].is_err());
    }
}
