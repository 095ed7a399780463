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
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
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

/// An admin client of `brokers`, and a runtime to wait for its calls.
fn admin(brokers: &str) -> (AdminClient<DefaultClientContext>, tokio::runtime::Runtime) {
    let client = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("create an admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    (client, runtime)
}

/// Panics unless every topic of an admin call succeeded.
fn check(what: &str, results: rdkafka::error::KafkaResult<Vec<rdkafka::admin::TopicResult>>) {
    for r in results.unwrap_or_else(|e| panic!("{what}: {e}")) {
        if let Err((name, code)) = r {
            panic!("{what} {name}: {code}");
        }
    }
}

/// Creates `topic` with `partitions` partitions and waits until its metadata shows them.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    create_topic_with(brokers, topic, partitions, &[]);
}

/// [`create_topic`] with `cleanup.policy=compact`: a table's topic, which
/// keeps the latest record per key.
pub fn create_compacted_topic(brokers: &str, topic: &str, partitions: i32) {
    create_topic_with(brokers, topic, partitions, &[("cleanup.policy", "compact")]);
}

fn create_topic_with(brokers: &str, topic: &str, partitions: i32, config: &[(&str, &str)]) {
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (key, value) in config {
        new = new.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let (client, runtime) = admin(brokers);
    check(
        "create topic",
        runtime.block_on(client.create_topics([&new], &options)),
    );
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

/// Deletes `topic` and waits until its metadata no longer shows it.
pub fn delete_topic(brokers: &str, topic: &str) {
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let (client, runtime) = admin(brokers);
    check(
        "delete topic",
        runtime.block_on(client.delete_topics(&[topic], &options)),
    );
    let consumer = probe_consumer(brokers);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let present = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .is_some_and(|m| {
                m.topics()
                    .iter()
                    .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            });
        if !present {
            return;
        }
        assert!(Instant::now() < deadline, "topic {topic} was not deleted");
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

/// Produces `(partition, key, value)` records to `topic`, each as its own
/// batch (acknowledged before the next is sent). Tansu reports the high
/// watermark of a partition whose last batch holds one record exactly.
pub fn produce_at<'a>(
    brokers: &str,
    topic: &str,
    records: impl IntoIterator<Item = (i32, &'a [u8], &'a [u8])>,
) {
    let producer = test_producer(brokers);
    for (partition, key, value) in records {
        let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .payload(value)
            .key(key)
            .partition(partition);
        send(&producer, topic, record);
        producer.flush(TIMEOUT).expect("flush the test producer");
    }
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
pub type ReadRecord = rill_connectors::kafka::TopicRecord;

/// Reads every record of `topic` ([`rill_connectors::kafka::read_all`]):
/// until the consumer has caught up with every partition and nothing new
/// has come for a moment, in partition order, then offset order. Panics
/// if the topic cannot be read.
pub fn read_topic(brokers: &str, topic: &str) -> Vec<ReadRecord> {
    let config = rill_connectors::kafka::KafkaConfig::new(brokers);
    rill_connectors::kafka::read_all(&config, topic)
        .unwrap_or_else(|e| panic!("reading {topic}: {e}"))
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

/// The offsets `group` has committed for each of `topic`'s `partitions`
/// (`None` where it has none). Panics if the broker cannot be asked.
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create a test consumer");
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let found = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("committed offsets of {group}: {e}"));
    (0..partitions)
        .map(
            |p| match found.find_partition(topic, p).map(|e| e.offset()) {
                Some(rdkafka::Offset::Offset(o)) => Some(o),
                _ => None,
            },
        )
        .collect()
}
