//! librdkafka properties reach the job's clients, by flag (`--kafka
//! KEY=VALUE`) and by environment (`RILL_KAFKA_<KEY>`): an invalid
//! `security.protocol` fails the job with librdkafka's own error (exit code
//! 1: no restart helps), and a secret given beside it is masked in the
//! start-up log and printed nowhere.

use rill::testing::kafka::{bootstrap, create_topic, unique_topic};
use std::process::{Command, Output};

const SECRET: &str = "hunter2-do-not-print";

fn key_sums(extra: &[&str], env: &[(&str, &str)]) -> Output {
    let brokers = bootstrap();
    let (input, output) = (unique_topic("settings-in"), unique_topic("settings-out"));
    create_topic(&brokers, &input, 2);
    create_topic(&brokers, &output, 2);
    Command::new(env!("CARGO_BIN_EXE_key_sums"))
        .args([
            "--brokers",
            &brokers,
            "--input",
            &input,
            "--output",
            &output,
        ])
        .args(extra)
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

fn check(out: &Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("security.protocol") && text.contains("bogus-protocol"),
        "librdkafka's error names the property and the value:\n{text}"
    );
    assert!(text.contains("sasl.password=***"), "{text}");
    assert!(!text.contains(SECRET), "the secret was printed:\n{text}");
}

#[test]
fn a_property_given_by_flag_reaches_librdkafka_and_no_secret_is_printed() {
    let password = format!("sasl.password={SECRET}");
    let out = key_sums(
        &[
            "--kafka",
            "security.protocol=bogus-protocol",
            "--kafka",
            &password,
        ],
        &[],
    );
    check(&out);
}

#[test]
fn a_property_given_by_environment_reaches_librdkafka_and_no_secret_is_printed() {
    let out = key_sums(
        &[],
        &[
            ("RILL_KAFKA_SECURITY_PROTOCOL", "bogus-protocol"),
            ("RILL_KAFKA_SASL_PASSWORD", SECRET),
        ],
    );
    check(&out);
}

#[test]
fn a_flag_wins_over_the_environment() {
    // The variable alone would fail the job; the flag's valid value wins.
    let out = key_sums(
        &["--kafka", "security.protocol=plaintext", "--stop-at-end"],
        &[("RILL_KAFKA_SECURITY_PROTOCOL", "bogus-protocol")],
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("security.protocol=plaintext"), "{text}");
}

#[test]
fn a_malformed_property_flag_is_a_usage_error() {
    let out = key_sums(&["--kafka", "no-equals-sign"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEY=VALUE"));
}
