//! Nexmark q5, q7 and q8 (`examples/nexmark/queries.rs`) over the
//! in-process generator, with 1 s checkpoints to RocksDB: events per
//! second per worker, and the peak and final state entries of the query's
//! stateful steps (`rill_state_keys`, sampled every 100 ms).
//!
//! `cargo bench -p rill-benches --bench nexmark -- [q5] [q7] [q8]`
//! Env: `BENCH_EVENTS` (40,000,000), `BENCH_WORKERS` (`1,2`),
//! `BENCH_EPOCH_MS` (1000), `BENCH_DRIFT_MS` (`--max-watermark-drift`, off).

#[path = "../examples/nexmark/queries.rs"]
#[allow(dead_code)]
mod queries;
mod state_entries;

use rill::{Job, JobArgs};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn run(query: &str, workers: usize, events: u64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let args = JobArgs {
        workers,
        epoch_interval: Duration::from_millis(env("BENCH_EPOCH_MS", 1000)),
        state_dir: Some(dir.path().to_owned()),
        max_watermark_drift: std::env::var("BENCH_DRIFT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis),
        ..JobArgs::default()
    };
    let job = Job::new("nexmark", args).expect("flags");
    let watch = state_entries::Watch::start(job.metrics());
    let query = query.to_owned();
    let q = query.clone();
    let started = Instant::now();
    job.run(move |flow| {
        let input = flow.source_generated("generator", Duration::ZERO, move |w, n| {
            queries::generate(w, n, Some(events))
        });
        fn discard<K, V>(k: K, v: V) {
            std::hint::black_box((k, v));
        }
        match q.as_str() {
            "q5" => queries::q5(input).for_each("discard", discard),
            "q7" => queries::q7(input).for_each("discard", discard),
            _ => queries::q8(input).for_each("discard", discard),
        }
    })
    .expect("job");
    let secs = started.elapsed().as_secs_f64();
    let (peak, last) = watch.finish();
    let rate = events as f64 / secs;
    println!(
        "{query}, {workers} worker(s): {events} events in {secs:.1} s: {:.0} events/s, {:.0} per worker; state entries peak {peak}, at the end {last}",
        rate,
        rate / workers as f64,
    );
}

fn main() {
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = ["q5", "q7", "q8"];
    let queries: Vec<&str> = if picked.is_empty() {
        all.to_vec()
    } else {
        picked.iter().map(String::as_str).collect()
    };
    let workers: Vec<usize> = match std::env::var("BENCH_WORKERS") {
        Ok(w) => w.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![1, 2],
    };
    let events = env("BENCH_EVENTS", 40_000_000);
    for q in queries {
        if !all.contains(&q) {
            eprintln!("unknown query {q:?}; pick from {all:?}");
            std::process::exit(2);
        }
        for &w in &workers {
            run(q, w, events);
        }
    }
}
