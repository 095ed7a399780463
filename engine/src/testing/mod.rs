//! Helpers for testing jobs: run a flow with N workers and get its output,
//! and (in [`kafka`]) talk to a real broker.

pub mod embedded;
pub mod kafka;

use std::time::Duration;

use crate::{Collector, Flow, Job, JobArgs, Result, Stream};

/// An item of a test feed with event time ([`Flow::source_timed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timed<V> {
    /// A record and its event time.
    Record(u64, V),
    /// Every record before this point has been read: the watermark moves
    /// to this event time, and the epoch closes.
    Watermark(u64),
}

/// Runs the flow `build` returns with `workers` worker threads, collects the
/// records of the returned stream from every worker and returns them (in no
/// particular order across workers).
///
/// ```
/// let out = rill::testing::run(2, |flow| {
///     flow.source_iter("words", vec!["a", "bb", "ccc"]).map("len", |w| w.len())
/// })
/// .unwrap();
/// let mut lengths: Vec<usize> = out.into_iter().map(|(_, v)| v).collect();
/// lengths.sort();
/// assert_eq!(lengths, vec![1, 2, 3]);
/// ```
pub fn run<K, V, F>(workers: usize, build: F) -> Result<Vec<(K, V)>>
where
    K: Send + 'static,
    V: Send + 'static,
    F: for<'s> Fn(&mut Flow<'s>) -> Stream<'s, K, V> + Send + Sync + 'static,
{
    let args = JobArgs {
        workers,
        epoch_interval: Duration::from_millis(50),
        ..JobArgs::default()
    };
    run_with(args, build)
}

/// Like [`run`], with explicit job flags.
pub fn run_with<K, V, F>(args: JobArgs, build: F) -> Result<Vec<(K, V)>>
where
    K: Send + 'static,
    V: Send + 'static,
    F: for<'s> Fn(&mut Flow<'s>) -> Stream<'s, K, V> + Send + Sync + 'static,
{
    let collector = Collector::new();
    let sink = collector.clone();
    Job::new("test", args)?.run(move |flow| {
        build(flow).collect("collect", &sink);
    })?;
    Ok(collector.take())
}

/// Writes a hosts file for `processes` processes on 127.0.0.1, each on a
/// port that was free a moment ago (for `-n N --hosts FILE` in tests).
pub fn write_local_hosts(path: &std::path::Path, processes: usize) -> std::io::Result<()> {
    let mut text = String::new();
    for _ in 0..processes {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        text.push_str(&format!("127.0.0.1:{port}\n"));
    }
    std::fs::write(path, text)
}
