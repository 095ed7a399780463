//! A state key too large for the store is a clear error naming the step
//! and the key, not a panic, and the job stops.

use rill::JobArgs;
use std::time::Duration;

#[test]
fn a_state_key_too_large_for_the_store_names_the_step_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let args = JobArgs {
        workers: 2,
        epoch_interval: Duration::from_millis(20),
        state_dir: Some(dir.path().to_owned()),
        ..JobArgs::default()
    };
    let huge = "a".repeat(2 << 20);
    let err = rill::testing::run_with(args, move |flow| {
        let items = vec![(huge.clone(), 1u64), ("small".to_string(), 2)];
        flow.source_iter_keyed("input", items).sum("sums")
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("step sums"), "{msg}");
    assert!(msg.contains("key \"aaaa"), "{msg}");
    assert!(msg.contains("larger than the most a store takes"), "{msg}");
    assert!(msg.len() < 600, "the key is cut short: {} bytes", msg.len());
    assert_eq!(err.fault(), rill::Fault::User);
}
