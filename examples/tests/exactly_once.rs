//! Exactly-once delivery through the real broker: `key_sums` (sum per key)
//! with `--delivery exactly-once`, crashed at each named crash point
//! (`RILL_CRASH_AT`) and restarted, and a 2-process run killed with SIGKILL
//! at random moments. A plain consumer of the output must see exactly the
//! output of an uninterrupted run: every update once, in order per key.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{assert_exactly, input, output_when, produce_input, uninterrupted, Running};
use rill::testing::kafka::{bootstrap, create_topic, unique_topic};

/// The log a test reads: checkpoints and the sink's publications.
const LOG: &str = "info,rill::checkpoint=debug,rill::sink=debug";

/// `key_sums` with exactly-once delivery, to the end of its input.
fn key_sums(brokers: &str, (input, output): (&str, &str), state: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_key_sums"));
    command
        .args(["--brokers", brokers, "--input", input, "--output", output])
        .arg("--state-dir")
        .arg(state)
        .args(["--epoch-interval", "100ms", "--stop-at-end"])
        .args(["--delivery", "exactly-once"]);
    command
}

/// Topics with `records` records of input over `keys` keys; returns the
/// topics and the uninterrupted run's output.
fn topics(
    brokers: &str,
    name: &str,
    records: u64,
    keys: u64,
) -> (
    (String, String),
    std::collections::BTreeMap<String, Vec<i64>>,
) {
    let (input_topic, output_topic) = (
        unique_topic(&format!("{name}-in")),
        unique_topic(&format!("{name}-out")),
    );
    create_topic(brokers, &input_topic, 4);
    create_topic(brokers, &output_topic, 4);
    let records = input(records, keys);
    produce_input(brokers, &input_topic, &records);
    ((input_topic, output_topic), uninterrupted(&records))
}

#[test]
fn each_crash_point_then_a_restart_gives_exactly_the_uninterrupted_output() {
    let brokers = bootstrap();
    let points = [
        ("buffer", 4),
        ("prepared", 3),
        ("publish", 15_000),
        ("published", 2),
        ("checkpoint", 4),
    ];
    for (point, count) in points {
        let ((input_topic, output_topic), expected) = topics(&brokers, point, 100_000, 1_000);
        let topics = (input_topic.as_str(), output_topic.as_str());
        let state = tempfile::tempdir().unwrap();
        let spec = format!("{point}:{count}");
        let mut crashing = key_sums(&brokers, topics, state.path());
        crashing.args(["-w", "2"]).env("RILL_CRASH_AT", &spec);
        let mut run = Running::spawn_logging(crashing, LOG);
        assert!(
            run.wait_for(
                &format!("crash point {spec} reached"),
                Duration::from_secs(60)
            ),
            "{spec}: the job did not reach the crash point"
        );
        let status = run.child.wait().unwrap();
        assert!(
            !status.success(),
            "{spec}: the crashed run exited with {status}"
        );

        let mut again = key_sums(&brokers, topics, state.path());
        again.args(["-w", "2"]);
        let mut rerun = Running::spawn_logging(again, LOG);
        let status = rerun.child.wait().unwrap();
        let log: Vec<String> = rerun.lines.try_iter().collect();
        assert!(
            status.success(),
            "{spec}: the restarted run failed: {status}\n{}",
            log.join("\n")
        );
        let got = output_when(&brokers, &output_topic, |got| got == &expected);
        assert_exactly(&expected, &got);
        eprintln!("{spec}: exactly the uninterrupted output");
    }
}

/// The two processes of a `key_sums` cluster on `state`.
fn cluster(brokers: &str, topics: (&str, &str), state: &Path) -> Vec<Running> {
    let hosts = state.join("hosts.txt");
    rill::testing::write_local_hosts(&hosts, 2).unwrap();
    (0..2)
        .map(|p| {
            let mut command = key_sums(brokers, topics, &state.join("state"));
            command
                .args(["-n", "2", "-w", "2", "-p", &p.to_string()])
                // Small epochs: a run between two kills gets through a few
                // epochs of at most 2,000 records per source worker, not a
                // share of the input that grows as the engine gets faster
                // (20 kills must land before the input ends).
                .args(["--epoch-max-records", "2000"])
                .arg("--hosts")
                .arg(&hosts);
            Running::spawn_logging(command, LOG)
        })
        .collect()
}

