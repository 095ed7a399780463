//! The Kafka source reader: one per worker, reading the partitions assigned to it.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::partition::{PartitionState, EARLIEST};
use super::{assign_partitions, KafkaConfig, SourceOptions, StartOffset, BROKER_TIMEOUT};
use crate::{ConnectorError, Result};

/// One record as read from Kafka, borrowed from librdkafka's buffer.
#[derive(Clone, Copy)]
pub struct RawRecord<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The key bytes, if the record has a key.
    pub key: Option<&'a [u8]>,
    /// The value bytes, if the record has a value.
    pub payload: Option<&'a [u8]>,
    /// The record's timestamp in milliseconds, if it has one.
    pub timestamp: Option<i64>,
    /// The record's headers, if it has any.
    pub headers: Option<&'a rdkafka::message::BorrowedHeaders>,
}

impl std::fmt::Debug for RawRecord<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRecord")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("key", &self.key)
            .field("payload", &self.payload)
            .field("timestamp", &self.timestamp)
            .field("headers", &self.header_list())
            .finish()
    }
}

impl RawRecord<'_> {
    /// The headers as (name, value) pairs (a header without a value has
    /// an empty one).
    pub fn header_list(&self) -> Vec<(String, Vec<u8>)> {
        use rdkafka::message::Headers;
        self.headers.map_or_else(Vec::new, |h| {
            h.iter()
                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
    }
}

/// A librdkafka client context that logs librdkafka's errors (see
/// `client_log`), except the end-of-partition events bounded reads ask
/// for (librdkafka reports those as errors too). For consumers created
/// with `enable.partition.eof`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        super::client_log::error(&error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::client_log::line(level, facility, message);
    }
}

impl ConsumerContext for ReaderContext {}

/// A source consumer's context: errors as [`ReaderContext`], and the high
/// watermark of each partition from librdkafka's statistics, for the lag.
#[derive(Debug, Default)]
pub struct SourceContext {
    high: std::sync::Mutex<BTreeMap<i32, i64>>,
}

