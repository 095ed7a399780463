//! The two operators that end every dataflow with durable state.
//!
//! `checkpoint.prepare` takes the progress streams of every source, stateful
//! step and sink. When their frontier passes epoch `e` — every one of them,
//! on every worker, has staged (or delivered) all of `e` — it hands the
//! worker's batch up to `e` to a writer thread, and holds its own output at
//! `e` until the batch is durable: writing never blocks the worker.
//! `checkpoint.complete` sees that output's frontier pass `e` once every
//! worker prepared `e`: the checkpoint is complete, and the versions it
//! replaced become garbage.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rill_state::checkpoint::{CheckpointWrite, PendingPrepare};
use rill_state::{KvStore, StoreError};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Concatenate;
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;

use crate::context::WorkerCtx;
use crate::Error;

/// A worker's writer thread: finishes and writes batches in order,
/// reports each result and wakes the operator; on the process's first
/// worker it also keeps the copy of the store up to date. Dropping it
/// waits for the thread, so the store is closed when the job returns.
struct Writer {
    batches: Option<mpsc::Sender<CheckpointWrite>>,
    results: mpsc::Receiver<Result<(), StoreError>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn spawn(
        store: Arc<dyn KvStore>,
        wake: SyncActivator,
        worker: usize,
        mut copies: Option<Copies>,
    ) -> std::io::Result<Self> {
        let (batches, inbox) = mpsc::channel::<CheckpointWrite>();
        let (outbox, results) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("rill-checkpoint-{worker}"))
            .spawn(move || {
                for write in inbox {
                    let result = write.into_batch().and_then(|b| store.write(b));
                    let ok = result.is_ok();
                    if outbox.send(result).is_err() {
                        break;
                    }
                    let _ = wake.activate();
                    if let (true, Some(c)) = (ok, copies.as_mut()) {
                        c.after_write(store.as_ref());
                    }
                }
            })?;
        Ok(Writer {
            batches: Some(batches),
            results,
            thread: Some(thread),
        })
    }

    fn send(&self, write: CheckpointWrite) -> bool {
        self.batches.as_ref().is_some_and(|b| b.send(write).is_ok())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.batches = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
    let state_keys = metrics.state_keys.clone();
    let worker_label = worker.clone();
    let writer_ctx = ctx.clone();
    let cp = checkpointer.clone();
    let index = ctx.index;
    let copies = Copies::new(ctx, checkpointer.borrow().resume().is_some());
    let progress: StreamVec<'s, u64, ()> = scope.concatenate(progress);
    let prepared = progress.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        "checkpoint.prepare",
        move |cap, info| {
            let wake = scope.worker().sync_activator_for(info.address.to_vec());
            let store = cp.borrow().store().clone();
            let mut writer = match Writer::spawn(store, wake, index, copies) {
                Ok(w) => Some(w),
                Err(e) => {
                    writer_ctx.shared.fail(Error::Runtime(format!(
                        "cannot start the checkpoint writer: {e}"
                    )));
                    None
                }
            };
            let mut cap = Some(cap);
            let mut in_flight: Option<(PendingPrepare, Instant)> = None;
            move |(input, frontier), _output| {
                input.for_each(|_, data: &mut Vec<()>| data.clear());
                let (Some(held), Some(w)) = (cap.as_mut(), writer.as_ref()) else {
                    return;
                };
                // A batch in flight: wait for it, then let its epoch go.
                if let Some((pending, started)) = in_flight.take() {
                    match w.results.try_recv() {
                        Err(mpsc::TryRecvError::Empty) => {
                            in_flight = Some((pending, started));
                            return;
                        }
                        Ok(Ok(())) => {
                            let stats = cp.borrow_mut().finish_prepare(pending);
                            for (step, n) in cp.borrow().keys() {
                                state_keys
                                    .with_label_values(&[step.as_str(), &worker_label])
                                    .set(*n as i64);
                            }
                            duration.observe(started.elapsed().as_secs_f64());
                            size.set(stats.bytes as i64);
                            log::debug!(
                                "checkpoint: prepared epoch {}: {} versions, {} bytes in {:.1?}",
                                stats.epoch,
                                stats.versions,
                                stats.bytes,
                                started.elapsed()
                            );
                            // At the end of the input the hold just goes
                            // (below), once nothing newer is staged.
                            if !frontier.is_empty() {
                                held.downgrade(&(stats.epoch + 1).max(*held.time()));
                            }
                        }
                        Ok(Err(e)) => {
                            writer_ctx.shared.fail(Error::state("checkpoint", e));
                            cap = None;
                            writer = None;
                            return;
                        }
                        Err(mpsc::TryRecvError::Disconnected) => {
                            writer_ctx
                                .shared
                                .fail(Error::Runtime("the checkpoint writer stopped".into()));
                            cap = None;
                            writer = None;
                            return;
                        }
                    }
                }
                let low = frontier.frontier().first().copied();
                let through = match low {
                    Some(l) if l > *held.time() => l - 1,
                    Some(_) => return,
                    // The input ended: write everything staged, whatever its epoch.
                    None => {
                        let staged = cp.borrow().staged_through();
                        staged.map_or(*held.time(), |s| s.max(*held.time()))
                    }
                };
                let already = cp.borrow().prepared();
                if already.is_some_and(|p| p >= through) {
                    match low {
                        Some(l) => held.downgrade(&l),
                        None => cap = None,
                    }
                    return;
                }
                let building = Instant::now();
                let begun = cp.borrow_mut().begin_prepare(through);
                log::debug!(
                    "checkpoint: writing epoch {through} (batch built in {:.1?})",
                    building.elapsed()
                );
                match begun {
                    Ok((batch, pending)) => {
                        if !w.send(batch) {
                            writer_ctx
                                .shared
                                .fail(Error::Runtime("the checkpoint writer stopped".into()));
                            cap = None;
                            return;
                        }
                        in_flight = Some((pending, Instant::now()));
                    }
                    Err(e) => {
                        writer_ctx.shared.fail(Error::state("checkpoint", e));
                        cap = None;
                    }
                }
            }
        },
    );
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
        let collecting = Instant::now();
        c.complete(done);
        log::debug!(
            "checkpoint: epoch {done} complete; garbage listed in {:.1?}",
            collecting.elapsed()
        );
        complete_gauge.set(done as i64);
        // At the end of the job the garbage of the last checkpoint stays
        // listed in its undo logs; the next start collects it.
    });
}

