//! Stopping a job gracefully: its sources end where they are, the last
//! checkpoint holds exactly what they read, and a run started again with
//! the same state directory continues with nothing read twice or lost.

use rill::{Collector, Job, JobArgs};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

const KEYS: u64 = 100;

fn record(i: u64) -> (String, u64) {
    (format!("key-{:03}", i % KEYS), 1)
}

/// Runs `job`, whose source is `items`, and returns what `sum` emitted; a
/// job still running after a minute fails the test instead of hanging it.
fn run_sum<I>(job: Job, items: I) -> Vec<(String, u64)>
where
    I: Iterator<Item = (String, u64)> + Clone + Send + Sync + 'static,
{
    let out = Collector::new();
    let sink = out.clone();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let result = job.run(move |flow| {
            flow.source_iter_keyed("input", items.clone())
                .sum("totals")
                .collect("out", &sink);
        });
        let _ = done.send(result);
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(result) => result.expect("the job failed"),
        Err(_) => panic!("the job did not stop within a minute"),
    }
    out.take()
}

/// Each key's updates, in value order.
fn per_key(out: &[(String, u64)]) -> BTreeMap<String, Vec<u64>> {
    let mut keys: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (k, v) in out {
        keys.entry(k.clone()).or_default().push(*v);
    }
    for updates in keys.values_mut() {
        updates.sort_unstable();
    }
    keys
}

#[test]
fn a_stopped_job_checkpoints_what_it_read_and_the_next_run_continues_exactly() {
    const TOTAL: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let args = JobArgs {
        workers: 2,
        epoch_interval: Duration::from_millis(20),
        state_dir: Some(dir.path().to_owned()),
        ..JobArgs::default()
    };

    // Run 1: an endless source, stopped once it has produced 200,000 items.
    let job = Job::new("stop-test", args.clone()).unwrap();
    let stop = job.stop_handle();
    let endless = (0u64..).map(move |i| {
        if i == 200_000 {
            stop.stop();
        }
        record(i)
    });
    let first = run_sum(job, endless);
    let read = first.len() as u64;
    assert!(read >= 100_000, "stopped after only {read} records");
    assert!(read < TOTAL, "read {read} records before stopping");
    // Every record read was summed once: each key counts 1, 2, 3, ...
    for (key, updates) in per_key(&first) {
        let expected: Vec<u64> = (1..=updates.len() as u64).collect();
        assert_eq!(updates, expected, "updates of {key} in the first run");
    }

    // Run 2: the same items, now ending at TOTAL, on the same state.
    let job = Job::new("stop-test", args).unwrap();
    let second = run_sum(job, (0..TOTAL).map(record));
    assert_eq!(
        second.len() as u64,
        TOTAL - read,
        "the second run reads exactly what the first did not"
    );
    let mut all = first;
    all.extend(second);
    let per_key = per_key(&all);
    assert_eq!(per_key.len() as u64, KEYS);
    for (key, updates) in per_key {
        let expected: Vec<u64> = (1..=TOTAL / KEYS).collect();
        assert_eq!(updates, expected, "updates of {key} over both runs");
    }
}
