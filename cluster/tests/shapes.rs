//! The same jobs as 1 process x 1 worker and as 3 processes x 2 workers
//! under `rill run`, against the real broker: the count per key
//! (`word_count`) and the sum per key (`key_sums`) end with the same value
//! for every key, the one a direct computation gives.

mod common;

use common::{rill_run, sum_topics};
use rill::testing::kafka::{create_topic, produce, read_topic, unique_topic};
use std::collections::BTreeMap;

/// Runs `binary` under `rill run` as `shape` to the end of its input.
fn run(binary: &str, shape: (usize, usize), job: &[&str]) {
    let state = tempfile::tempdir().unwrap();
    let mut job = job.to_vec();
    job.extend(["--stop-at-end", "--epoch-interval", "100ms"]);
    rill_run(binary, state.path(), &job, shape, None);
}

/// The last value written for each key of `topic`.
fn last_per_key(brokers: &str, topic: &str) -> BTreeMap<String, i64> {
    read_topic(brokers, topic)
        .into_iter()
        .map(|r| {
            let key = String::from_utf8(r.key.unwrap()).unwrap();
            (key, serde_json::from_slice(&r.value.unwrap()).unwrap())
        })
        .collect()
}

#[test]
fn sums_per_key_are_the_same_on_1_x_1_and_3_x_2() {
    let brokers = rill::testing::kafka::bootstrap();
    let (input, one, expected) = sum_topics(&brokers, "shapes-sum", 100_000, 500, 6);
    let six = unique_topic("shapes-sum-3x2");
    create_topic(&brokers, &six, 6);
    for (shape, output) in [((1, 1), &one), ((3, 2), &six)] {
        let job = ["--brokers", &brokers, "--input", &input, "--output", output];
        run("key_sums", shape, &job);
    }
    let finals: BTreeMap<String, i64> = expected
        .into_iter()
        .map(|(k, sums)| (k, *sums.last().unwrap()))
        .collect();
    assert_eq!(last_per_key(&brokers, &one), finals, "1 x 1");
    assert_eq!(last_per_key(&brokers, &six), finals, "3 x 2");
}

#[test]
fn counts_per_key_are_the_same_on_1_x_1_and_3_x_2() {
    let brokers = rill::testing::kafka::bootstrap();
    let input = unique_topic("shapes-lines");
    create_topic(&brokers, &input, 6);
    let lines: Vec<String> = (0..20_000u64)
        .map(|i| format!("w{} w{} w{}", i % 97, (i * 31) % 389, (i * 7) % 11))
        .collect();
    produce(&brokers, &input, lines.iter().map(|l| (None, l.as_bytes())));
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for word in lines.iter().flat_map(|l| l.split(' ')) {
        *expected.entry(word.to_owned()).or_default() += 1;
    }
    for shape in [(1, 1), (3, 2)] {
        let output = unique_topic(&format!("shapes-counts-{}x{}", shape.0, shape.1));
        create_topic(&brokers, &output, 6);
        let job = [
            "--brokers",
            &brokers,
            "--input",
            &input,
            "--output",
            &output,
        ];
        run("word_count", shape, &job);
        assert_eq!(last_per_key(&brokers, &output), expected, "{shape:?}");
    }
}
