//! An endless job for the launcher's tests: the running count of each of
//! 100 keys over an endless in-process stream. It only ends when stopped.
//!
//! ```text
//! rill run -n 2 -- target/debug/examples/endless_sum --state-dir /tmp/endless
//! ```

fn main() -> std::process::ExitCode {
    rill::exit(run())
}

fn run() -> rill::Result<()> {
    rill::Job::from_args("endless-sum")?.run(|flow| {
        flow.source_iter_keyed("numbers", (0u64..).map(|i| (i % 100, 1u64)))
            .sum("sums")
            .for_each("discard", |_, _| {});
    })
}
