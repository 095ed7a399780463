//! `rill`: launches the processes of a Rill job on this machine.
//!
//! `rill run -n 2 -w 2 -- ./my-job --brokers 127.0.0.1:9092` writes a hosts
//! file with free local ports, starts one process per `-n` with
//! `-n/-p/-w/--hosts` set, forwards their output, and exits with the first
//! failure (a dead process brings the cluster down, as timely requires).
//! The processes run in a process group of their own: the first SIGINT
//! (Ctrl-C) or SIGTERM the launcher gets is passed to each of them once as
//! SIGTERM, which stops the job gracefully (a last checkpoint, then exit);
//! a second one kills them.
//!
//! `rill checkpoints --state-dir DIR` lists the complete checkpoints in a
//! job's state directory (epoch, time, size, workers, keys per step) and the
//! epoch a job started on it would resume from.
//!
//! `rill verify --brokers B --topic OUT --expected FILE.jsonl` (or
//! `--expected-topic T`) checks a job's output: records missing,
//! duplicated or unexpected, and keys out of order. It exits with 1 when
//! anything is wrong.

mod checkpoints;
mod verify;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "rill", about = "Run and supervise Rill jobs")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Launch a job binary as a local cluster of processes.
    Run {
        /// Number of processes.
        #[arg(short = 'n', long, default_value_t = 1)]
        processes: usize,
        /// Worker threads per process.
        #[arg(short = 'w', long, default_value_t = 1)]
        workers: usize,
        /// The job binary.
        binary: PathBuf,
        /// Arguments passed to every process (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// List the complete checkpoints in a job's state directory.
    Checkpoints {
        /// The job's `--state-dir`.
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Compare an output topic with what it should hold: records missing,
    /// duplicated or unexpected, and keys out of order. Exits with 1 when
    /// they differ.
    Verify {
        /// Kafka bootstrap servers.
        #[arg(long, env = "RILL_BROKERS")]
        brokers: String,
        /// The topic to check.
        #[arg(long)]
        topic: String,
        /// The expected records: JSON lines `{"key": "k", "value": ...}`.
        #[arg(
            long,
            conflicts_with = "expected_topic",
            required_unless_present = "expected_topic"
        )]
        expected: Option<PathBuf>,
        /// A topic holding the expected records.
        #[arg(long)]
        expected_topic: Option<String>,
        /// How many examples of each problem to print.
        #[arg(long, default_value_t = 10)]
        examples: usize,
    },
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Run {
            processes,
            workers,
            binary,
            args,
        } => run(processes, workers, &binary, &args),
        Cmd::Checkpoints { state_dir } => {
            print!("{}", checkpoints::report(&state_dir)?);
            Ok(())
        }
        Cmd::Verify {
            brokers,
            topic,
            expected,
            expected_topic,
            examples,
        } => {
            let config = rill::connectors::kafka::KafkaConfig::new(brokers);
            let read = |t: &str| {
                rill::connectors::kafka::read_all(&config, t)
                    .map(|r| verify::from_topic(&r))
                    .with_context(|| format!("reading topic {t}"))
            };
            let got = read(&topic)?;
            let want = match (expected, expected_topic) {
                (Some(file), _) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    verify::from_json_lines(&text)
                        .with_context(|| format!("in {}", file.display()))?
                }
                (None, Some(t)) => read(&t)?,
                (None, None) => bail!("give --expected FILE or --expected-topic TOPIC"),
            };
            let report = verify::compare(&got, &want);
            print!("{}", report.render(examples));
            if !report.ok() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

fn run(processes: usize, workers: usize, binary: &PathBuf, args: &[String]) -> Result<()> {
    if processes == 0 || workers == 0 {
        bail!("--processes and --workers must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!("rill-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let hosts = dir.join("hosts.txt");
    let mut lines = String::new();
    for _ in 0..processes {
        lines.push_str(&format!("127.0.0.1:{}\n", free_port()?));
    }
    std::fs::write(&hosts, lines)?;
    // Set by each signal, taken in the loop below.
    let signals = Arc::new(AtomicUsize::new(0));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(signal, signals.clone(), 1)
            .with_context(|| format!("handling signal {signal}"))?;
    }
    let mut children: Vec<(usize, Child)> = Vec::new();
    for p in 0..processes {
        let child = Command::new(binary)
            .args(args)
            .args([
                "-n",
                &processes.to_string(),
                "-p",
                &p.to_string(),
                "-w",
                &workers.to_string(),
            ])
            .arg("--hosts")
            .arg(&hosts)
            // Not the terminal's group: Ctrl-C reaches them only through us.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        eprintln!("rill: started process {p} (pid {})", child.id());
        children.push((p, child));
    }
    let mut failure = None;
    let mut stopping = false;
    while !children.is_empty() {
        if signals.swap(0, Ordering::SeqCst) > 0 {
            if stopping {
                eprintln!("rill: killing the processes");
                for (_, c) in &mut children {
                    let _ = c.kill();
                }
            } else {
                stopping = true;
                eprintln!("rill: stopping the job (a last checkpoint, then exit); signal again to kill it");
                for (p, c) in &children {
                    let pid = rustix::process::Pid::from_child(c);
                    if let Err(e) =
                        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                    {
                        eprintln!("rill: cannot signal process {p}: {e}");
                    }
                }
            }
        }
        let mut i = 0;
        while i < children.len() {
            if let Some(status) = children[i].1.try_wait()? {
                let (p, _) = children.remove(i);
                eprintln!("rill: process {p} exited: {status}");
                if !status.success() && failure.is_none() {
                    failure = Some(format!("process {p} failed: {status}"));
                    for (_, c) in &mut children {
                        let _ = c.kill();
                    }
                }
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
    match failure {
        Some(f) => bail!(f),
        None => Ok(()),
    }
}
