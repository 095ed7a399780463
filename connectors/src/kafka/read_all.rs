//! Reading a whole topic, for tools that check a job's output.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::source::partition_count;
use super::{KafkaConfig, ReaderContext, BROKER_TIMEOUT};
use crate::{ConnectorError, Result};

/// How long a read waits, once every partition reported its end, for
/// records still on their way.
const SETTLE: Duration = Duration::from_millis(500);

/// One record of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Option<Vec<u8>>,
    /// Its headers, as UTF-8 text (lossy).
    pub headers: BTreeMap<String, String>,
}

/// Reads every record of `topic`, in partition order, then offset order,
/// until the consumer has caught up with every partition (end-of-partition
/// events: some brokers under-report end offsets, so they are not used)
/// and nothing new came for a moment. Reading starts at offset 0 (falling
/// back to the earliest offset where old records were deleted).
pub fn read_all(config: &KafkaConfig, topic: &str) -> Result<Vec<TopicRecord>> {
    let consumer: BaseConsumer<ReaderContext> = config
        .client_config(&[
            ("group.id", "rill-reader"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
            ("auto.offset.reset", "earliest"),
        ])
        .create_with_context(ReaderContext)
        .map_err(|e| ConnectorError::kafka("creating the consumer", e))?;
    let partitions = partition_count(&consumer, topic)?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Offset(0))
            .map_err(|e| ConnectorError::kafka("building the assignment", e))?;
    }
    consumer
        .assign(&list)
        .map_err(|e| ConnectorError::kafka(format!("assigning partitions of {topic}"), e))?;
    drop(list);
    let mut out: BTreeMap<i32, Vec<TopicRecord>> = BTreeMap::new();
    let mut at_end: BTreeSet<i32> = BTreeSet::new();
    let deadline = Instant::now() + BROKER_TIMEOUT * 4;
    let mut last_news = Instant::now();
    while at_end.len() < partitions as usize || last_news.elapsed() < SETTLE {
        if Instant::now() > deadline {
            return Err(ConnectorError::Timeout(format!(
                "timed out reading topic {topic} to its end"
            )));
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => return Err(ConnectorError::kafka(format!("reading {topic}"), e)),
            Some(Ok(m)) => {
                at_end.remove(&m.partition());
                last_news = Instant::now();
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                let value =
                                    h.value.map(String::from_utf8_lossy).unwrap_or_default();
                                (h.key.to_owned(), value.into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.entry(m.partition()).or_default().push(TopicRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers,
                });
            }
        }
    }
    Ok(out.into_values().flatten().collect())
}
