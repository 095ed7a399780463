//! Cart totals: a running total of what each user added to their cart.
//!
//! Input: topic `cart-events`, key = user, value =
//! `{"eventType":"added-to-cart","title":"...","price":44.99}`.
//! Output: topic `cart-totals`, key = user, value = the user's new total after
//! each added item (a changelog, like a Kafka Streams KTable).
//!
//! With no `--brokers`, this starts librdkafka's in-process mock cluster,
//! creates both topics, produces `--events` sample events, runs the job with
//! 2 workers until the input is drained, and prints the final totals:
//!
//! ```text
//! cargo run --release -p rill-examples --bin cart_totals
//! ```
//!
//! With `--brokers HOST:PORT` it runs against that cluster and reads forever
//! (add `--stop-at-end` to stop once the input present at start is read).
//!
//! The running total is Rill's `sum`: keyed state that lives on the worker
//! owning the user's key group. Add `--state-dir DIR` and it is checkpointed
//! to RocksDB with the Kafka offsets, so a restarted job resumes where the
//! last complete checkpoint left off (`rill checkpoints --state-dir DIR`
//! lists them).

use clap::Parser;
use rill::prelude::*;
use rill::testing::embedded::EmbeddedKafka;
use rill::testing::kafka::{produce, read_topic};
use std::collections::BTreeMap;

#[derive(Parser)]
#[command(about = "Per-user running cart totals (embedded demo without --brokers)")]
struct Cli {
    #[command(flatten)]
    job: JobArgs,
    /// Sample events to produce in embedded mode.
    #[arg(long, default_value_t = 5000)]
    events: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct CartEvent {
    event_type: String,
    title: String,
    price: f64,
}

const INPUT: &str = "cart-events";
const OUTPUT: &str = "cart-totals";
const TITLES: [&str; 5] = [
    "Rust in Action",
    "Kafka: TDG",
    "Streaming Systems",
    "DDIA",
    "Timely",
];

/// Deterministic sample events: (user, event).
fn sample(n: usize) -> Vec<(String, CartEvent)> {
    (0..n)
        .map(|i| {
            let x = (i as u64)
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let user = format!("user-{:02}", (x >> 33) % 20);
            let event_type = if (x >> 20).is_multiple_of(4) {
                "removed-from-cart"
            } else {
                "added-to-cart"
            };
            let price = ((x >> 40) % 10_000) as f64 / 100.0;
            let title = TITLES[(x >> 13) as usize % TITLES.len()].to_owned();
            (
                user,
                CartEvent {
                    event_type: event_type.into(),
                    title,
                    price,
                },
            )
        })
        .collect()
}

fn main() -> std::process::ExitCode {
    rill::exit(run())
}

fn run() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    let embedded = cli.job.brokers.is_none();
    let mut _mock = None;
    let events = sample(cli.events);
    if embedded {
        // Each run starts a new embedded Kafka: an earlier run's state
        // holds offsets and totals of topics that are gone.
        if let Some(dir) = &cli.job.state_dir {
            let store = dir.join("process-0");
            let used = std::fs::read_dir(&store).is_ok_and(|mut d| d.next().is_some());
            anyhow::ensure!(
                !used,
                "--state-dir {} holds an earlier run's state, but without --brokers each run \
                 starts a new embedded Kafka, whose topics that state does not describe: \
                 use a new directory (or remove this one), or run against --brokers",
                dir.display()
            );
        }
        let mock = EmbeddedKafka::start(&[INPUT, OUTPUT], 4)?;
        let brokers = mock.brokers().to_owned();
        let encoded: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|(u, e)| Ok((u.clone(), serde_json::to_vec(e)?)))
            .collect::<anyhow::Result<_>>()?;
        produce(
            &brokers,
            INPUT,
            encoded
                .iter()
                .map(|(u, v)| (Some(u.as_bytes()), v.as_slice())),
        );
        println!("produced {} events to {INPUT}", encoded.len());
        cli.job.brokers = Some(brokers);
        cli.job.stop_at_end = true;
        cli.job.workers = cli.job.workers.max(2);
        _mock = Some(mock);
    }
    let brokers = cli.job.brokers.clone().unwrap_or_default();

    rill::Job::new("cart-totals", cli.job)?.run(|flow| {
        flow.kafka_source::<String, CartEvent>(INPUT, Json)
            .filter("added", |e| e.event_type == "added-to-cart")
            .map("price", |e| e.price)
            .sum("cart-total")
            .map("cents", |total| (total * 100.0).round() / 100.0)
            .kafka_sink(OUTPUT, Json);
    })?;

    if embedded {
        // The last update per user is the final total.
        let mut totals: BTreeMap<String, f64> = BTreeMap::new();
        let updates = read_topic(&brokers, OUTPUT);
        for r in &updates {
            let user = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
            let total: f64 = serde_json::from_slice(r.value.as_deref().unwrap_or_default())?;
            totals.insert(user, total);
        }
        let mut expected: BTreeMap<&str, f64> = BTreeMap::new();
        for (u, e) in events
            .iter()
            .filter(|(_, e)| e.event_type == "added-to-cart")
        {
            *expected.entry(u.as_str()).or_default() += e.price;
        }
        println!("{} updates in {OUTPUT}; final totals:", updates.len());
        for (user, total) in &totals {
            println!("  {user}  {total:>10.2}");
        }
        for (user, want) in expected {
            let got = totals.get(user).copied().unwrap_or_default();
            anyhow::ensure!(
                (got - want).abs() < 0.01,
                "{user}: got {got}, expected {want:.2}"
            );
        }
        println!("all {} totals match a direct computation", totals.len());
    }
    Ok(())
}
