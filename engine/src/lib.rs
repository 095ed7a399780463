//! Rill: a distributed dataflow engine with durable state.
//!
//! A job is an ordinary Rust binary: it reads Kafka topics, transforms the
//! events and writes Kafka topics. Rill runs it on timely-dataflow across
//! worker threads and processes.
//!
//! ```no_run
//! use rill::prelude::*;
//!
//! #[derive(Serialize, Deserialize, Clone)]
//! struct CartEvent { event_type: String, user: String, price: f64 }
//!
//! fn main() -> rill::Result<()> {
//!     rill::Job::from_args("cart-adds")?.run(|flow| {
//!         flow.kafka_source::<String, CartEvent>("cart-events", Json)
//!             .filter("added", |e| e.event_type == "added-to-cart")
//!             .key_by("by-user", |e| e.user.clone())
//!             .map("price", |e| e.price)
//!             .kafka_sink("cart-adds", Json);
//!     })
//! }
//! ```
//!
//! The same job, tested in memory with 3 workers:
//!
//! ```
//! let out = rill::testing::run(3, |flow| {
//!     flow.source_iter("numbers", 0..100u64)
//!         .filter("even", |x| x % 2 == 0)
//!         .map("square", |x| x * x)
//! })
//! .unwrap();
//! let mut values: Vec<u64> = out.into_iter().map(|(_, v)| v).collect();
//! values.sort();
//! assert_eq!(values, (0..100u64).filter(|x| x % 2 == 0).map(|x| x * x).collect::<Vec<_>>());
//! ```

mod args;
mod branch;
mod checkpoint;
mod context;
pub mod crash;
mod error;
mod flow;
mod graph;
mod job;
mod join;
mod keyed;
pub mod metrics;
mod rescale;
mod sink;
mod source;
mod state;
mod stop;
mod stream;
pub mod testing;
mod window;
mod writer;

pub use args::{Delivery, JobArgs, SinkOptions};
pub use branch::{Branch, Branches};
pub use error::{exit, Error, Fault, Result, EXIT_RESTART};
pub use flow::Flow;
pub use graph::GraphFormat;
pub use job::Job;
pub use keyed::{Outputs, PerEpoch, StateKey, StateValue};
pub use rescale::state_root;
pub use rill_operators::{
    Context, Either, Emit, Failure, JoinKind, Joined, ListState, LogicResult, MapState, Process,
    Process2, SideOutput, States, Timer, TimerKind, TimerState, ValueState, Window, Windows,
};
pub use rill_state::SortKey;
pub use sink::Collector;
pub use stop::StopHandle;
pub use stream::Stream;
pub use window::Windowed;

/// Formats, Kafka options and connector types, re-exported.
pub mod connectors {
    pub use rill_connectors::kafka::{BadInputPolicy, KafkaConfig, SourceOptions, StartOffset};
    pub use rill_connectors::*;
}

/// What a job needs: `use rill::prelude::*;`.
pub mod prelude {
    pub use crate::connectors::{
        BadInputPolicy, Bincode, Codec, Json, Meta, Raw, SourceOptions, StartOffset, WithMeta,
    };
    pub use crate::{
        Collector, Context, Delivery, Flow, Job, JobArgs, JoinKind, Joined, LogicResult, Process,
        Process2, SinkOptions, States, Stream, Timer, Window, Windows,
    };
    pub use serde::{Deserialize, Serialize};
}

/// The README's code blocks, compiled as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
