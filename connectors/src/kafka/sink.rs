//! The Kafka sink writer: an idempotent producer (ordered per partition)
//! whose acknowledgements are tracked per tag (a sink tags records with
//! their epoch), so a worker can ask whether everything up to a tag is
//! delivered instead of blocking in `flush`. Delivery errors are kept and
//! returned, never dropped.

use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{KafkaConfig, BROKER_TIMEOUT};
use crate::{ConnectorError, Result};

/// A callback run on librdkafka's thread.
type Hook = Box<dyn Fn() + Send + Sync>;

/// A callback run on librdkafka's thread with the count of records
/// acknowledged so far.
type AckHook = Box<dyn Fn(u64) + Send + Sync>;

/// What the delivery reports said so far.
#[derive(Default)]
struct Tally {
    /// Records sent and not yet acknowledged, per tag.
    outstanding: BTreeMap<u64, u64>,
    /// Per partition, the offset after the last record acknowledged.
    ends: BTreeMap<i32, i64>,
    /// Records acknowledged since the writer was created.
    acked: u64,
    /// The first delivery error.
    error: Option<KafkaError>,
}

/// The producer's context: counts acknowledgements and wakes the sink
/// when a tag is fully delivered or a delivery failed.
#[derive(Default)]
pub(crate) struct Deliveries {
    tally: Mutex<Tally>,
    wake: Mutex<Option<Hook>>,
    on_ack: Mutex<Option<AckHook>>,
}

impl Deliveries {
    fn tally(&self) -> MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for Deliveries {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        super::client_log::error(&error, reason);
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        super::client_log::line(level, facility, message);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        let (wake, acked) = {
            let mut t = self.tally();
            let tag = tag as u64;
            let mut wake = false;
            if let Some(n) = t.outstanding.get_mut(&tag) {
                *n -= 1;
                if *n == 0 {
                    t.outstanding.remove(&tag);
                    wake = true;
                }
            }
            match result {
                Ok(m) => {
                    let end = t.ends.entry(m.partition()).or_insert(0);
                    *end = (*end).max(m.offset() + 1);
                    t.acked += 1;
                }
                Err((e, _)) => {
                    t.error.get_or_insert_with(|| e.clone());
                    wake = true;
                }
            }
            (wake, t.acked)
        };
        if let Some(hook) = self
            .on_ack
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            hook(acked);
        }
        if wake {
            if let Some(hook) = self.wake.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                hook();
            }
        }
    }
}

/// The partition of a record with key `key` among `partitions`: the CRC-32
/// of the key modulo the count, as librdkafka's default (consistent)
/// partitioner places keyed records, so both delivery modes put a key in
/// the same partition.
pub fn partition_of_key(key: &[u8], partitions: i32) -> i32 {
    (crc32fast::hash(key) % partitions.max(1) as u32) as i32
}

/// One record to produce.
pub struct Outgoing<'a> {
    /// Its key, if it has one.
    pub key: Option<&'a [u8]>,
    /// Its value.
    pub payload: &'a [u8],
    /// Its partition; `None` lets librdkafka's partitioner choose.
    pub partition: Option<i32>,
    /// Its headers.
    pub headers: Option<OwnedHeaders>,
    /// Its timestamp in milliseconds; `None` for the producer's clock.
    pub timestamp: Option<i64>,
}

/// Produces records to one topic, with an idempotent producer served by its
/// own thread.
pub struct KafkaWriter {
    producer: ThreadedProducer<Deliveries>,
    topic: String,
}

