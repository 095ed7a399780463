//! Durable state for a job: opening this process's store, agreeing with
//! the other processes on the resume epoch, and opening each worker's
//! checkpointer. The operators that write checkpoints are in `checkpoint.rs`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use rill_state::checkpoint::{self, JobMeta};
use rill_state::{Checkpointer, KvStore, RocksStore, SharedCheckpointer, StoreError};
use timely::dataflow::operators::vec::{Broadcast, Input};
use timely::dataflow::operators::{Inspect, Probe};
use timely::worker::Worker;

use crate::{Error, JobArgs, Result};

/// The state store of this process, if the job has a `--state-dir`.
pub(crate) struct ProcessState {
    pub store: Option<Arc<dyn KvStore>>,
    /// The resume epoch over this process's workers.
    pub local_resume: Option<u64>,
}

impl ProcessState {
    /// Opens `DIR/process-N` and checks that it was written by a job of the
    /// same shape.
    pub fn open(args: &JobArgs) -> Result<Self> {
        let Some(dir) = &args.state_dir else {
            return Ok(ProcessState {
                store: None,
                local_resume: None,
            });
        };
        let path = dir.join(format!("process-{}", args.process_id));
        std::fs::create_dir_all(&path).map_err(|e| {
            Error::Config(format!("cannot create --state-dir {}: {e}", path.display()))
        })?;
        let store = RocksStore::open(&path)
            .map_err(|e| open_error(e, dir, args))?
            .ingesting_from(args.state_ingest_from);
        let meta = JobMeta {
            workers: (args.workers * args.processes) as u32,
            processes: args.processes as u32,
        };
        let location = path.display().to_string();
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
    let copy = crate::checkpoint::snapshot_path(dir, args.process_id);
    let copy_epoch = RocksStore::open_read_only(&copy).ok().and_then(|s| {
        checkpoint::local_resume_epoch(&s, 0..args.workers as u32)
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

/// Opens this worker's checkpointer at the agreed resume epoch.
pub(crate) fn open_worker(
    store: &Arc<dyn KvStore>,
    worker: usize,
    resume: Option<u64>,
) -> Result<SharedCheckpointer> {
    let c = Checkpointer::open(store.clone(), worker as u32, resume)
        .map_err(|e| Error::state("state", e))?;
    Ok(Rc::new(RefCell::new(c)))
}
