//! Where everything lives in a store: one byte of tag, then big-endian
//! fields so that byte order is numeric order. The one place that encodes
//! and parses a key.
//!
//! | tag | key                                                    | value                    |
//! |-----|--------------------------------------------------------|--------------------------|
//! | `m` |                                                        | [`JobMeta`]              |
//! | `c` | step name                                              | [`StepMeta`]             |
//! | `v` | step id, state, key group, entry, !epoch               | 0 (deleted) or 1 + value |
//! | `p` | worker                                                 | last prepared epoch      |
//! | `i` | epoch, worker                                          | [`CheckpointInfo`]       |
//! | `f` | first epoch, last epoch                                | (empty)                  |
//!
//! A version key's *entry* is, for a value, the record key's length and
//! bytes; for a list element or a map entry, that and a sub-key (a list's
//! sequence number, a map key in an order-preserving encoding); for a
//! timer, its kind, its time and then the record key, so that a key
//! group's timers sort by time. The key group always comes from the record
//! key alone. Versions of one entry sort newest first (the epoch is stored
//! inverted), so the newest version is the first key under its prefix.
//!
//! An `f` record fences epochs a resume discarded (see
//! [`crate::store::VersionGc::fence`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::{Batch, StoreError};

/// Facts about the job that wrote a store, fixed when the state is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMeta {
    /// Workers in the whole job (all processes).
    pub workers: u32,
    /// Processes in the job.
    pub processes: u32,
    /// Key groups of the job's state.
    pub key_groups: u32,
}

/// What kind of state a named state of a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateKind {
    /// One value per key.
    Value,
    /// An appendable list per key.
    List,
    /// An ordered map per key.
    Map,
    /// Event-time and epoch timers per key.
    Timers,
}

/// Facts about one stateful step, checked when a job resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMeta {
    /// What kind of step keeps the state (`sum`, `source`, `process`, ...).
    pub kind: String,
    /// The step's key-group count.
    pub key_groups: u32,
    /// The step's states, by name, in the order they were declared.
    pub states: Vec<(String, StateKind)>,
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

pub(crate) const META: &[u8] = b"m";
pub(crate) const CATALOG: u8 = b'c';
pub(crate) const VERSION: u8 = crate::versions::VERSION_TAG;
pub(crate) const PREPARED: u8 = b'p';
pub(crate) const INFO: u8 = b'i';
pub(crate) const FENCE: u8 = b'f';

/// The state id of a step's timers.
pub const TIMERS_STATE: u8 = 255;

/// The state id of a step's watermark, one entry per worker of the step.
pub const WATERMARK_STATE: u8 = 254;

/// The largest record key, in encoded bytes, a state entry may have.
pub const MOST_KEY_BYTES: usize = 1 << 20;

/// The largest state value, in encoded bytes.
pub const MOST_VALUE_BYTES: usize = 256 << 20;

/// The stable id of a step in keys: a hash of its name.
pub fn step_hash(name: &str) -> u64 {
    crate::stable_hash(name)
}

pub(crate) fn catalog_key(step: &str) -> Vec<u8> {
    let mut k = vec![CATALOG];
    k.extend_from_slice(step.as_bytes());
    k
}

/// The bytes of a version key before its entry: tag, step, state, group.
pub const ENTRY_HEAD: usize = 1 + 8 + 1 + 4;

/// Appends the head of every entry of state `state` of step `step` in key
/// group `group` to `out`.
pub fn write_head(out: &mut Vec<u8>, step: u64, state: u8, group: u32) {
    let mut head = [VERSION; ENTRY_HEAD];
    head[1..9].copy_from_slice(&step.to_be_bytes());
    head[9] = state;
    head[10..14].copy_from_slice(&group.to_be_bytes());
    out.extend_from_slice(&head);
}

/// Appends an encoded record key (its length, then its bytes) to `out`:
/// no key's bytes are a prefix of another's.
pub fn write_key(out: &mut Vec<u8>, key: &[u8]) {
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
}

