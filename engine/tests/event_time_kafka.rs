//! Event time through the real broker: the traps other engines fall into.
//! Records carry their Kafka timestamps; a 1 s tumbling count per key
//! closes a window only once the source's watermark passes its end.
//!
//! - one partition stops receiving data: windows on the others still
//!   close, once the idle timeout left it out;
//! - a partition that never delivers a record does not hold the job back;
//! - bounded input closes its last windows at its end.
//!
//! And a stream-table join over a compacted topic meets each key's value
//! as of the record's time, though the stream was written before the
//! table.

use rill::connectors::{Json, SourceOptions};
use rill::testing::kafka::{
    bootstrap, create_compacted_topic, create_topic, produce_timed, unique_topic,
};
use rill::{Collector, Job, JobArgs, Window, Windows};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Windows emitted: start (ms after [`BASE`]) → its last count.
type Counts = BTreeMap<u64, u64>;

/// Event times start here: a Kafka timestamp of 0 means "now" to the
/// producer.
const BASE: i64 = 1_000_000_000;

fn args(brokers: &str) -> JobArgs {
    JobArgs {
        workers: 2,
        epoch_interval: Duration::from_millis(100),
        brokers: Some(brokers.to_owned()),
        ..JobArgs::default()
    }
}

fn options(bounded: bool) -> SourceOptions {
    SourceOptions {
        bounded,
        idle_timeout: Duration::from_secs(1),
        ..SourceOptions::default()
    }
}

/// Builds the windowed count over `topic` (every value is key 1).
fn count_job(job: Job, topic: String, bounded: bool, sink: Collector<(u32, Window<u64>)>) {
    let result = job.run(move |flow| {
        flow.kafka_source_with::<(), u32>(&topic, Json, options(bounded), None)
            .key_by("by-value", |v| *v)
            .window(Windows::tumbling(Duration::from_secs(1)))
            .count("per-second")
            .collect("out", &sink);
    });
    result.expect("the job runs");
}

/// Runs the unbounded count job while `produce` runs, until `done` holds
/// for what it emitted or 30 s pass; returns the last count per window.
fn run_until(
    topic: &str,
    produce: impl FnOnce() + Send + 'static,
    done: impl Fn(&Counts) -> bool,
) -> Counts {
    let brokers = bootstrap();
    let job = Job::new("event-time", args(&brokers))
        .unwrap()
        .without_signal_handlers();
    let stop = job.stop_handle();
    let out = Collector::new();
    let sink = out.clone();
    let topic_name = topic.to_owned();
    let running = std::thread::spawn(move || count_job(job, topic_name, false, sink));
    let producer = std::thread::spawn(produce);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut counts = Counts::new();
    while Instant::now() < deadline && !done(&counts) {
        std::thread::sleep(Duration::from_millis(100));
        for (_, w) in out.take() {
            counts.insert(w.start - BASE as u64, w.value);
        }
    }
    let waited = deadline - Duration::from_secs(30);
    println!("done after {:.1?}: {counts:?}", waited.elapsed());
    producer.join().expect("the producer thread");
    stop.stop();
    running.join().expect("the job thread");
    for (_, w) in out.take() {
        counts.insert(w.start - BASE as u64, w.value);
    }
    counts
}

