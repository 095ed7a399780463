//! Shared by the tests that start `rill run`: its launch with the log
//! read line by line, the reaper of its processes, and the sum-per-key
//! job's input and output.

#![allow(dead_code)] // each test uses its own part

use rill::testing::kafka::{create_topic, produce, read_topic, unique_topic};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The job's processes, from the launcher's "started process" lines.
pub type Pids = Arc<Mutex<Vec<rustix::process::Pid>>>;

pub fn note_pid(pids: &Pids, line: &str) {
    let pid = line
        .strip_prefix("rill: started process ")
        .and_then(|rest| rest.split("(pid ").nth(1))
        .and_then(|pid| pid.trim_end_matches(')').parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    pids.lock().unwrap().extend(pid);
}

/// Kills the job's processes still running when dropped, so that a
/// failing test leaves nothing behind.
pub struct Reaper(pub Pids);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = rustix::process::kill_process(*pid, rustix::process::Signal::KILL);
        }
    }
}

/// A binary of the workspace (the examples package's jobs), built by
/// `cargo test --workspace` beside the tests.
pub fn workspace_binary(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let path = deps.parent().and_then(|d| d.parent()).unwrap().join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// `rill run` with `args`, its stderr lines sent to the returned channel
/// and its processes' pids noted for the reaper.
pub fn launch(args: &[&std::ffi::OsStr]) -> (std::process::Child, mpsc::Receiver<String>, Pids) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rill"));
    command.args(args);
    launch_command(command)
}

/// [`launch`] for a command that runs `rill run` (in a network namespace,
/// say).
pub fn launch_command(mut command: Command) -> (std::process::Child, mpsc::Receiver<String>, Pids) {
    let mut launcher = command
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel::<String>();
    let stderr = launcher.stderr.take().unwrap();
    let pids = Pids::default();
    let noted = pids.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            note_pid(&noted, &line);
            let _ = tx.send(line);
        }
    });
    (launcher, lines, pids)
}

