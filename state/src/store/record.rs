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

use super::{Batch, Op};
use crate::versions::VERSION_TAG;

const PUT: u8 = 0;
const DELETE: u8 = 1;
const DELETE_RANGE: u8 = 2;
/// The kind (low two bits) of a change in the version form. Bit 2 is set
/// when the version holds a value ([`LIVE`]); bits 3 to 5 hold how many
/// bytes its key group takes (0 to 4); bits 6 and 7 are clear.
const VERSION: u8 = 3;
const LIVE: u8 = 1 << 2;
const GROUP_SHIFT: u8 = 3;

/// The first byte of a record in the compact form.
const COMPACT: u8 = 0x80;

/// A version key, as `crate::checkpoint::layout` writes it: the tag
/// ([`VERSION_TAG`]) and the step (8 bytes), the key group (4), the key's
/// length (4), the key, and the epoch (8).
const STEP_END: usize = 1 + 8;
const GROUP_END: usize = STEP_END + 4;
const HEAD: usize = GROUP_END + 4;
const EPOCH: usize = 8;

/// The version flag byte of a state, and of a deletion.
const VALUE_LIVE: u8 = 1;
const VALUE_DELETED: &[u8] = &[0];

/// Encodes `batch` as one value, in the compact form: what
/// [`encode_parts`] makes of each part, however it splits the work.
#[cfg(test)]
pub(crate) fn encode(batch: &Batch) -> Vec<u8> {
    let mut out = record_buffer(batch);
    encode_range(batch, 0..batch.len(), &mut out);
    out
}

/// An empty record of `batch`, with its header and room for all of it.
fn record_buffer(batch: &Batch) -> Vec<u8> {
    // A version takes about a third of its bytes in the batch.
    let mut out = Vec::with_capacity(1 + SMALL + batch.bytes() / 3 + 4 * batch.len());
    out.push(COMPACT);
    out
}

