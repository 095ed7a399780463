//! Real-broker helpers for tests: find the broker, create topics, produce,
//! and read a topic back.
//!
//! Tests read the broker address from `KAFKA_BOOTSTRAP` (so the same suite
//! runs against Tansu, Apache Kafka or Redpanda). A missing or unreachable
//! broker is a loud failure, never a skipped test: start one with
//! `scripts/test-broker.sh start`.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use rill_connectors::kafka::ReaderContext;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The test broker's address from `KAFKA_BOOTSTRAP`; panics with what to do
/// when it is unset or unreachable.
pub fn bootstrap() -> String {
    let brokers = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
        panic!(
            "KAFKA_BOOTSTRAP is not set (CI={}): these tests need a real broker. \
             Run `scripts/test-broker.sh start` and `eval $(scripts/test-broker.sh env)`, \
             or use scripts/test.sh.",
            std::env::var("CI").unwrap_or_default()
        )
    });
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("create a probe consumer");
    if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(10)) {
        panic!("the broker at KAFKA_BOOTSTRAP={brokers} does not answer: {e}");
    }
    brokers
}

/// A topic name no other test run uses.
pub fn unique_topic(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates `topic` with `partitions` partitions and waits until its metadata shows them.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("create an admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = runtime
        .block_on(admin.create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        ))
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
    for r in results {
        if let Err((name, code)) = r {
            panic!("create topic {name}: {code}");
        }
    }
    let consumer = probe_consumer(brokers);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let found = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|m| {
                m.topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .map(|t| t.partitions().len())
            });
        if found == Some(partitions as usize) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} did not appear with {partitions} partitions"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Produces `(key, value)` records to `topic` (partition chosen by key) and
/// waits until all are acknowledged.
pub fn produce<'a>(
    brokers: &str,
    topic: &str,
    records: impl IntoIterator<Item = (Option<&'a [u8]>, &'a [u8])>,
) {
    let producer = test_producer(brokers);
    for (key, value) in records {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        send(&producer, topic, record);
    }
    producer.flush(TIMEOUT).expect("flush the test producer");
}

/// Produces `(partition, timestamp ms, value)` records to `topic` and waits
/// until all are acknowledged (for event-time tests).
pub fn produce_timed<'a>(
    brokers: &str,
    topic: &str,
    records: impl IntoIterator<Item = (i32, i64, &'a [u8])>,
) {
    let producer = test_producer(brokers);
    for (partition, timestamp, value) in records {
        let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .payload(value)
            .partition(partition)
            .timestamp(timestamp);
        send(&producer, topic, record);
    }
    producer.flush(TIMEOUT).expect("flush the test producer");
}

fn test_producer(brokers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("create a producer")
}

/// Queues `record`, waiting while the producer's queue is full.
fn send(producer: &BaseProducer, topic: &str, mut record: BaseRecord<'_, [u8], [u8]>) {
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((e, back)) => {
                assert!(
                    e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    "produce to {topic}: {e}"
                );
                record = back;
                producer.poll(Duration::from_millis(10));
            }
        }
    }
    producer.poll(Duration::ZERO);
}

/// How long [`read_topic`] keeps reading after every partition reported
/// its end: right after a produce, Tansu can report an end of partition
/// before the last records are visible (a CI run once read 38,200 of
/// 40,000).
pub const SETTLE: Duration = Duration::from_millis(500);

/// A record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
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

/// Reads every record of `topic` until the consumer has caught up with every
/// partition (end-of-partition events; Tansu under-reports end offsets, so
/// they are not used) and nothing new has come for [`SETTLE`], in partition
/// order, then offset order.
///
/// Reading starts at offset 0, not at the "beginning" the broker reports:
/// Tansu has reported a partition's start as 10,000 (its first batch)
/// after a producer writing to it was killed, while a fetch from 0 still
/// returned offsets 0–9,999. Should 0 really be gone (a broker that deleted
/// old records), the consumer falls back to the earliest offset.
pub fn read_topic(brokers: &str, topic: &str) -> Vec<ReadRecord> {
    // The end-of-partition events this read waits for are not errors to log.
    let consumer: BaseConsumer<ReaderContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "rill-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create_with_context(ReaderContext)
        .expect("create a test consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    assert!(!partitions.is_empty(), "topic {topic} has no partitions");
    let mut list = TopicPartitionList::new();
    for &p in &partitions {
        list.add_partition_offset(topic, p, Offset::Offset(0))
            .expect("add partition");
    }
    consumer.assign(&list).expect("assign");
    drop(list);
    let mut out: BTreeMap<i32, Vec<ReadRecord>> = BTreeMap::new();
    let mut at_end: std::collections::BTreeSet<i32> = Default::default();
    let deadline = Instant::now() + TIMEOUT * 4;
    let mut last_news = Instant::now();
    while at_end.len() < partitions.len() || last_news.elapsed() < SETTLE {
        assert!(Instant::now() < deadline, "timed out reading {topic}");
        match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
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
                out.entry(m.partition()).or_default().push(ReadRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers,
                });
            }
        }
    }
    out.into_values().flatten().collect()
}

fn probe_consumer(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "rill-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("create a test consumer")
}
