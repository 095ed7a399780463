//! Bad input against the real test broker: a topic with malformed JSON
//! interleaved, read under each policy (fail, skip, dead-letter).

use rill::connectors::{BadInputPolicy, SourceOptions};
use rill::prelude::*;
use rill::testing::kafka::{bootstrap, create_topic, produce, read_topic, unique_topic};
use rill::{Error, JobArgs};
use std::time::Duration;

const RECORDS: usize = 1000;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Reading {
    sensor: u32,
    value: i64,
}

/// Every 10th record (offsets 9, 19, ...) is malformed, in a different way each time.
fn payload(i: usize) -> Vec<u8> {
    if i % 10 == 9 {
        match (i / 10) % 3 {
            0 => b"{not json".to_vec(),
            1 => br#"{"sensor":"x","value":1}"#.to_vec(),
            _ => vec![0xff, 0xfe, 0x00],
        }
    } else {
        serde_json::to_vec(&Reading {
            sensor: i as u32,
            value: i as i64 * 3,
        })
        .unwrap()
    }
}

fn good() -> Vec<Reading> {
    (0..RECORDS)
        .filter(|i| i % 10 != 9)
        .map(|i| Reading {
            sensor: i as u32,
            value: i as i64 * 3,
        })
        .collect()
}

fn input_topic(brokers: &str) -> String {
    let topic = unique_topic("bad-input");
    create_topic(brokers, &topic, 1);
    let payloads: Vec<Vec<u8>> = (0..RECORDS).map(payload).collect();
    produce(
        brokers,
        &topic,
        payloads.iter().map(|p| (None, p.as_slice())),
    );
    topic
}

fn run(
    brokers: &str,
    topic: &str,
    policy: Option<BadInputPolicy>,
    dlq_flag: Option<&str>,
) -> rill::Result<Vec<Reading>> {
    let args = JobArgs {
        workers: 2,
        brokers: Some(brokers.to_owned()),
        stop_at_end: true,
        epoch_interval: Duration::from_millis(100),
        dead_letter_topic: dlq_flag.map(str::to_owned),
        ..JobArgs::default()
    };
    let out = Collector::new();
    let sink = out.clone();
    let topic = topic.to_owned();
    rill::Job::new("bad-input", args)?.run(move |flow| {
        flow.kafka_source_with::<(), Reading>(
            &topic,
            Json,
            SourceOptions::default(),
            policy.clone(),
        )
        .collect("out", &sink);
    })?;
    let mut readings: Vec<Reading> = out.take().into_iter().map(|(_, r)| r).collect();
    readings.sort_by_key(|r| r.sensor);
    Ok(readings)
}

#[test]
fn fail_policy_stops_with_topic_partition_offset() {
    let brokers = bootstrap();
    let topic = input_topic(&brokers);
    let err = run(&brokers, &topic, Some(BadInputPolicy::Fail), None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connector { .. }), "{err:?}");
    assert!(
        text.contains(&format!("topic {topic}, partition 0, offset 9")),
        "{text}"
    );
    assert!(text.contains("json"), "{text}");
    assert_eq!(err.fault(), rill::Fault::User);
}

#[test]
fn default_policy_without_dead_letter_topic_is_fail() {
    let brokers = bootstrap();
    let topic = input_topic(&brokers);
    let err = run(&brokers, &topic, None, None).unwrap_err();
    assert!(err.to_string().contains("offset 9"), "{err}");
}

#[test]
fn skip_policy_drops_exactly_the_bad_records() {
    let brokers = bootstrap();
    let topic = input_topic(&brokers);
    let out = run(&brokers, &topic, Some(BadInputPolicy::Skip), None).unwrap();
    assert_eq!(out, good());
}

fn check_dead_letters(brokers: &str, topic: &str, dlq: &str) {
    let letters = read_topic(brokers, dlq);
    let bad: Vec<usize> = (0..RECORDS).filter(|i| i % 10 == 9).collect();
    assert_eq!(letters.len(), bad.len(), "dead-letter count");
    let mut offsets: Vec<usize> = letters
        .iter()
        .map(|l| l.headers["rill.source.offset"].parse().unwrap())
        .collect();
    offsets.sort();
    assert_eq!(offsets, bad);
    for l in &letters {
        let offset: usize = l.headers["rill.source.offset"].parse().unwrap();
        assert_eq!(
            l.value.as_deref(),
            Some(payload(offset).as_slice()),
            "raw record kept"
        );
        assert_eq!(l.headers["rill.source.topic"], topic);
        assert_eq!(l.headers["rill.source.partition"], "0");
        assert!(!l.headers["rill.error"].is_empty());
    }
}

#[test]
fn dead_letter_policy_routes_exactly_the_bad_records() {
    let brokers = bootstrap();
    let topic = input_topic(&brokers);
    let dlq = unique_topic("dlq");
    create_topic(&brokers, &dlq, 1);
    let out = run(
        &brokers,
        &topic,
        Some(BadInputPolicy::DeadLetter(dlq.clone())),
        None,
    )
    .unwrap();
    assert_eq!(out, good());
    check_dead_letters(&brokers, &topic, &dlq);
}

#[test]
fn default_policy_uses_the_dead_letter_flag() {
    let brokers = bootstrap();
    let topic = input_topic(&brokers);
    let dlq = unique_topic("dlq-flag");
    create_topic(&brokers, &dlq, 1);
    let out = run(&brokers, &topic, None, Some(&dlq)).unwrap();
    assert_eq!(out, good());
    check_dead_letters(&brokers, &topic, &dlq);
}
