//! The stored form of a record of deferred changes
//! ([`super::KvStore::write_deferred`]): a whole [`Batch`] as one value.
//!
//! A record is logged and synced while the job waits, so it is kept
//! small: syncing costs about 2.4 ms per MB on this project's machines.
//! After a header byte, [`COMPACT`], each change is one of two forms:
//!
//! - *a version* of the same step at the same epoch as the key before it
//!   (most of a checkpoint): a kind byte ([`VERSION`], with whether the
//!   version holds a value and how many bytes its key group takes); the
//!   key group, big-endian, without its leading zero bytes; the key's
//!   length as a varint and the key; for a value, the state's length as a
//!   varint and the state. The step, the epoch and the version's flag byte
//!   are not stored again: a `u64` sum's version takes about 9 bytes.
//! - *any other change*: a kind byte ([`PUT`], [`DELETE`] or
//!   [`DELETE_RANGE`]); as varints, how many bytes the key shares with the
//!   start of the previous key and with its end, and the length of the
//!   bytes in between; those bytes; the value's (or range end's) length as
//!   a varint; the value.
//!
//! Records of format 5 stores use only the second form; records written
//! before the compact form (no header: their first byte is a kind, 0 to
//! 2) are still read: see [`decode`].
//!
//! The version form is in `version.rs`, the shared ends of keys in
//! `shared.rs`, lengths in `varint.rs`, and encoding several parts on
//! several threads in `parts.rs`.

mod parts;
mod shared;
mod varint;
mod version;

pub(crate) use parts::encode_parts;

use super::{Batch, Op};
use shared::{common_prefix, common_suffix};
use varint::{get_varint, put_varint};
use version::{decode_version, put_version, SMALL, VERSION};

const PUT: u8 = 0;
const DELETE: u8 = 1;
const DELETE_RANGE: u8 = 2;

/// The first byte of a record in the compact form.
const COMPACT: u8 = 0x80;

/// Encodes `batch` as one value, in the compact form: what
/// [`encode_parts`] makes of each part, however it splits the work.
#[cfg(test)]
pub(crate) fn encode(batch: &Batch) -> Vec<u8> {
    let mut out = record_buffer(batch);
    encode_range(batch, 0..batch.len(), &mut out);
    out
}

/// An empty record of `batch`, with its header and room for all of it.
pub(super) fn record_buffer(batch: &Batch) -> Vec<u8> {
    // A version takes about a third of its bytes in the batch.
    let mut out = Vec::with_capacity(1 + SMALL + batch.bytes() / 3 + 4 * batch.len());
    out.push(COMPACT);
    out
}

/// Appends the changes `ops` of `batch` to a record, each stored by what
/// it shares with the change before it (in the batch, even if that one
/// is not in `ops`): a record encoded in ranges, one after another, is
/// the same as one encoded whole.
pub(super) fn encode_range(batch: &Batch, ops: std::ops::Range<usize>, out: &mut Vec<u8>) {
    let mut previous: &[u8] = match ops.start.checked_sub(1) {
        Some(i) => batch.op(i).key(),
        None => &[],
    };
    for i in ops {
        let (kind, key, value): (u8, &[u8], &[u8]) = match batch.op(i) {
            Op::Put(k, v) => {
                if put_version(out, previous, k, v, batch.bytes_from(i)) {
                    previous = k;
                    continue;
                }
                (PUT, k, v)
            }
            Op::Delete(k) => (DELETE, k, &[]),
            Op::DeleteRange(from, to) => (DELETE_RANGE, from, to),
        };
        let front = common_prefix(previous, key);
        let back = common_suffix(previous, &key[front..]);
        let middle = &key[front..key.len() - back];
        out.push(kind);
        put_varint(out, front);
        put_varint(out, back);
        put_varint(out, middle.len());
        out.extend_from_slice(middle);
        put_varint(out, value.len());
        out.extend_from_slice(value);
        previous = key;
    }
}

/// Decodes a record in either form; `None` if it is malformed.
pub(crate) fn decode(bytes: &[u8]) -> Option<Batch> {
    match bytes.first() {
        Some(&COMPACT) => decode_compact(&bytes[1..]),
        _ => decode_legacy(bytes),
    }
}

