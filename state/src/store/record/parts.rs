//! Encoding several parts (one a worker) on several threads.

use super::{encode_range, record_buffer, SMALL};
use crate::store::Batch;

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

#[cfg(test)]
mod tests {
    use super::super::encode;
    use super::super::version::tests::version;
    use super::*;

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
}
