//! Sinks: a generic timely sink operator that lets an epoch go once it is
//! delivered, the drivers behind it (Kafka, collect-to-memory, stdout), and
//! the exactly-once Kafka sink.

mod collect;
mod driver;
mod exactly_once;
mod for_each;
mod kafka;
mod stdout;

pub use collect::Collector;
pub(crate) use driver::{sink_stream, SinkDriver};
pub(crate) use exactly_once::{exactly_once_stream, unpublished, KIND as EXACTLY_ONCE_SINK};
pub(crate) use for_each::ForEachDriver;
pub(crate) use kafka::KafkaSinkDriver;
pub(crate) use stdout::StdoutDriver;