fn decode_compact(bytes: &[u8]) -> Option<Batch> {
    let mut batch = Batch::new();
    let mut at = 0;
    let mut previous: Vec<u8> = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    while at < bytes.len() {
        let kind = bytes[at];
        at += 1;
        if kind & 3 == VERSION {
            decode_version(kind, bytes, &mut at, &previous, &mut key, &mut batch)?;
            std::mem::swap(&mut previous, &mut key);
            continue;
        }
        let front = get_varint(bytes, &mut at)?;
        let back = get_varint(bytes, &mut at)?;
        let middle_len = get_varint(bytes, &mut at)?;
        let middle = bytes.get(at..at.checked_add(middle_len)?)?;
        at += middle_len;
        let value_len = get_varint(bytes, &mut at)?;
        let value = bytes.get(at..at.checked_add(value_len)?)?;
        at += value_len;
        // The shared ends may overlap in the previous key, but each must
        // lie inside it.
        key.clear();
        key.extend_from_slice(previous.get(..front)?);
        key.extend_from_slice(middle);
        key.extend_from_slice(previous.get(previous.len().checked_sub(back)?..)?);
        match kind {
            PUT => batch.put(&key, value),
            DELETE if value.is_empty() => batch.delete(&key),
            DELETE_RANGE => batch.delete_range_with(
                |k| k.extend_from_slice(&key),
                |k| k.extend_from_slice(value),
            ),
            _ => return None,
        }
        std::mem::swap(&mut previous, &mut key);
    }
    Some(batch)
}

/// The form before the compact one: per change a kind byte, the key's and
/// the value's (or range end's) lengths as little-endian u32, the key and
/// the value.
fn decode_legacy(bytes: &[u8]) -> Option<Batch> {
    let mut batch = Batch::new();
    let mut at = 0;
    let u32_at = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    while at < bytes.len() {
        let kind = bytes[at];
        let key_len = u32_at(at + 1)?;
        let value_len = u32_at(at + 5)?;
        let key_start = at + 9;
        let value_start = key_start.checked_add(key_len)?;
        let end = value_start.checked_add(value_len)?;
        let key = bytes.get(key_start..value_start)?;
        let value = bytes.get(value_start..end)?;
        match kind {
            PUT => batch.put(key, value),
            DELETE if value.is_empty() => batch.delete(key),
            DELETE_RANGE => batch
                .delete_range_with(|k| k.extend_from_slice(key), |k| k.extend_from_slice(value)),
            _ => return None,
        }
        at = end;
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Batch {
        let mut batch = Batch::new();
        batch.put(b"k1", b"v1");
        batch.put(b"", b"");
        batch.delete(b"k2");
        batch.delete_range_with(|k| k.extend_from_slice(b"a"), |k| k.extend_from_slice(b"b"));
        batch.put(b"k1", vec![7u8; 300]);
        // Keys that share both ends, and ends that overlap ("aXa" then
        // "aa": front and back both take the one 'a').
        batch.put(b"vSTEPgroup1key-1EPOCH", b"1");
        batch.put(b"vSTEPgroup2key-22EPOCH", b"2");
        batch.put(b"vSTEPgroup2key-22EPOCH", b"3");
        batch.put(b"aXa", b"");
        batch.put(b"aa", b"");
        batch.put(b"a", b"");
        batch
    }

    #[test]
    fn a_batch_encodes_and_decodes_to_the_same_changes() {
        let batch = sample();
        let bytes = encode(&batch);
        assert_eq!(decode(&bytes), Some(batch));
        assert_eq!(decode(&encode(&Batch::new())), Some(Batch::new()));
        assert_eq!(decode(&[]), Some(Batch::new()));
        // Cut anywhere inside a change, or with an unknown kind: malformed.
        for cut in [2, 4, 6, 9, bytes.len() - 1] {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[1] = 9;
        assert_eq!(decode(&bad), None);
        // A shared end longer than the previous key.
        assert_eq!(decode(&[COMPACT, PUT, 5, 0, 0, 0]), None);
        assert_eq!(decode(&[COMPACT, PUT, 0, 5, 0, 0]), None);
    }

    #[test]
    fn records_of_the_form_before_still_decode() {
        // kind, key length and value length (u32 LE), key, value.
        let mut old = vec![PUT, 2, 0, 0, 0, 1, 0, 0, 0];
        old.extend_from_slice(b"k1v");
        old.extend_from_slice(&[DELETE, 2, 0, 0, 0, 0, 0, 0, 0]);
        old.extend_from_slice(b"k2");
        let mut expect = Batch::new();
        expect.put(b"k1", b"v");
        expect.delete(b"k2");
        assert_eq!(decode(&old), Some(expect));
        assert_eq!(decode(&old[..old.len() - 1]), None);
    }
}
