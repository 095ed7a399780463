//! Test helper for the crash-consistency tests: writes batches to a
//! RocksDB store forever, each setting every one of `KEYS` keys to the
//! batch's number, until it is killed.
//!
//! Usage: `rill-state-torture DIR [KEYS] [INGEST_FROM] [THREADS] [DEFER]`.
//! Prints `wrote N` after each batch is durable. Batches of at least
//! `INGEST_FROM` changes are ingested as table files (default: the store's
//! own threshold), built on up to `THREADS` threads (default 1). With
//! `DEFER` set to 1, each batch is a deferred write
//! ([`KvStore::write_deferred`]) of 8-byte values: the key `marker` set to
//! the batch's number now, the keys deferred. Most batches stack on the
//! records of the ones before; every third also sets the first key now,
//! so the records before it are filed first; after every fifth, a read
//! files them. With `DEFER` set to 2, the same, and a new (empty)
//! directory gets a [`FreshStore`]: the first batch goes to its prelude;
//! the second, written half of [`rill_state::store::CREATE_AFTER`] later
//! (as a job's next checkpoint would be), creates RocksDB and files it.

use std::io::Write;
use std::path::PathBuf;

use rill_state::{Batch, FreshStore, KvStore, RocksStore};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: rill-state-torture DIR [KEYS] [INGEST_FROM] [THREADS] [DEFER]");
        std::process::exit(2);
    };
    let keys: u32 = arg(args.next(), "KEYS", 2000);
    let ingest_from: usize = arg(args.next(), "INGEST_FROM", rill_state::INGEST_FROM);
    let threads: usize = arg(args.next(), "THREADS", 1);
    let defer: u8 = arg(args.next(), "DEFER", 0);
    let fresh = defer == 2 && RocksStore::is_new(&dir);
    let store: Box<dyn KvStore> = if fresh {
        Box::new(FreshStore::new(&dir, ingest_from))
    } else {
        match RocksStore::open(&dir) {
            Ok(s) => Box::new(s.ingesting_from(ingest_from)),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    };
    let defer = defer >= 1;
    // Deferred writes are for small values (see `worth_deferring`).
    let filler = vec![0xABu8; if defer { 0 } else { 200 }];
    let mut out = std::io::stdout();
    for n in 0u64.. {
        let mut batch = Batch::new();
        for k in 0..keys {
            let mut value = n.to_be_bytes().to_vec();
            value.extend_from_slice(&filler);
            batch.put(key(k), value);
        }
        if defer && !rill_state::store::worth_deferring(std::slice::from_ref(&batch)) {
            eprintln!("a batch of {keys} keys is not worth deferring");
            std::process::exit(2);
        }
        let written = if defer {
            let mut now = Batch::new();
            now.put(b"marker", n.to_be_bytes());
            if n % 3 == 2 {
                now.put(key(0), n.to_be_bytes());
            }
            store
                .write_deferred(now, vec![batch], 1)
                .and_then(|()| match n % 5 {
                    4 => store.get(b"marker").map(drop),
                    _ => Ok(()),
                })
        } else {
            store.write_on(batch, threads)
        };
        if let Err(e) = written {
            eprintln!("{e}");
            std::process::exit(1);
        }
        let _ = writeln!(out, "wrote {n}");
        let _ = out.flush();
        if fresh && n == 0 {
            std::thread::sleep(rill_state::store::CREATE_AFTER / 2);
        }
    }
}

/// The name of key number `k`.
fn key(k: u32) -> Vec<u8> {
    format!("key-{k:06}").into_bytes()
}

/// An optional numeric argument: `default` when absent, exit 2 when bad.
fn arg<T: std::str::FromStr>(given: Option<String>, name: &str, default: T) -> T
where
    T::Err: std::fmt::Display,
{
    match given.map(|g| g.parse::<T>()) {
        None => default,
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            eprintln!("{name}: {e}");
            std::process::exit(2);
        }
    }
}
