//! Resuming with another job shape (DESIGN.md, "Scale").
//!
//! A state directory holds generations of stores, one store per process
//! each; `DIR/CURRENT` names the generation a job resumes from and the
//! shape (processes, workers per process) that wrote it. The first
//! generation is `DIR` itself. A process started with another shape
//! builds its store of a new generation from every store of the current
//! one, opened read-only, as of their resume epoch: whole key groups move
//! to their new owners, every process takes every source position (a
//! partition's reader may have moved), and watermarks go to every new
//! worker. Once every process has built its store (they have connected and
//! agreed on the resume epoch), worker 0 points `CURRENT` at the new
//! generation and removes the old ones. A crash before that leaves
//! `CURRENT` as it was: the next start reuses the stores already built,
//! or resumes with the old shape.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rill_state::checkpoint::{self, Carry, StoreSummary};
use rill_state::layout::{JobMeta, StepMeta, WATERMARK_STATE};
use rill_state::{KvStore, RocksStore};

use crate::flow::{SOURCE, SOURCE_BY_WORKER};
use crate::sink::EXACTLY_ONCE_SINK;
use crate::{Error, JobArgs, Result};

const CURRENT: &str = "CURRENT";

/// A generation of stores in a state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generation {
    /// Its directory under the state directory (`.`: the state directory).
    name: String,
    processes: usize,
    workers: usize,
}

impl Generation {
    /// The generation `dir/CURRENT` names, if it names one.
    fn current(dir: &Path) -> Result<Option<Generation>> {
        let path = dir.join(CURRENT);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let mut parts = text.split_whitespace();
        let name = parts.next().unwrap_or_default().to_owned();
        let mut number = || parts.next().and_then(|n| n.parse::<usize>().ok());
        match (number(), number()) {
            (Some(processes), Some(workers))
                if name == "." || (name.starts_with("gen-") && !name.contains('/')) =>
            {
                Ok(Some(Generation {
                    name,
                    processes,
                    workers,
                }))
            }
            _ => Err(Error::Config(format!(
                "{} is damaged (it should name a generation of stores and its shape, e.g. \". 2 1\")",
                path.display()
            ))),
        }
    }

    /// Where its stores are.
    pub fn root(&self, dir: &Path) -> PathBuf {
        match self.name.as_str() {
            "." => dir.to_path_buf(),
            name => dir.join(name),
        }
    }

