//! `--epoch-max-records`: a source closes an epoch once it has read that
//! many records in it, whatever the epoch interval; 0 is refused.

use rill::JobArgs;
use std::time::Duration;

/// How many epochs a per-epoch count over 20,000 records of one key saw.
fn epochs_with_records(max: Option<u64>) -> usize {
    let args = JobArgs {
        workers: 1,
        epoch_interval: Duration::from_secs(60),
        epoch_max_records: max,
        ..JobArgs::default()
    };
    let out = rill::testing::run_with(args, |flow| {
        flow.source_iter_keyed("in", (0..20_000u64).map(|i| (0u8, i)))
            .per_epoch()
            .count("per-epoch")
    })
    .expect("the job runs");
    out.len()
}

#[test]
fn a_source_closes_an_epoch_once_it_read_the_most_records() {
    // The source reads in batches of 1,024: an epoch closes after 2,048.
    let capped = epochs_with_records(Some(2_000));
    assert!((9..=11).contains(&capped), "{capped} epochs");
    assert_eq!(epochs_with_records(None), 1, "one 60 s epoch holds all");
}

#[test]
fn zero_records_per_epoch_is_refused() {
    let args = JobArgs {
        epoch_max_records: Some(0),
        ..JobArgs::default()
    };
    let err = rill::Job::new("zero", args).err().expect("refused");
    assert!(err.to_string().contains("--epoch-max-records"), "{err}");
}
