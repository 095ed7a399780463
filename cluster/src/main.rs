//! `rill`: launches the processes of a Rill job on this machine.
//!
//! `rill run -n 2 -w 2 --state-dir DIR -- ./my-job --brokers 127.0.0.1:9092`
//! writes a hosts file with free local ports, starts one process per `-n`
//! with `-n/-p/-w/--hosts/--state-dir` set, prefixes their output lines with
//! the process id, and supervises them ([`supervise`]): a process that
//! dies by a signal or exits with [`rill::EXIT_RESTART`] brings the others
//! down and all are restarted (backoff, `--max-restarts`); another failure
//! ends `rill run` with it. The first SIGINT (Ctrl-C) or SIGTERM stops the
//! job gracefully (a last checkpoint, then exit); a second one kills it.
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
mod status;
mod supervise;
mod verify;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "rill", about = "Run and supervise Rill jobs")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Launch a job binary as a local cluster of processes and supervise
    /// it: restart all processes (they resume from the last complete
    /// checkpoint) when one fails in a way a restart can help with.
    Run {
        /// Number of processes.
        #[arg(short = 'n', long, default_value_t = 1)]
        processes: usize,
        /// Worker threads per process.
        #[arg(short = 'w', long, default_value_t = 1)]
        workers: usize,
        /// The job's state directory, passed to every process.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// The processes' addresses, one `host:port` per line (process 0
        /// first), for a job across several hosts: `rill run` on each host
        /// starts the processes whose address is one of this host's. By
        /// default all processes run here on free local ports.
        #[arg(long)]
        hosts: Option<PathBuf>,
        /// Restarts allowed before giving up.
        #[arg(long, default_value_t = 10)]
        max_restarts: u32,
        /// The wait before the first restart (doubled after each, up to 60 s).
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        backoff: std::time::Duration,
        /// The job binary.
        binary: PathBuf,
        /// Arguments passed to every process (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// A live view of a running job from its metrics endpoints: records
    /// per second per step, consumer lag, epochs, the last checkpoint's age.
    Status {
        /// Each process's metrics endpoint (`http://HOST:PORT/metrics` or
        /// `HOST:PORT`), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        metrics: Vec<String>,
        /// Print one snapshot (rates over one interval) and exit.
        #[arg(long)]
        once: bool,
        /// How often to refresh.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        every: std::time::Duration,
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

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Run {
            processes,
            workers,
            state_dir,
            hosts,
            max_restarts,
            backoff,
            binary,
            args,
        } => supervise::supervise(&supervise::Plan {
            processes,
            workers,
            binary,
            args,
            state_dir,
            hosts,
            max_restarts,
            backoff,
        }),
        Cmd::Status {
            metrics,
            once,
            every,
        } => status::run(&metrics, once, every),
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
