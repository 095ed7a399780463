//! `rill checkpoints --state-dir DIR`: what a job's state directory holds.

use anyhow::{bail, Context, Result};
use rill_state::checkpoint::{complete_checkpoints, inspect, StoreSummary};
use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// The epoch a job started on `dir` would resume from (`None`: it would
/// start empty, or `dir` holds no state yet).
pub fn resume_epoch(dir: &Path) -> Result<Option<u64>> {
    let stores = summaries(dir)?;
    let summaries: Vec<StoreSummary> = stores.into_iter().map(|(_, s)| s).collect();
    Ok(complete_checkpoints(&summaries).1)
}

/// The summary of each `process-N` store under `dir`, in order.
fn summaries(dir: &Path) -> Result<Vec<(String, StoreSummary)>> {
    let mut stores: Vec<(String, StoreSummary)> = Vec::new();
    let root = rill::state_root(dir)?;
    let entries = std::fs::read_dir(&root)
        .with_context(|| format!("cannot read --state-dir {}", root.display()))?;
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("process-"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    paths.sort();
    for path in paths {
        let store = rill_state::RocksStore::open_read_only(&path)
            .with_context(|| format!("cannot open the state store {}", path.display()))?;
        let summary = inspect(&store)?;
        stores.push((path.display().to_string(), summary));
    }
    Ok(stores)
}

/// Renders the complete checkpoints of the stores under `dir` (one
/// `process-N` store per process) and the epoch a job would resume from.
pub fn report(dir: &Path) -> Result<String> {
    let stores = summaries(dir)?;
    if stores.is_empty() {
        bail!(
            "{} holds no Rill state (no process-N store in it)",
            dir.display()
        );
    }
    let summaries: Vec<StoreSummary> = stores.iter().map(|(_, s)| s.clone()).collect();
    let (checkpoints, resume) = complete_checkpoints(&summaries);
    let mut out = String::new();
    let meta = summaries.iter().find_map(|s| s.meta.clone());
    let workers = meta.as_ref().map_or(0, |m| m.workers);
    writeln!(out, "state directory {}", dir.display())?;
    if let Some(m) = &meta {
        writeln!(
            out,
            "job shape: {} workers in {} processes",
            m.workers, m.processes
        )?;
    }
    for (path, s) in &stores {
        let steps: Vec<String> = s
            .steps
            .iter()
            .map(|(name, m)| format!("{name} ({}, {} key groups)", m.kind, m.key_groups))
            .collect();
        writeln!(
            out,
            "store {path}: {} on disk; steps: {}",
            size(s.bytes),
            steps.join(", ")
        )?;
    }
    match resume {
        Some(e) => writeln!(out, "resume epoch: {e}")?,
        None => writeln!(out, "resume epoch: none (a job would start empty)")?,
    }
    if checkpoints.is_empty() {
        writeln!(out, "no complete checkpoint")?;
        return Ok(out);
    }
    writeln!(
        out,
        "{:>8}  {:<24}  {:>10}  {:>7}  keys per step",
        "epoch", "time (UTC)", "size", "workers"
    )?;
    for c in &checkpoints {
        let time = humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(c.time_ms));
        let keys: Vec<String> = c.keys.iter().map(|(s, n)| format!("{s}={n}")).collect();
        writeln!(
            out,
            "{:>8}  {:<24}  {:>10}  {:>3}/{:<3}  {}",
            c.epoch,
            time.to_string(),
            size(c.bytes),
            c.workers,
            workers,
            keys.join(" ")
        )?;
    }
    Ok(out)
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