/// The number after `marker` in `line`.
fn number_after(line: &str, marker: &str) -> Option<u64> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Waits until the process starts publishing an epoch of this run (not
/// one it publishes again after a resume, which mostly landed already);
/// false if it ended first or `timeout` passed.
fn publishing_new_output(run: &mut Running, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut resumed: Option<u64> = None;
    while std::time::Instant::now() < deadline {
        match run.lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                if let Some(r) = number_after(&line, "resuming from epoch ") {
                    resumed = Some(r);
                }
                let epoch = number_after(&line, "publishing epoch ");
                if epoch.is_some_and(|e| resumed.is_none_or(|r| e > r)) {
                    return true;
                }
            }
            Err(_) => {
                if run.child.try_wait().unwrap().is_some() {
                    return false;
                }
            }
        }
    }
    false
}

/// After a kill: was the process in the middle of publishing an epoch?
fn killed_mid_publish(run: &Running) -> bool {
    let mut last = None;
    while let Ok(line) = run.lines.try_recv() {
        if line.contains("publishing epoch") || line.contains("published epoch") {
            last = Some(line);
        }
    }
    last.is_some_and(|l| l.contains("publishing epoch"))
}

#[test]
fn a_two_process_job_killed_twenty_times_delivers_exactly_once() {
    use rand::Rng;
    let brokers = bootstrap();
    let ((input_topic, output_topic), expected) = topics(&brokers, "chaos", 1_000_000, 5_000);
    let topics = (input_topic.as_str(), output_topic.as_str());
    let state = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let (mut kills, mut mid_publish) = (0, 0);
    for round in 0..60 {
        if kills >= 20 && mid_publish > 0 {
            break;
        }
        let mut procs = cluster(&brokers, topics, state.path());
        let victim = rng.gen_range(0..2);
        if !publishing_new_output(&mut procs[victim], Duration::from_secs(60)) {
            // It ended (the input is done) before publishing again.
            for p in &mut procs {
                let status = p.child.wait().unwrap();
                assert!(status.success(), "a process failed: {status}");
            }
            break;
        }
        // Every other round right inside that publication, else later.
        let most = if round % 2 == 0 { 3 } else { 300 };
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..most)));
        let finished = procs[victim].child.try_wait().unwrap().is_some();
        let _ = procs[victim].child.kill(); // SIGKILL
        procs[victim].child.wait().unwrap();
        kills += usize::from(!finished);
        if killed_mid_publish(&procs[victim]) {
            mid_publish += 1;
        }
        // The other process would lose its peer and stop; kill it too.
        let other = &mut procs[1 - victim];
        let _ = other.child.kill();
        other.child.wait().unwrap();
        if finished {
            break;
        }
    }
    assert!(kills >= 20, "the job finished after only {kills} kills");
    assert!(
        mid_publish >= 1,
        "no kill landed inside a publish ({kills} kills)"
    );
    eprintln!("{kills} kills, {mid_publish} inside a publish");
    // Run to the end.
    let mut procs = cluster(&brokers, topics, state.path());
    for p in &mut procs {
        let status = p.child.wait().unwrap();
        let log: Vec<String> = p.lines.try_iter().collect();
        assert!(
            status.success(),
            "the final run failed: {status}\n{}",
            log.join("\n")
        );
    }
    let got = output_when(&brokers, &output_topic, |got| got == &expected);
    assert_exactly(&expected, &got);
}

#[test]
fn a_job_whose_output_topic_was_replaced_stops_with_a_clear_error() {
    use rill::testing::kafka::delete_topic;
    let brokers = bootstrap();
    let ((input_topic, output_topic), expected) = topics(&brokers, "replaced", 20_000, 100);
    let topics = (input_topic.as_str(), output_topic.as_str());
    let state = tempfile::tempdir().unwrap();
    let first = key_sums(&brokers, topics, state.path()).output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let got = output_when(&brokers, &output_topic, |got| got == &expected);
    assert_exactly(&expected, &got);

    // The same name, but not the records the job wrote.
    delete_topic(&brokers, &output_topic);
    create_topic(&brokers, &output_topic, 4);
    let left = rill::testing::kafka::read_topic(&brokers, &output_topic).len();
    assert_eq!(left, 0, "the broker kept records of the deleted topic");
    let again = key_sums(&brokers, topics, state.path()).output().unwrap();
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success(),
        "a re-created output topic was written to:\n{log}"
    );
    assert!(
        log.contains("no longer holds what this job published"),
        "{log}"
    );

    // Another partition count.
    delete_topic(&brokers, &output_topic);
    create_topic(&brokers, &output_topic, 2);
    let again = key_sums(&brokers, topics, state.path()).output().unwrap();
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success(),
        "an output topic of 2 partitions was written to"
    );
    assert!(log.contains("has 2 partitions, but it had 4"), "{log}");
    assert!(
        rill::testing::kafka::read_topic(&brokers, &output_topic).is_empty(),
        "nothing may be published to the replaced topic"
    );
}