    fn number(&self) -> u64 {
        let rest = self.name.strip_prefix("gen-").unwrap_or("0");
        rest.split('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Makes this the generation `dir` resumes from (one atomic rename)
    /// and removes every other.
    pub fn commit(&self, dir: &Path) -> std::io::Result<()> {
        let text = format!("{} {} {}\n", self.name, self.processes, self.workers);
        let path = dir.join(CURRENT);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            let tmp = dir.join("CURRENT.tmp");
            std::fs::write(&tmp, &text)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()?;
        }
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old_generation = name.starts_with("gen-") && name != self.name;
            let first_generation = self.name != "." && name.starts_with("process-");
            if old_generation || first_generation {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }
}

/// The directory of the stores a job started on the state directory `dir`
/// resumes from (the directory itself until the job is first rescaled).
pub fn state_root(dir: &Path) -> Result<PathBuf> {
    Ok(Generation::current(dir)?.map_or_else(|| dir.to_path_buf(), |g| g.root(dir)))
}

/// The directory of this process's store and the generation to commit
/// once every process has opened its store: the current one, or, when
/// the job's shape changed, a new one whose store for this process is
/// built here.
pub(crate) fn locate(dir: &Path, args: &JobArgs) -> Result<(PathBuf, Generation)> {
    let shape = (args.processes, args.workers);
    match Generation::current(dir)? {
        None => {
            let first = Generation {
                name: ".".into(),
                processes: shape.0,
                workers: shape.1,
            };
            Ok((dir.to_path_buf(), first))
        }
        Some(g) if (g.processes, g.workers) == shape => Ok((g.root(dir), g)),
        Some(old) => rescale(dir, &old, args),
    }
}

fn rescale(dir: &Path, old: &Generation, args: &JobArgs) -> Result<(PathBuf, Generation)> {
    let old_root = old.root(dir);
    let mut stores = Vec::new();
    let mut summaries: Vec<StoreSummary> = Vec::new();
    for p in 0..old.processes {
        let path = old_root.join(format!("process-{p}"));
        let store = RocksStore::open_read_only(&path).map_err(|e| {
            Error::Config(format!(
                "cannot rescale: the state of process {p} of the job's last shape ({} x {}) is not readable at {}: {e}; \
                 every process needs every process's state directory (on one host a shared --state-dir; across hosts, storage all of them reach)",
                old.processes, old.workers, path.display()
            ))
        })?;
        summaries.push(checkpoint::inspect(&store).map_err(|e| Error::state("state", e))?);
        stores.push(store);
    }
    let (_, resume) = checkpoint::complete_checkpoints(&summaries);
    let key_groups = summaries
        .iter()
        .find_map(|s| s.meta.as_ref().map(|m| m.key_groups));
    let from = resume.map_or("empty".to_owned(), |e| format!("from-{e}"));
    let generation = Generation {
        name: format!(
            "gen-{}-{}x{}-{from}",
            old.number() + 1,
            args.processes,
            args.workers
        ),
        processes: args.processes,
        workers: args.workers,
    };
    let root = generation.root(dir);
    let target = root.join(format!("process-{}", args.process_id));
    let (Some(resume), Some(key_groups)) = (resume, key_groups) else {
        log::info!(
            "rescale: the state in {} holds no complete checkpoint; the job starts empty as {} x {}",
            old_root.display(),
            args.processes,
            args.workers
        );
        return Ok((root, generation));
    };
    for (store, summary) in stores.iter().zip(&summaries) {
        for (name, step) in &summary.steps {
            let total = args.processes * args.workers;
            if step.kind == SOURCE_BY_WORKER && total != old.processes * old.workers {
                return Err(Error::Config(format!(
                    "cannot rescale: the source `{name}` splits its input by worker, so its job resumes \
                     only with the same number of workers in all ({} before, {total} now)",
                    old.processes * old.workers
                )));
            }
            if step.kind != EXACTLY_ONCE_SINK {
                continue;
            }
            let id = rill_state::stable_hash(name.as_str());
            let found =
                crate::sink::unpublished(store, id, resume).map_err(|e| Error::state(name, e))?;
            if let Some((writer, epoch)) = found {
                return Err(Error::Config(format!(
                    "cannot rescale: the exactly-once sink `{name}` has output of epoch {epoch} (writer {writer}) \
                     that is not yet published; run the job once more with its last shape ({} processes x {} workers) \
                     and stop it gracefully, then rescale",
                    old.processes, old.workers
                )));
            }
        }
    }
    if !target.exists() {
        let started = Instant::now();
        let building = root.join(format!("process-{}.building", args.process_id));
        let io =
            |e: std::io::Error| Error::Config(format!("cannot build {}: {e}", building.display()));
        if building.exists() {
            std::fs::remove_dir_all(&building).map_err(io)?;
        }
        std::fs::create_dir_all(&building).map_err(io)?;
        let into = RocksStore::open(&building).map_err(|e| Error::state("state", e))?;
        let meta = JobMeta {
            workers: (args.processes * args.workers) as u32,
            processes: args.processes as u32,
            key_groups,
        };
        let sources: Vec<&dyn KvStore> = stores.iter().map(|s| s as &dyn KvStore).collect();
        checkpoint::rebuild(
            &sources,
            &into,
            &meta,
            args.process_id as u32,
            resume,
            carry,
        )
        .map_err(|e| Error::state("state", e))?;
        drop(into);
        std::fs::rename(&building, &target).map_err(io)?;
        std::fs::File::open(&root)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        log::info!(
            "rescale: built the state of process {} for {} x {} from {} x {} at epoch {resume} in {:.1?}",
            args.process_id,
            args.processes,
            args.workers,
            old.processes,
            old.workers,
            started.elapsed()
        );
    }
    Ok((root, generation))
}

/// Where each state of a step goes.
fn carry(step: &StepMeta, state: u8) -> Carry {
    match (step.kind.as_str(), state) {
        // Positions are read by partition, and partitions move with workers.
        (SOURCE | SOURCE_BY_WORKER, _) => Carry::Everywhere,
        // Checked above: everything it buffered is published.
        (EXACTLY_ONCE_SINK, _) => Carry::Drop,
        (_, WATERMARK_STATE) => Carry::Watermark,
        _ => Carry::ByGroup,
    }
}
