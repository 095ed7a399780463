//! `rill status --once` against a running job's metrics endpoint: one
//! snapshot with the job's steps and their rates, the consumer lag and the
//! last complete checkpoint; an endpoint that does not answer is named,
//! and with none answering the command fails.

mod common;

use common::{sum_topics, workspace_binary, Killed};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn status(urls: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rill"))
        .args(["status", "--once", "--every", "500ms", "--metrics", urls])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_snapshot_shows_steps_lag_and_the_last_checkpoint() {
    let brokers = rill::testing::kafka::bootstrap();
    let (input, output, _) = sum_topics(&brokers, "status", 50_000, 100, 2);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let state = tempfile::tempdir().unwrap();
    let _job = Killed(
        Command::new(workspace_binary("key_sums"))
            .args([
                "--brokers",
                &brokers,
                "--input",
                &input,
                "--output",
                &output,
            ])
            .args([
                "--epoch-interval",
                "200ms",
                "--metrics-addr",
                &addr,
                "--state-dir",
            ])
            .arg(state.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{addr}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let (ok, text) = status(&url);
        if ok && !text.contains("last complete checkpoint - ") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint in the view:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(text.contains("1 of 1 processes answer"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("sums")), "{text}");
    assert!(text.contains(&input), "the source step is missing:\n{text}");
    assert!(text.contains("consumer lag: "), "{text}");

    let (ok, text) = status(&format!("{url},127.0.0.1:1"));
    assert!(ok, "{text}");
    assert!(
        text.contains("1 of 2 processes answer") && text.contains("127.0.0.1:1: unreachable"),
        "{text}"
    );
}

#[test]
fn no_endpoint_answering_is_an_error() {
    let (ok, text) = status("127.0.0.1:1");
    assert!(!ok, "{text}");
    assert!(
        text.contains("unreachable") && text.contains("no metrics endpoint answered"),
        "{text}"
    );
}
