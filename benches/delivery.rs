//! Exactly-once against at-least-once delivery, on the broker at
//! `KAFKA_BOOTSTRAP`: a Kafka → Rill → Kafka pass-through with a state
//! directory (checkpoints every epoch in both modes).
//!
//! 1. Throughput: `BENCH_RECORDS` (default 3,000,000) ~100-byte records on
//!    a 4-partition topic, read to the end with 2 workers, 1 s epochs; job
//!    start-up included. Records/s per mode.
//! 2. Latency: a producer thread writes `BENCH_RATE` records/s (default
//!    20,000) for `BENCH_SECS` seconds (default 30), each carrying its
//!    produce time; a consumer of the output (default isolation) notes
//!    when each becomes visible. p50 and p99 of (visible − produced), at
//!    1 s and 100 ms epochs, per mode (the first 3 s are left out: start-up).
//!
//! `scripts/test-broker.sh start && KAFKA_BOOTSTRAP=127.0.0.1:19092 cargo bench -p rill-benches --bench delivery`

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use rill::prelude::*;
use rill::testing::kafka::{bootstrap, create_topic, produce, unique_topic};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PARTITIONS: i32 = 4;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Runs the pass-through job until its input ends (or `stop` is set).
fn job(
    brokers: &str,
    (input, output): (&str, &str),
    delivery: Delivery,
    epoch: Duration,
    bounded: bool,
    stop: Option<Arc<AtomicBool>>,
) -> anyhow::Result<Duration> {
    let state = tempfile::tempdir()?;
    let args = JobArgs {
        workers: 2,
        brokers: Some(brokers.to_owned()),
        stop_at_end: bounded,
        state_dir: Some(state.path().to_owned()),
        epoch_interval: epoch,
        delivery,
        ..JobArgs::default()
    };
    let (input, output) = (input.to_owned(), output.to_owned());
    let job = rill::Job::new("bench-delivery", args)?.without_signal_handlers();
    if let Some(stop) = stop {
        let handle = job.stop_handle();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
            handle.stop();
        });
    }
    let start = Instant::now();
    job.run(move |flow| {
        flow.kafka_source::<Option<Vec<u8>>, Vec<u8>>(&input, Raw)
            .kafka_sink(&output, Raw);
    })?;
    Ok(start.elapsed())
}

fn throughput(brokers: &str, records: usize) -> anyhow::Result<()> {
    let input = unique_topic("bench-eo-in");
    create_topic(brokers, &input, PARTITIONS);
    let payloads: Vec<(String, Vec<u8>)> = (0..records)
        .map(|i| {
            let value = format!("{{\"id\":{i},\"pad\":\"{:0>80}\"}}", i);
            (format!("key-{}", i % 1000), value.into_bytes())
        })
        .collect();
    let t = Instant::now();
    let keyed = payloads
        .iter()
        .map(|(k, v)| (Some(k.as_bytes()), v.as_slice()));
    produce(brokers, &input, keyed);
    println!("produced {records} records in {:.2?}", t.elapsed());
    let mut rates = Vec::new();
    for delivery in [Delivery::AtLeastOnce, Delivery::ExactlyOnce] {
        let out = unique_topic("bench-eo-out");
        create_topic(brokers, &out, PARTITIONS);
        let d = job(
            brokers,
            (&input, &out),
            delivery,
            Duration::from_secs(1),
            true,
            None,
        )?;
        let rate = records as f64 / d.as_secs_f64();
        println!(
            "throughput {delivery:?}: {rate:>10.0} records/s ({d:.2?}, 2 workers, 1 s epochs)"
        );
        rates.push(rate);
    }
    println!("exactly-once / at-least-once = {:.2}", rates[1] / rates[0]);
    Ok(())
}

