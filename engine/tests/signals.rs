//! Signals and [`Job::without_signal_handlers`]. These tests raise
//! SIGTERM in their own process, so they live in a test binary of their
//! own: a job of another test here would be stopped too.

use rill::{Job, JobArgs};
use signal_hook::consts::SIGTERM;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

const ITEMS: u64 = 100_000;

/// Runs a job over `0..ITEMS` and returns how many items came out.
fn run(job: Job) -> u64 {
    let out = rill::Collector::new();
    let sink = out.clone();
    job.run(move |flow| {
        flow.source_iter("numbers", 0..ITEMS).collect("out", &sink);
    })
    .expect("the job failed");
    out.take().len() as u64
}

fn job() -> Job {
    let args = JobArgs {
        workers: 2,
        epoch_interval: Duration::from_millis(20),
        ..JobArgs::default()
    };
    Job::new("signals", args).expect("valid flags")
}

#[test]
fn a_caught_signal_stops_only_the_jobs_that_follow_signals() {
    // A first job installs the handlers (a job that follows signals).
    assert_eq!(run(job()), ITEMS, "a job before any signal");
    // Caught by the handlers: the process lives on, the flag is set.
    signal_hook::low_level::raise(SIGTERM).expect("raise SIGTERM");
    assert_eq!(
        run(job().without_signal_handlers()),
        ITEMS,
        "a job that leaves signals to the application read all its input"
    );
    let stopped = run(job());
    assert!(
        stopped < ITEMS,
        "a job that follows signals read all {stopped} items after SIGTERM"
    );
}

/// Set in the child process of the test below.
const CHILD: &str = "RILL_SIGNALS_TEST_CHILD";

#[test]
fn a_job_without_signal_handlers_installs_none() {
    if std::env::var_os(CHILD).is_some() {
        assert_eq!(run(job().without_signal_handlers()), ITEMS);
        // With no handler installed, SIGTERM's default action ends the
        // process here.
        signal_hook::low_level::raise(SIGTERM).expect("raise SIGTERM");
        std::thread::sleep(Duration::from_secs(2));
        eprintln!("SIGTERM was caught: a handler is installed");
        std::process::exit(3);
    }
    let exe = std::env::current_exe().expect("the test binary");
    let status = Command::new(exe)
        .args([
            "--exact",
            "a_job_without_signal_handlers_installs_none",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .status()
        .expect("run the test binary again");
    assert_eq!(
        status.signal(),
        Some(SIGTERM),
        "the child should die of SIGTERM, but ended with {status}"
    );
}
