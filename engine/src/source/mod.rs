//! Sources: a generic timely source operator that closes epochs, plus the
//! drivers that fill it (Kafka, in-memory, JSON-lines files).

pub(crate) mod align;
mod driver;
mod event_clock;
mod generated;
mod iter;
mod jsonl;
mod kafka;
mod timed;

pub(crate) use driver::{source_stream, Polled, Positions, SourceDriver};
pub(crate) use generated::GeneratedDriver;
pub(crate) use iter::{partition_of, IterDriver};
pub(crate) use jsonl::JsonLinesDriver;
pub(crate) use kafka::{Extract, KafkaDriver};
pub(crate) use timed::TimedDriver;
