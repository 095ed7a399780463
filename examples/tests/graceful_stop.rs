//! SIGTERM stops `key_sums` gracefully in the middle of its input (sum
//! per key, 2 workers, a 4-partition topic of the real broker): it exits
//! with success after a last checkpoint, and a run started again with the
//! same state directory finishes the input. Unlike after a crash, the
//! output then holds every update of an uninterrupted run exactly once.
//! A second SIGTERM ends the process at once, as a crash would.

mod common;

use common::{output, output_when, produce_input, uninterrupted, Running};
use rill::testing::kafka::{bootstrap, create_topic, unique_topic};
use std::collections::BTreeMap;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

const RECORDS: u64 = 300_000;
const KEYS: u64 = 1_000;

/// A fresh input topic holding the test's records, a fresh output topic,
/// and what an uninterrupted run outputs.
struct Setup {
    brokers: String,
    input: String,
    output: String,
    expected: BTreeMap<String, Vec<i64>>,
}

impl Setup {
    fn new() -> Setup {
        let brokers = bootstrap();
        let (input, output) = (unique_topic("stop-in"), unique_topic("stop-out"));
        create_topic(&brokers, &input, 4);
        create_topic(&brokers, &output, 4);
        let records = common::input(RECORDS, KEYS);
        produce_input(&brokers, &input, &records);
        Setup {
            brokers,
            input,
            output,
            expected: uninterrupted(&records),
        }
    }

    fn start(&self, state: &std::path::Path, extra: &[&str]) -> Running {
        let topics = (self.input.as_str(), self.output.as_str());
        Running::start(&self.brokers, topics, state, extra)
    }

    /// Runs `key_sums` on `state` to the end of the input.
    fn finish(&self, state: &std::path::Path) {
        let mut last = self.start(state, &["--stop-at-end"]);
        let status = last.child.wait().unwrap();
        let log: Vec<String> = last.lines.try_iter().collect();
        assert!(
            status.success(),
            "the last run failed: {status}\n{}",
            log.join("\n")
        );
    }
}

/// Sends SIGTERM `times` times to `run` (through the shell's `kill`,
/// present everywhere), 50 ms apart (two signals pending at once count
/// as one), once it has written its first checkpoint, and waits for it to
/// exit. Returns its status, the time it took and its log.
fn terminate(run: &mut Running, times: usize) -> (ExitStatus, Duration, Vec<String>) {
    assert!(
        run.wait_for("checkpoint: prepared epoch", Duration::from_secs(30)),
        "key_sums wrote no checkpoint"
    );
    let kill = vec![format!("kill -TERM {}", run.child.id()); times].join("; sleep 0.05; ");
    let sent = std::process::Command::new("sh")
        .arg("-c")
        .arg(kill)
        .status()
        .expect("run sh");
    assert!(sent.success(), "kill -TERM failed: {sent}");
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
    (status, asked.elapsed(), run.lines.try_iter().collect())
}

#[test]
fn sigterm_stops_with_a_last_checkpoint_and_the_next_run_repeats_nothing() {
    let setup = Setup::new();
    let state = tempfile::tempdir().unwrap();
    // Without --stop-at-end the job would run forever.
    let mut run = setup.start(state.path(), &[]);
    let (status, took, log) = terminate(&mut run, 1);
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
    let stopped_after: usize = output(&setup.brokers, &setup.output)
        .values()
        .map(Vec::len)
        .sum();
    eprintln!("stopped after {stopped_after} of {RECORDS} records, {took:.1?} after SIGTERM");

    setup.finish(state.path());
    let got = output_when(&setup.brokers, &setup.output, |got| got == &setup.expected);
    assert_eq!(got.len(), setup.expected.len(), "keys in the output");
    for (key, updates) in &setup.expected {
        assert_eq!(&got[key], updates, "the updates of {key}, in order");
    }
}

#[test]
fn a_second_sigterm_ends_the_process_at_once_and_the_next_run_resumes() {
    let setup = Setup::new();
    let state = tempfile::tempdir().unwrap();
    let mut run = setup.start(state.path(), &[]);
    let (status, _, log) = terminate(&mut run, 2);
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "after two SIGTERMs: {status}\n{}",
        log.join("\n")
    );
    assert!(
        !log.iter().any(|l| l.contains("stopped on request")),
        "the job stopped gracefully anyway:\n{}",
        log.join("\n")
    );
    // As after a crash: the next run resumes at the last complete
    // checkpoint and ends with every key's sum right. (That every update
    // survives a crash is the crash test's to check.)
    setup.finish(state.path());
    let finals = |got: &BTreeMap<String, Vec<i64>>| {
        got.len() == setup.expected.len()
            && setup
                .expected
                .iter()
                .all(|(key, updates)| got.get(key).and_then(|u| u.last()) == updates.last())
    };
    let got = output_when(&setup.brokers, &setup.output, finals);
    assert_eq!(got.len(), setup.expected.len(), "keys in the output");
    for (key, updates) in &setup.expected {
        assert_eq!(got[key].last(), updates.last(), "the final sum of {key}");
    }
}
