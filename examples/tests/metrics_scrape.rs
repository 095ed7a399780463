//! A real scrape of a running job (Nexmark q7 read from a Kafka topic,
//! with durable state): `promtool check metrics` (Debian's `prometheus`
//! package) has nothing to report, and every metric the Grafana dashboard
//! (`cluster/grafana/rill-dashboard.json`) uses is on it.

use rill::testing::kafka::{bootstrap, create_topic, unique_topic};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The body of one scrape (HTTP/1.0: no chunked encoding), or `None`.
pub fn scrape(addr: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_owned())
}

/// The value of the first sample of `series` (name plus labels, if any).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The metric families a dashboard's queries use.
fn dashboard_metrics() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../cluster/grafana/rill-dashboard.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let _: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut names: Vec<String> = text
        .match_indices("rill_")
        .map(|(at, _)| {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            // A histogram's series are its family's.
            ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .map_or(name.clone(), str::to_owned)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn a_running_jobs_scrape_passes_promtool_and_has_every_dashboard_metric() {
    let brokers = bootstrap();
    let (input, output) = (unique_topic("scrape-in"), unique_topic("scrape-out"));
    create_topic(&brokers, &input, 4);
    create_topic(&brokers, &output, 4);
    let nexmark = env!("CARGO_BIN_EXE_nexmark");
    let generated = Command::new(nexmark)
        .args(["--brokers", &brokers, "-w", "1", "--generate-to", &input])
        .args(["--events", "50000"])
        .status()
        .unwrap();
    assert!(generated.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let state = tempfile::tempdir().unwrap();
    let _job = Killed(
        Command::new(nexmark)
            .args(["--brokers", &brokers, "-w", "2", "--query", "q7"])
            .args(["--topic", &input, "--to-topic", &output])
            .args(["--epoch-interval", "200ms", "--metrics-addr", &addr])
            .arg("--state-dir")
            .arg(state.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let body = scrape(&addr).unwrap_or_default();
        let complete = sample(&body, "rill_checkpoint_complete_epoch").unwrap_or(-1.0);
        if complete >= 1.0 && body.contains("rill_kafka_consumer_lag{") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint on the scrape:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/install-deps.sh)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        checked.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{body}"
    );

    let names = dashboard_metrics();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        assert!(
            body.contains(&format!("# TYPE {name} ")),
            "the dashboard uses {name}, which the scrape lacks:\n{body}"
        );
    }
}
