//! State benchmarks (issue 3), all in-process, printing their figures:
//!
//! - `throughput`: events/s of `sum` and `count` per worker from an
//!   in-process source, 1 and 2 workers, no state dir (goal ≥ 1M/s/worker);
//! - `overhead`: `sum` per key over BENCH_RECORDS records with 1 s epochs,
//!   checkpointing to RocksDB vs no state dir (goal ≤ 5% slower); also
//!   apart, the time until the input ended and the time after it (the
//!   job's last checkpoint), so that the cost shows through a noisy machine;
//! - `recovery`: build ~BENCH_STATE_MB of state, then time a new job on the
//!   same state dir from start to the first output of new input (goal ≤ 3 s);
//! - `store`: put and get rates of `RocksStore` vs a raw RocksDB loop.
//!
//! ```text
//! cargo bench -p rill-benches --bench state -- [throughput|overhead|recovery|store]...
//! ```
//! Env: `BENCH_RECORDS` (default 10,000,000), `BENCH_KEYS` (100,000),
//! `BENCH_STATE_MB` (1024), `BENCH_WORKERS` (`1,2`), `BENCH_REPEAT` (5: runs
//! of each half of `overhead`, in pairs, every other pair in the other
//! order; the medians are compared),
//! `BENCH_EPOCH_MS` (1000: the epoch interval of `overhead` and
//! `throughput`; the goal is set for 1 s), `BENCH_MODE` (`plain` or
//! `durable`: run only that half of `overhead`,
//! for profiling), `BENCH_INGEST_FROM` (`--state-ingest-from`, default
//! 8192), `BENCH_IN_PROCESS` (`1`: run each `overhead` run in this
//! process rather than in a new process of its own), `BENCH_CONTROL`
//! (`1`: run the durable half of `overhead` without a state dir too, to
//! see how far the machine's noise alone moves its figures).

use rill::{Job, JobArgs};
use rill_state::{Batch, KvStore, RocksStore};
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
    /// From the moment the last worker's input ran out to the end: with
    /// state, mostly the job's last checkpoint.
    tail: f64,
}

