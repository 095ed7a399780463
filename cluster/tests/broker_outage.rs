//! A broker outage under `rill run`: the test broker is paused (SIGSTOP)
//! for 60 s in the middle of an exactly-once `key_sums` job of 2
//! processes, then resumed. The job waits or restarts on its own (a
//! delivery or metadata timeout exits with the restart code) and ends
//! with exactly the output of an uninterrupted run. Its own test binary:
//! the pause would stall any test running beside it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rill::testing::kafka::{bootstrap, create_topic, produce, read_topic, unique_topic};
use rustix::process::{kill_process, Pid, Signal};

/// The test broker's process, from `scripts/test-broker.sh`'s pid file.
fn broker_pid() -> Pid {
    let cache = std::env::var("RILL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/rill")
        });
    let file = cache.join("tansu.pid");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: this test pauses the broker that scripts/test-broker.sh started",
            file.display()
        )
    });
    Pid::from_raw(text.trim().parse().expect("a pid")).expect("a positive pid")
}

/// Resumes the broker when dropped, even when the test fails.
struct Resume(Pid);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = kill_process(self.0, Signal::CONT);
    }
}

#[test]
fn a_job_under_rill_run_outlives_a_paused_broker() {
    let brokers = bootstrap();
    let broker = broker_pid();
    let (input, output) = (unique_topic("outage-in"), unique_topic("outage-out"));
    create_topic(&brokers, &input, 4);
    create_topic(&brokers, &output, 4);
    let records: Vec<(String, String)> = (0..1_000_000u64)
        .map(|i| (format!("k{}", (i * 7919) % 2_000), (i % 10).to_string()))
        .collect();
    produce(
        &brokers,
        &input,
        records
            .iter()
            .map(|(k, v)| (Some(k.as_bytes()), v.as_bytes())),
    );
    let mut expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (k, v) in &records {
        let sums = expected.entry(k.clone()).or_default();
        sums.push(sums.last().copied().unwrap_or(0) + v.parse::<i64>().unwrap());
    }
    let state = tempfile::tempdir().unwrap();
    let deps = std::env::current_exe().unwrap();
    let job = deps
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("key_sums");
    assert!(
        job.exists(),
        "run with `cargo test --workspace` to build key_sums"
    );
    let mut launcher = Command::new(env!("CARGO_BIN_EXE_rill"))
        .args([
            "run",
            "-n",
            "2",
            "-w",
            "1",
            "--backoff",
            "1s",
            "--max-restarts",
            "30",
        ])
        .arg("--state-dir")
        .arg(state.path())
        .arg(&job)
        .arg("--")
        .args([
            "--brokers",
            &brokers,
            "--input",
            &input,
            "--output",
            &output,
        ])
        .args([
            "--stop-at-end",
            "--epoch-interval",
            "100ms",
            "--delivery",
            "exactly-once",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = launcher.stderr.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Pause once the job has published something.
    let started = Instant::now();
    while read_topic(&brokers, &output).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no output in 60 s"
        );
        assert!(
            launcher.try_wait().unwrap().is_none(),
            "the job ended before the outage"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let resume = Resume(broker);
    kill_process(broker, Signal::STOP).unwrap();
    eprintln!("broker paused");
    std::thread::sleep(Duration::from_secs(60));
    drop(resume);
    eprintln!("broker resumed");
    let until = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = launcher.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let _ = launcher.kill();
            panic!("the job did not end within 300 s of the broker's return");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(100));
    let log: Vec<String> = lines.try_iter().collect();
    let text = log.join("\n");
    assert!(status.success(), "rill run: {status}\n{text}");
    let restarts = log.iter().filter(|l| l.contains("restart ")).count();
    eprintln!("the job ended after {restarts} restarts");
    let mut got: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in read_topic(&brokers, &output) {
        let key = String::from_utf8(r.key.unwrap()).unwrap();
        got.entry(key)
            .or_default()
            .push(serde_json::from_slice(&r.value.unwrap()).unwrap());
    }
    assert!(
        got == expected,
        "the output differs from an uninterrupted run's"
    );
}
