//! What the event-time oracle tests share: the runs each check makes.

use rill::JobArgs;
use std::time::Duration;

/// Calls `run` with the flags of each run an oracle check makes, and a
/// label for its messages: 1, 2 and 3 workers, in memory and on RocksDB
/// with a 2-entry cache (so most state is read back from the store).
pub fn for_each_variant(what: &str, mut run: impl FnMut(JobArgs, String)) {
    for workers in [1, 2, 3] {
        for durable in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let args = JobArgs {
                workers,
                epoch_interval: Duration::from_millis(20),
                state_dir: durable.then(|| dir.path().to_owned()),
                state_cache_keys: 2,
                ..JobArgs::default()
            };
            let store = if durable { "RocksDB" } else { "memory" };
            run(args, format!("{what}, {workers} workers, {store}"));
        }
    }
}
