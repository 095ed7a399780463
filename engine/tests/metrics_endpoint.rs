//! The `/metrics` endpoint serves the engine's counters in Prometheus text format.

use prometheus::Registry;
use rill::metrics::{Metrics, MetricsServer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

fn scrape(addr: std::net::SocketAddr) -> String {
    try_scrape(&addr.to_string()).expect("the endpoint answers")
}

#[test]
fn serves_step_counters_over_http() {
    let metrics = Arc::new(Metrics::new(Registry::new()));
    metrics
        .records_in
        .with_label_values(&["filter", "0"])
        .inc_by(42);
    metrics.epoch.with_label_values(&["0"]).set(7);
    let server = MetricsServer::start("127.0.0.1:0", metrics).unwrap();
    let response = scrape(server.addr());
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(r#"rill_step_records_in_total{step="filter",worker="0"} 42"#),
        "{response}"
    );
    assert!(
        response.contains(r#"rill_epoch_current{worker="0"} 7"#),
        "{response}"
    );
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let metrics = Arc::new(Metrics::new(Registry::new()));
    let first = MetricsServer::start("127.0.0.1:0", metrics.clone()).unwrap();
    let err = MetricsServer::start(&first.addr().to_string(), metrics)
        .err()
        .unwrap();
    assert!(err.to_string().contains("metrics endpoint on"), "{err}");
}

/// The value of the first sample line starting with `series` (name plus
/// labels, as Prometheus prints them).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// One scrape, or `None` while the endpoint is not up yet.
fn try_scrape(addr: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

/// A running job with a state dir and `--metrics-addr`: its checkpoints
/// show on the endpoint (complete epoch, duration, size, live keys).
#[test]
fn a_durable_job_serves_its_checkpoint_metrics() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let args = rill::JobArgs {
        workers: 2,
        epoch_interval: Duration::from_millis(50),
        state_dir: Some(dir.path().to_owned()),
        metrics_addr: Some(addr.clone()),
        ..rill::JobArgs::default()
    };
    let seen = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (addr, seen) = (addr.clone(), seen.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut last = String::new();
            while Instant::now() < deadline {
                if let Some(body) = try_scrape(&addr) {
                    let complete = sample(&body, "rill_checkpoint_complete_epoch").unwrap_or(-1.0);
                    let keys = sample(&body, r#"rill_state_keys{step="sum",worker="0"}"#);
                    if complete >= 2.0 && keys.is_some_and(|k| k > 0.0) {
                        seen.store(true, Ordering::SeqCst);
                        return Ok(body);
                    }
                    last = body;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen.store(true, Ordering::SeqCst);
            Err(last)
        })
    };
    // A source that keeps producing (50 keys) until the scraper is done.
    let stop = seen.clone();
    rill::Job::new("metrics-e2e", args)
        .unwrap()
        .run(move |flow| {
            let stop = stop.clone();
            let items = (0u64..)
                .inspect(|i| {
                    if i % 1000 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
                .take_while(move |_| !stop.load(Ordering::SeqCst))
                .map(|i| (i % 50, 1u64));
            flow.source_iter_keyed("in", items)
                .sum("sum")
                .for_each("discard", |_, _| {});
        })
        .unwrap();
    let body = scraper
        .join()
        .unwrap()
        .unwrap_or_else(|last| panic!("no checkpoint metrics within 30 s; last scrape:\n{last}"));
    for series in [
        r#"rill_checkpoint_duration_seconds_count{worker="0"}"#,
        r#"rill_checkpoint_duration_seconds_count{worker="1"}"#,
        r#"rill_checkpoint_size_bytes{worker="0"}"#,
        r#"rill_state_keys{step="sum",worker="1"}"#,
    ] {
        let v = sample(&body, series).unwrap_or_else(|| panic!("{series} missing:\n{body}"));
        assert!(v > 0.0, "{series} is {v}");
    }
    let keys: f64 = ["0", "1"]
        .iter()
        .filter_map(|w| {
            sample(
                &body,
                &format!(r#"rill_state_keys{{step="sum",worker="{w}"}}"#),
            )
        })
        .sum();
    assert_eq!(keys, 50.0, "live keys over both workers");
    // 50 keys stay in RocksDB's memtable: no table file holds them yet.
    let bytes = sample(&body, r#"rill_state_bytes{step="sum"}"#);
    assert!(
        bytes.is_some_and(|b| b >= 0.0),
        "rill_state_bytes missing:
{body}"
    );
    assert_eq!(
        sample(&body, "rill_resume_epoch"),
        Some(-1.0),
        "a fresh start"
    );
}
