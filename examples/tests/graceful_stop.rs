//! SIGTERM stops `key_sums` gracefully in the middle of its input (sum
//! per key, 2 workers, a 4-partition topic of the real broker): it exits
//! with success after a last checkpoint, and a run started again with the
//! same state directory finishes the input. Unlike after a crash, the
//! output then holds every update of an uninterrupted run exactly once.

mod common;

use common::{input, output, produce_input, uninterrupted, Running};
use rill::testing::kafka::{bootstrap, create_topic, unique_topic};
use std::time::{Duration, Instant};

const RECORDS: u64 = 300_000;
const KEYS: u64 = 1_000;

/// Sends SIGTERM to `run` (through the shell's `kill`, present everywhere).
fn terminate(run: &Running) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kill -TERM {}", run.child.id()))
        .status()
        .expect("run sh");
    assert!(status.success(), "kill -TERM failed: {status}");
}

#[test]
fn sigterm_stops_with_a_last_checkpoint_and_the_next_run_repeats_nothing() {
    let brokers = bootstrap();
    let (input_topic, output_topic) = (unique_topic("stop-in"), unique_topic("stop-out"));
    create_topic(&brokers, &input_topic, 4);
    create_topic(&brokers, &output_topic, 4);
    let records = input(RECORDS, KEYS);
    produce_input(&brokers, &input_topic, &records);
    let state = tempfile::tempdir().unwrap();
    let topics = (input_topic.as_str(), output_topic.as_str());

    // Without --stop-at-end the job would run forever: stop it once it
    // has written its first checkpoint.
    let mut run = Running::start(&brokers, topics, state.path(), &[]);
    assert!(
        run.wait_for("checkpoint: prepared epoch", Duration::from_secs(30)),
        "key_sums wrote no checkpoint"
    );
    terminate(&run);
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        if asked.elapsed() > Duration::from_secs(30) {
            let _ = run.child.kill();
            panic!("key_sums did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stopped_in = asked.elapsed();
    let log: Vec<String> = run.lines.try_iter().collect();
    assert!(
        status.success(),
        "after SIGTERM: {status}\n{}",
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.contains("stopped on request")),
        "no stop in the log:\n{}",
        log.join("\n")
    );
    let stopped_after = output(&brokers, &output_topic)
        .values()
        .map(Vec::len)
        .sum::<usize>();
    eprintln!("stopped after {stopped_after} of {RECORDS} records, {stopped_in:.1?} after SIGTERM");

    // Run to the end of the input on the same state.
    let mut last = Running::start(&brokers, topics, state.path(), &["--stop-at-end"]);
    let status = last.child.wait().unwrap();
    let log: Vec<String> = last.lines.try_iter().collect();
    assert!(
        status.success(),
        "the second run failed: {status}\n{}",
        log.join("\n")
    );

    let expected = uninterrupted(&records);
    let got = output(&brokers, &output_topic);
    assert_eq!(got.len(), expected.len(), "keys in the output");
    for (key, updates) in &expected {
        assert_eq!(&got[key], updates, "the updates of {key}, in order");
    }
}