/// Appends `key`, encoded, with its length before it (as [`write_key`]).
pub fn write_encoded_key<K: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    key: &K,
) -> Result<usize, StoreError> {
    let at = out.len();
    write_key(out, &[]);
    crate::codec::encode_into(key, out)?;
    let len = out.len() - at - 4;
    out[at..at + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(len)
}

/// The prefix of every entry of `key` (encoded) in a state: a value's
/// whole entry, or the prefix of a list's or a map's entries.
pub fn entry_prefix(step: u64, state: u8, group: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(ENTRY_HEAD + 4 + key.len() + 16);
    write_head(&mut k, step, state, group);
    write_key(&mut k, key);
    k
}

/// The entry of the watermark of a step on `worker`: part of the
/// checkpoint, so that a resumed step judges late records as before.
pub fn watermark_entry(step: u64, worker: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(ENTRY_HEAD);
    write_head(&mut k, step, WATERMARK_STATE, worker);
    k
}

/// The timer kinds, as stored.
pub const EVENT_TIMER: u8 = 0;
/// See [`EVENT_TIMER`].
pub const EPOCH_TIMER: u8 = 1;

/// The prefix of a step's timers of one kind in one key group.
pub fn timer_prefix(step: u64, group: u32, kind: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(ENTRY_HEAD + 1 + 8 + 16);
    write_head(&mut k, step, TIMERS_STATE, group);
    k.push(kind);
    k
}

/// The entry of a timer of `key` (encoded) at `time`.
pub fn timer_entry(step: u64, group: u32, kind: u8, time: u64, key: &[u8]) -> Vec<u8> {
    let mut k = timer_prefix(step, group, kind);
    k.extend_from_slice(&time.to_be_bytes());
    write_key(&mut k, key);
    k
}

/// A timer entry's time and encoded record key, after its prefix.
pub fn parse_timer(entry: &[u8]) -> Option<(u64, &[u8])> {
    let rest = entry.get(ENTRY_HEAD + 1..)?;
    let time = be_u64(rest, 0)?;
    let len = be_u32(rest, 8)? as usize;
    let key = rest.get(12..12 + len)?;
    (rest.len() == 12 + len).then_some((time, key))
}

/// Appends the version key of `entry` at `epoch` to `out`.
pub fn write_version_key(out: &mut Vec<u8>, entry: &[u8], epoch: u64) {
    out.extend_from_slice(entry);
    out.extend_from_slice(&(!epoch).to_be_bytes());
}

/// The epoch of a version key.
pub fn version_epoch(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(!u64::from_be_bytes(tail))
}

/// A stored version's value: `None` for a deletion.
pub fn parse_version<'a>(location: &str, value: &'a [u8]) -> Result<Option<&'a [u8]>, StoreError> {
    match value.first() {
        Some(1) => Ok(Some(&value[1..])),
        Some(0) => Ok(None),
        _ => Err(StoreError::Corrupted {
            location: location.to_owned(),
            detail: "a state version has an unknown tag".into(),
        }),
    }
}

/// Appends a stored version's value to `out`: `None` for a deletion.
pub fn write_version(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(v);
        }
    }
}

/// A state key or value too large to store is an error, not a panic.
pub fn check_sizes(key_len: usize, value_len: usize) -> Result<(), StoreError> {
    if key_len > MOST_KEY_BYTES {
        return Err(StoreError::TooLarge {
            key: None,
            what: "key",
            bytes: key_len,
            most: MOST_KEY_BYTES,
        });
    }
    if value_len > MOST_VALUE_BYTES {
        return Err(StoreError::TooLarge {
            key: None,
            what: "value",
            bytes: value_len,
            most: MOST_VALUE_BYTES,
        });
    }
    Ok(())
}

pub(crate) fn prepared_key(worker: u32) -> Vec<u8> {
    let mut k = vec![PREPARED];
    k.extend_from_slice(&worker.to_be_bytes());
    k
}

pub(crate) fn fence_key(from: u64, to: u64) -> Vec<u8> {
    let mut k = vec![FENCE];
    k.extend_from_slice(&from.to_be_bytes());
    k.extend_from_slice(&to.to_be_bytes());
    k
}

/// Appends to `batch` the deletion of every version of `entry` at or
/// below `epoch`.
pub(crate) fn delete_versions_through(batch: &mut Batch, entry: &[u8], epoch: u64) {
    batch.delete_range_with(
        |k| write_version_key(k, entry, epoch),
        |k| {
            // Just past the oldest possible version (epoch 0).
            k.extend_from_slice(entry);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_entry_parses_back_and_sorts_by_time_within_its_group() {
        let a = timer_entry(7, 3, EVENT_TIMER, 20, b"zz");
        let b = timer_entry(7, 3, EVENT_TIMER, 100, b"aa");
        assert!(a < b, "time before key");
        assert_eq!(parse_timer(&a), Some((20, &b"zz"[..])));
        assert!(a.starts_with(&timer_prefix(7, 3, EVENT_TIMER)));
        assert!(!a.starts_with(&timer_prefix(7, 3, EPOCH_TIMER)));
    }

    #[test]
    fn versions_of_an_entry_sort_newest_first_and_a_range_deletes_the_old_ones() {
        let entry = entry_prefix(1, 0, 2, b"k");
        let v = |e| {
            let mut k = Vec::new();
            write_version_key(&mut k, &entry, e);
            k
        };
        assert!(v(9) < v(3) && v(3) < v(0));
        assert_eq!(version_epoch(&v(42)), Some(42));
        let mut batch = Batch::new();
        delete_versions_through(&mut batch, &entry, 3);
        let crate::store::Op::DeleteRange(from, to) = batch.op(0) else {
            panic!("a range");
        };
        for (e, gone) in [(9, false), (4, false), (3, true), (0, true)] {
            let k = v(e);
            assert_eq!(from <= k.as_slice() && k.as_slice() < to, gone, "epoch {e}");
        }
    }

    #[test]
    fn too_large_keys_and_values_are_errors() {
        assert!(check_sizes(10, 10).is_ok());
        let e = check_sizes(MOST_KEY_BYTES + 1, 0).unwrap_err().to_string();
        assert!(e.contains("key"), "{e}");
        assert!(check_sizes(0, MOST_VALUE_BYTES + 1).is_err());
    }
}
