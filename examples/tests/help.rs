//! A job's `--help` starts with the job's own description, then lists
//! Rill's common flags with it.

use std::process::Command;

fn help(binary: &str) -> String {
    let out = Command::new(binary).arg("--help").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_jobs_help_shows_its_own_description_and_the_common_flags() {
    let text = help(env!("CARGO_BIN_EXE_key_sums"));
    assert!(
        text.starts_with("Running sum per key, Kafka to Kafka"),
        "{text}"
    );
    assert!(!text.contains("The common flags of a Rill job"), "{text}");
    for flag in [
        "--brokers",
        "--state-dir",
        "--kafka <KEY=VALUE>",
        "--group-id",
        "--input",
    ] {
        assert!(text.contains(flag), "no {flag}:\n{text}");
    }
}

#[test]
fn a_job_without_its_own_parser_is_described_by_its_name() {
    let text = help(env!("CARGO_BIN_EXE_cart_windows"));
    assert!(text.starts_with("The Rill job `cart-windows`"), "{text}");
}
