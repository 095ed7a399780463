//! `--max-watermark-drift`: a source worker that runs far ahead in event
//! time waits for the other workers of its process, and without the flag it
//! does not. Worker 0 generates records 10 ms of event time apart, worker 1
//! 1 ms apart and more slowly; a step right after the
//! source (on the same worker) watches how far worker 0 is ahead of worker
//! 1 while worker 1 still has records to read.

use std::sync::Mutex;
use std::time::Duration;

use rill::{Job, JobArgs};

const RECORDS: u64 = 100_000;

/// The latest event time each worker read, and the widest gap seen.
static SEEN: Mutex<([u64; 2], u64)> = Mutex::new(([0, 0], 0));

/// The widest lead of worker 0 over worker 1 in event time (ms).
fn widest_lead(drift: Option<Duration>) -> u64 {
    *SEEN.lock().unwrap() = ([0, 0], 0);
    let args = JobArgs {
        workers: 2,
        epoch_interval: Duration::from_millis(50),
        max_watermark_drift: drift,
        ..JobArgs::default()
    };
    Job::new("align", args)
        .unwrap()
        .run(|flow| {
            flow.source_generated("events", Duration::ZERO, |w, _| {
                let apart = if w == 0 { 10 } else { 1 };
                (0..RECORDS).map(move |i| {
                    // Worker 1 is also the slower one to read.
                    if w == 1 && i % 100 == 0 {
                        std::thread::sleep(Duration::from_micros(500));
                    }
                    (i * apart, (w, i * apart))
                })
            })
            .inspect("watch", |_, &(w, t)| {
                let mut seen = SEEN.lock().unwrap();
                seen.0[w] = t;
                let [first, second] = seen.0;
                // Once worker 1 is done, worker 0 may run on alone.
                if second < RECORDS - 1 {
                    seen.1 = seen.1.max(first.saturating_sub(second));
                }
            })
            .for_each("discard", |_, _| {});
        })
        .unwrap();
    SEEN.lock().unwrap().1
}

#[test]
fn a_source_worker_ahead_by_more_than_the_drift_waits_for_the_others() {
    let free = widest_lead(None);
    // A source reads 1,024 records per poll: 10 s of worker 0's event
    // time. Waiting starts at the first poll more than 1 s ahead.
    let aligned = widest_lead(Some(Duration::from_secs(1)));
    assert!(
        free > 200_000,
        "without alignment worker 0 ran only {free} ms ahead"
    );
    assert!(
        aligned < 40_000,
        "aligned, worker 0 still ran {aligned} ms ahead (free: {free})"
    );
}