/// Appends the changes `ops` of `batch` to a record, each stored by what
/// it shares with the change before it (in the batch, even if that one
/// is not in `ops`): a record encoded in ranges, one after another, is
/// the same as one encoded whole.
fn encode_range(batch: &Batch, ops: std::ops::Range<usize>, out: &mut Vec<u8>) {
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

/// Keys and states up to these lengths are copied in pieces of these
/// sizes (see [`put_version`]); a change in the version form then takes
/// at most [`SMALL`] bytes of room.
const SMALL: usize = 64;
const SHORT_KEY: usize = 32;
const SHORT_STATE: usize = 16;

/// Appends `key` = `value` in the version form if it is a version of the
/// same step at the same epoch as `previous`; false (nothing appended)
/// otherwise. `bytes` is the batch's buffer from the key on: the key, the
/// value, then any later changes.
fn put_version(out: &mut Vec<u8>, previous: &[u8], key: &[u8], value: &[u8], bytes: &[u8]) -> bool {
    let Some((group, user_key)) = version_key(key) else {
        return false;
    };
    let (live, state) = match value.split_first() {
        Some((&VALUE_LIVE, state)) => (LIVE, state),
        _ if value == VALUE_DELETED => (0, &[][..]),
        _ => return false,
    };
    // Compared as words: a slice comparison calls `memcmp`.
    let word = |b: &[u8], at: usize| {
        b.get(at..at + 8)
            .map(|w| u64::from_be_bytes(w.try_into().unwrap_or_default()))
    };
    let epoch_of = |b: &[u8]| word(b, b.len().saturating_sub(EPOCH));
    if previous.len() < HEAD + EPOCH
        || previous[0] != key[0]
        || word(previous, 1) != word(key, 1)
        || epoch_of(previous) != epoch_of(key)
    {
        return false;
    }
    let group_bytes = 4 - group.leading_zeros() as usize / 8;
    let kind = VERSION | live | (group_bytes as u8) << GROUP_SHIFT;
    let (n, s) = (user_key.len(), state.len());
    if n > SHORT_KEY || s > SHORT_STATE {
        out.push(kind);
        out.extend_from_slice(&group.to_be_bytes()[4 - group_bytes..]);
        put_varint(out, n);
        out.extend_from_slice(user_key);
        if live != 0 {
            put_varint(out, s);
            out.extend_from_slice(state);
        }
        return true;
    }
    // Pieces of fixed size, cut back to what they hold: they compile to
    // a few moves, where copies of a few bytes each would call `memcpy`.
    let base = out.len();
    out.push(kind);
    // The group's significant bytes first.
    let group_first = (u64::from(group) << 32) << (8 * (4 - group_bytes));
    out.extend_from_slice(&group_first.to_be_bytes());
    out.truncate(base + 1 + group_bytes);
    out.push(n as u8);
    put_short::<SHORT_KEY>(out, bytes.get(HEAD..), user_key);
    if live != 0 {
        out.push(s as u8);
        put_short::<SHORT_STATE>(out, bytes.get(key.len() + 1..), state);
    }
    true
}

/// Appends `exact` (at most `N` bytes): as `N` bytes of `from` (which
/// starts with `exact`), cut back, when it has that many.
#[inline(always)]
fn put_short<const N: usize>(out: &mut Vec<u8>, from: Option<&[u8]>, exact: &[u8]) {
    match from.and_then(|f| f.first_chunk::<N>()) {
        Some(chunk) => {
            let end = out.len() + exact.len();
            out.extend_from_slice(chunk);
            out.truncate(end);
        }
        None => out.extend_from_slice(exact),
    }
}

/// The key group and the key of a version key; `None` for any other key.
fn version_key(key: &[u8]) -> Option<(u32, &[u8])> {
    if key.first() != Some(&VERSION_TAG) || key.len() < HEAD + EPOCH {
        return None;
    }
    let field = |at: usize| u32::from_be_bytes([key[at], key[at + 1], key[at + 2], key[at + 3]]);
    let len = field(GROUP_END) as usize;
    (len == key.len() - HEAD - EPOCH).then(|| (field(STEP_END), &key[HEAD..HEAD + len]))
}

/// The fewest changes worth a thread of their own when encoding.
const CHUNK_LEAST: usize = 8192;

/// Encodes each of `parts` as one value, in the compact form, on up to
/// `threads` threads (this one included). Fewer parts than threads are
/// encoded in ranges, one per thread, and joined: the bytes are the same
/// however the work is split. If a thread cannot be started, its
/// share is encoded here.
pub(crate) fn encode_parts(parts: &[Batch], threads: usize) -> Vec<Vec<u8>> {
    let threads = threads.max(1);
    // (part, range of its changes), in order.
    let mut chunks: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
    let per_part = threads.div_ceil(parts.len().max(1));
    for (p, part) in parts.iter().enumerate() {
        let n = per_part.min(part.len() / CHUNK_LEAST).max(1);
        let size = part.len().div_ceil(n).max(1);
        let mut start = 0;
        loop {
            let end = (start + size).min(part.len());
            chunks.push((p, start..end));
            if end == part.len() {
                break;
            }
            start = end;
        }
    }
    let encode_chunk = |(p, range): &(usize, std::ops::Range<usize>)| {
        let part = &parts[*p];
        let mut out = if range.start == 0 {
            record_buffer(part)
        } else {
            Vec::with_capacity(SMALL + part.bytes() / 3 * range.len() / part.len().max(1))
        };
        encode_range(part, range.clone(), &mut out);
        out
    };
    let threads = threads.min(chunks.len()).max(1);
    let mut encoded: Vec<Vec<u8>> = vec![Vec::new(); chunks.len()];
    if threads == 1 {
        for (c, chunk) in chunks.iter().enumerate() {
            encoded[c] = encode_chunk(chunk);
        }
    } else {
        // Thread t encodes chunks t, t + threads, ...
        std::thread::scope(|scope| {
            let share = |t: usize| {
                (t..chunks.len())
                    .step_by(threads)
                    .map(|c| (c, encode_chunk(&chunks[c])))
                    .collect::<Vec<_>>()
            };
            let helpers: Vec<_> = (1..threads)
                .map(|t| {
                    let started = std::thread::Builder::new()
                        .name("rill-encode".into())
                        .spawn_scoped(scope, move || share(t));
                    (t, started)
                })
                .collect();
            let mut done = share(0);
            for (t, started) in helpers {
                match started.map(|h| h.join()) {
                    Ok(Ok(theirs)) => done.extend(theirs),
                    // Not started (or, impossibly, panicked): encode them here.
                    _ => done.extend(share(t)),
                }
            }
            for (c, bytes) in done {
                encoded[c] = bytes;
            }
        });
    }
    // Join each part's ranges, in order.
    let mut records: Vec<Vec<u8>> = vec![Vec::new(); parts.len()];
    for ((p, range), bytes) in chunks.iter().zip(encoded) {
        if range.start == 0 {
            records[*p] = bytes;
        } else {
            records[*p].extend_from_slice(&bytes);
        }
    }
    records
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

/// Decodes a change in the version form (its kind byte `kind` read, the
/// rest at `at`): its key goes to `key`, the change to `batch`.
fn decode_version(
    kind: u8,
    bytes: &[u8],
    at: &mut usize,
    previous: &[u8],
    key: &mut Vec<u8>,
    batch: &mut Batch,
) -> Option<()> {
    let group_bytes = usize::from(kind >> GROUP_SHIFT);
    if group_bytes > 4 || previous.len() < HEAD + EPOCH {
        return None;
    }
    let mut group = [0u8; 4];
    group[4 - group_bytes..].copy_from_slice(bytes.get(*at..*at + group_bytes)?);
    *at += group_bytes;
    let len = get_varint(bytes, at)?;
    let user_key = bytes.get(*at..at.checked_add(len)?)?;
    *at += len;
    key.clear();
    key.extend_from_slice(&previous[..STEP_END]);
    key.extend_from_slice(&group);
    key.extend_from_slice(&u32::try_from(len).ok()?.to_be_bytes());
    key.extend_from_slice(user_key);
    key.extend_from_slice(&previous[previous.len() - EPOCH..]);
    if kind & LIVE == 0 {
        batch.put(&*key, VALUE_DELETED);
        return Some(());
    }
    let len = get_varint(bytes, at)?;
    let state = bytes.get(*at..at.checked_add(len)?)?;
    *at += len;
    let staged: Result<(), std::convert::Infallible> = batch.put_with(
        |k| {
            k.extend_from_slice(key);
            Ok(())
        },
        |v| {
            v.push(VALUE_LIVE);
            v.extend_from_slice(state);
            Ok(())
        },
    );
    staged.ok()
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

/// How many bytes `a` and `b` share at their start. Compared a word at a
/// time: a checkpoint key shares 12 or more bytes with the one before.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut at = 0;
    while let (Some(x), Some(y)) = (word(a, at), word(b, at)) {
        let differ = u64::from_le_bytes(x) ^ u64::from_le_bytes(y);
        if differ != 0 {
            // The first differing byte is the lowest in little-endian.
            return at + (differ.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + a[at..n]
        .iter()
        .zip(&b[at..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many bytes `a` and `b` share at their end (word at a time, as
/// [`common_prefix`]).
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut shared = 0;
    while shared + 8 <= n {
        let end = n - shared;
        let (Some(x), Some(y)) = (word(a, end - 8), word(b, end - 8)) else {
            break;
        };
        let differ = u64::from_be_bytes(x) ^ u64::from_be_bytes(y);
        if differ != 0 {
            // The last differing byte is the lowest in big-endian.
            return shared + (differ.trailing_zeros() / 8) as usize;
        }
        shared += 8;
    }
    shared
        + a[..n - shared]
            .iter()
            .rev()
            .zip(b[..n - shared].iter().rev())
            .take_while(|(x, y)| x == y)
            .count()
}

/// The eight bytes of `bytes` at `at`, if there are eight.
fn word(bytes: &[u8], at: usize) -> Option<[u8; 8]> {
    bytes.get(at..at.checked_add(8)?)?.try_into().ok()
}

/// Lengths are bincode's varints, as the rest of the state is encoded.
/// Almost all are below 251, one byte each: those skip bincode's call,
/// which costs a few ms per 100,000 changes on the job's last write.
const ONE_BYTE: usize = 251;

fn put_varint(out: &mut Vec<u8>, n: usize) {
    if n < ONE_BYTE {
        out.push(n as u8);
        return;
    }
    // Nine bytes hold any u64.
    let mut buf = [0u8; 9];
    let used =
        bincode::encode_into_slice(n as u64, &mut buf, bincode::config::standard()).unwrap_or(0);
    out.extend_from_slice(&buf[..used]);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let first = *bytes.get(*at)?;
    if usize::from(first) < ONE_BYTE {
        *at += 1;
        return Some(usize::from(first));
    }
    let (n, used): (u64, usize) =
        bincode::decode_from_slice(&bytes[*at..], bincode::config::standard()).ok()?;
    *at += used;
    usize::try_from(n).ok()
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
    fn checkpoint_keys_take_a_fraction_of_their_bytes() {
        let mut batch = Batch::new();
        for i in 0..1000u64 {
            let mut key = b"v\x01\x02\x03\x04\x05\x06\x07\x08".to_vec();
            key.extend_from_slice(&((i % 128) as u32).to_be_bytes());
            key.extend_from_slice(&3u32.to_be_bytes());
            key.extend_from_slice(&[0x80 | (i as u8 & 0x7f), (i >> 7) as u8, 1]);
            key.extend_from_slice(&(!7u64).to_be_bytes());
            batch.put(key, [1, 42, 1]);
        }
        let bytes = encode(&batch);
        assert!(
            bytes.len() < batch.bytes() / 2,
            "{} bytes for {}",
            bytes.len(),
            batch.bytes()
        );
        assert_eq!(decode(&bytes), Some(batch));
    }

    /// The version key of `key` of `step` in `group` at `epoch`, as the
    /// checkpoint layer writes it.
    fn version(step: u64, group: u32, key: &[u8], epoch: u64) -> Vec<u8> {
        let mut k = crate::checkpoint::version_prefix_for(step, group, key);
        k.extend_from_slice(&(!epoch).to_be_bytes());
        k
    }

    #[test]
    fn a_checkpoints_versions_take_their_key_and_state_and_three_bytes() {
        let mut batch = Batch::new();
        // The first version is stored whole; the rest in the version form.
        for i in 0..1000u32 {
            let key = [0xFB, i as u8, (i >> 8) as u8];
            batch.put(version(7, i * 37 % 256, &key, 3), [1, (i % 200) as u8]);
        }
        let bytes = encode(&batch);
        // Kind, group, key length, key (3), state length, state (1).
        assert!(bytes.len() <= 1 + 40 + 999 * 8, "{} bytes", bytes.len());
        assert!(bytes.len() > 999 * 7, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes), Some(batch));
    }

    #[test]
    fn versions_round_trip_among_any_other_changes() {
        let mut batch = Batch::new();
        batch.put(version(1, 5, b"a", 9), [1, 1]);
        // Deleted; groups of every width; an empty key and state.
        batch.put(version(1, 0, b"bb", 9), [0]);
        batch.put(version(1, 0x1_0000, b"", 9), [1]);
        batch.put(version(1, u32::MAX, &[7; 300], 9), vec![1; 400]);
        batch.put(version(1, 0x100, b"c", 9), [1, 2]);
        // Another step, then another epoch: stored by their shared ends.
        batch.put(version(2, 5, b"a", 9), [1, 3]);
        batch.put(version(2, 5, b"a", 8), [1, 4]);
        batch.put(version(2, 6, b"d", 8), [1, 5]);
        // Not a version's value, or not a version key.
        batch.put(version(2, 6, b"e", 8), [2, 5]);
        batch.put(version(2, 6, b"f", 8), []);
        let mut lying = version(2, 6, b"gg", 8);
        lying[16] = 1;
        batch.put(&lying, [1, 6]);
        batch.put(version(2, 6, b"h", 8), [1, 7]);
        batch.delete(version(2, 6, b"i", 8));
        batch.put(b"u-undo", b"log");
        batch.put(version(2, 6, b"j", 8), [1, 8]);
        let bytes = encode(&batch);
        assert_eq!(decode(&bytes), Some(batch.clone()));
        for cut in 1..bytes.len() {
            let decoded = decode(&bytes[..cut]);
            assert!(
                decoded.is_none() || decoded.as_ref().is_some_and(|d| d.len() < batch.len()),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_malformed_version_is_refused() {
        // A version with no key before it to take its step and epoch from.
        assert_eq!(decode(&[COMPACT, VERSION | LIVE, 0, 1, 1]), None);
        let mut bytes = encode(&{
            let mut b = Batch::new();
            b.put(version(1, 5, b"a", 9), [1, 1]);
            b
        });
        // After a version key: fine; with five group bytes, or a high bit
        // set: malformed.
        let at = bytes.len();
        bytes.extend_from_slice(&[VERSION | 1 << GROUP_SHIFT, 9, 1, b'b']);
        assert_eq!(decode(&bytes).map(|b| b.len()), Some(2));
        for kind in [VERSION | 5 << GROUP_SHIFT, VERSION | 0x40, VERSION | 0x80] {
            bytes[at] = kind;
            assert_eq!(decode(&bytes), None, "kind {kind:#x}");
        }
    }

    #[test]
    fn versions_of_any_length_round_trip_wherever_they_lie() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..50 {
            let mut batch = Batch::new();
            for _ in 0..rng.gen_range(1..60) {
                // Lengths around the short-copy limits, and groups of
                // every width.
                let key: Vec<u8> = (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect();
                let group = rng
                    .gen::<u32>()
                    .checked_shr(8 * rng.gen_range(0..5))
                    .unwrap_or(0);
                let value = if rng.gen_bool(0.2) {
                    vec![0]
                } else {
                    let mut v = vec![1];
                    v.extend((0..rng.gen_range(0..24)).map(|_| rng.gen::<u8>()));
                    v
                };
                batch.put(version(3, group, &key, 5), value);
            }
            let bytes = encode(&batch);
            assert_eq!(decode(&bytes), Some(batch), "round {round}");
        }
    }

    #[test]
    fn a_large_part_is_encoded_in_ranges_alike() {
        let part = |n: u32, step: u64| {
            let mut b = Batch::new();
            for i in 0..n {
                b.put(version(step, i % 256, &i.to_le_bytes(), 2), [1, i as u8]);
                if i % 1000 == 0 {
                    b.delete(format!("other-{i}"));
                }
            }
            b
        };
        let parts = [part(3 * CHUNK_LEAST as u32 + 5, 1), part(100, 2)];
        let expect: Vec<Vec<u8>> = parts.iter().map(encode).collect();
        for threads in [1, 2, 3, 4, 7] {
            assert_eq!(encode_parts(&parts, threads), expect, "{threads} threads");
            assert_eq!(
                encode_parts(&parts[..1], threads),
                expect[..1],
                "{threads} threads"
            );
        }
    }

    #[test]
    fn parts_encode_alike_on_any_number_of_threads() {
        let parts: Vec<Batch> = (0..5u8)
            .map(|p| {
                let mut b = Batch::new();
                for i in 0..(p as u32 * 7) {
                    b.put(format!("part{p}-key{i}"), [p; 3]);
                }
                b
            })
            .collect();
        let expect: Vec<Vec<u8>> = parts.iter().map(encode).collect();
        for threads in [0, 1, 2, 3, 8] {
            assert_eq!(encode_parts(&parts, threads), expect, "{threads} threads");
        }
        assert!(encode_parts(&[], 4).is_empty());
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

    #[test]
    fn shared_ends_are_counted_word_by_word_and_byte_by_byte() {
        let naive_front = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let naive_back = |a: &[u8], b: &[u8]| {
            a.iter()
                .rev()
                .zip(b.iter().rev())
                .take_while(|(x, y)| x == y)
                .count()
        };
        let base: Vec<u8> = (0..40u8).collect();
        for len_a in [0, 1, 7, 8, 9, 16, 23, 40] {
            for len_b in [0, 5, 8, 17, 40] {
                for flip in 0..40 {
                    let a = &base[..len_a];
                    let mut b = base[..len_b].to_vec();
                    if let Some(byte) = b.get_mut(flip) {
                        *byte ^= 0xFF;
                    }
                    assert_eq!(
                        common_prefix(a, &b),
                        naive_front(a, &b),
                        "{len_a} {len_b} {flip}"
                    );
                    // Ends: align the two on their last bytes.
                    let a_end = &base[40 - len_a..];
                    let mut b_end = base[40 - len_b..].to_vec();
                    if let Some(byte) = b_end.get_mut(flip) {
                        *byte ^= 0xFF;
                    }
                    assert_eq!(
                        common_suffix(a_end, &b_end),
                        naive_back(a_end, &b_end),
                        "{len_a} {len_b} {flip}"
                    );
                }
            }
        }
    }

    #[test]
    fn varints_round_trip() {
        for n in [
            0,
            1,
            127,
            128,
            250,
            251,
            300,
            1 << 21,
            u32::MAX as usize,
            usize::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            let mut at = 0;
            assert_eq!(get_varint(&out, &mut at), Some(n));
            assert_eq!(at, out.len());
        }
        let mut at = 0;
        assert_eq!(get_varint(&[253, 1], &mut at), None, "cut short");
    }
}
