//! The quick start's job, `cart_totals` on its embedded Kafka, with a state
//! dir: the first run checkpoints and checks its totals; a second run on
//! the same dir (a new embedded Kafka, whose topics the state does not
//! describe) is refused with a message saying why, before it runs.

use std::process::Command;

fn run(state: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cart_totals"))
        .args(["--events", "2000", "--state-dir"])
        .arg(state)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn a_second_embedded_run_on_the_same_state_dir_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = run(&state);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success() && stdout.contains("totals match a direct computation"),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(std::fs::read_dir(state.join("process-0"))
        .unwrap()
        .next()
        .is_some());
    let second = run(&state);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second run was not refused");
    assert!(
        stderr.contains("holds an earlier run's state") && stderr.contains("new embedded Kafka"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&second.stdout).contains("produced"),
        "refused only after producing its input"
    );
}
