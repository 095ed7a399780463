//! `--group-id`: once a checkpoint is complete, its source offsets are
//! committed to the consumer group, so lag tools see the job. After a job
//! that read its whole input, the group's committed offsets are the
//! checkpoint's positions: every partition's end.

use rill::testing::kafka::{bootstrap, committed, create_topic, produce, read_topic, unique_topic};
use std::process::Command;

#[test]
fn the_group_holds_the_offsets_of_the_last_complete_checkpoint() {
    let brokers = bootstrap();
    let (input, output) = (unique_topic("group-in"), unique_topic("group-out"));
    create_topic(&brokers, &input, 4);
    create_topic(&brokers, &output, 4);
    let records: Vec<(String, String)> = (0..20_000)
        .map(|i| (format!("k{}", i % 101), (i % 7).to_string()))
        .collect();
    produce(
        &brokers,
        &input,
        records
            .iter()
            .map(|(k, v)| (Some(k.as_bytes()), v.as_bytes())),
    );
    let group = unique_topic("rill-group");
    let state = tempfile::tempdir().unwrap();
    assert_eq!(committed(&brokers, &group, &input, 4), vec![None; 4]);
    let out = Command::new(env!("CARGO_BIN_EXE_key_sums"))
        .args([
            "--brokers",
            &brokers,
            "--input",
            &input,
            "--output",
            &output,
        ])
        .args(["--group-id", &group, "--stop-at-end", "-w", "2"])
        .args(["--epoch-interval", "100ms", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each partition's end: after its last record (the test broker's
    // watermarks under-report, see FACTS.md).
    let mut ends = vec![None; 4];
    for r in read_topic(&brokers, &input) {
        ends[r.partition as usize] = Some(r.offset + 1);
    }
    assert_eq!(ends.iter().flatten().sum::<i64>(), 20_000);
    assert_eq!(committed(&brokers, &group, &input, 4), ends);
}

#[test]
fn a_group_id_without_a_state_dir_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_key_sums"))
        .args(["--brokers", &bootstrap(), "--input", "i", "--output", "o"])
        .args(["--group-id", "g"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --state-dir"));
}