/// Runs `op` per key over `records` generated records.
fn run_keyed(op: Op, records: u64, keys: u64, a: JobArgs) -> Timing {
    let started = Instant::now();
    let input_end = Arc::new(Mutex::new(started));
    let seen_end = input_end.clone();
    Job::new("bench", a)
        .expect("flags")
        .run(move |flow| {
            let seen_end = seen_end.clone();
            let mut ended = false;
            let end = std::iter::from_fn(move || {
                if !std::mem::replace(&mut ended, true) {
                    let mut at = seen_end.lock().unwrap_or_else(|p| p.into_inner());
                    *at = (*at).max(Instant::now());
                }
                None
            });
            let items = (0..records)
                .map(move |i| (i.wrapping_mul(0x9E37_79B9) % keys, 1u64))
                .chain(end);
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
    let input_end = *input_end.lock().unwrap_or_else(|p| p.into_inner());
    Timing {
        total: started.elapsed().as_secs_f64(),
        tail: input_end.elapsed().as_secs_f64(),
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

fn overhead() {
    let records = env("BENCH_RECORDS", 10_000_000);
    let keys = env("BENCH_KEYS", 100_000);
    let repeat = env("BENCH_REPEAT", 5).max(1);
    println!(
        "## checkpoint overhead: sum, {records} records, {keys} keys, {} ms epochs, \
         median of {repeat} pairs of runs",
        env("BENCH_EPOCH_MS", 1000)
    );
    let only = std::env::var("BENCH_MODE").unwrap_or_default();
    let in_process = env("BENCH_IN_PROCESS", 0) != 0;
    let control = env("BENCH_CONTROL", 0) != 0;
    if control {
        println!(
            "control (BENCH_CONTROL=1): the \"RocksDB checkpoints\" half runs without a \
             state dir too, so the figures below show the machine's noise alone"
        );
    }
    println!(
        "each run in {}",
        if in_process {
            "this process (BENCH_IN_PROCESS=1)"
        } else {
            "a process of its own, as a job runs"
        }
    );
    for workers in worker_counts() {
        let (mut plain, mut durable) = (Vec::new(), Vec::new());
        let (mut plain_tail, mut durable_tail) = (Vec::new(), Vec::new());
        let (mut plain_cpu, mut durable_cpu) = (Vec::new(), Vec::new());
        for pair in 0..repeat {
            // Every other pair runs the durable half first, so that what
            // one run leaves behind for the next (freed memory, a store
            // being deleted) weighs on both halves alike.
            let halves = if pair % 2 == 0 {
                ["plain", "durable"]
            } else {
                ["durable", "plain"]
            };
            for half in halves {
                if !only.is_empty() && only != half {
                    continue;
                }
                let durable_half = half == "durable";
                let with_state = durable_half && !control;
                let (t, cpu) = if in_process {
                    overhead_run(records, keys, workers, with_state)
                } else {
                    overhead_run_in_child(workers, with_state)
                };
                let (totals, tails, cpus) = if durable_half {
                    (&mut durable, &mut durable_tail, &mut durable_cpu)
                } else {
                    (&mut plain, &mut plain_tail, &mut plain_cpu)
                };
                cpus.push(cpu);
                totals.push(t.total);
                tails.push(t.tail);
            }
        }
        let (mut plain_before, mut durable_before) = (
            before_tail(&plain, &plain_tail),
            before_tail(&durable, &durable_tail),
        );
        // Each durable run against the plain run of its pair: robust to
        // the machine speeding up or slowing down between pairs.
        let per_pair = |plain: &[f64], durable: &[f64]| -> Vec<f64> {
            plain
                .iter()
                .zip(durable)
                .map(|(p, d)| (d / p - 1.0) * 100.0)
                .collect()
        };
        let mut ratios = per_pair(&plain, &durable);
        let mut ratios_before = per_pair(&plain_before, &durable_before);
        let (p, d) = (Spread::of(&mut plain), Spread::of(&mut durable));
        let r = Spread::of(&mut ratios);
        if !ratios.is_empty() {
            println!(
                "{workers} worker(s): overhead per pair of runs: median {:+.1}% ({:+.1}% to {:+.1}%); \
                 95% confidence interval of the median {}",
                r.median,
                r.min,
                r.max,
                median_interval(&ratios)
            );
            let rb = Spread::of(&mut ratios_before);
            println!(
                "{workers} worker(s), until the input ended, per pair: median {:+.1}%; \
                 95% confidence interval of the median {}",
                rb.median,
                median_interval(&ratios_before)
            );
        }
        println!(
            "{workers} worker(s): no state dir {p}; RocksDB checkpoints {d}; overhead {:+.1}% (medians)",
            (d.median / p.median - 1.0) * 100.0
        );
        // The two phases apart. Before the input ends, the runs differ by
        // the machine's noise (and by what state costs per record); after
        // it, by the last checkpoint, which the noise barely touches.
        let (pb, db) = (
            Spread::of(&mut plain_before),
            Spread::of(&mut durable_before),
        );
        println!(
            "{workers} worker(s), until the input ended: no state dir {pb}; RocksDB checkpoints {db}; \
             {:+.1}% (medians)",
            (db.median / pb.median - 1.0) * 100.0
        );
        let (pt, dt) = (Spread::of(&mut plain_tail), Spread::of(&mut durable_tail));
        println!(
            "{workers} worker(s), after the input ended: no state dir {:.1} ms; RocksDB checkpoints \
             {:.1} ms ({:.1}-{:.1}); the difference is {:.1}% of the plain run (medians)",
            pt.median * 1e3,
            dt.median * 1e3,
            dt.min * 1e3,
            dt.max * 1e3,
            (dt.median - pt.median) / p.median * 100.0
        );
        let (p, d) = (Spread::of(&mut plain_cpu), Spread::of(&mut durable_cpu));
        println!(
            "{workers} worker(s), CPU time (all threads): no state dir {p}; RocksDB checkpoints {d}; \
             {:+.1}% (medians)",
            (d.median / p.median - 1.0) * 100.0
        );
    }
}

/// One run of `overhead`: `sum` with or without a (new) state dir.
/// Returns its timing and the CPU seconds of all threads during it.
fn overhead_run(records: u64, keys: u64, workers: usize, durable: bool) -> (Timing, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state_dir = durable.then(|| dir.path());
    let cpu = cpu_seconds();
    let t = run_keyed(Op::Sum, records, keys, args(workers, state_dir));
    (t, cpu_seconds() - cpu)
}

/// The line a child prints its run's figures on.
const RUN_LINE: &str = "overhead-run:";

/// [`overhead_run`] in a new process (this binary, `overhead-run`), as a
/// job runs: no memory, allocator arena or thread left by an earlier run
/// favours one half of a pair over the other.
fn overhead_run_in_child(workers: usize, durable: bool) -> (Timing, f64) {
    let exe = std::env::current_exe().expect("the bench's own path");
    let out = std::process::Command::new(exe)
        .arg("overhead-run")
        .env("BENCH_RUN_WORKERS", workers.to_string())
        .env("BENCH_RUN_DURABLE", u8::from(durable).to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("start a run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<f64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RUN_LINE))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    match (out.status.success(), figures.as_slice()) {
        (true, &[total, tail, cpu]) => (Timing { total, tail }, cpu),
        _ => panic!("a run failed ({}): {stdout}", out.status),
    }
}

/// The child's side of [`overhead_run_in_child`].
fn overhead_child() {
    let workers = env("BENCH_RUN_WORKERS", 1) as usize;
    let durable = env("BENCH_RUN_DURABLE", 0) != 0;
    let (t, cpu) = overhead_run(
        env("BENCH_RECORDS", 10_000_000),
        env("BENCH_KEYS", 100_000),
        workers,
        durable,
    );
    println!("{RUN_LINE} {} {} {cpu}", t.total, t.tail);
}

/// A 95% confidence interval for the median of `sorted` percentages,
/// free of any assumption about their distribution: the order statistics
/// at n/2 ∓ 0.98·√n (the binomial count of values below the median, by
/// its normal approximation). Too few values for one: "n/a".
fn median_interval(sorted: &[f64]) -> String {
    let n = sorted.len() as f64;
    let half_width = 0.98 * n.sqrt();
    let low = (n / 2.0 - half_width).floor();
    let high = (n / 2.0 + half_width).ceil();
    if n < 6.0 || low < 0.0 || high > n - 1.0 {
        return "n/a (too few pairs)".into();
    }
    format!(
        "{:+.1}% to {:+.1}%",
        sorted[low as usize], sorted[high as usize]
    )
}

/// Each run's time until its input ended.
fn before_tail(totals: &[f64], tails: &[f64]) -> Vec<f64> {
    totals.iter().zip(tails).map(|(t, tail)| t - tail).collect()
}

/// The median and range of repeated timings.
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(times: &mut [f64]) -> Self {
        if times.is_empty() {
            return Spread {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        times.sort_by(f64::total_cmp);
        Spread {
            median: times[times.len() / 2],
            min: times[0],
            max: times[times.len() - 1],
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} s ({:.2}-{:.2})", self.median, self.min, self.max)
    }
}

/// User plus system CPU time of this process so far, every thread
/// included (from `/proc/self/stat`, in clock ticks of 1/100 s); NaN
/// where that file is missing.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th of the whole line.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
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

/// Put and get rates of `RocksStore` vs a raw RocksDB loop, with synced
/// batches of 1,000 (written through the log) and of 100,000 changes
/// (ingested as table files by `RocksStore`).
fn store() {
    store_rates(1000);
    store_rates(100_000);
}

fn store_rates(batch_size: u64) {
    const N: u64 = 1_000_000;
    let value = vec![7u8; 100];
    let key = |i: u64| format!("key-{:012}", i.wrapping_mul(0x9E37_79B9) % (4 * N)).into_bytes();
    println!(
        "## store: {N} puts (synced batches of {batch_size}), then {N} gets, 16 B keys, 100 B values"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let store = RocksStore::open(dir.path()).expect("open");
    let t = Instant::now();
    for b in 0..N / batch_size {
        let mut batch = Batch::new();
        for i in b * batch_size..(b + 1) * batch_size {
            batch.put(key(i), value.clone());
        }
        store.write(batch).expect("write");
    }
    let put = N as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut found = 0;
    for i in 0..N {
        found += usize::from(store.get(&key(i * 7 % N)).expect("get").is_some());
    }
    let get = N as f64 / t.elapsed().as_secs_f64();
    assert_eq!(found as u64, N);
    println!("RocksStore:    {put:>12.0} puts/s  {get:>12.0} gets/s");
    drop(store);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let db = rocksdb::DB::open(&opts, dir.path()).expect("open");
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(true);
    let t = Instant::now();
    for b in 0..N / batch_size {
        let mut batch = rocksdb::WriteBatch::default();
        for i in b * batch_size..(b + 1) * batch_size {
            batch.put(key(i), &value);
        }
        db.write_opt(batch, &wo).expect("write");
    }
    let raw_put = N as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut found = 0;
    for i in 0..N {
        found += usize::from(db.get(key(i * 7 % N)).expect("get").is_some());
    }
    let raw_get = N as f64 / t.elapsed().as_secs_f64();
    assert_eq!(found as u64, N);
    println!("raw RocksDB:   {raw_put:>12.0} puts/s  {raw_get:>12.0} gets/s");
    println!(
        "ratio:         {:>12.2}          {:>12.2}",
        put / raw_put,
        get / raw_get
    );
}

fn main() {
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = ["throughput", "overhead", "store", "recovery"];
    let run: Vec<&str> = if picked.is_empty() {
        all.to_vec()
    } else {
        picked.iter().map(String::as_str).collect()
    };
    for name in run {
        match name {
            "throughput" => throughput(),
            "overhead" => overhead(),
            // One run of `overhead`, in a process of its own.
            "overhead-run" => overhead_child(),
            "recovery" => recovery(),
            "store" => store(),
            other => {
                eprintln!("unknown benchmark {other:?}; pick from {all:?}");
                std::process::exit(2);
            }
        }
    }
}
