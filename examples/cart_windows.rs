//! Cart windows: per user, the count and the sum of "added-to-cart" events
//! in 10 s tumbling windows of event time (the events' own `ts`, in ms),
//! allowing 5 s of lateness; events later than that go to a topic of
//! their own.
//!
//! ```text
//! cart_windows --brokers 127.0.0.1:9092 --state-dir /tmp/cart-windows
//! ```
//!
//! Reads `cart-events` (JSON `CartEvent`s), writes `cart-windows` (JSON
//! `{"start", "end", "value": {"count", "total"}}` keyed by user) and
//! `cart-late` (the late events).

use std::time::Duration;

use rill::connectors::{Json, SourceOptions};
use rill::prelude::*;

/// A shopping-cart event.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct CartEvent {
    event_type: String,
    user: String,
    price: f64,
    /// Event time, ms since the Unix epoch.
    ts: u64,
}

/// A window's count and sum of prices.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
struct Totals {
    count: u64,
    total: f64,
}

fn main() -> std::process::ExitCode {
    rill::exit(run())
}

fn run() -> rill::Result<()> {
    rill::Job::from_args("cart-windows")?.run(|flow| {
        let options = SourceOptions {
            out_of_orderness: Duration::from_secs(1),
            ..SourceOptions::default()
        };
        flow.kafka_source_timed::<String, CartEvent>("cart-events", Json, options, |e| e.ts)
            .filter("added", |e| e.event_type == "added-to-cart")
            .key_by("by-user", |e| e.user.clone())
            .window(Windows::tumbling(Duration::from_secs(10)))
            .allowed_lateness(Duration::from_secs(5))
            .on_late(|late| late.kafka_sink("cart-late", Json))
            .aggregate("cart-windows", Totals::default, |t, e| {
                t.count += 1;
                t.total += e.price;
            })
            .kafka_sink("cart-windows", Json);
    })
}
