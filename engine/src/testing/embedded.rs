//! An embedded Kafka for demos and the quick start: librdkafka's in-process
//! mock cluster. Tests use a real broker instead (see [`super::kafka`]).

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::{Error, Result};

/// A mock Kafka cluster living as long as this value.
pub struct EmbeddedKafka {
    _mock: MockCluster<'static, DefaultProducerContext>,
    brokers: String,
}

impl EmbeddedKafka {
    /// Starts a one-broker mock cluster with `topics`, each with `partitions`
    /// partitions (the mock has no CreateTopics, so topics are made here).
    pub fn start(topics: &[&str], partitions: i32) -> Result<Self> {
        let fail = |e: rdkafka::error::KafkaError| {
            Error::Runtime(format!("embedded Kafka (librdkafka mock cluster): {e}"))
        };
        let mock = MockCluster::new(1).map_err(fail)?;
        for topic in topics {
            mock.create_topic(topic, partitions, 1).map_err(fail)?;
        }
        let brokers = mock.bootstrap_servers();
        println!("embedded Kafka (librdkafka mock cluster) at {brokers}");
        Ok(EmbeddedKafka {
            _mock: mock,
            brokers,
        })
    }

    /// Its bootstrap servers, for `--brokers`.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }
}
