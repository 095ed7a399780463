//! The `/metrics` endpoint serves the engine's counters in Prometheus text format.

use prometheus::Registry;
use rill::metrics::{Metrics, MetricsServer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
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
