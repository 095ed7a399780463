//! The crash test of a windowed join: Nexmark q8 (persons joined with the
//! auctions they opened in the same 10 s window) read from a topic of the
//! real broker, killed with SIGKILL at random moments (at least one inside
//! a checkpoint write) and restarted on the same state directory. Every
//! result of an uninterrupted run must be in the crashed runs' output
//! (at-least-once: duplicates are allowed).

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::Running;
use rill::testing::kafka::{bootstrap, create_topic, read_topic, unique_topic};

const EVENTS: &str = "300000";

fn nexmark(brokers: &str, workers: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nexmark"));
    command
        .args([
            "--brokers",
            brokers,
            "-w",
            workers,
            "--epoch-interval",
            "100ms",
        ])
        .args(args);
    command
}

/// Runs q8 from `input` to `output` on `state`, to the end of the input.
fn q8(brokers: &str, input: &str, output: &str, state: &std::path::Path) -> Command {
    let mut command = nexmark(brokers, "2", &["--query", "q8", "--topic", input]);
    command
        .args(["--to-topic", output, "--stop-at-end", "--state-dir"])
        .arg(state);
    command
}

fn results(brokers: &str, topic: &str) -> Vec<String> {
    (read_topic(brokers, topic).into_iter())
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

#[test]
fn a_windowed_join_survives_repeated_sigkill() {
    let brokers = bootstrap();
    let input = unique_topic("q8-in");
    let (clean, crashed) = (unique_topic("q8-clean"), unique_topic("q8-crashed"));
    for topic in [&input, &clean, &crashed] {
        create_topic(&brokers, topic, 4);
    }
    // One generating worker: each partition's events are in time order,
    // so no event is behind its partition's watermark, in any run.
    let generated = nexmark(
        &brokers,
        "1",
        &["--generate-to", &input, "--events", EVENTS],
    )
    .status()
    .unwrap();
    assert!(generated.success(), "generating the events failed");

    let state = tempfile::tempdir().unwrap();
    let status = q8(&brokers, &input, &clean, &state.path().join("clean"))
        .status()
        .unwrap();
    assert!(status.success(), "the uninterrupted run failed");
    let expected: BTreeSet<String> = results(&brokers, &clean).into_iter().collect();
    assert!(
        expected.len() > 100,
        "q8 found {} new sellers",
        expected.len()
    );

    let dir = state.path().join("crashed");
    let start = || Running::spawn(q8(&brokers, &input, &crashed, &dir));
    let (kills, _) = common::kill_repeatedly(start, 5, 400);
    let status = start().child.wait().unwrap();
    assert!(status.success(), "the final run failed: {status}");

    let got = results(&brokers, &crashed);
    let seen: BTreeSet<&String> = got.iter().collect();
    let missing: Vec<&String> = expected.iter().filter(|r| !seen.contains(r)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} results lost after {kills} kills, e.g. {:?}",
        missing.len(),
        expected.len(),
        missing.first()
    );
    eprintln!(
        "{} results, {} written after {kills} kills ({} duplicates)",
        expected.len(),
        got.len(),
        got.len() - seen.len()
    );
}
