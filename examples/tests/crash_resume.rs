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
use rill::testing::kafka::{bootstrap, create_topic, unique_topic};

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

    let topics = (input_topic.as_str(), output_topic.as_str());
    let (kills, _) = common::kill_repeatedly(|| start(&brokers, topics, state.path()), 6, 250);

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