/// Waits up to `most` for `child` to exit.
pub fn wait_at_most(child: &mut std::process::Child, most: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + most;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("rill run did not end within {most:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Input and output topics (`partitions` each) for `key_sums`, the input
/// `records` records over `keys` keys, and the uninterrupted run's output:
/// each key's running sums in order.
pub fn sum_topics(
    brokers: &str,
    name: &str,
    records: u64,
    keys: u64,
    partitions: i32,
) -> (String, String, BTreeMap<String, Vec<i64>>) {
    let input = unique_topic(&format!("{name}-in"));
    let output = unique_topic(&format!("{name}-out"));
    create_topic(brokers, &input, partitions);
    create_topic(brokers, &output, partitions);
    let records: Vec<(String, String)> = (0..records)
        .map(|i| (format!("k{}", (i * 7919) % keys), (i % 10).to_string()))
        .collect();
    produce(
        brokers,
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
    (input, output, expected)
}

/// Each key's sums in `topic`, in the order they were written: read until
/// two reads a second apart agree (right after a job ends, the test broker
/// can report a partition's end before its last records are visible).
pub fn sums(brokers: &str, topic: &str) -> BTreeMap<String, Vec<i64>> {
    let read = || {
        let mut got: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for r in read_topic(brokers, topic) {
            let key = String::from_utf8(r.key.unwrap()).unwrap();
            got.entry(key)
                .or_default()
                .push(serde_json::from_slice(&r.value.unwrap()).unwrap());
        }
        got
    };
    let mut last = read();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        let again = read();
        if again == last {
            return again;
        }
        eprintln!("the output changed between two reads; reading again");
        last = again;
    }
    last
}

/// What `rill checkpoints` prints for `state` (empty while it has none).
pub fn checkpoints(state: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rill"))
        .arg("checkpoints")
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The resume epoch in a `rill checkpoints` report.
pub fn resume_epoch(report: &str) -> Option<u64> {
    report
        .lines()
        .find_map(|l| l.strip_prefix("resume epoch: "))
        .and_then(|e| e.parse().ok())
}

/// How `got` (each key's sums in order) differs from `expected`, for a
/// failure message: the keys that differ and the first of them.
pub fn sums_differ(
    got: &BTreeMap<String, Vec<i64>>,
    expected: &BTreeMap<String, Vec<i64>>,
) -> String {
    let differing: Vec<&String> = expected
        .keys()
        .chain(got.keys())
        .filter(|k| got.get(*k) != expected.get(*k))
        .collect();
    let Some(first) = differing.first() else {
        return "no difference".into();
    };
    let (g, e) = (got.get(*first), expected.get(*first));
    format!(
        "{} keys differ; {first}: {} sums written, {} expected; written {:?}, expected {:?}",
        differing.len(),
        g.map_or(0, Vec::len),
        e.map_or(0, Vec::len),
        g.map(|v| &v[..v.len().min(40)]),
        e.map(|v| &v[..v.len().min(40)])
    )
}

/// Runs the job `binary` (of the workspace) under `rill run -n P -w W
/// --state-dir STATE` with the job's arguments `job`. With `stop_after`,
/// stops it gracefully (SIGTERM to the launcher) once a checkpoint newer
/// than that one is complete; else lets it end by itself. Returns the
/// launcher's log; fails the test unless `rill run` succeeds.
pub fn rill_run(
    binary: &str,
    state: &std::path::Path,
    job: &[&str],
    shape: (usize, usize),
    stop_after: Option<Option<u64>>,
) -> String {
    let (n, w) = (shape.0.to_string(), shape.1.to_string());
    let job: Vec<String> = job.iter().map(|a| (*a).to_owned()).collect();
    let args = run_args(&["-n", &n, "-w", &w], state, binary, &job);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (mut launcher, lines, pids) = launch(&args);
    let _reaper = Reaper(pids);
    if let Some(before) = stop_after {
        let deadline = Instant::now() + Duration::from_secs(120);
        while resume_epoch(&checkpoints(state)) <= before {
            if Instant::now() > deadline || launcher.try_wait().unwrap().is_some() {
                let _ = launcher.kill();
                let log: Vec<String> = lines.try_iter().collect();
                panic!(
                    "no new checkpoint while running as {shape:?}:\n{}",
                    log.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = rustix::process::Pid::from_child(&launcher);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    }
    let status = wait_at_most(&mut launcher, Duration::from_secs(240));
    std::thread::sleep(Duration::from_millis(100));
    let log: Vec<String> = lines.try_iter().collect();
    let log = log.join("\n");
    assert!(
        status.success(),
        "{binary} under rill run as {shape:?}: {status}\n{log}"
    );
    log
}

/// A child process killed when dropped (a job or a server a test started).
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The arguments of `rill run RILL... --state-dir STATE BINARY -- JOB...`
/// (`binary` a job of the workspace).
pub fn run_args(
    rill: &[&str],
    state: &std::path::Path,
    binary: &str,
    job: &[String],
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::iter::once("run")
        .chain(rill.iter().copied())
        .chain(["--state-dir"])
        .map(Into::into)
        .collect();
    args.extend([state.into(), workspace_binary(binary).into(), "--".into()]);
    args.extend(job.iter().map(Into::into));
    args
}

/// `key_sums`'s arguments for `input` to `output` on `brokers`, read to the
/// end in 100 ms epochs with exactly-once delivery, and `extra`.
pub fn sums_job(brokers: &str, input: &str, output: &str, extra: &[&str]) -> Vec<String> {
    ["--brokers", brokers, "--input", input, "--output", output]
        .into_iter()
        .chain(["--stop-at-end", "--epoch-interval", "100ms"])
        .chain(["--delivery", "exactly-once"])
        .chain(extra.iter().copied())
        .map(str::to_owned)
        .collect()
}
