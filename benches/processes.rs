//! The cost of crossing processes: Nexmark q7 (highest bid per 10 s
//! tumbling window, `examples/nexmark/queries.rs`) over the in-process
//! generator, as 1 process × 2 workers and as 2 processes × 1 worker on
//! this machine (timely's TCP between the processes), no state directory.
//! Prints events/s for each, wall time from start to the last process's
//! exit. The bench runs itself as the two processes.
//!
//! `cargo bench -p rill-benches --bench processes`; `BENCH_EVENTS`
//! (default 30,000,000).

#[path = "../examples/nexmark/queries.rs"]
#[allow(dead_code)]
mod queries;

use rill::{Job, JobArgs};
use std::process::Command;
use std::time::{Duration, Instant};

/// Set in the child processes: their process index.
const CHILD: &str = "RILL_BENCH_PROCESS";

fn events() -> u64 {
    std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(30_000_000)
}

/// Runs q7 over `events` generated events with `args`.
fn q7(args: JobArgs, events: u64) {
    Job::new("processes", args)
        .expect("flags")
        .run(move |flow| {
            let input = flow.source_generated("generator", Duration::ZERO, move |w, n| {
                queries::generate(w, n, Some(events))
            });
            queries::q7(input).for_each("discard", |k, v| {
                std::hint::black_box((k, v));
            });
        })
        .expect("job");
}

fn main() {
    let events = events();
    if let Ok(p) = std::env::var(CHILD) {
        let hosts = std::env::var("RILL_HOSTS").expect("hosts");
        let args = JobArgs {
            processes: 2,
            process_id: p.parse().expect("a process index"),
            hosts: Some(hosts.into()),
            ..JobArgs::default()
        };
        return q7(args, events);
    }
    let started = Instant::now();
    q7(
        JobArgs {
            workers: 2,
            ..JobArgs::default()
        },
        events,
    );
    let one = started.elapsed().as_secs_f64();
    println!(
        "q7, 1 process x 2 workers: {events} events in {one:.1} s: {:.0} events/s",
        events as f64 / one
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let hosts = dir.path().join("hosts.txt");
    rill::testing::write_local_hosts(&hosts, 2).expect("a hosts file");
    let me = std::env::current_exe().expect("this bench");
    let started = Instant::now();
    let children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(&me)
                .env(CHILD, p.to_string())
                .env("RILL_HOSTS", &hosts)
                .env("BENCH_EVENTS", events.to_string())
                .spawn()
                .expect("start a process")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("wait").success(), "a process failed");
    }
    let two = started.elapsed().as_secs_f64();
    println!(
        "q7, 2 processes x 1 worker: {events} events in {two:.1} s: {:.0} events/s ({:.2} of one process)",
        events as f64 / two,
        one / two
    );
}
