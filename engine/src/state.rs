//! Durable state for a job: opening this process's store, agreeing with
//! the other processes on the resume epoch, and opening each worker's
//! checkpointer. The operators that write checkpoints are in `checkpoint.rs`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use rill_state::checkpoint::{self, JobMeta};
use rill_state::{Checkpointer, FreshStore, KvStore, RocksStore, SharedCheckpointer, StoreError};
use timely::dataflow::operators::vec::{Broadcast, Input};
use timely::dataflow::operators::{Inspect, Probe};
use timely::worker::Worker;

use crate::{Error, JobArgs, Result};

/// The state store of this process, if the job has a `--state-dir`.
pub(crate) struct ProcessState {
    pub store: Option<Arc<dyn KvStore>>,
    /// The resume epoch over this process's workers.
    pub local_resume: Option<u64>,
    /// The job's shape, when the store is new ([`FreshStore`]): each
    /// worker writes the shape with its first checkpoint
    /// ([`Checkpointer::create`]).
    pub created: Option<JobMeta>,
}

impl ProcessState {
    /// Opens `DIR/process-N` and checks that it was written by a job of the
    /// same shape. A new (missing or empty) directory holds no state to
    /// resume: its RocksDB is created only after the first checkpoint
    /// ([`FreshStore`]).
    pub fn open(args: &JobArgs) -> Result<Self> {
        let Some(dir) = &args.state_dir else {
            return Ok(ProcessState {
                store: None,
                local_resume: None,
                created: None,
            });
        };
        let path = dir.join(format!("process-{}", args.process_id));
        let location = path.display().to_string();
        let meta = JobMeta {
            workers: (args.workers * args.processes) as u32,
            processes: args.processes as u32,
        };
        // A directory that cannot be read is opened now, so that the error
        // comes at start-up.
        let new = RocksStore::is_new(&path);
        std::fs::create_dir_all(&path).map_err(|e| {
            Error::Config(format!("cannot create --state-dir {}: {e}", path.display()))
        })?;
        let ingest_from = args.state_ingest_from;
        if new {
            let store = FreshStore::new(&path, ingest_from);
            log::info!("state in {location}: a new store, starting empty");
            return Ok(ProcessState {
                store: Some(Arc::new(store)),
                local_resume: None,
                created: Some(meta),
            });
        }
        let store = RocksStore::open(&path)
            .map_err(|e| open_error(e, dir, args))?
            .ingesting_from(ingest_from);
        checkpoint::check_job_meta(&store, &location, &meta)
            .map_err(|e| Error::state("state", e))?;
        let first = (args.process_id * args.workers) as u32;
        let local_resume =
            checkpoint::local_resume_epoch(&store, first..first + args.workers as u32)
                .map_err(|e| open_error(e, dir, args))?;
        match local_resume {
            Some(e) => log::info!("state in {location}: resuming from epoch {e}"),
            None => log::info!("state in {location}: no complete checkpoint, starting empty"),
        }
        Ok(ProcessState {
            store: Some(Arc::new(store)),
            local_resume,
            created: None,
        })
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
    let copy_epoch = rill_state::store::open_for_reading(&copy)
        .ok()
        .and_then(|s| {
            checkpoint::local_resume_epoch(&*s, 0..args.workers as u32)
                .ok()
                .flatten()
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

/// Agrees with every worker of the job on the resume epoch: the minimum
/// of the processes' local resume epochs (`None` if any has none).
pub(crate) fn agree_resume(worker: &mut Worker, local: Option<u64>) -> Option<u64> {
    // 0 encodes "no checkpoint"; e + 1 encodes epoch e.
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let (mut input, probe) = worker.dataflow::<u64, _, _>(|scope| {
        let (input, stream) = scope.new_input::<u64>();
        let (probe, _) = stream
            .broadcast()
            .inspect(move |x| sink.borrow_mut().push(*x))
            .probe();
        (input, probe)
    });
    input.send(local.map_or(0, |e| e + 1));
    input.close();
    while !probe.done() {
        worker.step();
    }
    let seen = seen.borrow();
    if seen.contains(&0) {
        None
    } else {
        seen.iter().min().map(|e| e - 1)
    }
}

/// Opens this worker's checkpointer at the agreed resume epoch (`created`:
/// the job's shape, if this process's store is new).
pub(crate) fn open_worker(
    store: &Arc<dyn KvStore>,
    worker: usize,
    resume: Option<u64>,
    created: Option<&JobMeta>,
) -> Result<SharedCheckpointer> {
    let c = match (created, resume) {
        (Some(meta), None) => Checkpointer::create(store.clone(), worker as u32, meta),
        _ => Checkpointer::open(store.clone(), worker as u32, resume),
    }
    .map_err(|e| Error::state("state", e))?;
    Ok(Rc::new(RefCell::new(c)))
}
