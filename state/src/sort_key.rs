//! [`SortKey`]: an order-preserving, prefix-free encoding of map keys, so
//! that a map's entries iterate in key order straight from the store (a
//! map keyed by window start iterates in time order).

/// A map key whose byte encoding sorts as the keys do.
///
/// Integers are big-endian (signed ones with the sign bit flipped);
/// strings and byte vectors escape their zero bytes and end with a
/// terminator; tuples are their parts in order. No encoding is a prefix of
/// another of the same type, so entries never interleave.
///
/// ```
/// use rill_state::SortKey;
///
/// let (mut a, mut b) = (Vec::new(), Vec::new());
/// (-5i64).write_sort_key(&mut a);
/// 3i64.write_sort_key(&mut b);
/// assert!(a < b);
/// assert_eq!(i64::read_sort_key(&a), Some((-5, 8)));
/// ```
pub trait SortKey: Sized {
    /// Appends the encoding to `out`.
    fn write_sort_key(&self, out: &mut Vec<u8>);
    /// Reads a key from the start of `bytes`: the key and the bytes used.
    fn read_sort_key(bytes: &[u8]) -> Option<(Self, usize)>;
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl SortKey for $t {
            fn write_sort_key(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn read_sort_key(bytes: &[u8]) -> Option<(Self, usize)> {
                const N: usize = std::mem::size_of::<$t>();
                let word = bytes.get(..N)?.try_into().ok()?;
                Some((<$t>::from_be_bytes(word), N))
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64, u128);

macro_rules! signed {
    ($($t:ty => $u:ty),*) => {$(
        impl SortKey for $t {
            fn write_sort_key(&self, out: &mut Vec<u8>) {
                let flipped = (*self as $u) ^ (1 << (<$u>::BITS - 1));
                flipped.write_sort_key(out);
            }
            fn read_sort_key(bytes: &[u8]) -> Option<(Self, usize)> {
                let (u, n) = <$u>::read_sort_key(bytes)?;
                Some(((u ^ (1 << (<$u>::BITS - 1))) as $t, n))
            }
        }
    )*};
}
signed!(i8 => u8, i16 => u16, i32 => u32, i64 => u64, i128 => u128);

/// Zero bytes are written as `0, 0xff`; the end is `0, 1`.
fn write_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 1]);
}

fn read_escaped(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match *bytes.get(i)? {
            0 => match *bytes.get(i + 1)? {
                0xff => out.push(0),
                1 => return Some((out, i + 2)),
                _ => return None,
            },
            b => {
                out.push(b);
                i += 1;
                continue;
            }
        }
        i += 2;
    }
}

impl SortKey for Vec<u8> {
    fn write_sort_key(&self, out: &mut Vec<u8>) {
        write_escaped(self, out);
    }
    fn read_sort_key(bytes: &[u8]) -> Option<(Self, usize)> {
        read_escaped(bytes)
    }
}

impl SortKey for String {
    fn write_sort_key(&self, out: &mut Vec<u8>) {
        write_escaped(self.as_bytes(), out);
    }
    fn read_sort_key(bytes: &[u8]) -> Option<(Self, usize)> {
        let (raw, n) = read_escaped(bytes)?;
        Some((String::from_utf8(raw).ok()?, n))
    }
}

impl SortKey for bool {
    fn write_sort_key(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn read_sort_key(bytes: &[u8]) -> Option<(Self, usize)> {
        match bytes.first()? {
            0 => Some((false, 1)),
            1 => Some((true, 1)),
            _ => None,
        }
    }
}

impl<A: SortKey, B: SortKey> SortKey for (A, B) {
    fn write_sort_key(&self, out: &mut Vec<u8>) {
        self.0.write_sort_key(out);
        self.1.write_sort_key(out);
    }
    fn read_sort_key(bytes: &[u8]) -> Option<(Self, usize)> {
        let (a, n) = A::read_sort_key(bytes)?;
        let (b, m) = B::read_sort_key(bytes.get(n..)?)?;
        Some(((a, b), n + m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<K: SortKey>(k: &K) -> Vec<u8> {
        let mut out = Vec::new();
        k.write_sort_key(&mut out);
        out
    }

    fn check_order<K: SortKey + Ord + Clone + std::fmt::Debug>(mut keys: Vec<K>) {
        keys.sort();
        for pair in keys.windows(2) {
            let (a, b) = (enc(&pair[0]), enc(&pair[1]));
            assert!(a <= b, "{:?} {:?}", pair[0], pair[1]);
            assert!(a == b || !b.starts_with(&a), "prefix-free");
        }
        for k in keys {
            let e = enc(&k);
            assert_eq!(K::read_sort_key(&e), Some((k, e.len())));
        }
    }

    #[test]
    fn encodings_sort_as_their_keys_and_read_back() {
        check_order(vec![0u64, 1, 255, 256, u64::MAX, 7]);
        check_order(vec![i64::MIN, -300, -1, 0, 1, i64::MAX]);
        check_order(vec![i32::MIN, -2, 5, i32::MAX]);
        let strings = ["", "a", "a\0", "a\0b", "ab", "b", "\0", "\0\0", "ü"];
        check_order(strings.iter().map(|s| s.to_string()).collect());
        check_order(vec![
            (1u64, "b".to_string()),
            (1, "a".into()),
            (0, "z".into()),
        ]);
        check_order(vec![vec![0u8, 0xff], vec![0], vec![], vec![1]]);
        check_order(vec![true, false]);
    }
}
