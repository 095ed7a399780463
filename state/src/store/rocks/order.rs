//! Putting a batch's changes in key order, and splitting them into key
//! ranges for table files built in parallel.

use crate::store::Batch;

/// A change's place in key order: its key's first 24 bytes as integers
/// (zero-padded), and its index in the batch.
pub(super) type Ordered = ((u64, u64, u64), u32);

/// The batch's changes in key order (stable: a later change to a key
/// stays after an earlier one). Changes are sorted by their key's first
/// 24 bytes held inline, as plain integers; only runs with equal heads
/// (the same key, or keys sharing 24 bytes) then compare whole keys.
pub(super) fn key_order(batch: &Batch) -> Vec<Ordered> {
    let mut items = heads(batch);
    sort_heads(&mut items, batch);
    items
}

/// Every change's [`Ordered`] item, in batch order.
pub(super) fn heads(batch: &Batch) -> Vec<Ordered> {
    fn head(key: &[u8]) -> (u64, u64, u64) {
        let mut padded = [0u8; 24];
        let n = key.len().min(24);
        padded[..n].copy_from_slice(&key[..n]);
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&padded[i * 8..i * 8 + 8]);
            u64::from_be_bytes(w)
        };
        (word(0), word(1), word(2))
    }
    batch
        .ops()
        .enumerate()
        .map(|(i, op)| (head(op.key()), i as u32))
        .collect()
}

/// Sorts items of `batch` into key order, stably (see [`key_order`]).
pub(super) fn sort_heads(items: &mut [Ordered], batch: &Batch) {
    items.sort_unstable_by_key(|item| item.0);
    let mut start = 0;
    while start < items.len() {
        let run = items[start..]
            .iter()
            .take_while(|item| item.0 == items[start].0)
            .count();
        if run > 1 {
            items[start..start + run].sort_unstable_by(|a, b| {
                let key = |i: u32| batch.op(i as usize).key();
                key(a.1).cmp(key(b.1)).then(a.1.cmp(&b.1))
            });
        }
        start += run;
    }
}

/// Splits items into up to `parts` non-empty groups of about equal size
/// whose key ranges do not overlap, in key order: every key of a group is
/// below every key of the next. The bounds are heads taken from a sample;
/// items with equal heads stay together, so a key's changes share a group.
/// (A head orders keys: if one key's head is below another's, so is the
/// key, since heads are keys cut or zero-padded to 24 bytes.)
pub(super) fn split_by_key(items: Vec<Ordered>, parts: usize) -> Vec<Vec<Ordered>> {
    if parts < 2 || items.is_empty() {
        return vec![items];
    }
    let samples = (parts * 64).min(items.len());
    let step = items.len() / samples;
    let mut sample: Vec<_> = (0..samples).map(|s| items[s * step].0).collect();
    sample.sort_unstable();
    let mut bounds: Vec<_> = (1..parts).map(|p| sample[p * samples / parts]).collect();
    bounds.dedup();
    let mut groups: Vec<Vec<Ordered>> = (0..=bounds.len())
        .map(|_| Vec::with_capacity(items.len() / parts + items.len() / 8))
        .collect();
    for item in items {
        groups[bounds.partition_point(|b| *b <= item.0)].push(item);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_makes_disjoint_key_ranges_in_order_and_keeps_equal_heads_together() {
        let mut batch = Batch::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..5000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("prefix-{:05}", x % 700);
            batch.put(key.as_bytes(), i.to_be_bytes());
        }
        for parts in [2, 3, 8] {
            let groups = split_by_key(heads(&batch), parts);
            assert!(groups.len() > 1 && groups.len() <= parts, "{parts}");
            assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), batch.len());
            let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
            let fair = batch.len() / parts;
            assert!(
                sizes.iter().all(|&n| n < 3 * fair),
                "{parts} parts: {sizes:?}"
            );
            for pair in groups.windows(2) {
                let highest = pair[0].iter().map(|i| i.0).max().unwrap();
                let lowest = pair[1].iter().map(|i| i.0).min().unwrap();
                assert!(highest < lowest, "{parts} parts overlap");
            }
        }
        // One key only: nothing to split.
        let mut same = Batch::new();
        for i in 0..100u32 {
            same.put(b"one key", i.to_be_bytes());
        }
        assert_eq!(split_by_key(heads(&same), 4).len(), 1);
    }

    #[test]
    fn key_order_sorts_by_key_and_keeps_equal_keys_in_batch_order() {
        let mut batch = Batch::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut keys = Vec::new();
        for i in 0..2000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Long shared prefixes, lengths around the 24 inline bytes, and
            // repeated keys.
            let mut key = b"v-shared-prefix-".to_vec();
            key.extend_from_slice(&(x % 50).to_be_bytes()[..(x % 9) as usize]);
            batch.put(&key, i.to_be_bytes());
            keys.push(key);
        }
        let order: Vec<u32> = key_order(&batch).iter().map(|&(_, i)| i).collect();
        let mut expect: Vec<u32> = (0..keys.len() as u32).collect();
        expect.sort_by(|&a, &b| keys[a as usize].cmp(&keys[b as usize]));
        assert_eq!(order, expect);
    }
}
