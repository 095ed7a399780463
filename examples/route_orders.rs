//! Route orders: filter, map and branch one topic into three.
//!
//! Reads JSON orders keyed by customer from `--input`, drops cancelled ones,
//! adds 10% tax (integer cents), and routes each order to `--big` (total at
//! least 500.00), else `--eu` (region "eu"), else `--other`. Keys are kept, so
//! each customer's orders stay in order in every output topic.
//!
//! ```text
//! route_orders --brokers 127.0.0.1:9092 --input orders \
//!     --big orders-big --eu orders-eu --other orders-other --stop-at-end -w 2
//! ```

use clap::Parser;
use rill::prelude::*;

#[derive(Parser)]
#[command(about = "Filter, map and branch orders into three topics")]
struct Cli {
    #[command(flatten)]
    job: JobArgs,
    /// Input topic of orders.
    #[arg(long)]
    input: String,
    /// Output topic for orders of at least 500.00 with tax.
    #[arg(long)]
    big: String,
    /// Output topic for the other orders from the EU.
    #[arg(long)]
    eu: String,
    /// Output topic for everything else.
    #[arg(long)]
    other: String,
}

/// An order as it arrives.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    id: u64,
    region: String,
    cents: i64,
    cancelled: bool,
}

/// An order with tax, as written.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Taxed {
    id: u64,
    region: String,
    total_cents: i64,
}

fn main() -> std::process::ExitCode {
    rill::exit(run())
}

fn run() -> rill::Result<()> {
    let cli = Cli::parse();
    let (input, big, eu, other) = (cli.input, cli.big, cli.eu, cli.other);
    rill::Job::new("route-orders", cli.job)?.run(move |flow| {
        let mut routes = flow
            .kafka_source::<String, Order>(&input, Json)
            .filter("not-cancelled", |o| !o.cancelled)
            .map("add-tax", |o| Taxed {
                id: o.id,
                region: o.region,
                total_cents: o.cents + o.cents / 10,
            })
            .branch("route")
            .when("big", |t| t.total_cents >= 50_000)
            .when("eu", |t| t.region == "eu")
            .split();
        routes.take("big").kafka_sink(&big, Json);
        routes.take("eu").kafka_sink(&eu, Json);
        routes.other().kafka_sink(&other, Json);
    })
}
