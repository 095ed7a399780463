//! Durable state for a job: opening this process's store, agreeing with
//! the other processes on the resume epoch, and the two operators that end
//! every dataflow with state — `checkpoint.prepare` writes each worker's
//! batch once every step of the job passed an epoch, and
//! `checkpoint.complete` learns that every worker prepared it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use rill_state::checkpoint::{self, JobMeta};
use rill_state::{Checkpointer, KvStore, RocksStore, SharedCheckpointer, StoreError};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Broadcast, Input};
use timely::dataflow::operators::{Concatenate, Inspect, Probe};
use timely::dataflow::{Scope, StreamVec};
use timely::worker::Worker;

use crate::context::WorkerCtx;
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
        let store = RocksStore::open(&path).map_err(|e| open_error(e, dir))?;
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
                .map_err(|e| open_error(e, dir))?;
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

fn open_error(e: StoreError, dir: &std::path::Path) -> Error {
    let hint = match &e {
        StoreError::Corrupted { .. } => format!(
            "; no older copy of the state is kept, so no earlier checkpoint can be restored: \
             move {} aside and start again to rebuild the state from the sources",
            dir.display()
        ),
        _ => String::new(),
    };
    Error::state("state", rill_state::CheckpointError::Store(e)).with_hint(&hint)
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

/// Adds `checkpoint.prepare` and `checkpoint.complete` after every
/// progress stream of the dataflow.
pub(crate) fn checkpoint_operators<'s>(
    scope: Scope<'s, u64>,
    ctx: &WorkerCtx,
    progress: Vec<StreamVec<'s, u64, ()>>,
) {
    let Some(checkpointer) = ctx.checkpointer.clone() else {
        return;
    };
    if ctx.shared.aborted() {
        // A step already failed (and said why); do not pile errors on it.
        return;
    }
    if let Err(e) = checkpointer.borrow().check_steps() {
        ctx.shared.fail(Error::state("state", e));
        return;
    }
    let worker = ctx.worker_label();
    let metrics = &ctx.shared.metrics;
    let duration = metrics.checkpoint_duration.with_label_values(&[&worker]);
    let size = metrics.checkpoint_bytes.with_label_values(&[&worker]);
    let complete_gauge = metrics.checkpoint_complete.clone();
    let writer_ctx = ctx.clone();
    let writer = checkpointer.clone();
    let progress: StreamVec<'s, u64, ()> = scope.concatenate(progress);
    let prepared = progress.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        "checkpoint.prepare",
        move |cap, _| {
            let mut cap = Some(cap);
            move |(input, frontier), _output| {
                input.for_each(|_, data: &mut Vec<()>| data.clear());
                let Some(held) = cap.as_mut() else {
                    return;
                };
                let low = frontier.frontier().first().copied();
                let through = match low {
                    Some(l) if l > *held.time() => l - 1,
                    Some(_) => return,
                    // The input ended: write everything staged, whatever its epoch.
                    None => {
                        let staged = writer.borrow().staged_through();
                        staged.map_or(*held.time(), |s| s.max(*held.time()))
                    }
                };
                let already = writer.borrow().prepared();
                if already.is_none_or(|p| p < through) {
                    log::debug!("checkpoint: writing epoch {through}");
                    let started = Instant::now();
                    match writer.borrow_mut().prepare(through) {
                        Ok(stats) => {
                            duration.observe(started.elapsed().as_secs_f64());
                            size.set(stats.bytes as i64);
                            log::debug!(
                                "checkpoint: prepared epoch {through}: {} versions, {} bytes in {:.1?}",
                                stats.versions,
                                stats.bytes,
                                started.elapsed()
                            );
                        }
                        Err(e) => {
                            writer_ctx.shared.fail(Error::state("checkpoint", e));
                            cap = None;
                            return;
                        }
                    }
                }
                match low {
                    Some(l) => held.downgrade(&l),
                    None => cap = None,
                }
            }
        },
    );
    let completer_ctx = ctx.clone();
    let mut completed: Option<u64> = checkpointer.borrow().resume();
    prepared.sink(Pipeline, "checkpoint.complete", move |(input, frontier)| {
        input.for_each(|_, data: &mut Vec<()>| data.clear());
        let done = match frontier.frontier().first() {
            Some(&l) if l > 0 => l - 1,
            Some(_) => return,
            None => match checkpointer.borrow().prepared() {
                Some(p) => p,
                None => return,
            },
        };
        if completed.is_some_and(|c| c >= done) && !frontier.is_empty() {
            return;
        }
        completed = Some(done);
        let mut c = checkpointer.borrow_mut();
        c.complete(done);
        complete_gauge.set(done as i64);
        if frontier.is_empty() {
            if let Err(e) = c.flush_garbage() {
                completer_ctx.shared.fail(Error::state("checkpoint", e));
            }
        }
    });
}
