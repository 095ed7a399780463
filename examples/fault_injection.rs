//! Fault injection: a job whose keyed step fails on one chosen key, to show
//! (and test) what a failure in user logic does. The logic returns an error
//! — or, with `--panic`, panics — on the `--fail-after`-th record of key
//! `--fail-key`; the job stops on every worker of every process, and the
//! process exits with an error naming the step and the key.
//!
//! ```text
//! fault_injection --fail-key 3 --fail-after 1000 -w 2
//! ```

use clap::Parser;
use rill::prelude::*;

#[derive(Parser)]
#[command(about = "A job whose keyed step fails on one key")]
struct Cli {
    #[command(flatten)]
    job: JobArgs,
    /// Records in the generated input (keys 0..10).
    #[arg(long, default_value_t = 100_000_000)]
    records: u64,
    /// The key whose logic fails.
    #[arg(long, default_value_t = 3)]
    fail_key: u64,
    /// Fail on this record of the key.
    #[arg(long, default_value_t = 1000)]
    fail_after: u64,
    /// Panic instead of returning an error.
    #[arg(long)]
    panic: bool,
}

fn main() -> std::process::ExitCode {
    rill::exit(run())
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (records, fail_key, fail_after, panic) =
        (cli.records, cli.fail_key, cli.fail_after, cli.panic);
    rill::Job::new("fault-injection", cli.job)?.run(move |flow| {
        let mut states = States::new();
        let seen = states.value::<u64>("seen");
        flow.source_iter("numbers", 0..records)
            .key_by("by-key", |x| x % 10)
            .process("checked", states, move |cx, _x: u64| {
                let n = cx.value(seen).update(|n| {
                    let next = n.unwrap_or(0) + 1;
                    *n = Some(next);
                    next
                })?;
                if *cx.key() == fail_key && n == fail_after {
                    if panic {
                        panic!("record {n} of key {fail_key} is poison");
                    }
                    return Err(format!("record {n} of key {fail_key} is poison").into());
                }
                cx.emit(n);
                Ok(())
            })
            .for_each("discard", |_, _| {});
    })?;
    Ok(())
}
