//! Where everything lives in a store: one byte of tag, then big-endian
//! fields so that byte order is numeric order.
//!
//! | tag | key                                             | value                      |
//! |-----|-------------------------------------------------|----------------------------|
//! | `m` |                                                 | [`JobMeta`]                |
//! | `c` | step name                                       | [`StepMeta`]               |
//! | `v` | step hash, key group, key length, key, !epoch   | 0 (deleted) or 1 + value   |
//! | `p` | worker                                          | last prepared epoch        |
//! | `u` | worker, epoch                                   | `Vec<`[`Undo`]`>`          |
//! | `i` | epoch, worker                                   | [`CheckpointInfo`]         |
//!
//! Versions of one key sort newest first (the epoch is stored inverted), so
//! the newest version is the first entry under the key's prefix.

use serde::{Deserialize, Serialize};
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

/// How to undo (at resume) or garbage-collect (at completion) one version
/// written in an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undo {
    /// The key's version prefix (everything but the epoch).
    pub prefix: Vec<u8>,
    /// The epoch of the version it replaced, if any.
    pub previous: Option<u64>,
    /// True when the version is a deletion.
    pub deleted: bool,
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
    k.push(VERSION);
    k.extend_from_slice(&step.to_be_bytes());
    k.extend_from_slice(&group.to_be_bytes());
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k
}

pub(crate) fn version_key(prefix: &[u8], epoch: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 8);
    k.extend_from_slice(prefix);
    k.extend_from_slice(&(!epoch).to_be_bytes());
    k
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

/// A stored version's value: `None` for a deletion.
pub(crate) fn encode_version(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![0],
        Some(v) => {
            let mut out = Vec::with_capacity(1 + v.len());
            out.push(1);
            out.extend_from_slice(v);
            out
        }
    }
}
