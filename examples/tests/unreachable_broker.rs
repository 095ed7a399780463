//! An unreachable broker: one clear line naming it every 10 s while the
//! job waits (one per broker, over all the process's clients), none of
//! librdkafka's repeated `FAIL` or "Global error" lines; after the 30 s
//! broker timeout the job stops with an error naming what it was doing and
//! exit code 75 (a restart can help: `rill run` retries with backoff). No
//! broker is needed: the point is that there is none.

use std::process::{Command, Stdio};

#[test]
fn an_unreachable_broker_is_one_clear_line_then_a_restartable_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_key_sums"))
        .args([
            "--brokers",
            "127.0.0.1:1",
            "--input",
            "in",
            "--output",
            "out",
            "-w",
            "2",
        ])
        .env("RUST_LOG", "info")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{log}");
    let reports = log
        .lines()
        .filter(|l| l.contains("cannot reach broker 127.0.0.1:1"))
        .count();
    // Reported while the job waits (every 10 s of the 30 s), not once.
    assert!((2..=4).contains(&reports), "{reports} reports:\n{log}");
    assert!(!log.contains(" FAIL "), "librdkafka's FAIL lines:\n{log}");
    assert!(!log.contains("Global error"), "{log}");
    assert!(
        log.contains("Error: step in: kafka: metadata of topic in"),
        "{log}"
    );
    assert!(log.lines().count() < 20, "too many lines:\n{log}");
}
