//! Rill's connectors: the I/O at the edges of a job.
//!
//! - [`kafka`]: a Kafka source reader (partitions assigned from the global
//!   worker index, `assign()`, no consumer-group rebalancing) and a Kafka sink
//!   writer (idempotent producer, flushed at epoch close), plus the dead-letter
//!   writer for records that fail to decode.
//! - [`format`](mod@format): how keys and values become bytes: [`Json`], [`Bincode`],
//!   [`Raw`] (bytes or UTF-8 text), and [`KafkaKey`] for record keys.
//! - [`file`](mod@file): a JSON-lines file reader for demos and tests.
//!
//! Nothing here knows about timely: the engine wraps these readers and writers
//! into dataflow operators.

pub mod error;
pub mod file;
pub mod format;
pub mod kafka;

pub use error::{ConnectorError, Result};
pub use format::{Bincode, Codec, FormatError, Json, KafkaKey, Meta, Raw, WithMeta};
