//! Bounded state over a long run: 10,000,000 events over 100,000 keys,
//! their event times spread over 5,000 s (5,000 one-second windows), up
//! to 500 ms out of order, with 1 s checkpoints to RocksDB. The windowed
//! steps and the windowed join keep only open windows: their state
//! entries (`rill_state_keys`, sampled every 100 ms) peak at what the
//! open windows hold and end near zero after the final watermark.
//!
//! `cargo bench -p rill-benches --bench bounded_state -- [windows] [join]`
//! Env: `BENCH_EVENTS` (10,000,000), `BENCH_KEYS` (100,000),
//! `BENCH_SPAN_S` (5,000), `BENCH_WORKERS` (2), `BENCH_EPOCH_MS` (1,000),
//! `BENCH_EPOCH_RECORDS` (20,000; 0: no limit).
//!
//! Watermarks advance at epoch closes, so the state peaks at the windows
//! that the input of the epochs in flight opens: the generator produces
//! far faster than real time, so each source worker closes an epoch after
//! `BENCH_EPOCH_RECORDS` records (`--epoch-max-records`).

mod state_entries;

use rill::{Job, JobArgs, JoinKind, Windows};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The workload's shape.
#[derive(Clone, Copy)]
struct Load {
    events: u64,
    keys: u64,
    span_ms: u64,
}

/// How far behind the newest event time an event may be (ms).
const OUT_OF_ORDER_MS: u64 = 500;

impl Load {
    /// Event `i`: its event time and key.
    fn event(&self, i: u64) -> (u64, u64) {
        let time = (i as u128 * self.span_ms as u128 / self.events as u128) as u64;
        let time = time.saturating_sub(i.wrapping_mul(7919) % OUT_OF_ORDER_MS);
        let key = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) % self.keys;
        (time, key)
    }

    /// Worker `w` of `n`'s share of the events `i` with `i % 2 == side`
    /// (every event: `None`).
    fn share(self, w: usize, n: usize, side: Option<u64>) -> impl Iterator<Item = (u64, u64)> {
        (w as u64..self.events)
            .step_by(n)
            .filter(move |i| side.is_none_or(|s| i % 2 == s))
            .map(move |i| self.event(i))
    }
}

fn run(what: &str, load: Load, workers: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let args = JobArgs {
        workers,
        epoch_interval: Duration::from_millis(env("BENCH_EPOCH_MS", 1000)),
        epoch_max_records: Some(env("BENCH_EPOCH_RECORDS", 20_000)).filter(|&n| n > 0),
        state_dir: Some(dir.path().to_owned()),
        ..JobArgs::default()
    };
    let job = Job::new("bounded-state", args).expect("flags");
    let watch = state_entries::Watch::start(job.metrics());
    let results = Arc::new(AtomicU64::new(0));
    let counted = results.clone();
    let what_ = what.to_owned();
    let ooo = Duration::from_millis(OUT_OF_ORDER_MS);
    let second = Duration::from_secs(1);
    let started = Instant::now();
    job.run(move |flow| {
        let counted = counted.clone();
        let count = move |_: u64, _: ()| {
            counted.fetch_add(1, Ordering::Relaxed);
        };
        if what_ == "windows" {
            let keyed = flow
                .source_generated("events", ooo, move |w, n| load.share(w, n, None))
                .key_by("by-key", |k| *k);
            let tumbling = keyed.clone().window(Windows::tumbling(second));
            let hopping = keyed.clone().window(Windows::hopping(4 * second, second));
            let sessions = keyed.window(Windows::session(10 * second));
            tumbling
                .count("tumbling-count")
                .merge(
                    "results",
                    [
                        hopping.count("hopping-count"),
                        sessions.count("session-count"),
                    ],
                )
                .map("result", |_| ())
                .for_each("count", count);
        } else {
            let left = flow
                .source_generated("left", ooo, move |w, n| load.share(w, n, Some(0)))
                .key_by("left-by-key", |k| *k);
            let right = flow
                .source_generated("right", ooo, move |w, n| load.share(w, n, Some(1)))
                .key_by("right-by-key", |k| *k);
            left.window_join(
                "outer-join",
                right,
                Windows::tumbling(second),
                JoinKind::Outer,
                Duration::ZERO,
            )
            .map("result", |_| ())
            .for_each("count", count);
        }
    })
    .expect("job");
    let secs = started.elapsed().as_secs_f64();
    let (peak, end) = watch.finish();
    println!(
        "{what}, {workers} worker(s), {} ms epochs of at most {:?} records: {} events over {} keys and {} s of event time in {secs:.1} s ({:.0} events/s); {} results; state entries peak {peak}, at the end {end}",
        env("BENCH_EPOCH_MS", 1000),
        Some(env("BENCH_EPOCH_RECORDS", 20_000)).filter(|&n| n > 0),
        load.events,
        load.keys,
        load.span_ms / 1000,
        load.events as f64 / secs,
        results.load(Ordering::Relaxed),
    );
}

fn main() {
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = ["windows", "join"];
    let load = Load {
        events: env("BENCH_EVENTS", 10_000_000),
        keys: env("BENCH_KEYS", 100_000).max(1),
        span_ms: env("BENCH_SPAN_S", 5_000).max(1) * 1000,
    };
    let workers = env("BENCH_WORKERS", 2).max(1) as usize;
    if let Some(p) = picked.iter().find(|p| !all.contains(&p.as_str())) {
        eprintln!("unknown run {p:?}; pick from {all:?}");
        std::process::exit(2);
    }
    for what in all {
        if picked.is_empty() || picked.iter().any(|p| p == what) {
            run(what, load, workers);
        }
    }
}
