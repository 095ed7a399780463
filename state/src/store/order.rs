//! Sorting a batch's changes by key without comparing whole keys.

use super::Batch;

/// Sorts `order`, positions in `batch` whose keys agree in their first `at`
/// bytes, by key, then by position (the last change to a key comes last).
///
/// It sorts by the next 16 bytes of each key as a number, then sorts each
/// run of equal numbers the same way 16 bytes further on: most keys are
/// told apart without reading the batch again.
pub(super) fn by_key(batch: &Batch, order: &mut [u32], at: usize) {
    let key = |i: u32| batch.op(i as usize).key();
    let mut heads: Vec<(u128, u8, u32)> = order
        .iter()
        .map(|&i| {
            let rest = key(i).get(at..).unwrap_or_default();
            let mut head = [0; 16];
            head.iter_mut().zip(rest).for_each(|(h, b)| *h = *b);
            // 17: the key goes on past these 16 bytes.
            (u128::from_be_bytes(head), rest.len().min(17) as u8, i)
        })
        .collect();
    heads.sort_unstable();
    for (o, h) in order.iter_mut().zip(&heads) {
        *o = h.2;
    }
    let mut start = 0;
    for run in heads.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        if run[0].1 == 17 && run.len() > 1 {
            by_key(batch, &mut order[start..start + run.len()], at + 16);
        }
        start += run.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn sorts_like_comparing_whole_keys_then_positions() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let mut batch = Batch::new();
            let shared: Vec<u8> = (0..rng.gen_range(0..20)).map(|_| rng.gen()).collect();
            for _ in 0..rng.gen_range(1..60) {
                let mut key = shared.clone();
                // Few distinct bytes: many equal keys, prefixes and zeros.
                key.extend((0..rng.gen_range(0..40)).map(|_| rng.gen_range(0..3u8)));
                batch.put(key, []);
            }
            let mut order: Vec<u32> = (0..batch.len() as u32).collect();
            by_key(&batch, &mut order, 0);
            let mut expected: Vec<u32> = (0..batch.len() as u32).collect();
            expected.sort_by_key(|&i| (batch.op(i as usize).key().to_vec(), i));
            assert_eq!(order, expected);
        }
    }
}
