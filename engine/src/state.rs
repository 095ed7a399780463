//! Durable state for a job: opening this process's store, agreeing with
//! the other processes on the resume epoch, and opening each worker's
//! checkpointer. The operators that write checkpoints are in `checkpoint.rs`.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use rill_state::checkpoint;
use rill_state::{Checkpointer, KeyGroups, KvStore, RocksStore, SharedCheckpointer, StoreError};
use timely::dataflow::operators::vec::{Broadcast, Input};
use timely::dataflow::operators::{Inspect, Probe};
use timely::worker::Worker;

use crate::rescale::Generation;
use crate::{Error, JobArgs, Result};

/// The state store of this process, if the job has a `--state-dir`.
pub(crate) struct ProcessState {
    pub store: Option<Arc<dyn KvStore>>,
    /// The job's key groups: from the store, once it has state.
    pub key_groups: KeyGroups,
    /// The resume epoch over this process's workers.
    pub local_resume: Option<u64>,
    /// The last epoch any of this process's workers ran: prepared, or
    /// fenced by an earlier resume ([`checkpoint::last_epoch`]).
    pub local_last: Option<u64>,
    /// Set once the store is readied for the agreed resume epoch (by
    /// whichever worker of the process gets there first).
    pub resumed: OnceLock<std::result::Result<(), String>>,
    /// The state directory, the directory of its current generation of
    /// stores, and the generation to make current once every process has
    /// opened its store.
    pub generation: Option<(PathBuf, PathBuf, Generation)>,
}

impl ProcessState {
    /// Opens `DIR/process-N` (creating it if new) and checks that it was
    /// written by a job of the same shape.
    pub fn open(args: &JobArgs) -> Result<Self> {
        let Some(dir) = &args.state_dir else {
            let count = args.key_groups.unwrap_or(rill_state::DEFAULT_KEY_GROUPS);
            return Ok(ProcessState {
                store: None,
                key_groups: KeyGroups::new(count).map_err(|e| Error::Config(e.to_string()))?,
                local_resume: None,
                local_last: None,
                resumed: OnceLock::new(),
                generation: None,
            });
        };
        let (root, generation) = crate::rescale::locate(dir, args)?;
        let path = root.join(format!("process-{}", args.process_id));
        let location = path.display().to_string();
        std::fs::create_dir_all(&path).map_err(|e| {
            Error::Config(format!("cannot create --state-dir {}: {e}", path.display()))
        })?;
        let store = RocksStore::open(&path).map_err(|e| open_error(e, &root, args))?;
        let meta = checkpoint::open_job(
            &store,
            &location,
            (args.workers * args.processes) as u32,
            args.processes as u32,
            args.key_groups,
        )
        .map_err(|e| Error::state("state", e))?;
        let first = (args.process_id * args.workers) as u32;
        let prepared = checkpoint::prepared(&store, first..first + args.workers as u32)
            .map_err(|e| open_error(e, &root, args))?;
        let local_last = checkpoint::last_epoch(&store, first..first + args.workers as u32)
            .map_err(|e| open_error(e, &root, args))?;
        let local_resume = checkpoint::resume_epoch(prepared);
        match local_resume {
            Some(e) => log::info!("state in {location}: resuming from epoch {e}"),
            None => log::info!("state in {location}: no complete checkpoint, starting empty"),
        }
        let groups = KeyGroups::new(meta.key_groups).map_err(|e| Error::Config(e.to_string()))?;
        log_assignment(groups, args);
        Ok(ProcessState {
            store: Some(Arc::new(store)),
            key_groups: groups,
            local_resume,
            local_last,
            resumed: OnceLock::new(),
            generation: Some((dir.clone(), root, generation)),
        })
    }

    /// Makes this process's generation of stores the one the state
    /// directory resumes from (worker 0 of the job, once every process
    /// has opened its store).
    pub fn commit_generation(&self) -> Result<()> {
        match &self.generation {
            Some((dir, _, g)) => g.commit(dir).map_err(|e| {
                Error::Runtime(format!(
                    "cannot record the state's generation in {}: {e}",
                    dir.display()
                ))
            }),
            None => Ok(()),
        }
    }
}

