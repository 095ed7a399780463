//! Test helper for the crash-consistency tests: writes batches to a
//! RocksDB store forever, each setting every one of `KEYS` keys to the
//! batch's number, until it is killed.
//!
//! Usage: `rill-state-torture DIR [KEYS]`. Prints `writing N` before each
//! batch and `wrote N` once it is durable, so a test knows whether its kill
//! landed inside a write.

use std::io::Write;
use std::path::PathBuf;

use rill_state::{Batch, KvStore, RocksStore};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: rill-state-torture DIR [KEYS]");
        std::process::exit(2);
    };
    let keys: u32 = arg(args.next(), "KEYS", 2000);
    let store = match RocksStore::open(&dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let filler = vec![0xABu8; 200];
    let mut out = std::io::stdout();
    for n in 0u64.. {
        let mut batch = Batch::new();
        for k in 0..keys {
            let mut value = n.to_be_bytes().to_vec();
            value.extend_from_slice(&filler);
            batch.put(key(k), value);
        }
        let _ = writeln!(out, "writing {n}");
        let _ = out.flush();
        if let Err(e) = store.write(batch) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        let _ = writeln!(out, "wrote {n}");
        let _ = out.flush();
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