/// The copy of a process's store kept beside it (`DIR/process-N.snapshot`),
/// taken on the writer thread of the process's first worker after a
/// checkpoint write: after the first one when the job resumed (not before,
/// so as not to slow recovery), then whenever `--state-copy-interval` has
/// passed. If the store is ever damaged, a
/// single-process job can resume from the copy.
struct Copies {
    target: PathBuf,
    interval: Duration,
    resumed: bool,
    last: Instant,
}

impl Copies {
    fn new(ctx: &WorkerCtx, resumed: bool) -> Option<Self> {
        let args = &ctx.shared.args;
        let first_local = ctx.index.is_multiple_of(args.workers);
        match &args.state_dir {
            Some(dir) if first_local => Some(Copies {
                target: snapshot_path(dir, args.process_id),
                interval: args.state_copy_interval,
                resumed,
                last: Instant::now(),
            }),
            _ => None,
        }
    }

    fn after_write(&mut self, store: &dyn KvStore) {
        if std::mem::take(&mut self.resumed) || self.last.elapsed() >= self.interval {
            self.take(store);
        }
    }

    fn take(&mut self, store: &dyn KvStore) {
        self.last = Instant::now();
        let target = &self.target;
        let tmp = target.with_extension("snapshot.tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let result = store
            .snapshot(&tmp)
            .map_err(|e| e.to_string())
            .and_then(|taken| {
                if !taken {
                    return Ok(());
                }
                let _ = std::fs::remove_dir_all(target);
                std::fs::rename(&tmp, target).map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => log::debug!(
                "checkpoint: copied the store to {} in {:.1?}",
                target.display(),
                self.last.elapsed()
            ),
            // A failed copy costs only the fallback; the job goes on.
            Err(e) => log::warn!(
                "could not copy the state store to {}: {e}",
                target.display()
            ),
        }
    }
}

/// Where process `process`'s copy of its store lives.
pub(crate) fn snapshot_path(dir: &Path, process: usize) -> PathBuf {
    dir.join(format!("process-{process}.snapshot"))
}
