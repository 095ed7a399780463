//! `rill checkpoints` on the state directory of a real job.

use rill::JobArgs;
use std::process::Command;
use std::time::Duration;

fn rill_checkpoints(dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rill"))
        .arg("checkpoints")
        .arg("--state-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lists_complete_checkpoints_with_keys_per_step_and_the_resume_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let args = JobArgs {
        workers: 2,
        epoch_interval: Duration::from_millis(10),
        state_dir: Some(dir.path().to_owned()),
        ..JobArgs::default()
    };
    let data: Vec<(String, u64)> = (0..20_000u64)
        .map(|i| (format!("u{}", i % 37), i))
        .collect();
    rill::testing::run_with(args, move |flow| {
        flow.source_iter_keyed("clicks", data.clone())
            .count("per-user")
    })
    .unwrap();
    let (ok, stdout, stderr) = rill_checkpoints(dir.path());
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("job shape: 2 workers in 1 processes"),
        "{stdout}"
    );
    assert!(
        stdout.contains("per-user (count, 256 key groups)"),
        "{stdout}"
    );
    let resume: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("resume epoch: "))
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("no resume epoch in {stdout}"));
    let last = stdout.lines().last().unwrap();
    assert!(
        last.trim_start().starts_with(&resume.to_string()),
        "{stdout}"
    );
    assert!(
        last.contains("per-user=37") && last.contains("2/2"),
        "{stdout}"
    );
}

#[test]
fn a_directory_without_state_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = rill_checkpoints(dir.path());
    assert!(!ok);
    assert!(stderr.contains("holds no Rill state"), "{stderr}");
}