/// Produces `rate` records/s, each value the produce time (µs), until `stop`.
fn feed(brokers: &str, topic: &str, rate: u64, stop: &AtomicBool) -> anyhow::Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .create()?;
    let start = Instant::now();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let value = now_us().to_string();
            let key = format!("k{}", sent % 1000);
            let record = BaseRecord::to(topic)
                .key(key.as_bytes())
                .payload(value.as_bytes());
            if producer.send(record).is_err() {
                producer.poll(Duration::from_millis(1));
                continue;
            }
            sent += 1;
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1));
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}

/// Reads `topic` until `stop`, returning each record's latency (µs).
fn watch(brokers: &str, topic: &str, stop: &AtomicBool) -> anyhow::Result<Vec<u64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "rill-bench-latency")
        .set("fetch.wait.max.ms", "5")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Offset(0))?;
    }
    consumer.assign(&list)?;
    drop(list);
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let seen = now_us();
        let sent: Option<u64> = m
            .payload()
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|s| s.parse().ok());
        if let Some(sent) = sent {
            latencies.push(seen.saturating_sub(sent));
        }
    }
    Ok(latencies)
}

fn latency(brokers: &str, delivery: Delivery, epoch: Duration) -> anyhow::Result<()> {
    let (rate, secs) = (env_or("BENCH_RATE", 20_000u64), env_or("BENCH_SECS", 30u64));
    let (input, output) = (unique_topic("bench-lat-in"), unique_topic("bench-lat-out"));
    create_topic(brokers, &input, PARTITIONS);
    create_topic(brokers, &output, PARTITIONS);
    let stop_job = Arc::new(AtomicBool::new(false));
    let stop_io = Arc::new(AtomicBool::new(false));
    let stop_feed = Arc::new(AtomicBool::new(false));
    let runner = {
        let (b, i, o, s) = (
            brokers.to_owned(),
            input.clone(),
            output.clone(),
            stop_job.clone(),
        );
        std::thread::spawn(move || job(&b, (&i, &o), delivery, epoch, false, Some(s)))
    };
    std::thread::sleep(Duration::from_secs(2));
    let feeder = {
        let (b, t, s) = (brokers.to_owned(), input.clone(), stop_feed.clone());
        std::thread::spawn(move || feed(&b, &t, rate, &s))
    };
    let watcher = {
        let (b, t, s) = (brokers.to_owned(), output.clone(), stop_io.clone());
        std::thread::spawn(move || watch(&b, &t, &s))
    };
    std::thread::sleep(Duration::from_secs(secs));
    stop_feed.store(true, Ordering::Relaxed);
    feeder.join().expect("feeder")?;
    // The last records become visible up to two epochs later.
    std::thread::sleep(epoch * 2 + Duration::from_secs(1));
    stop_io.store(true, Ordering::Relaxed);
    let all = watcher.join().expect("watcher")?;
    stop_job.store(true, Ordering::Relaxed);
    runner.join().expect("job")?;
    // Leave out the first 3 s of records.
    let skip = (rate * 3) as usize;
    let mut lat: Vec<u64> = all.into_iter().skip(skip).collect();
    lat.sort_unstable();
    let pct = |q: f64| lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)));
    let ms = |v: Option<&u64>| v.map_or(f64::NAN, |v| *v as f64 / 1000.0);
    println!(
        "latency {delivery:?}, {epoch:?} epochs: p50 {:.1} ms, p99 {:.1} ms ({} records, {rate}/s for {secs} s)",
        ms(pct(0.50)),
        ms(pct(0.99)),
        lat.len()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let brokers = bootstrap();
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "throughput" {
        throughput(&brokers, env_or("BENCH_RECORDS", 3_000_000usize))?;
    }
    if only.is_empty() || only == "latency" {
        for epoch in [Duration::from_secs(1), Duration::from_millis(100)] {
            for delivery in [Delivery::AtLeastOnce, Delivery::ExactlyOnce] {
                latency(&brokers, delivery, epoch)?;
            }
        }
    }
    Ok(())
}
