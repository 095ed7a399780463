//! Rescaling: a job stopped mid-stream resumes with another number of
//! processes, then of workers; its state moves by key group and its
//! partitions' positions go to their new readers. With exactly-once
//! delivery the output is then exactly an uninterrupted run's.

mod common;

use common::{
    checkpoints, resume_epoch, rill_run, sum_topics, sums, sums_differ, sums_job, workspace_binary,
};
use rill::testing::kafka::{create_topic, read_topic, unique_topic};
use std::process::Command;

const RECORDS: u64 = 400_000;

#[test]
fn a_job_rescaled_from_2_to_3_processes_then_to_1_x_3_workers_ends_with_an_uninterrupted_runs_output(
) {
    let brokers = rill::testing::kafka::bootstrap();
    let (input, output, expected) = sum_topics(&brokers, "rescale", RECORDS, 1_000, 6);
    let state = tempfile::tempdir().unwrap();
    let job = sums_job(&brokers, &input, &output, &[]);
    let job: Vec<&str> = job.iter().map(String::as_str).collect();
    let written = || read_topic(&brokers, &output).len() as u64;

    rill_run("key_sums", state.path(), &job, (2, 1), Some(None));
    let first = resume_epoch(&checkpoints(state.path()));
    assert!(
        written() < RECORDS,
        "the first run was not stopped mid-stream"
    );

    let log = rill_run("key_sums", state.path(), &job, (3, 1), Some(first));
    for p in 0..3 {
        assert!(
            log.contains(&format!(
                "built the state of process {p} for 3 x 1 from 2 x 1"
            )),
            "process {p} did not rebuild its state:\n{log}"
        );
    }
    assert!(
        log.contains("key groups"),
        "no assignment in the log:\n{log}"
    );
    let second = resume_epoch(&checkpoints(state.path()));
    assert!(second > first, "{second:?} after {first:?}");
    assert!(
        written() < RECORDS,
        "the second run was not stopped mid-stream"
    );

    let log = rill_run("key_sums", state.path(), &job, (1, 3), None);
    assert!(
        log.contains("built the state of process 0 for 1 x 3 from 3 x 1"),
        "{log}"
    );
    let report = checkpoints(state.path());
    assert!(
        report.contains("job shape: 3 workers in 1 processes"),
        "{report}"
    );
    let got = sums(&brokers, &output);
    assert!(
        got == expected,
        "the output differs from an uninterrupted run's: {}",
        sums_differ(&got, &expected)
    );
}

/// The windowed join of Nexmark q8 (persons who opened auctions in the
/// same 10 s window: timers, lists and maps in its state) rescaled the
/// same way gives exactly the results of an uninterrupted run.
#[test]
fn a_windowed_join_rescaled_twice_ends_with_an_uninterrupted_runs_results() {
    let brokers = rill::testing::kafka::bootstrap();
    let input = unique_topic("rescale-q8-in");
    let clean = unique_topic("rescale-q8-clean");
    let output = unique_topic("rescale-q8-out");
    for topic in [&input, &clean, &output] {
        create_topic(&brokers, topic, 4);
    }
    let nexmark = workspace_binary("nexmark");
    let common = ["--brokers", &brokers, "--epoch-interval", "100ms"];
    // One generating worker: each partition's events are in time order.
    let generated = Command::new(&nexmark)
        .args(common)
        .args(["-w", "1", "--generate-to", &input, "--events", "300000"])
        .status()
        .unwrap();
    assert!(generated.success(), "generating the events failed");
    let q8 = |to: &str| -> Vec<String> {
        let mut args = common.to_vec();
        args.extend(["--query", "q8", "--topic", &input, "--to-topic", to]);
        args.extend(["--stop-at-end", "--delivery", "exactly-once"]);
        args.into_iter().map(str::to_owned).collect()
    };
    let clean_state = tempfile::tempdir().unwrap();
    let status = Command::new(&nexmark)
        .args(q8(&clean))
        .arg("--state-dir")
        .arg(clean_state.path())
        .status()
        .unwrap();
    assert!(status.success(), "the uninterrupted run failed");
    let results = |topic: &str| -> Vec<String> {
        let mut all: Vec<String> = read_topic(&brokers, topic)
            .into_iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect();
        all.sort();
        all
    };
    let expected = results(&clean);
    assert!(
        expected.len() > 100,
        "q8 found {} new sellers",
        expected.len()
    );

    let state = tempfile::tempdir().unwrap();
    let job = q8(&output);
    let job: Vec<&str> = job.iter().map(String::as_str).collect();
    rill_run("nexmark", state.path(), &job, (2, 1), Some(None));
    let first = resume_epoch(&checkpoints(state.path()));
    rill_run("nexmark", state.path(), &job, (3, 1), Some(first));
    assert!(
        results(&output).len() < expected.len(),
        "the runs before the last were not stopped mid-stream"
    );
    let log = rill_run("nexmark", state.path(), &job, (1, 3), None);
    assert!(log.contains("for 1 x 3 from 3 x 1"), "{log}");
    let got = results(&output);
    if got != expected {
        let missing = expected.iter().filter(|r| !got.contains(r)).count();
        panic!(
            "{} results, {} expected, {missing} of them missing",
            got.len(),
            expected.len()
        );
    }
}
