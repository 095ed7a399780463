//! `rill run`: a SIGTERM to the launcher stops every process of a job
//! gracefully — each writes a last checkpoint and exits with success — and
//! leaves no process behind; a process killed mid-stream makes it restart
//! the job, whose result is then exactly that of an uninterrupted run; a
//! user error is not restarted.

mod common;

use common::{
    checkpoints, launch, note_pid, resume_epoch, run_args, sum_topics, sums, sums_differ, sums_job,
    wait_at_most, workspace_binary, Pids, Reaper,
};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An example of this package, built by `cargo test` beside the tests.
fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let dir = deps.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test -p rill-cluster` (which builds the examples), not `--test` alone",
        path.display()
    );
    path
}

#[test]
fn sigterm_to_the_launcher_stops_every_process_with_a_last_checkpoint() {
    let state = tempfile::tempdir().unwrap();
    let mut launcher = Command::new(env!("CARGO_BIN_EXE_rill"))
        .args(["run", "-n", "2", "-w", "1"])
        .arg(example("endless_sum"))
        .arg("--")
        .arg("--state-dir")
        .arg(state.path())
        .args(["--epoch-interval", "50ms"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    let stderr = launcher.stderr.take().unwrap();
    let pids = Pids::default();
    let _reaper = Reaper(pids.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            note_pid(&pids, &line);
            let _ = tx.send(line);
        }
    });
    // Wait until the job is at work: a complete checkpoint of all 100 keys.
    let deadline = Instant::now() + Duration::from_secs(60);
    let working = loop {
        let report = checkpoints(state.path());
        if let Some(epoch) = resume_epoch(&report).filter(|_| report.contains("sums=100")) {
            break epoch;
        }
        if Instant::now() > deadline || launcher.try_wait().unwrap().is_some() {
            let _ = launcher.kill();
            let log: Vec<String> = lines.try_iter().collect();
            panic!(
                "the job never checkpointed its keys:\n{report}\n{}",
                log.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let pid = rustix::process::Pid::from_child(&launcher);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = launcher.try_wait().unwrap() {
            break status;
        }
        if asked.elapsed() > Duration::from_secs(30) {
            let _ = launcher.kill();
            panic!("the job did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(100));
    let log: Vec<String> = lines.try_iter().collect();
    let text = log.join("\n");
    assert!(status.success(), "rill run: {status}\n{text}");
    let stopped = log
        .iter()
        .filter(|l| l.contains("stopped on request"))
        .count();
    assert_eq!(stopped, 2, "each process stops gracefully:\n{text}");
    // No process is left running.
    for line in &log {
        if let Some(pid) = line.split("(pid ").nth(1) {
            let pid = pid.trim_end_matches(')');
            assert!(
                !std::path::Path::new("/proc").join(pid).exists(),
                "process {pid} is still there"
            );
        }
    }
    // The processes' last checkpoint is complete, and newer than the one
    // seen at work.
    let report = checkpoints(state.path());
    let last = resume_epoch(&report).unwrap_or_else(|| panic!("{report}"));
    assert!(
        last > working,
        "last checkpoint {last}, at work at {working}:\n{report}"
    );
}

#[test]
fn a_killed_process_is_restarted_with_the_others_and_the_result_is_exact() {
    let brokers = rill::testing::kafka::bootstrap();
    let (input, output, expected) = sum_topics(&brokers, "sup", 300_000, 1_000, 6);
    let state = tempfile::tempdir().unwrap();
    let job = sums_job(&brokers, &input, &output, &[]);
    let rill = ["-n", "3", "-w", "1", "--backoff", "200ms"];
    let args = run_args(&rill, state.path(), "key_sums", &job);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (mut launcher, lines, pids) = launch(&args);
    let _reaper = Reaper(pids.clone());
    // Mid-stream: once a checkpoint is complete, kill process 1.
    let deadline = Instant::now() + Duration::from_secs(60);
    while resume_epoch(&checkpoints(state.path())).is_none() {
        assert!(
            Instant::now() < deadline,
            "the job never completed a checkpoint"
        );
        assert!(
            launcher.try_wait().unwrap().is_none(),
            "the job ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let victim = pids.lock().unwrap()[1];
    rustix::process::kill_process(victim, rustix::process::Signal::KILL).unwrap();
    let status = wait_at_most(&mut launcher, Duration::from_secs(180));
    std::thread::sleep(Duration::from_millis(100));
    let log: Vec<String> = lines.try_iter().collect();
    let text = log.join("\n");
    assert!(status.success(), "rill run: {status}\n{text}");
    assert!(text.contains("restart 1 of 10"), "no restart:\n{text}");
    assert!(text.contains("the job resumes from epoch"), "{text}");
    let got = sums(&brokers, &output);
    assert!(
        got == expected,
        "the output differs from an uninterrupted run's: {}",
        sums_differ(&got, &expected)
    );
}

#[test]
fn a_user_error_is_not_restarted() {
    let job = workspace_binary("fault_injection");
    let args: Vec<std::ffi::OsString> = ["run", "-n", "2", "-w", "1", "--backoff", "100ms"]
        .iter()
        .map(Into::into)
        .chain([job.into(), "--".into()])
        .chain(
            ["--fail-key", "3", "--fail-after", "100"]
                .iter()
                .map(Into::into),
        )
        .collect();
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (mut launcher, lines, pids) = launch(&args);
    let _reaper = Reaper(pids);
    let status = wait_at_most(&mut launcher, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(100));
    let text: Vec<String> = lines.try_iter().collect();
    let text = text.join("\n");
    assert!(!status.success(), "rill run succeeded:\n{text}");
    assert!(text.contains("a restart cannot help"), "{text}");
    assert_eq!(
        text.matches("started process 0").count(),
        1,
        "restarted:\n{text}"
    );
}
