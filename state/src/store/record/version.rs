//! The version form of a change in a record (see the module above): a
//! version of the same step at the same epoch as the key before it,
//! stored as its key group, key and state only.

use super::varint::{get_varint, put_varint};
use crate::store::Batch;
use crate::versions::VERSION_TAG;

/// The kind (low two bits) of a change in the version form. Bit 2 is set
/// when the version holds a value ([`LIVE`]); bits 3 to 5 hold how many
/// bytes its key group takes (0 to 4); bits 6 and 7 are clear.
pub(super) const VERSION: u8 = 3;
const LIVE: u8 = 1 << 2;
const GROUP_SHIFT: u8 = 3;

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

/// Keys and states up to these lengths are copied in pieces of these
/// sizes (see [`put_version`]); a change in the version form then takes
/// at most [`SMALL`] bytes of room.
pub(super) const SMALL: usize = 64;
const SHORT_KEY: usize = 32;
const SHORT_STATE: usize = 16;

/// Appends `key` = `value` in the version form if it is a version of the
/// same step at the same epoch as `previous`; false (nothing appended)
/// otherwise. `bytes` is the batch's buffer from the key on: the key, the
/// value, then any later changes.
pub(super) fn put_version(
    out: &mut Vec<u8>,
    previous: &[u8],
    key: &[u8],
    value: &[u8],
    bytes: &[u8],
) -> bool {
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

/// Decodes a change in the version form (its kind byte `kind` read, the
/// rest at `at`): its key goes to `key`, the change to `batch`.
pub(super) fn decode_version(
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

#[cfg(test)]
pub(super) mod tests {
    use super::super::{decode, encode, COMPACT};
    use super::*;

    /// The version key of `key` of `step` in `group` at `epoch`, as the
    /// checkpoint layer writes it.
    pub(in crate::store::record) fn version(
        step: u64,
        group: u32,
        key: &[u8],
        epoch: u64,
    ) -> Vec<u8> {
        let mut k = crate::checkpoint::version_prefix_for(step, group, key);
        k.extend_from_slice(&(!epoch).to_be_bytes());
        k
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
}
