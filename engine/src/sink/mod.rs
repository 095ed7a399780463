//! Sinks: a generic timely sink operator that flushes when an epoch closes,
//! plus the drivers behind it (Kafka, collect-to-memory, stdout).

mod collect;
mod driver;
mod for_each;
mod kafka;
mod stdout;

pub use collect::Collector;
pub(crate) use driver::{sink_stream, SinkDriver};
pub(crate) use for_each::ForEachDriver;
pub(crate) use kafka::KafkaSinkDriver;
pub(crate) use stdout::StdoutDriver;