/// Logs the key groups each worker of this process owns.
fn log_assignment(groups: KeyGroups, args: &JobArgs) {
    let workers = args.processes * args.workers;
    let first = args.process_id * args.workers;
    for w in first..first + args.workers {
        let mine: Vec<u32> = (0..groups.count())
            .filter(|&g| groups.owner(rill_state::KeyGroup(g), workers).0 == w)
            .collect();
        match (mine.first(), mine.last()) {
            (Some(lo), Some(hi)) => log::info!(
                "worker {w}/{workers}: key groups {lo}..={hi} of {}",
                groups.count()
            ),
            _ => log::info!("worker {w}/{workers}: no key groups (more workers than key groups)"),
        }
    }
}

fn open_error(e: StoreError, dir: &std::path::Path, args: &JobArgs) -> Error {
    let hint = match &e {
        StoreError::Corrupted { .. } => corruption_hint(dir, args),
        _ => String::new(),
    };
    Error::state("state", rill_state::CheckpointError::Store(e)).with_hint(&hint)
}

/// What to do about a damaged store: use the intact copy beside it, if
/// there is one (single-process jobs; copies of several processes are taken
/// at different moments and may not agree), else start over.
fn corruption_hint(dir: &std::path::Path, args: &JobArgs) -> String {
    let live = dir.join(format!("process-{}", args.process_id));
    let copy = crate::writer::snapshot_path(dir, args.process_id);
    let copy_epoch = RocksStore::open_read_only(&copy).ok().and_then(|s| {
        checkpoint::prepared(&s, 0..args.workers as u32)
            .ok()
            .and_then(checkpoint::resume_epoch)
    });
    match copy_epoch {
        Some(epoch) if args.processes == 1 => format!(
            "an older complete checkpoint, epoch {epoch}, is intact in {copy}; to resume from it run \
             `mv {live} {live}.damaged && cp -a {copy} {live}` and start the job again",
            copy = copy.display(),
            live = live.display(),
        ),
        _ => format!(
            "no intact older checkpoint was found; move {} aside and start again to rebuild the state from the sources",
            dir.display()
        ),
    }
}

/// Agrees with every worker of the job on the resume epoch (the minimum
/// of the processes' local resume epochs, `None` if any has none) and on
/// the last epoch any worker ran (the maximum).
pub(crate) fn agree_resume(
    worker: &mut Worker,
    local: Option<u64>,
    last: Option<u64>,
) -> (Option<u64>, Option<u64>) {
    // 0 encodes "none"; e + 1 encodes epoch e.
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let (mut input, probe) = worker.dataflow::<u64, _, _>(|scope| {
        let (input, stream) = scope.new_input::<(u64, u64)>();
        let (probe, _) = stream
            .broadcast()
            .inspect(move |x| sink.borrow_mut().push(*x))
            .probe();
        (input, probe)
    });
    input.send((local.map_or(0, |e| e + 1), last.map_or(0, |e| e + 1)));
    input.close();
    while !probe.done() {
        worker.step();
    }
    let seen = seen.borrow();
    let resume = if seen.iter().any(|(r, _)| *r == 0) {
        None
    } else {
        seen.iter().map(|(r, _)| r - 1).min()
    };
    let last = seen
        .iter()
        .map(|(_, l)| *l)
        .max()
        .and_then(|l| l.checked_sub(1));
    (resume, last)
}

/// Opens this worker's checkpointer at the agreed resume epoch, once its
/// process's store is readied for it ([`checkpoint::resume_store`]).
pub(crate) fn open_worker(
    state: &ProcessState,
    args: &JobArgs,
    worker: usize,
    resume: Option<u64>,
    last: Option<u64>,
) -> Result<Option<SharedCheckpointer>> {
    let Some(store) = &state.store else {
        return Ok(None);
    };
    let first = (args.process_id * args.workers) as u32;
    let readied = state.resumed.get_or_init(|| {
        checkpoint::resume_store(
            store.as_ref(),
            first..first + args.workers as u32,
            resume,
            last,
        )
        .map_err(|e| e.to_string())
    });
    if let Err(e) = readied {
        return Err(Error::Runtime(format!(
            "cannot resume the state store: {e}"
        )));
    }
    let c = Checkpointer::open(store.clone(), worker as u32, resume)
        .map_err(|e| Error::state("state", e))?;
    Ok(Some(Rc::new(RefCell::new(c))))
}
