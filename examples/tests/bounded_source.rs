//! A bounded Kafka source (`--stop-at-end`) ends on partitions whose last
//! offset is not a record a consumer is handed: a topic written in
//! transactions ends with a commit marker. Against the real test broker.

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use rill::connectors::Raw;
use rill::testing::kafka::{bootstrap, create_topic, unique_topic};
use rill::JobArgs;
use std::sync::mpsc;
use std::time::Duration;

const TRANSACTIONS: usize = 4;
const PER_TRANSACTION: usize = 250;
const LIMIT: Duration = Duration::from_secs(60);

/// Writes `TRANSACTIONS` committed transactions of `PER_TRANSACTION`
/// records to partition 0 of `topic`; the values are "0", "1", ….
fn produce_in_transactions(brokers: &str, topic: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("transactional.id", topic)
        .create()
        .expect("create a transactional producer");
    let timeout = Duration::from_secs(30);
    producer
        .init_transactions(timeout)
        .expect("init transactions");
    for t in 0..TRANSACTIONS {
        producer.begin_transaction().expect("begin a transaction");
        for i in t * PER_TRANSACTION..(t + 1) * PER_TRANSACTION {
            let value = i.to_string();
            producer
                .send(
                    BaseRecord::<[u8], [u8]>::to(topic)
                        .partition(0)
                        .payload(value.as_bytes()),
                )
                .expect("send");
        }
        producer
            .commit_transaction(timeout)
            .expect("commit a transaction");
    }
}

#[test]
fn a_bounded_read_ends_after_a_partitions_last_commit_marker() {
    let brokers = bootstrap();
    let topic = unique_topic("bounded-transactions");
    // Partition 0 holds the transactions; partition 1 stays empty.
    create_topic(&brokers, &topic, 2);
    produce_in_transactions(&brokers, &topic);
    let args = JobArgs {
        workers: 2,
        brokers: Some(brokers),
        stop_at_end: true,
        epoch_interval: Duration::from_millis(100),
        ..JobArgs::default()
    };
    let (done, ended) = mpsc::channel();
    let reader = topic.clone();
    std::thread::spawn(move || {
        let out = rill::testing::run_with(args, move |flow| {
            flow.kafka_source::<(), String>(&reader, Raw)
        });
        let _ = done.send(out);
    });
    let out = ended
        .recv_timeout(LIMIT)
        .unwrap_or_else(|_| {
            panic!("a bounded read of {topic} did not end within {LIMIT:?}: it waits for the commit marker's offset")
        })
        .expect("the job fails");
    let mut values: Vec<usize> = out
        .into_iter()
        .map(|((), v)| v.parse().expect("a number"))
        .collect();
    values.sort_unstable();
    let expected: Vec<usize> = (0..TRANSACTIONS * PER_TRANSACTION).collect();
    assert_eq!(values, expected, "every committed record, once");
}
