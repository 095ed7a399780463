//! Key sums: the running sum of the values of each key, from one Kafka
//! topic to another. The job the crash test kills and restarts.
//!
//! Input: `--input`, key = UTF-8 string, value = a JSON integer.
//! Output: `--output`, key = the same key, value = the key's new sum after
//! each record (JSON).
//!
//! ```text
//! key_sums --brokers HOST:PORT --input numbers --output sums --state-dir /tmp/sums -w 2
//! ```

use clap::Parser;
use rill::prelude::*;

#[derive(Parser)]
#[command(about = "Running sum per key, Kafka to Kafka")]
struct Cli {
    #[command(flatten)]
    job: JobArgs,
    /// Input topic.
    #[arg(long)]
    input: String,
    /// Output topic.
    #[arg(long)]
    output: String,
}

fn main() -> std::process::ExitCode {
    rill::exit(run())
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (input, output) = (cli.input, cli.output);
    rill::Job::new("key-sums", cli.job)?.run(move |flow| {
        flow.kafka_source::<String, i64>(&input, Json)
            .sum("sums")
            .kafka_sink(&output, Json);
    })?;
    Ok(())
}
