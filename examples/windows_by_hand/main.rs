//! Windows by hand: tumbling event-time windows written directly on the
//! keyed core (`process_with`), with value, list and map state, event-time
//! and epoch timers, and a side output for late records. It runs over a
//! generated feed with watermarks and writes what it emits as JSON lines,
//! one file per worker, in `--out`: `{"key":..,"out":..}` for the main
//! output and `{"key":..,"late":..}` for late records. The resume test
//! kills it and starts it again on the same `--state-dir`.
//!
//! ```text
//! windows_by_hand --records 200000 --out /tmp/windows -w 2 --state-dir /tmp/windows-state
//! ```

#[allow(dead_code)] // the model is for the tests
mod logic;

use std::io::Write;

use clap::Parser;
use rill::prelude::*;

#[derive(Parser)]
#[command(about = "Tumbling windows written on the keyed core, over a generated feed")]
struct Cli {
    #[command(flatten)]
    job: JobArgs,
    /// Events in the generated feed.
    #[arg(long, default_value_t = 100_000)]
    records: u64,
    /// Keys in the feed.
    #[arg(long, default_value_t = 50)]
    keys: u32,
    /// A watermark (and an epoch) every this many events.
    #[arg(long, default_value_t = 200)]
    every: u64,
    /// The feed's seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where each worker writes what it emits.
    #[arg(long)]
    out: std::path::PathBuf,
}

/// Appends one JSON line to `file` (a whole line per write).
fn write_line(file: &mut std::fs::File, line: serde_json::Value) {
    let mut text = line.to_string();
    text.push('\n');
    if let Err(e) = file.write_all(text.as_bytes()) {
        eprintln!("windows_by_hand: cannot write its output: {e}");
        std::process::exit(1);
    }
}

fn main() -> std::process::ExitCode {
    rill::exit(run())
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.out)?;
    let items = logic::feed(cli.seed, cli.records, cli.keys, cli.every);
    let out_dir = cli.out.clone();
    rill::Job::new("windows-by-hand", cli.job)?.run(move |flow| {
        let path = out_dir.join(format!("out-{}.jsonl", flow.worker_index()));
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .expect("the output file opens")
        };
        let (mut main_file, mut late_file) = (open(), open());
        let mut states = States::new();
        let logic = logic::WindowsByHand::new(&mut states);
        let mut outputs = flow
            .source_timed("feed", items.clone())
            .key_by("by-key", |e: &logic::Event| e.key)
            .process_with("windows", states, logic);
        let late = outputs.sides.remove(0);
        outputs.output.for_each("emitted", move |key, out| {
            write_line(
                &mut main_file,
                serde_json::json!({ "key": key, "out": out }),
            );
        });
        late.for_each("late", move |key, value| {
            write_line(
                &mut late_file,
                serde_json::json!({ "key": key, "late": value }),
            );
        });
    })?;
    Ok(())
}
