//! `rill verify` against a topic of the real broker.

use rill::testing::kafka::{bootstrap, create_topic, produce, unique_topic};
use std::process::Command;

fn rill_verify(brokers: &str, topic: &str, expected: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rill"))
        .args([
            "verify",
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--expected",
        ])
        .arg(expected)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn verify_passes_exact_output_and_reports_what_differs() {
    let brokers = bootstrap();
    let topic = unique_topic("verify");
    create_topic(&brokers, &topic, 2);
    let records: Vec<(String, String)> = (0..300)
        .map(|i| (format!("k{}", i % 7), format!("{{\"n\":{i}}}")))
        .collect();
    produce(
        &brokers,
        &topic,
        records
            .iter()
            .map(|(k, v)| (Some(k.as_bytes()), v.as_bytes())),
    );
    let dir = tempfile::tempdir().unwrap();
    let lines = |rs: &[(String, String)]| {
        rs.iter()
            .map(|(k, v)| format!("{{\"key\":\"{k}\",\"value\":{v}}}\n"))
            .collect::<String>()
    };
    let exact = dir.path().join("exact.jsonl");
    std::fs::write(&exact, lines(&records)).unwrap();
    let (ok, text) = rill_verify(&brokers, &topic, &exact);
    assert!(ok, "{text}");
    assert!(
        text.contains("read 300 records, expected 300") && text.contains("OK"),
        "{text}"
    );

    // One record more than the topic has, and two of one key swapped.
    let mut other = records.clone();
    other.push(("k1".into(), "{\"n\":1000}".into()));
    other.swap(0, 7); // both key k0
    let wrong = dir.path().join("wrong.jsonl");
    std::fs::write(&wrong, lines(&other)).unwrap();
    let (ok, text) = rill_verify(&brokers, &topic, &wrong);
    assert!(!ok, "{text}");
    assert!(text.contains("missing: 1"), "{text}");
    assert!(text.contains("keys out of order: 1"), "{text}");
    assert!(text.contains("FAILED"), "{text}");
}
