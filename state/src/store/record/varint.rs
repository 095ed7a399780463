//! Lengths in a record.

/// Lengths are bincode's varints, as the rest of the state is encoded.
/// Almost all are below 251, one byte each: those skip bincode's call,
/// which costs a few ms per 100,000 changes on the job's last write.
const ONE_BYTE: usize = 251;

pub(super) fn put_varint(out: &mut Vec<u8>, n: usize) {
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

pub(super) fn get_varint(bytes: &[u8], at: &mut usize) -> Option<usize> {
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
