//! A real Prometheus server (Debian's `prometheus` package) scrapes a
//! running 2-process job under `rill run`, which gives each process its
//! own metrics port. Through Prometheus's HTTP API: records out increased,
//! the consumer lag reached 0 once the input was drained, and the last
//! complete checkpoint's epoch advanced.

mod common;

use common::{launch, run_args, wait_at_most, Killed, Reaper};
use rill::testing::kafka::{create_topic, produce, produce_at, unique_topic};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A port with the next one free too.
fn two_free_ports() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The first value of an instant query, if Prometheus has one.
fn query(server: &str, q: &str) -> Option<f64> {
    let mut stream = TcpStream::connect(server).ok()?;
    let path = format!("/api/v1/query?query={}", encode(q));
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {server}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let body = response.split_once("\r\n\r\n")?.1;
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    json["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_sees_records_lag_and_checkpoints_of_a_two_process_job() {
    let brokers = rill::testing::kafka::bootstrap();
    let (input, output) = (
        unique_topic("prometheus-in"),
        unique_topic("prometheus-out"),
    );
    create_topic(&brokers, &input, 4);
    create_topic(&brokers, &output, 4);
    // Half the input now, half once Prometheus has seen the first half.
    let half = |from: u64| {
        let records: Vec<(String, String)> = (from..from + 100_000)
            .map(|i| (format!("k{}", i % 1_000), (i % 10).to_string()))
            .collect();
        produce(
            &brokers,
            &input,
            records
                .iter()
                .map(|(k, v)| (Some(k.as_bytes()), v.as_bytes())),
        );
    };
    half(0);
    let base = two_free_ports();
    let server = format!("127.0.0.1:{}", two_free_ports());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    let targets = format!("['127.0.0.1:{base}', '127.0.0.1:{}']", base + 1);
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rill\n    static_configs:\n      - targets: {targets}\n"
        ),
    )
    .unwrap();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={server}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (scripts/install-deps.sh)"),
    );
    let state = dir.path().join("state");
    let metrics = format!("127.0.0.1:{base}");
    let job: Vec<String> = [
        "--brokers",
        &brokers,
        "--input",
        &input,
        "--output",
        &output,
    ]
    .into_iter()
    .chain(["--epoch-interval", "200ms", "--metrics-addr", &metrics])
    .map(str::to_owned)
    .collect();
    let args = run_args(&["-n", "2", "-w", "1"], &state, "key_sums", &job);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (mut launcher, lines, pids) = launch(&args);
    let _reaper = Reaper(pids);

    let deadline = Instant::now() + Duration::from_secs(120);
    let wait_for = |what: &str, q: &str, ok: &dyn Fn(f64) -> bool| -> f64 {
        loop {
            if let Some(v) = query(&server, q).filter(|v| ok(*v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {q} = {:?}",
                query(&server, q)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    wait_for("both processes scraped", "sum(up{job=\"rill\"})", &|v| {
        v == 2.0
    });
    wait_for(
        "two scrapes of each",
        "min(count_over_time(up{job=\"rill\"}[5m]))",
        &|v| v >= 2.0,
    );
    let out = "sum(rill_step_records_out_total{step=\"sums\"})";
    wait_for("the first half read", out, &|v| v >= 100_000.0);
    half(100_000);
    wait_for("the input drained", out, &|v| v >= 200_000.0);
    // Tansu under-reports a high watermark as its last batch's base offset
    // + 1 (../shared/FACTS.md), so a lag of 0 says nothing after batches
    // of many records. After one single-record batch per partition the
    // watermark is exact: lag 0 then means every partition was read to
    // its end.
    let keys: Vec<String> = (0..4).map(|p| format!("tail{p}")).collect();
    let tail = keys
        .iter()
        .zip(0..)
        .map(|(k, p)| (p, k.as_bytes(), &b"1"[..]));
    produce_at(&brokers, &input, tail);
    wait_for("the tail drained", out, &|v| v >= 200_004.0);
    wait_for(
        "a lag for each partition",
        "count(rill_kafka_consumer_lag)",
        &|v| v == 4.0,
    );
    wait_for(
        "records out increased between scrapes",
        "sum(increase(rill_step_records_out_total{step=\"sums\"}[5m]))",
        &|v| v > 0.0,
    );
    wait_for("lag reached 0", "max(rill_kafka_consumer_lag)", &|v| {
        v == 0.0
    });
    let first = wait_for(
        "a complete checkpoint",
        "max(rill_checkpoint_complete_epoch)",
        &|v| v >= 0.0,
    );
    wait_for(
        "the checkpoint epoch advanced",
        "max(rill_checkpoint_complete_epoch)",
        &|v| v > first,
    );

    let pid = rustix::process::Pid::from_child(&launcher);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = wait_at_most(&mut launcher, Duration::from_secs(60));
    let log: Vec<String> = lines.try_iter().collect();
    let log = log.join("\n");
    assert!(status.success(), "{log}");
    for p in 0..2 {
        let line = format!(
            "process {p} serves metrics at http://127.0.0.1:{}/metrics",
            base + p
        );
        assert!(log.contains(&line), "{log}");
    }
}
