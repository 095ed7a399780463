//! `rill run`: a SIGTERM to the launcher stops every process of a job
//! gracefully — each writes a last checkpoint and exits with success — and
//! leaves no process behind.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The job's processes, from the launcher's "started process" lines.
type Pids = Arc<Mutex<Vec<rustix::process::Pid>>>;

fn note_pid(pids: &Pids, line: &str) {
    let pid = line
        .strip_prefix("rill: started process ")
        .and_then(|rest| rest.split("(pid ").nth(1))
        .and_then(|pid| pid.trim_end_matches(')').parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    pids.lock().unwrap().extend(pid);
}

/// Kills the job's processes still running when dropped, so that a
/// failing test leaves nothing behind.
struct Reaper(Pids);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = rustix::process::kill_process(*pid, rustix::process::Signal::KILL);
        }
    }
}

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

/// What `rill checkpoints` prints for `state` (empty while it has none).
fn checkpoints(state: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rill"))
        .arg("checkpoints")
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn resume_epoch(report: &str) -> Option<u64> {
    report
        .lines()
        .find_map(|l| l.strip_prefix("resume epoch: "))
        .and_then(|e| e.parse().ok())
}
