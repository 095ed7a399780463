//! Durable state across two processes: `key_sums` with `-n 2 -w 1` and one
//! state directory (a store per process) runs to the end of its input, more
//! input arrives, and a second run resumes at the epoch both processes agree
//! on: every key's sum continues, and nothing read before is read again.

use rill::testing::kafka::{bootstrap, create_topic, produce, read_topic, unique_topic};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn run_two_processes(brokers: &str, input: &str, output: &str, state: &Path) {
    let hosts = state.join("hosts.txt");
    rill::testing::write_local_hosts(&hosts, 2).unwrap();
    let children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_key_sums"))
                .args(["--brokers", brokers, "--input", input, "--output", output])
                .arg("--state-dir")
                .arg(state.join("state"))
                .args(["-n", "2", "-w", "1", "-p", &p.to_string(), "--stop-at-end"])
                .args(["--epoch-interval", "100ms"])
                .arg("--hosts")
                .arg(&hosts)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        let status = c.wait().unwrap();
        assert!(status.success(), "a key_sums process failed: {status}");
    }
}

fn batch(from: u64, n: u64) -> Vec<(String, String)> {
    (from..from + n)
        .map(|i| (format!("k{}", (i * 13) % 100), (i % 10).to_string()))
        .collect()
}

#[test]
fn two_processes_resume_at_the_agreed_epoch() {
    let brokers = bootstrap();
    let (input, output) = (unique_topic("mp-in"), unique_topic("mp-out"));
    create_topic(&brokers, &input, 4);
    create_topic(&brokers, &output, 4);
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for round in 0..2u64 {
        let records = batch(round * 20_000, 20_000);
        produce(
            &brokers,
            &input,
            records
                .iter()
                .map(|(k, v)| (Some(k.as_bytes()), v.as_bytes())),
        );
        all.extend(records);
        run_two_processes(&brokers, &input, &output, dir.path());
        for p in 0..2 {
            let store = dir.path().join(format!("state/process-{p}"));
            assert!(
                store.join("CURRENT").exists(),
                "round {round}: process {p} kept no state"
            );
        }
    }
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for (k, v) in &all {
        *expected.entry(k.clone()).or_default() += v.parse::<i64>().unwrap();
    }
    let out = read_topic(&brokers, &output);
    assert_eq!(
        out.len(),
        all.len(),
        "each record is summed once: nothing re-read"
    );
    let mut finals: BTreeMap<String, i64> = BTreeMap::new();
    for r in out {
        let key = String::from_utf8(r.key.unwrap()).unwrap();
        finals.insert(key, serde_json::from_slice(&r.value.unwrap()).unwrap());
    }
    assert_eq!(finals, expected);
}
