//! A broker outage under `rill run`: the test broker is paused (SIGSTOP)
//! for 60 s in the middle of an exactly-once `key_sums` job of 2
//! processes, then resumed. The job waits or restarts on its own (a
//! delivery or metadata timeout exits with the restart code) and ends
//! with exactly the output of an uninterrupted run. Its own test binary:
//! the pause would stall any test running beside it.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{launch, run_args, sum_topics, sums, sums_differ, sums_job, Reaper};
use rill::testing::kafka::{bootstrap, read_topic};
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
    let (input, output, expected) = sum_topics(&brokers, "outage", 1_000_000, 2_000, 4);
    let state = tempfile::tempdir().unwrap();
    let job = sums_job(&brokers, &input, &output, &[]);
    let rill = [
        "-n",
        "2",
        "-w",
        "1",
        "--backoff",
        "1s",
        "--max-restarts",
        "30",
    ];
    let args = run_args(&rill, state.path(), "key_sums", &job);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (mut launcher, lines, pids) = launch(&args);
    let _reaper = Reaper(pids);
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
    let got = sums(&brokers, &output);
    assert!(
        got == expected,
        "the output differs from an uninterrupted run's: {}",
        sums_differ(&got, &expected)
    );
}
