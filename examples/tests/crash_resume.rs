//! The crash test: `key_sums` (sum per key, 2 workers) over 1,000,000
//! records on a 4-partition topic of the real broker is killed with SIGKILL
//! at random moments — some right as a checkpoint write starts — and
//! restarted each time with the same state directory. Once the input is
//! drained, every key's final sum must equal that of an uninterrupted run,
//! and the output must hold every update of an uninterrupted run at least
//! once (duplicates are allowed: delivery here is at-least-once).

mod common;

use common::{
    every_update_at_least_once, has_every_update, input, output_when, produce_input, uninterrupted,
    Running,
};
use rand::Rng;
use rill::testing::kafka::{bootstrap, create_topic, unique_topic};
use std::time::Duration;

const RECORDS: u64 = 1_000_000;
const KEYS: u64 = 5_000;

/// Starts `key_sums` to the end of its input.
fn start(brokers: &str, topics: (&str, &str), state: &std::path::Path) -> Running {
    Running::start(brokers, topics, state, &["--stop-at-end"])
}

#[test]
fn sum_survives_repeated_sigkill() {
    let brokers = bootstrap();
    let (input_topic, output_topic) = (unique_topic("crash-in"), unique_topic("crash-out"));
    create_topic(&brokers, &input_topic, 4);
    create_topic(&brokers, &output_topic, 4);
    let records = input(RECORDS, KEYS);
    produce_input(&brokers, &input_topic, &records);
    let expected = uninterrupted(&records);
    let state = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();

    let mut kills = 0;
    let mut mid_write = 0;
    let mut attempts = 0;
    while (kills < 6 || mid_write == 0) && attempts < 24 {
        attempts += 1;
        let topics = (input_topic.as_str(), output_topic.as_str());
        let mut run = start(&brokers, topics, state.path());
        // Wait until it makes progress (its first checkpoint write), then
        // kill it: at once (inside that write) or a random moment later.
        let _ = run.wait_for("checkpoint: writing epoch", Duration::from_secs(10));
        if attempts % 2 == 1 {
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..250)));
        }
        if let Some(status) = run.child.try_wait().unwrap() {
            let log: Vec<String> = run.lines.try_iter().collect();
            assert!(
                status.success(),
                "key_sums failed: {status}\n{}",
                log.join("\n")
            );
            break; // finished before we could kill it
        }
        run.child.kill().unwrap(); // SIGKILL
        run.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        kills += 1;
        if run.killed_mid_write() {
            mid_write += 1;
        }
    }
    assert!(kills >= 5, "the job finished before 5 kills ({kills})");
    assert!(
        mid_write >= 1,
        "no kill landed during a checkpoint write in {kills} kills"
    );
    eprintln!("killed {kills} times, {mid_write} during a checkpoint write");

    // Run to the end.
    let topics = (input_topic.as_str(), output_topic.as_str());
    let mut last = start(&brokers, topics, state.path());
    let status = last.child.wait().unwrap();
    assert!(status.success(), "the final run failed: {status}");

    let got = output_when(&brokers, &output_topic, |got| {
        has_every_update(&expected, got)
    });
    let duplicates = every_update_at_least_once(&expected, &got);
    eprintln!("{duplicates} duplicate updates after {kills} crashes");
}
