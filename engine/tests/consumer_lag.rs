//! A Kafka source's lag (what `rill_kafka_consumer_lag` reports): the
//! partition's high watermark minus the reader's position, read from
//! librdkafka's statistics. Every record is its own batch, so Tansu's
//! watermarks are exact (../shared/FACTS.md) and the lag must count the
//! records not yet read: above 0 while reading, 0 at the end.

use rill::testing::kafka::{bootstrap, create_topic, produce_at, unique_topic};
use rill_connectors::kafka::{KafkaConfig, KafkaReader, SourceOptions};
use std::time::{Duration, Instant};

const RECORDS: i64 = 40;

#[test]
fn the_lag_counts_the_records_not_yet_read_and_reaches_0() {
    let brokers = bootstrap();
    let topic = unique_topic("lag");
    create_topic(&brokers, &topic, 1);
    let keys: Vec<String> = (0..RECORDS).map(|i| format!("k{i}")).collect();
    produce_at(
        &brokers,
        &topic,
        keys.iter().map(|k| (0, k.as_bytes(), &b"v"[..])),
    );
    let config = KafkaConfig::new(&brokers).set("statistics.interval.ms", "100");
    let mut reader =
        KafkaReader::open(&config, &topic, 0, 1, &SourceOptions::default(), &|_| None).unwrap();
    // One record every 20 ms: statistics (every 100 ms) come while reading.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut read = 0i64;
    while read < RECORDS {
        assert!(Instant::now() < deadline, "read {read} of {RECORDS}");
        read += reader
            .poll_batch::<rill_connectors::ConnectorError>(1, |_| Ok(()))
            .unwrap() as i64;
        if let Some(&lag) = reader.lag().get(&0) {
            let behind = RECORDS - reader.positions()[&0];
            // Everything was produced before the reader started: the
            // watermark it sees is the partition's end.
            assert_eq!(lag, behind, "lag with {behind} records left");
            seen.push(lag);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        seen.iter().any(|&lag| lag > 0),
        "no lag above 0 while reading: {seen:?}"
    );
    // Statistics keep coming once everything is read: the lag drops to 0.
    loop {
        assert!(
            Instant::now() < deadline,
            "lag stayed at {:?}",
            reader.lag()
        );
        reader
            .poll_batch::<rill_connectors::ConnectorError>(1, |_| Ok(()))
            .unwrap();
        if reader.lag().get(&0) == Some(&0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
