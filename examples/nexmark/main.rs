//! Nexmark q5 (hot items), q7 (highest bid) and q8 (new sellers) over the
//! `nexmark` crate's event generator, in-process or through Kafka.
//!
//! ```text
//! # In-process: each worker generates its share of the events.
//! nexmark --query q5 --events 10000000 -w 2
//! # Through Kafka: fill a topic with events (JSON), then run a query on it.
//! nexmark --generate-to nexmark-events --events 1000000 --brokers 127.0.0.1:9092
//! nexmark --query q8 --topic nexmark-events --brokers 127.0.0.1:9092 --stop-at-end
//! ```
//!
//! It prints how many results the query emitted, a few of them, and the
//! events per second.

mod queries;

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use nexmark::event::Event;
use rill::connectors::{Json, SourceOptions};
use rill::prelude::*;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Query {
    Q5,
    Q7,
    Q8,
}

#[derive(Parser)]
#[command(about = "Nexmark q5, q7 and q8 on Rill")]
struct Cli {
    #[command(flatten)]
    job: JobArgs,
    /// The query to run.
    #[arg(long, value_enum, default_value = "q5")]
    query: Query,
    /// Events to generate (in-process, or with --generate-to).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Read the events (JSON) from this Kafka topic instead of generating them.
    #[arg(long)]
    topic: Option<String>,
    /// Only write `--events` generated events (JSON) to this topic, then exit.
    #[arg(long)]
    generate_to: Option<String>,
    /// Write the results (JSON) to this topic instead of counting them.
    #[arg(long)]
    to_topic: Option<String>,
}

/// Counts what a query emits and keeps the first few, per worker.
#[derive(Clone, Default)]
struct Tally(std::sync::Arc<std::sync::Mutex<(u64, Vec<String>)>>);

impl Tally {
    fn add(&self, line: String) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        t.0 += 1;
        if t.1.len() < 3 {
            t.1.push(line);
        }
    }
}

fn sink<'s, K, V>(s: Stream<'s, K, V>, cli_topic: &Option<String>, tally: &Tally)
where
    K: std::fmt::Debug + rill::connectors::KafkaKey + 'static,
    V: std::fmt::Debug + Serialize + serde::de::DeserializeOwned + 'static,
{
    match cli_topic {
        Some(topic) => s.kafka_sink(topic, Json),
        None => {
            let tally = tally.clone();
            s.for_each("tally", move |k, v| tally.add(format!("{k:?} {v:?}")));
        }
    }
}

fn main() -> std::process::ExitCode {
    rill::exit(run())
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(topic) = &cli.generate_to {
        return generate_to(&cli, topic);
    }
    let (query, events, topic, to_topic) = (
        cli.query,
        cli.events,
        cli.topic.clone(),
        cli.to_topic.clone(),
    );
    let generated = topic.is_none();
    let tally = Tally::default();
    let out = tally.clone();
    let started = Instant::now();
    rill::Job::new("nexmark", cli.job)?.run(move |flow| {
        let input = match &topic {
            Some(t) => flow.kafka_source_timed::<(), Event>(
                t,
                Json,
                SourceOptions::default(),
                queries::event_time,
            ),
            None => flow.source_generated("generator", Duration::ZERO, |w, n| {
                queries::generate(w, n, Some(events))
            }),
        };
        match query {
            Query::Q5 => sink(queries::q5(input), &to_topic, &out),
            Query::Q7 => sink(queries::q7(input), &to_topic, &out),
            Query::Q8 => sink(queries::q8(input), &to_topic, &out),
        }
    })?;
    let secs = started.elapsed().as_secs_f64();
    let (n, samples) = tally.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    println!("{query:?}: {n} results in {secs:.2} s");
    for s in samples {
        println!("  {s}");
    }
    if generated {
        println!("{:.0} events/s", events as f64 / secs);
    }
    Ok(())
}

/// Writes `--events` generated events to `topic` as JSON, keyless.
fn generate_to(cli: &Cli, topic: &str) -> anyhow::Result<()> {
    let brokers = cli
        .job
        .brokers
        .clone()
        .ok_or_else(|| anyhow::anyhow!("--generate-to needs --brokers"))?;
    let events = cli.events;
    let args = JobArgs {
        brokers: Some(brokers),
        ..cli.job.clone()
    };
    let topic = topic.to_owned();
    rill::Job::new("nexmark-generate", args)?.run(move |flow| {
        flow.source_generated("generator", Duration::ZERO, |w, n| {
            queries::generate(w, n, Some(events))
        })
        .kafka_sink(&topic, Json);
    })?;
    println!(
        "wrote {events} events to {}",
        cli.generate_to.as_deref().unwrap_or_default()
    );
    Ok(())
}
