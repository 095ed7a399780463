//! Kafka: the source reader, the sink writer and the dead-letter writer.
//!
//! Partitions are assigned to workers deterministically from the global
//! worker index ([`assign_partitions`]) and read with `assign()`: there is no
//! consumer-group rebalancing, and offsets belong to the engine.

mod assign;
mod client_log;
mod commit;
mod dead_letter;
mod landed;
mod partition;
mod read_all;
mod sink;
mod source;

pub use assign::assign_partitions;
pub use commit::GroupCommitter;
pub use dead_letter::{
    DeadLetterWriter, HEADER_ERROR, HEADER_OFFSET, HEADER_PARTITION, HEADER_TOPIC,
};
pub use landed::{
    identity_headers, landed, Landed, ScanFrom, HEADER_EPOCH, HEADER_JOB, HEADER_SEQ, HEADER_WRITER,
};
pub use read_all::{read_all, TopicRecord};
pub use sink::{partition_of_key, KafkaWriter, Outgoing};
pub use source::{KafkaReader, RawRecord, ReaderContext, SourceContext};

use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long Rill waits for the broker in blocking admin calls (metadata,
/// watermarks, flush).
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the brokers are, and extra librdkafka properties for every client.
/// Its `Debug` and [`KafkaConfig::describe`] mask secret values
/// ([`is_secret`]).
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: a comma-separated `host:port` list.
    pub brokers: String,
    /// Extra librdkafka properties, applied after Rill's own.
    pub properties: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// A configuration for the given bootstrap servers.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            properties: BTreeMap::new(),
        }
    }

    /// Adds a librdkafka property (it overrides Rill's defaults).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Adds every property of `properties` (each overrides one set before).
    pub fn with(mut self, properties: &BTreeMap<String, String>) -> Self {
        self.properties
            .extend(properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    /// The brokers and properties, for logs: secret values are `***`.
    pub fn describe(&self) -> String {
        let mut text = format!("bootstrap.servers={}", self.brokers);
        for (k, v) in &self.properties {
            let v = if is_secret(k) { "***" } else { v.as_str() };
            text.push_str(&format!(", {k}={v}"));
        }
        text
    }

    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KafkaConfig({})", self.describe())
    }
}

/// Whether a librdkafka property holds a secret (a password, a private
/// key, a token or a JAAS/OAuth configuration), whose value is never logged.
pub fn is_secret(property: &str) -> bool {
    [
        "password",
        "secret",
        "key.pem",
        "keystore",
        "jaas",
        "oauthbearer.config",
        "token",
    ]
    .iter()
    .any(|s| property.contains(s))
}

/// Where a source starts reading a partition that has no saved offset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StartOffset {
    /// The oldest record still in the partition. Reading starts at offset
    /// 0 and, where the broker deleted old records, moves to the first
    /// offset there is.
    #[default]
    Earliest,
    /// Only records produced after the job starts.
    Latest,
    /// Explicit offsets per partition; partitions not listed start earliest.
    Offsets(BTreeMap<i32, i64>),
}

/// What a source does with a record that fails to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadInputPolicy {
    /// Stop the job with an error naming topic, partition, offset and cause.
    Fail,
    /// Drop the record and count it.
    Skip,
    /// Produce the raw record, with the error in its headers, to this topic.
    DeadLetter(String),
}

/// How a Kafka source reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOptions {
    /// Where to start partitions without a saved offset.
    pub start: StartOffset,
    /// Stop at the end offsets seen at start-up instead of reading forever.
    pub bounded: bool,
    /// What to do with records that fail to decode.
    pub bad_input: BadInputPolicy,
    /// The most records read in one activation of the source.
    pub max_batch: usize,
    /// Event time: how far behind the latest record of its partition a
    /// record may be and still be on time (the watermark trails by this).
    pub out_of_orderness: Duration,
    /// Event time: a partition that delivers nothing for this long is left
    /// out of the source's watermark until it delivers again, so an idle
    /// partition (or one that never had a record) holds nothing back.
    pub idle_timeout: Duration,
    /// librdkafka properties for this source's consumer only, applied
    /// after the job's (`--kafka`).
    pub properties: BTreeMap<String, String>,
    /// The source step's name (default: the topic): a topic read by two
    /// steps needs a name for at least one of them.
    pub name: Option<String>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            start: StartOffset::Earliest,
            bounded: false,
            bad_input: BadInputPolicy::Fail,
            max_batch: 4096,
            out_of_orderness: Duration::ZERO,
            idle_timeout: Duration::from_secs(5),
            properties: BTreeMap::new(),
            name: None,
        }
    }
}