impl ClientContext for SourceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        super::client_log::error(&error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::client_log::line(level, facility, message);
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut high = self.high.lock().unwrap_or_else(|p| p.into_inner());
        for topic in statistics.topics.values() {
            for (p, partition) in &topic.partitions {
                if partition.hi_offset >= 0 {
                    high.insert(*p, partition.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {}

/// Reads the partitions of one topic that belong to one worker.
pub struct KafkaReader {
    consumer: BaseConsumer<SourceContext>,
    topic: String,
    partitions: BTreeMap<i32, PartitionState>,
    bounded: bool,
}

impl KafkaReader {
    /// Connects, finds the topic's partitions, assigns this worker's share and
    /// seeks each to its start offset (`saved` offsets win over `options.start`).
    pub fn open(
        config: &KafkaConfig,
        topic: &str,
        worker: usize,
        workers: usize,
        options: &SourceOptions,
        saved: &dyn Fn(i32) -> Option<i64>,
    ) -> Result<Self> {
        let consumer: BaseConsumer<SourceContext> = config
            .client_config(&[
                // assign() still needs a group id; nothing is committed to it.
                ("group.id", "rill"),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                // Bounded reads end on librdkafka's end-of-partition event,
                // which uses the fetch response's high watermark; event
                // time counts only a caught-up partition as idle.
                ("enable.partition.eof", "true"),
                ("auto.offset.reset", "earliest"),
                ("fetch.wait.max.ms", "50"),
                ("queued.min.messages", "100000"),
            ])
            .create_with_context(SourceContext::default())
            .map_err(|e| ConnectorError::kafka("creating the consumer", e))?;
        let count = partition_count(&consumer, topic)?;
        let mine = assign_partitions(count, worker, workers);
        let mut partitions = BTreeMap::new();
        let mut list = TopicPartitionList::new();
        for &p in &mine {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, BROKER_TIMEOUT)
                .map_err(|e| ConnectorError::kafka(format!("watermarks of {topic}/{p}"), e))?;
            let start = match (saved(p), &options.start) {
                (Some(o), _) => o,
                (None, StartOffset::Earliest) => EARLIEST,
                (None, StartOffset::Latest) => high,
                (None, StartOffset::Offsets(map)) => map.get(&p).copied().unwrap_or(EARLIEST),
            };
            log::debug!(
                "kafka source {topic}/{p}: watermarks ({low}, {high}), starting at {start}"
            );
            list.add_partition_offset(topic, p, Offset::Offset(start))
                .map_err(|e| ConnectorError::kafka("building the assignment", e))?;
            let end = options.bounded.then_some(high);
            partitions.insert(p, PartitionState::new(start, end));
        }
        consumer
            .assign(&list)
            .map_err(|e| ConnectorError::kafka(format!("assigning partitions of {topic}"), e))?;
        drop(list);
        log::info!("kafka source {topic}: worker {worker}/{workers} reads partitions {mine:?}");
        Ok(KafkaReader {
            consumer,
            topic: topic.to_owned(),
            partitions,
            bounded: options.bounded,
        })
    }

    /// The topic read.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partitions this reader owns.
    pub fn partitions(&self) -> impl Iterator<Item = i32> + '_ {
        self.partitions.keys().copied()
    }

    /// Each owned partition, and whether the consumer is at its end (it
    /// reached the end and no record came since).
    pub fn caught_up(&self) -> impl Iterator<Item = (i32, bool)> + '_ {
        self.partitions.iter().map(|(p, s)| (*p, s.caught_up))
    }

    /// The next offset to read, per owned partition.
    pub fn positions(&self) -> BTreeMap<i32, i64> {
        self.partitions.iter().map(|(p, s)| (*p, s.next)).collect()
    }

    /// Each owned partition's lag: its high watermark (as of librdkafka's
    /// last statistics, with `statistics.interval.ms` set) minus the
    /// reader's position, at least 0. Partitions without statistics yet
    /// are left out.
    pub fn lag(&self) -> BTreeMap<i32, i64> {
        let high = self
            .consumer
            .context()
            .high
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.partitions
            .iter()
            .filter_map(|(p, s)| Some((*p, (high.get(p)? - s.next.max(0)).max(0))))
            .collect()
    }

    /// True when the reader is bounded and every partition reached its end:
    /// the consumer caught up with the partition (end-of-partition event)
    /// exactly at the end offset seen at start-up, or anywhere else and
    /// nothing more came for a settle time (300 ms).
    pub fn is_finished(&self) -> bool {
        self.bounded && self.partitions.values().all(|s| s.done)
    }

    /// Calls `wake` (from a librdkafka thread) whenever records arrive after
    /// the queue was empty, so an idle worker need not spin.
    pub fn set_wakeup(&mut self, wake: impl Fn() + Send + Sync + 'static) {
        self.consumer.set_nonempty_callback(wake);
    }

    /// Reads up to `max` records without blocking and hands each to `handle`.
    /// Returns how many were read; stops early at the first error `handle` returns.
    pub fn poll_batch<E>(
        &mut self,
        max: usize,
        mut handle: impl FnMut(RawRecord<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<usize, E>
    where
        E: From<ConnectorError>,
    {
        let mut read = 0;
        let now = Instant::now();
        for state in self.partitions.values_mut() {
            state.settle(now);
        }
        while read < max && !self.is_finished() {
            let message = match self.consumer.poll(std::time::Duration::ZERO) {
                None => break,
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    if let Some(state) = self.partitions.get_mut(&p) {
                        state.end_of_partition(Instant::now());
                    }
                    continue;
                }
                Some(Err(e)) if is_transient(&e) => {
                    log::warn!("kafka source {}: {e}", self.topic);
                    break;
                }
                Some(Err(e)) => {
                    return Err(ConnectorError::kafka(format!("reading {}", self.topic), e).into())
                }
                Some(Ok(m)) => m,
            };
            let partition = message.partition();
            let offset = message.offset();
            let Some(state) = self.partitions.get_mut(&partition) else {
                continue;
            };
            if state.done {
                // Produced after a bounded read ended: not part of this run.
                continue;
            }
            state.read(offset);
            read += 1;
            handle(RawRecord {
                topic: &self.topic,
                partition,
                offset,
                key: message.key(),
                payload: message.payload(),
                timestamp: message.timestamp().to_millis(),
                headers: message.headers(),
            })?;
        }
        Ok(read)
    }
}

fn is_transient(e: &KafkaError) -> bool {
    e.rdkafka_error_code().is_some_and(|c| {
        use rdkafka::types::RDKafkaErrorCode::*;
        matches!(
            c,
            AllBrokersDown | BrokerTransportFailure | OperationTimedOut
        )
    })
}

/// The number of partitions of `topic`, or a clear error if it does not exist.
pub(crate) fn partition_count<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Result<i32> {
    // Short tries until the broker timeout, serving the client's callbacks
    // between them: an unreachable broker is reported while the job waits
    // for it, not once the wait is over.
    let deadline = Instant::now() + BROKER_TIMEOUT;
    loop {
        match consumer.fetch_metadata(Some(topic), METADATA_TRY) {
            Ok(metadata) => return count_in(&metadata, topic),
            Err(e) if is_transient(&e) && Instant::now() < deadline => {
                // Not assigned yet: this only runs the callbacks.
                let _ = consumer.poll(Duration::ZERO);
            }
            Err(e) => {
                return Err(ConnectorError::kafka(
                    format!("metadata of topic {topic}"),
                    e,
                ))
            }
        }
    }
}

/// How long one try of [`partition_count`] waits for the broker.
const METADATA_TRY: Duration = Duration::from_secs(1);

/// The number of partitions of `topic` in `metadata`, or a clear error.
pub(crate) fn count_in(metadata: &rdkafka::metadata::Metadata, topic: &str) -> Result<i32> {
    let t = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| ConnectorError::Config(format!("topic {topic} does not exist")))?;
    if let Some(err) = t.error() {
        return Err(ConnectorError::Config(format!(
            "topic {topic} is not available: {err:?}"
        )));
    }
    if t.partitions().is_empty() {
        return Err(ConnectorError::Config(format!(
            "topic {topic} has no partitions"
        )));
    }
    Ok(t.partitions().len() as i32)
}
