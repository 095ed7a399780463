//! Word count: how often each word has appeared in a text topic.
//!
//! Input: topic `lines`, values are UTF-8 text lines (keys ignored).
//! Output: topic `word-counts`, key = word, value = its new count after each
//! occurrence (a changelog); with `--per-epoch`, one update per changed word
//! per epoch instead.
//!
//! With no `--brokers`, this starts librdkafka's in-process mock cluster,
//! produces `--lines` sample lines, counts them with 2 workers, prints the
//! most frequent words and checks every count against a direct computation:
//!
//! ```text
//! cargo run --release -p rill-examples --bin word_count
//! ```
//!
//! The count is keyed state (`count`): every word lives on the worker that
//! owns its key group, and with `--state-dir` it is checkpointed and resumed.

use clap::Parser;
use rill::prelude::*;
use rill::testing::embedded::EmbeddedKafka;
use rill::testing::kafka::{produce, read_topic};
use std::collections::BTreeMap;

#[derive(Parser)]
#[command(about = "Counts words from a text topic (embedded demo without --brokers)")]
struct Cli {
    #[command(flatten)]
    job: JobArgs,
    /// Input topic.
    #[arg(long, default_value = "lines")]
    input: String,
    /// Output topic.
    #[arg(long, default_value = "word-counts")]
    output: String,
    /// Emit one update per changed word per epoch, not one per occurrence.
    #[arg(long)]
    per_epoch: bool,
    /// Sample lines to produce in embedded mode.
    #[arg(long, default_value_t = 2000)]
    lines: usize,
}

const WORDS: [&str; 12] = [
    "stream",
    "state",
    "epoch",
    "kafka",
    "rust",
    "timely",
    "key",
    "group",
    "checkpoint",
    "worker",
    "offset",
    "resume",
];

/// Deterministic sample text.
fn sample(n: usize) -> Vec<String> {
    (0..n as u64)
        .map(|i| {
            let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let len = 3 + (x >> 60) as usize % 6;
            (0..len)
                .map(|j| WORDS[((x >> (j * 5)) % WORDS.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Splits a line into lower-case words.
fn words(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn main() -> std::process::ExitCode {
    rill::exit(run())
}

fn run() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    let embedded = cli.job.brokers.is_none();
    let lines = sample(cli.lines);
    let mut _mock = None;
    if embedded {
        let mock = EmbeddedKafka::start(&[&cli.input, &cli.output], 4)?;
        produce(
            mock.brokers(),
            &cli.input,
            lines.iter().map(|l| (None, l.as_bytes())),
        );
        println!("produced {} lines to {}", lines.len(), cli.input);
        cli.job.brokers = Some(mock.brokers().to_owned());
        cli.job.stop_at_end = true;
        cli.job.workers = cli.job.workers.max(2);
        _mock = Some(mock);
    }
    let brokers = cli.job.brokers.clone().unwrap_or_default();
    let (input, output, per_epoch) = (cli.input.clone(), cli.output.clone(), cli.per_epoch);

    rill::Job::new("word-count", cli.job)?.run(move |flow| {
        let words = flow
            .kafka_source::<Option<Vec<u8>>, String>(&input, Raw)
            .flat_map("split", |line: String| words(&line))
            .key_by("by-word", |w: &String| w.clone());
        let counts = if per_epoch {
            words.per_epoch().count("count")
        } else {
            words.count("count")
        };
        counts.kafka_sink(&output, Json);
    })?;

    if embedded {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let updates = read_topic(&brokers, &cli.output);
        for r in &updates {
            let word = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
            counts.insert(
                word,
                serde_json::from_slice(r.value.as_deref().unwrap_or_default())?,
            );
        }
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for w in lines.iter().flat_map(|l| words(l)) {
            *expected.entry(w).or_default() += 1;
        }
        let mut top: Vec<_> = counts.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        println!(
            "{} updates in {}; most frequent words:",
            updates.len(),
            cli.output
        );
        for (word, n) in top.iter().take(5) {
            println!("  {word:<12} {n:>6}");
        }
        anyhow::ensure!(
            counts == expected,
            "counts differ from a direct computation"
        );
        println!("all {} counts match a direct computation", counts.len());
    }
    Ok(())
}
