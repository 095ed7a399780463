//! Kafka → Rill → Kafka pass-through, against a raw rdkafka loop.
//!
//! Produces `BENCH_RECORDS` (default 500,000) ~100-byte records to a
//! 4-partition topic on the broker at `KAFKA_BOOTSTRAP`, then times:
//! 1. a raw loop: one thread, `BaseConsumer` (assign, all partitions) polling
//!    and a `BaseProducer` producing every record to another topic;
//! 2. a Rill job (raw bytes in, raw bytes out, `--stop-at-end`) with 1 and
//!    with 2 workers.
//!
//! Prints records/s for each and the ratio Rill / raw. Run with
//! `scripts/test-broker.sh start && KAFKA_BOOTSTRAP=127.0.0.1:19092 cargo bench -p rill-benches`.
//! `BENCH_ONLY=metrics` times the 2-worker job without and with a served,
//! scraped `/metrics`, `BENCH_ROUNDS` (2) alternating pairs, and prints
//! the CPU time the process spent per million records as well: the
//! broker shares the machine, so wall-clock rates vary by ~10% between
//! runs of one mode, the job's own CPU time much less.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use rill::prelude::*;
use rill::testing::kafka::{bootstrap, create_topic, produce, unique_topic};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;

/// CPU time (user + system) this process has used, all threads.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the command name (which ends at the last ')'):
    // state is field 3; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("a /proc stat line") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / rustix::param::clock_ticks_per_second() as f64
}

fn raw_loop(brokers: &str, input: &str, output: &str, records: usize) -> anyhow::Result<Duration> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "rill-bench-raw")
        .set("enable.auto.commit", "false")
        .set("queued.min.messages", "100000")
        .create()?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(input, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    drop(list);
    let start = Instant::now();
    let mut seen = 0;
    while seen < records {
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        let mut rec: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(output).payload(m.payload().unwrap_or_default());
        if let Some(k) = m.key() {
            rec = rec.key(k);
        }
        while let Err((e, back)) = producer.send(rec) {
            anyhow::ensure!(
                e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull),
                "produce: {e}"
            );
            rec = back;
            producer.poll(Duration::from_millis(1));
        }
        seen += 1;
        if seen % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(start.elapsed())
}

fn rill_job(brokers: &str, input: &str, output: &str, workers: usize) -> anyhow::Result<Duration> {
    Ok(rill_job_with(brokers, input, output, workers, None)?.0)
}

/// The pass-through job's wall-clock and CPU time (seconds); with
/// `metrics`, serving `/metrics` there while a scraper reads it every
/// second (as Prometheus would).
fn rill_job_with(
    brokers: &str,
    input: &str,
    output: &str,
    workers: usize,
    metrics: Option<String>,
) -> anyhow::Result<(Duration, f64)> {
    let args = JobArgs {
        workers,
        brokers: Some(brokers.to_owned()),
        stop_at_end: true,
        metrics_addr: metrics.clone(),
        ..JobArgs::default()
    };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scraper = metrics.map(|addr| {
        let done = done.clone();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut scrapes = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                    let _ = write!(s, "GET /metrics HTTP/1.0\r\n\r\n");
                    let mut body = String::new();
                    if s.read_to_string(&mut body).is_ok() && body.contains("rill_") {
                        scrapes += 1;
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            scrapes
        })
    });
    let (input, output) = (input.to_owned(), output.to_owned());
    let (start, cpu) = (Instant::now(), cpu_seconds());
    rill::Job::new("bench-passthrough", args)?.run(move |flow| {
        flow.kafka_source::<Option<Vec<u8>>, Vec<u8>>(&input, Raw)
            .kafka_sink(&output, Raw);
    })?;
    let (took, cpu) = (start.elapsed(), cpu_seconds() - cpu);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(scrapes) = scraper.map(|s| s.join().unwrap_or(0)) {
        println!("  ({scrapes} scrapes of /metrics during the run)");
    }
    Ok((took, cpu))
}

/// Metrics served and scraped vs not, 2 workers, alternating runs.
fn metrics_cost(brokers: &str, input: &str, records: usize) -> anyhow::Result<()> {
    let millions = records as f64 / 1e6;
    // (records/s, CPU seconds per million records) per run, off and on.
    let mut runs: [Vec<(f64, f64)>; 2] = Default::default();
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    for round in 0..rounds.max(1) {
        // Alternate which mode goes first, so drift cancels out.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for serve in order {
            let out = unique_topic("bench-metrics-out");
            create_topic(brokers, &out, PARTITIONS);
            let addr = serve.then(|| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
                l.local_addr().expect("an address").to_string()
            });
            let (d, cpu) = rill_job_with(brokers, input, &out, 2, addr)?;
            let run = (records as f64 / d.as_secs_f64(), cpu / millions);
            println!(
                "metrics {}: {:>10.0} records/s ({d:.2?}), {:.3} CPU s per million records",
                if serve { "on " } else { "off" },
                run.0,
                run.1
            );
            runs[usize::from(serve)].push(run);
        }
    }
    let mean =
        |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    let [off, on] = &runs;
    println!(
        "metrics on / off: {:.0} / {:.0} records/s = {:.3}; CPU per record on / off = {:.3}",
        mean(on, |r| r.0),
        mean(off, |r| r.0),
        mean(on, |r| r.0) / mean(off, |r| r.0),
        mean(on, |r| r.1) / mean(off, |r| r.1)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let records: usize = std::env::var("BENCH_RECORDS")
        .ok()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(500_000);
    let brokers = bootstrap();
    let input = unique_topic("bench-in");
    create_topic(&brokers, &input, PARTITIONS);
    let payloads: Vec<(String, Vec<u8>)> = (0..records)
        .map(|i| {
            (
                format!("key-{}", i % 1000),
                format!("{{\"id\":{i},\"pad\":\"{:0>80}\"}}", i).into_bytes(),
            )
        })
        .collect();
    let t = Instant::now();
    produce(
        &brokers,
        &input,
        payloads
            .iter()
            .map(|(k, v)| (Some(k.as_bytes()), v.as_slice())),
    );
    println!("produced {records} records in {:.2?}", t.elapsed());

    if std::env::var("BENCH_ONLY").as_deref() == Ok("metrics") {
        return metrics_cost(&brokers, &input, records);
    }
    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    let raw_out = unique_topic("bench-raw-out");
    create_topic(&brokers, &raw_out, PARTITIONS);
    let raw = raw_loop(&brokers, &input, &raw_out, records)?;
    println!(
        "raw rdkafka loop:  {:>10.0} records/s ({raw:.2?})",
        rate(raw)
    );
    for workers in [1, 2] {
        let out = unique_topic("bench-rill-out");
        create_topic(&brokers, &out, PARTITIONS);
        let d = rill_job(&brokers, &input, &out, workers)?;
        println!(
            "rill, {workers} worker(s): {:>10.0} records/s ({d:.2?}, job start-up included); rill/raw = {:.2}",
            rate(d),
            raw.as_secs_f64() / d.as_secs_f64()
        );
    }
    Ok(())
}
