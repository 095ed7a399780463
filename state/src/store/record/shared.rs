//! How many bytes two keys share at their start and at their end.

/// How many bytes `a` and `b` share at their start. Compared a word at a
/// time: a checkpoint key shares 12 or more bytes with the one before.
pub(super) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
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
pub(super) fn common_suffix(a: &[u8], b: &[u8]) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
