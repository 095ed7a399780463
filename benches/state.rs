//! State benchmarks, all in-process, printing their figures:
//!
//! - `throughput`: events/s of `sum` and `count` per worker from an
//!   in-process source, 1 and 2 workers, no state dir (goal ≥ 20M/s/worker);
//! - `overhead`: steady state, `sum` over BENCH_KEYS (1,000,000) keys with
//!   1 s epochs for runs of 30 s or more, checkpointing to RocksDB vs no
//!   state dir (goal ≤ 5% slower);
//! - `recovery`: build ~BENCH_STATE_MB of state, then time a new job on the
//!   same state dir from start to the first output of new input (goal ≤ 3 s);
//! - `lists-maps`: list appends and map gets and puts per second through a
//!   keyed step with RocksDB checkpoints, vs a raw RocksDB loop.
//!
//! ```text
//! cargo bench -p rill-benches --bench state -- [throughput|overhead|recovery|lists-maps]...
//! ```
//! Env: `BENCH_RECORDS`, `BENCH_KEYS`, `BENCH_STATE_MB` (1024),
//! `BENCH_WORKERS` (`1,2`), `BENCH_REPEAT` (3 pairs of `overhead` runs),
//! `BENCH_EPOCH_MS` (1000).

use rill::{Job, JobArgs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn args(workers: usize, state_dir: Option<&std::path::Path>) -> JobArgs {
    let mut a = JobArgs {
        workers,
        epoch_interval: Duration::from_millis(env("BENCH_EPOCH_MS", 1000)),
        state_dir: state_dir.map(|p| p.to_owned()),
        ..JobArgs::default()
    };
    a.state_cache_keys = 1_000_000;
    a
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Sum,
    Count,
}

/// The seconds one keyed run took.
struct Timing {
    /// Job start to end (every output through a sink).
    total: f64,
}

/// Runs `op` per key over `records` generated records.
fn run_keyed(op: Op, records: u64, keys: u64, a: JobArgs) -> Timing {
    let started = Instant::now();
    Job::new("bench", a)
        .expect("flags")
        .run(move |flow| {
            let items = (0..records).map(move |i| (i.wrapping_mul(0x9E37_79B9) % keys, 1u64));
            let input = flow.source_iter_keyed("input", items);
            let out = match op {
                Op::Sum => input.sum("sum"),
                Op::Count => input.count("count"),
            };
            out.for_each("discard", |k, v| {
                std::hint::black_box((k, v));
            });
        })
        .expect("job");
    Timing {
        total: started.elapsed().as_secs_f64(),
    }
}

fn throughput() {
    let records = env("BENCH_RECORDS", 10_000_000);
    let keys = env("BENCH_KEYS", 100_000);
    println!("## throughput: {records} records, {keys} keys, no state dir");
    for op in [Op::Sum, Op::Count] {
        for workers in [1usize, 2] {
            let secs = run_keyed(op, records, keys, args(workers, None)).total;
            let name = if op == Op::Sum { "sum" } else { "count" };
            println!(
                "{name:>5}, {workers} worker(s): {:.2} s, {:.0} events/s, {:.0} events/s per worker",
                secs,
                records as f64 / secs,
                records as f64 / secs / workers as f64
            );
        }
    }
}

/// Steady-state checkpoint overhead: `sum` over BENCH_KEYS keys with 1 s
/// epochs, checkpointing to RocksDB vs no state dir, BENCH_REPEAT pairs
/// (every other pair in the other order), per worker count.
fn overhead() {
    let records = env("BENCH_RECORDS", 400_000_000);
    let keys = env("BENCH_KEYS", 1_000_000);
    let repeat = env("BENCH_REPEAT", 3).max(1);
    println!("## overhead: sum, {records} records, {keys} keys, {repeat} pairs");
    for workers in worker_counts() {
        let mut ratios = Vec::new();
        for pair in 0..repeat {
            let mut times = [0.0f64; 2];
            let order: [bool; 2] = if pair % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for durable in order {
                let dir = tempfile::tempdir().expect("tempdir");
                let a = args(workers, durable.then(|| dir.path()));
                let t = run_keyed(Op::Sum, records, keys, a).total;
                times[usize::from(durable)] = t;
            }
            let ratio = times[1] / times[0] - 1.0;
            println!(
                "{workers} worker(s), pair {pair}: plain {:.2} s, RocksDB {:.2} s: {:+.1}%",
                times[0],
                times[1],
                100.0 * ratio
            );
            ratios.push(ratio);
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "{workers} worker(s): median overhead {:+.1}%",
            100.0 * ratios[ratios.len() / 2]
        );
    }
}

/// The worker counts to run: `BENCH_WORKERS` (e.g. `1`), else 1 and 2.
fn worker_counts() -> Vec<usize> {
    match std::env::var("BENCH_WORKERS") {
        Ok(w) => w.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![1, 2],
    }
}

/// A value of `len` pseudo-random (incompressible) bytes for `key`.
fn blob(key: u64, len: usize) -> Vec<u8> {
    let mut x = key.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|d| {
            d.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn recovery() {
    const VALUE: usize = 1000;
    let mb = env("BENCH_STATE_MB", 1024);
    let keys = mb * 1024 * 1024 / VALUE as u64;
    let dir = tempfile::tempdir().expect("tempdir");
    println!("## recovery: {keys} keys x {VALUE} B of state (~{mb} MiB)");
    let build = |extra: u64, first: Arc<Mutex<Option<Instant>>>| {
        let mut a = args(2, Some(dir.path()));
        a.state_cache_keys = 100_000;
        let started = Instant::now();
        Job::new("bench-recovery", a)
            .expect("flags")
            .run(move |flow| {
                let items = (0..keys + extra).map(move |k| (k % keys, k));
                let first = first.clone();
                flow.source_iter_keyed("input", items)
                    .stateful_map("blobs", |k: &u64, state: Option<Vec<u8>>, _v: u64| {
                        let blob = state.unwrap_or_else(|| blob(*k, VALUE));
                        let len = blob.len() as u64;
                        (Some(blob), len)
                    })
                    .for_each("first", move |_, _| {
                        let mut f = first.lock().unwrap_or_else(|p| p.into_inner());
                        f.get_or_insert_with(Instant::now);
                    });
            })
            .expect("job");
        started
    };
    let t = Instant::now();
    build(0, Arc::new(Mutex::new(None)));
    println!(
        "built in {:.1} s; state dir holds {:.0} MiB",
        t.elapsed().as_secs_f64(),
        dir_bytes(dir.path()) as f64 / (1024.0 * 1024.0)
    );
    let first = Arc::new(Mutex::new(None));
    let started = build(1000, first.clone());
    let ended = Instant::now();
    let first = first.lock().unwrap().expect("new input produced output");
    println!(
        "restart to first output of new input: {:.3} s (whole resumed run {:.3} s)",
        (first - started).as_secs_f64(),
        (ended - started).as_secs_f64()
    );
}

/// List appends and map puts and gets per second through a keyed step
/// checkpointing to RocksDB (1 worker, 1 s epochs), vs a raw RocksDB loop
/// doing the same writes in one synced batch per epoch's worth.
fn lists_maps() {
    let records = env("BENCH_RECORDS", 20_000_000);
    let keys = env("BENCH_KEYS", 100_000);
    println!("## lists and maps: {records} records over {keys} keys, 1 worker, 8 B values");
    for kind in ["list append", "map get+put"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = args(1, Some(dir.path()));
        let started = Instant::now();
        let list = kind == "list append";
        Job::new("bench-lists", a)
            .expect("flags")
            .run(move |flow| {
                let items = (0..records).map(move |i| (i.wrapping_mul(0x9E37_79B9) % keys, i));
                let mut states = rill::States::new();
                let appended = states.list::<u64>("appended");
                let by_bucket = states.map::<u64, u64>("by-bucket");
                flow.source_iter_keyed("input", items)
                    .process("state", states, move |cx, v: u64| {
                        if list {
                            cx.list(appended).push(&v)?;
                        } else {
                            let bucket = v % 16;
                            let old = cx.map(by_bucket).get(&bucket)?.unwrap_or(0);
                            cx.map(by_bucket).put(&bucket, &(old + v))?;
                        }
                        Ok(())
                    })
                    .for_each("discard", |k, v: ()| {
                        std::hint::black_box((k, v));
                    });
            })
            .expect("job");
        let rill = records as f64 / started.elapsed().as_secs_f64();
        let raw = raw_loop(records, keys, list);
        println!(
            "{kind:>12}: Rill {rill:>12.0}/s  raw RocksDB {raw:>12.0}/s  ratio {:.2}",
            rill / raw
        );
    }
}

/// The raw RocksDB loop of [`lists_maps`]: per record a put (and for a map
/// a get first, from the batch being built or the store), synced every
/// 1,000,000 records (about an epoch's worth).
fn raw_loop(records: u64, keys: u64, list: bool) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let db = rocksdb::DB::open(&opts, dir.path()).expect("open");
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    let started = Instant::now();
    let mut batch = rocksdb::WriteBatch::default();
    let mut pending: std::collections::HashMap<Vec<u8>, u64> = Default::default();
    for i in 0..records {
        let key = i.wrapping_mul(0x9E37_79B9) % keys;
        let mut k = key.to_be_bytes().to_vec();
        if list {
            k.extend_from_slice(&i.to_be_bytes());
            batch.put(&k, i.to_le_bytes());
        } else {
            k.extend_from_slice(&(i % 16).to_be_bytes());
            let old = match pending.get(&k) {
                Some(v) => *v,
                None => db.get(&k).expect("get").map_or(0, |v| {
                    u64::from_le_bytes(v[..8].try_into().expect("8 bytes"))
                }),
            };
            pending.insert(k, old + i);
        }
        if (i + 1) % 1_000_000 == 0 {
            for (k, v) in pending.drain() {
                batch.put(&k, v.to_le_bytes());
            }
            db.write_opt(std::mem::take(&mut batch), &wo)
                .expect("write");
        }
    }
    for (k, v) in pending.drain() {
        batch.put(&k, v.to_le_bytes());
    }
    db.write_opt(batch, &wo).expect("write");
    records as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = ["throughput", "overhead", "lists-maps", "recovery"];
    let run: Vec<&str> = if picked.is_empty() {
        all.to_vec()
    } else {
        picked.iter().map(String::as_str).collect()
    };
    for name in run {
        match name {
            "throughput" => throughput(),
            "overhead" => overhead(),
            "recovery" => recovery(),
            "lists-maps" => lists_maps(),
            other => {
                eprintln!("unknown benchmark {other:?}; pick from {all:?}");
                std::process::exit(2);
            }
        }
    }
}
