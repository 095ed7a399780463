//! A source that asks for them gets each record's partition, offset,
//! timestamp and headers beside its value (`WithMeta`), and one topic can
//! be read by two steps (the second named in its `SourceOptions`).

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use rill::prelude::*;
use rill::testing::kafka::{bootstrap, create_topic, unique_topic};
use std::time::Duration;

const BASE_TIME: i64 = 1_700_000_000_000;

#[test]
fn records_carry_partition_offset_timestamp_and_headers_and_a_topic_feeds_two_steps() {
    let brokers = bootstrap();
    let topic = unique_topic("meta");
    create_topic(&brokers, &topic, 2);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for i in 0..20i64 {
        let (key, value, trace) = (format!("k{i}"), i.to_string(), format!("t{i}"));
        let headers = OwnedHeaders::new().insert(Header {
            key: "trace",
            value: Some(trace.as_bytes()),
        });
        let record = BaseRecord::to(&topic)
            .partition((i % 2) as i32)
            .key(&key)
            .payload(&value)
            .timestamp(BASE_TIME + i)
            .headers(headers);
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let args = JobArgs {
        brokers: Some(brokers.clone()),
        stop_at_end: true,
        workers: 2,
        ..JobArgs::default()
    };
    let again = Collector::new();
    let seen = again.clone();
    let source = topic.clone();
    let mut metas = rill::testing::run_with(args, move |flow| {
        let options = SourceOptions {
            name: Some("the-same-topic-again".into()),
            ..SourceOptions::default()
        };
        flow.kafka_source_with::<String, i64>(&source, Json, options, None)
            .collect("again", &seen);
        flow.kafka_source::<String, Meta<i64>>(&source, WithMeta(Json))
    })
    .unwrap();
    metas.sort_by_key(|(_, m)| m.value);
    assert_eq!(metas.len(), 20);
    for (i, (key, meta)) in metas.iter().enumerate() {
        let i = i as i64;
        assert_eq!(key, &format!("k{i}"));
        assert_eq!(meta.partition, (i % 2) as i32, "{meta:?}");
        assert_eq!(meta.offset, i / 2, "{meta:?}");
        assert_eq!(meta.timestamp, Some(BASE_TIME + i), "{meta:?}");
        assert_eq!(
            meta.headers,
            vec![("trace".to_owned(), format!("t{i}").into_bytes())]
        );
    }
    let mut plain: Vec<i64> = again.take().into_iter().map(|(_, v)| v).collect();
    plain.sort_unstable();
    assert_eq!(plain, (0..20).collect::<Vec<_>>());
}
