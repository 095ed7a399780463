//! `--graph` prints a job's dataflow (Mermaid by default, or DOT) and
//! exits, with no broker and no state: the steps of `key_sums` (its Kafka
//! source, the `sum`, its Kafka sink) with the edges between them.

use std::collections::BTreeSet;
use std::process::Command;

fn graph(format: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_key_sums"))
        .args(["--input", "numbers", "--output", "totals", "--graph"])
        .args(format)
        .env_remove("RILL_BROKERS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The node id whose label contains `name`.
fn node<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(name) && !l.contains("--") && !l.contains("->"))
        .and_then(|l| l.split_whitespace().next())
        .map(|id| id.split('[').next().unwrap_or(id))
        .unwrap_or_else(|| panic!("no node {name}:\n{text}"))
}

#[test]
fn the_mermaid_graph_links_source_sum_and_sink() {
    let text = graph(&[]);
    assert!(text.starts_with("flowchart LR\n"), "{text}");
    let (source, sum, sink) = (
        node(&text, "numbers (source)"),
        node(&text, "sums (process)"),
        node(&text, "kafka-sink:totals (sink)"),
    );
    let edges: BTreeSet<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.trim().split_once(" --> "))
        .collect();
    // The source reaches the sum, and the sum the sink (maybe through an
    // exchange of keys between them).
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::from([from]);
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            for &(a, b) in &edges {
                if a == n && seen.insert(b) {
                    todo.push(b);
                }
            }
        }
        seen.contains(to)
    };
    assert!(reaches(source, sum), "{text}");
    assert!(reaches(sum, sink), "{text}");
    assert!(!reaches(sink, source), "{text}");
    assert!(!text.contains("checkpoint"), "plumbing shown:\n{text}");
}

#[test]
fn the_dot_graph_has_the_same_steps() {
    let text = graph(&["dot"]);
    assert!(text.starts_with("digraph job {"), "{text}");
    for name in [
        "numbers (source)",
        "sums (process)",
        "kafka-sink:totals (sink)",
    ] {
        assert!(text.contains(name), "no {name}:\n{text}");
    }
    assert!(text.contains(" -> "), "{text}");
}