impl KafkaWriter {
    /// Creates an idempotent producer for `topic` (acks=all, ordered per partition).
    pub fn new(config: &KafkaConfig, topic: &str) -> Result<Self> {
        let producer = config
            .client_config(&[
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("batch.num.messages", "10000"),
                ("queue.buffering.max.messages", "1000000"),
                ("queue.buffering.max.kbytes", "1048576"),
                ("message.timeout.ms", "60000"),
            ])
            .create_with_context(Deliveries::default())
            .map_err(|e| ConnectorError::kafka(format!("creating the producer for {topic}"), e))?;
        Ok(KafkaWriter {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// The topic written.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The number of partitions of the topic, or a clear error if it does
    /// not exist.
    pub fn partition_count(&self) -> Result<i32> {
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(&self.topic), BROKER_TIMEOUT)
            .map_err(|e| ConnectorError::kafka(format!("metadata of topic {}", self.topic), e))?;
        super::source::count_in(&metadata, &self.topic)
    }

    /// The high watermark of `partition` as the broker reports it (some
    /// brokers report less than the true end; never more).
    pub fn high_watermark(&self, partition: i32) -> Result<i64> {
        let (_, high) = self
            .producer
            .client()
            .fetch_watermarks(&self.topic, partition, BROKER_TIMEOUT)
            .map_err(|e| {
                ConnectorError::kafka(format!("watermarks of {}/{partition}", self.topic), e)
            })?;
        Ok(high)
    }

    /// Calls `wake` (on librdkafka's thread) whenever every record of a tag
    /// is acknowledged, and when a delivery fails.
    pub fn set_wakeup(&self, wake: impl Fn() + Send + Sync + 'static) {
        let ctx = self.producer.context();
        *ctx.wake.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(wake));
    }

    /// Calls `hook` (on librdkafka's thread) with the number of records
    /// acknowledged so far, after each acknowledgement.
    pub fn set_on_ack(&self, hook: impl Fn(u64) + Send + Sync + 'static) {
        let ctx = self.producer.context();
        *ctx.on_ack.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    /// Queues one record under `tag` (tags are counted, not sent). Waits
    /// while librdkafka's queue is full. A delivery error reported so far
    /// is returned.
    pub fn send(&self, tag: u64, record: Outgoing<'_>) -> Result<()> {
        let mut r: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topic, tag as usize).payload(record.payload);
        if let Some(t) = record.timestamp {
            r = r.timestamp(t);
        }
        if let Some(k) = record.key {
            r = r.key(k);
        }
        if let Some(p) = record.partition {
            r = r.partition(p);
        }
        if let Some(h) = record.headers {
            r = r.headers(h);
        }
        *self
            .producer
            .context()
            .tally()
            .outstanding
            .entry(tag)
            .or_insert(0) += 1;
        loop {
            match self.producer.send(r) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    r = back;
                    self.check()?;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => {
                    self.forget(tag);
                    return Err(ConnectorError::kafka(
                        format!("producing to {}", self.topic),
                        e,
                    ));
                }
            }
        }
    }

    fn forget(&self, tag: u64) {
        let mut t = self.producer.context().tally();
        if let Some(n) = t.outstanding.get_mut(&tag) {
            *n -= 1;
            if *n == 0 {
                t.outstanding.remove(&tag);
            }
        }
    }

    /// True when every record sent with a tag up to `through` is
    /// acknowledged; the first delivery error, if any.
    pub fn delivered_through(&self, through: u64) -> Result<bool> {
        self.check()?;
        let t = self.producer.context().tally();
        Ok(t.outstanding.range(..=through).next().is_none())
    }

    /// Per partition, the offset after the last record acknowledged.
    pub fn ends(&self) -> BTreeMap<i32, i64> {
        self.producer.context().tally().ends.clone()
    }

    /// Waits until every queued record is acknowledged; returns the first
    /// delivery error.
    pub fn flush(&self) -> Result<()> {
        self.producer
            .flush(BROKER_TIMEOUT)
            .map_err(|e| ConnectorError::kafka(format!("flushing {}", self.topic), e))?;
        self.check()
    }

    fn check(&self) -> Result<()> {
        match self.producer.context().tally().error.clone() {
            None => Ok(()),
            Some(e) => Err(ConnectorError::kafka(
                format!("delivering to {}", self.topic),
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_placed_as_librdkafka_places_them() {
        // librdkafka: rd_crc32("abc") % 7, with rd_crc32 the zlib CRC-32.
        assert_eq!(crc32fast::hash(b"abc"), 0x3524_41c2);
        assert_eq!(partition_of_key(b"abc", 7), (0x3524_41c2_u32 % 7) as i32);
        for n in 1..10 {
            assert!((0..n).contains(&partition_of_key(b"some key", n)));
        }
    }
}