/// Produces to partition 0 of `topic` at event times 0, 100, 200, ...
/// (ms), 10 records (one window) every 300 ms of wall time: a partition
/// that stays live for a few seconds.
fn live_partition(brokers: String, topic: String) -> impl FnOnce() + Send + 'static {
    move || {
        for batch in 0..8i64 {
            let records: Vec<(i32, i64, &[u8])> = (0..10)
                .map(|i| (0, BASE + (batch * 10 + i) * 100, &b"1"[..]))
                .collect();
            produce_timed(&brokers, &topic, records);
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Every window the live partition fills: 10 records of 100 ms each.
fn full_windows(counts: &Counts, through: u64) -> bool {
    (0..through).all(|s| counts.get(&(s * 1000)).is_some_and(|&c| c >= 10))
}

#[test]
fn a_partition_that_stops_receiving_data_is_left_out_after_the_idle_timeout() {
    let brokers = bootstrap();
    let topic = unique_topic("idle-partition");
    create_topic(&brokers, &topic, 2);
    // Partition 1 gets one early record, then nothing.
    produce_timed(&brokers, &topic, [(1, BASE + 50, &b"1"[..])]);
    let feed = live_partition(brokers.clone(), topic.clone());
    let counts = run_until(&topic, feed, |c| full_windows(c, 3));
    println!("windows: {counts:?}");
    assert!(
        full_windows(&counts, 3),
        "windows on partition 0 did not close while partition 1 was idle: {counts:?}"
    );
    assert_eq!(counts[&0], 11, "[0, 1 s) has partition 1's record too");
}

#[test]
fn a_partition_that_never_delivers_does_not_hold_the_job_back() {
    let brokers = bootstrap();
    let topic = unique_topic("empty-partition");
    create_topic(&brokers, &topic, 2);
    let feed = live_partition(brokers.clone(), topic.clone());
    let counts = run_until(&topic, feed, |c| full_windows(c, 3));
    println!("windows: {counts:?}");
    assert!(
        full_windows(&counts, 3),
        "partition 1, never written, held the windows back: {counts:?}"
    );
    assert_eq!(counts[&0], 10);
}

#[test]
fn bounded_input_closes_its_last_windows_at_its_end() {
    let brokers = bootstrap();
    let topic = unique_topic("bounded-windows");
    create_topic(&brokers, &topic, 2);
    // Both partitions end inside [5 s, 6 s), with no later record to move
    // the watermark past it: only the end of input can close it.
    let records: Vec<(i32, i64, &[u8])> = (0..56)
        .map(|i| ((i % 2) as i32, BASE + i * 100, &b"1"[..]))
        .collect();
    produce_timed(&brokers, &topic, records);
    let out = Collector::new();
    let job = Job::new("bounded-windows", args(&brokers)).unwrap();
    count_job(job, topic, true, out.clone());
    let counts: Counts = (out.take().into_iter())
        .map(|(_, w)| (w.start - BASE as u64, w.value))
        .collect();
    println!("windows: {counts:?}");
    let expected: Counts = (0..5).map(|s| (s * 1000, 10)).chain([(5000, 6)]).collect();
    assert_eq!(counts, expected);
}

#[test]
fn a_stream_table_join_over_a_compacted_topic_meets_the_value_at_each_records_time() {
    let brokers = bootstrap();
    let (orders, names) = (unique_topic("orders"), unique_topic("names"));
    create_topic(&brokers, &orders, 2);
    create_compacted_topic(&brokers, &names, 2);
    // (partition, ms after BASE, [user, order]); written before the table.
    let placed: [(i32, i64, u32, u32); 5] = [
        (0, 1_000, 1, 10),
        (1, 6_000, 1, 11),
        (0, 1_000, 2, 12),
        (1, 3_000, 2, 13),
        (0, 4_000, 3, 14),
    ];
    let json: Vec<(i32, i64, String)> = placed
        .iter()
        .map(|&(p, t, user, order)| (p, BASE + t, format!("[{user},{order}]")))
        .collect();
    produce_timed(
        &brokers,
        &orders,
        json.iter().map(|(p, t, v)| (*p, *t, v.as_bytes())),
    );
    // User 1 is "a" from 0 and "b" from 5 s; user 2 is "c" from 2 s.
    let updates = [
        (0, 0, r#"[1,"a"]"#),
        (1, 5_000, r#"[1,"b"]"#),
        (1, 2_000, r#"[2,"c"]"#),
    ];
    produce_timed(
        &brokers,
        &names,
        updates.map(|(p, t, v)| (p, BASE + t, v.as_bytes())),
    );
    let job = Job::new("table-join", args(&brokers)).unwrap();
    let out = Collector::new();
    let sink = out.clone();
    job.run(move |flow| {
        let table = flow
            .kafka_source_with::<(), (u32, String)>(&names, Json, options(true), None)
            .key_by("names-by-user", |(user, _)| *user)
            .map("name", |(_, name)| name);
        flow.kafka_source_with::<(), (u32, u32)>(&orders, Json, options(true), None)
            .key_by("orders-by-user", |(user, _)| *user)
            .join_table("named", table)
            .map("order-name", |((_, order), name)| (order, name))
            .collect("out", &sink);
    })
    .expect("the job runs");
    let got: BTreeMap<u32, Option<String>> = out.take().into_iter().map(|(_, o)| o).collect();
    let name = |n: &str| Some(n.to_string());
    let expected = BTreeMap::from([
        (10, name("a")),
        (11, name("b")),
        (12, None),
        (13, name("c")),
        (14, None),
    ]);
    assert_eq!(got, expected, "order → the user's name at the order's time");
}
